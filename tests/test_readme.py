"""The README's commands are the ones that run: CI's command, and the CLI verbs it shows."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from tracekit.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)\n```", README, re.S)
    test_cmd = next(b for b in blocks if "pytest" in b)
    assert test_cmd.strip() in (ROOT / ".ci" / "run").read_text()


def test_readme_verbs_exist_and_document_their_options() -> None:
    runner = CliRunner()
    for verb in sorted(set(re.findall(r"^tracekit (\w[\w-]*)", README, re.M))):
        res = runner.invoke(cli, [verb, "--help"])
        assert res.exit_code == 0, (verb, res.output)
        for line in re.findall(rf"^tracekit {verb} .*$", README, re.M):
            for o in re.findall(r"(--[\w-]+)", line.split("#")[0].split(" -- ")[0]):
                assert o in res.output, (verb, o)


def test_readme_report_block_is_what_report_prints() -> None:
    """The README's terminal report of the k4 sample is the real output at 80 columns (up to the `wrote` lines)."""
    block = re.search(r"```text\n\$ tracekit report (samples/traces/spec_decode_k4/parquet) --html report.html\n(.*?)\n```",
                      README, re.S)
    assert block is not None
    shown = block.group(2).split("\nwrote report.html")[0]
    res = CliRunner().invoke(cli, ["report", str(ROOT / block.group(1)), "--width", "80"])
    assert res.exit_code == 0, res.output
    assert res.output.rstrip("\n") == shown
