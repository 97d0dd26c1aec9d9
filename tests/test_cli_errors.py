"""Every verb against a table of bad inputs: exit 2, one short message naming the file, no traceback, nothing written.

The bad files are made here (empty, truncated, random bytes, another program's Parquet, not JSON, a
folder with no traces, a path that does not exist), so what each one is wrong with is known.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from tests.test_kineto_phases import EVENTS
from tracekit.cli import cli
from tracekit.ingest import convert

#: Bad input file name -> a fragment its message must hold (besides the file's name).
BAD = {
    "missing.parquet": "no such file",
    "empty.parquet": "empty file",
    "trunc.parquet": "truncated Parquet file",
    "rand.parquet": "not a Parquet file",
    "foreign.parquet": "not a tracekit Parquet file",
    "notjson.json": "",
    "nothing": "no .parquet files and no raw traces",
}

#: verb -> argument template; {bad} is the bad input, {good} a valid converted trace.
VERBS = {
    "sql": ["sql", "{bad}", "SELECT 1"],
    "info": ["info", "{bad}"],
    "report": ["report", "{bad}"],
    "graphmap": ["graphmap", "{bad}", "-r", "{good}"],
    "graphmap-ref": ["graphmap", "{good}", "-r", "{bad}"],
    "diff": ["diff", "{good}", "{bad}"],
    "compare": ["compare", "--label", "a", "{good}", "--label", "b", "{bad}"],
    "export-chrome": ["export-chrome", "{bad}", "-o", "out.json"],
    "convert": ["convert", "{bad}", "-o", "out.parquet"],
}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (hidden ones too) -> sha256 of its bytes ('dir' for folders)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        out[str(p.relative_to(folder))] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture
def bad_dir(tmp_path: Path, write_trace: Callable[..., Path]) -> Path:
    """A folder with one good raw trace, its Parquet, and one file of every bad kind."""
    good_json = write_trace(EVENTS, name="good.json")
    convert(good_json, tmp_path / "good.parquet")
    data = (tmp_path / "good.parquet").read_bytes()
    (tmp_path / "empty.parquet").write_bytes(b"")
    (tmp_path / "trunc.parquet").write_bytes(data[: len(data) // 2])
    (tmp_path / "rand.parquet").write_bytes(random.Random(7).randbytes(5000))
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "foreign.parquet")
    (tmp_path / "notjson.json").write_text("{not json at all")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "readme.txt").write_text("no traces here")
    return tmp_path


def run_in(folder: Path, args: list[str]):  # type: ignore[no-untyped-def]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        return CliRunner().invoke(cli, args)
    finally:
        os.chdir(cwd)


def assert_one_line_error(r, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit), r.exception  # not an uncaught exception
    assert "Traceback" not in r.output
    lines = r.stderr.splitlines()
    assert 1 <= len(lines) <= 3, r.stderr
    assert lines[0].startswith("tracekit: error: "), r.stderr
    for f in fragments:
        assert f in r.stderr, (f, r.stderr)


@pytest.mark.parametrize("verb", list(VERBS))
@pytest.mark.parametrize("bad", list(BAD))
def test_every_verb_every_bad_input(bad_dir: Path, verb: str, bad: str) -> None:
    if verb == "convert" and bad == "nothing":
        fragment = "is a directory"
    elif verb.startswith("graphmap") and bad == "nothing":
        fragment = "expected one trace file, not a folder"
    elif bad == "notjson.json" or (verb == "convert" and bad.endswith(".parquet") and bad != "missing.parquet"):
        fragment = ""  # a raw-trace reader's own message (covered by the kineto tests); the file name is what matters here
    else:
        fragment = BAD[bad]
    args = [a.format(bad=bad, good="good.parquet") for a in VERBS[verb]]
    before = snapshot(bad_dir)
    r = run_in(bad_dir, args)
    assert_one_line_error(r, bad, fragment)
    assert snapshot(bad_dir) == before  # no output, no cache, no temporary file; inputs byte-for-byte unchanged


@pytest.mark.parametrize("args, fragments", [
    (["sql", "good.parquet", "SELECT bad"], ['Referenced column "bad" was not found']),
    (["sql", "good.parquet", "SELEC 1"], ["Parser Error"]),
    (["report", "good.parquet", "--step-pattern", "("], ["--step-pattern", "invalid regular expression '('"]),
    (["report", "good.parquet", "--lm-head-regex", "["], ["--lm-head-regex", "invalid regular expression '['"]),
    (["report", "good.parquet", "--lm-head-kernel-regex", "(?=x)"], ["--lm-head-kernel-regex", "invalid perl operator"]),
    (["diff", "good.parquet", "good.parquet", "--step-pattern", "("], ["--step-pattern"]),
    (["compare", "good.parquet", "--step-pattern", "(", "good.parquet"], ["--step-pattern"]),
    (["export-chrome", "good.parquet", "-o", "x.json", "--step-pattern", "("], ["--step-pattern"]),
    (["graphmap", "good.parquet", "-r", "good.parquet", "--step-pattern", "("], ["--step-pattern"]),
    (["convert", "good.json", "-o", "good.json/x.parquet"], ["good.json/x.parquet", "good.json is a file, not a folder"]),
    (["convert", "good.json", "-o", "/proc/x.parquet"], ["/proc/x.parquet", "cannot write here"]),
    (["export-chrome", "good.parquet", "-o", "/proc/x.json"], ["/proc/x.json", "cannot write here"]),
    (["report", "good.parquet", "--html", "/proc/x.html"], ["/proc/x.html", "cannot write"]),
    (["convert", "good.json", "notjson.json", "-o", "good.parquet"], ["good.parquet", "is a file"]),
])
def test_user_errors(bad_dir: Path, args: list[str], fragments: list[str]) -> None:
    before = snapshot(bad_dir)
    r = run_in(bad_dir, args)
    assert_one_line_error(r, *fragments)
    assert snapshot(bad_dir) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders: /proc stands in for them above")
def test_read_only_folder(bad_dir: Path) -> None:
    ro = bad_dir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        before = snapshot(bad_dir)
        for args in (["convert", "good.json", "-o", "ro/x.parquet"], ["export-chrome", "good.parquet", "-o", "ro/x.json"]):
            assert_one_line_error(run_in(bad_dir, args), "ro/x.", "cannot write here")
        assert snapshot(bad_dir) == before
    finally:
        ro.chmod(0o755)


def test_real_process_stderr(bad_dir: Path) -> None:
    """Through a real interpreter: exit 2 and exactly one stderr line, with no Python stack (CliRunner hides none)."""
    for args, fragment in ((["sql", "good.parquet", "SELECT bad"], "Binder Error"),
                           (["info", "trunc.parquet"], "trunc.parquet: truncated Parquet file"),
                           (["convert", "missing.json", "-o", "x.parquet"], "missing.json: no such file")):
        p = subprocess.run([sys.executable, "-m", "tracekit", *args], cwd=bad_dir, capture_output=True, text=True)
        assert p.returncode == 2, p.stderr
        assert "Traceback" not in p.stderr and len(p.stderr.splitlines()) == 1 and fragment in p.stderr, p.stderr


def test_debug_env_shows_traceback(bad_dir: Path) -> None:
    """TRACEKIT_DEBUG=1 re-raises the one-line errors, for whoever needs the stack."""
    env = dict(os.environ, TRACEKIT_DEBUG="1")
    p = subprocess.run([sys.executable, "-m", "tracekit", "info", "trunc.parquet"], cwd=bad_dir,
                       capture_output=True, text=True, env=env)
    assert p.returncode == 1 and "Traceback" in p.stderr and "TraceError: trunc.parquet: truncated" in p.stderr


def test_control_characters_in_a_file_name_are_escaped(tmp_path: Path) -> None:
    name = "x\x1b]0;pwned\x07\x1b[2J.json"
    r = run_in(tmp_path, ["convert", name, "-o", "o.parquet"])
    assert_one_line_error(r, "x\\x1b]0;pwned\\x07\\x1b[2J.json: no such file")
    assert "\x1b" not in r.stderr and "\x07" not in r.stderr


def test_folder_output_is_not_destroyed_by_a_failed_write(bad_dir: Path) -> None:
    """An existing folder given as -o takes the output inside it (several files: a dataset)."""
    (bad_dir / "x.parquet").mkdir()
    r = run_in(bad_dir, ["convert", "good.json", "-o", "x.parquet"])
    assert r.exit_code == 0, r.output
    assert sorted(os.listdir(bad_dir / "x.parquet")) == ["good.parquet"]
    assert pq.read_metadata(bad_dir / "x.parquet" / "good.parquet").num_rows == len(EVENTS)
    shutil.rmtree(bad_dir / "x.parquet")
