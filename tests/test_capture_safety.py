"""``tracekit capture``: the capture folder rule, failed captures leave nothing, secrets never reach disk or screen.

Each test asserts the exit code, the message, the files left in the folder, and that its
inputs (the profiled program, a previous capture refused) are byte for byte unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTHING = "import sys; sys.exit(0)"  # a program that never imports torch: nothing is profiled, runs in ~50 ms


def cap(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(REPO)  # tracekit importable from any cwd (editable or not)
    return subprocess.run([sys.executable, "-m", "tracekit", "capture", *args], capture_output=True, text=True, cwd=cwd,
                          env=e, timeout=timeout)


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` (relative) -> its bytes (None for folders)."""
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def previous_capture(out: Path) -> None:
    """What a finished capture leaves: one raw Kineto trace (pid 123), its .proc.json, parquet/ and capture.json."""
    (out / "raw").mkdir(parents=True)
    (out / "parquet").mkdir()
    ev = [{"ph": "X", "cat": "user_annotation", "name": "step", "pid": 123, "tid": 123, "ts": 1, "dur": 5, "args": {}}]
    (out / "raw" / "123.json").write_text(json.dumps({"schemaVersion": 1, "traceEvents": ev}))
    (out / "raw" / "123.proc.json").write_text(json.dumps({"pid": 123, "argv": ["old.py"], "label": "old", "state": "exported (exit)"}))
    (out / "parquet" / "123-old.parquet").write_bytes(b"PAR1 old")
    (out / "capture.json").write_text("{}")


def test_reused_out_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    out = tmp_path / "run"
    previous_capture(out)
    before = tree(out)
    r = cap(tmp_path, "--out", str(out), "--", sys.executable, "-c", NOTHING)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"tracekit: error: {out}: --out is not empty (a previous capture would be mixed into this one's report); "
        "pass --force to replace the capture there, or choose a new folder"]
    assert r.stdout == ""
    assert tree(out) == before


def test_force_replaces_the_previous_capture_only(tmp_path: Path) -> None:
    out = tmp_path / "run"
    previous_capture(out)
    r = cap(tmp_path, "--out", str(out), "--force", "--", sys.executable, "-c", NOTHING)
    assert r.returncode == 0, r.stderr
    # without --force the old raw/123.json would be converted too: "captured 1 process trace(s)"
    assert r.stdout.splitlines()[0] == "captured 0 process trace(s), 0 events, command exit code 0"
    assert sorted(tree(out)) == ["capture.json", "parquet", "raw"]
    doc = json.loads((out / "capture.json").read_text())
    assert doc["processes"] == [] and doc["cmd"] == [sys.executable, "-c", NOTHING]


def test_force_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("mine")
    (out / "raw").mkdir()
    before = tree(out)
    r = cap(tmp_path, "--out", str(out), "--force", "--", sys.executable, "-c", NOTHING)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        f"tracekit: error: {out}: --out holds files that are not a capture (thesis.tex); "
        "--force only replaces raw/, parquet/ and capture.json: choose a new folder"]
    assert tree(out) == before


def test_out_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    r = cap(tmp_path, "--out", str(f), "--", sys.executable, "-c", NOTHING)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"tracekit: error: {f}: --out exists and is not a folder"]
    assert f.read_text() == "x"


def test_empty_out_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    r = cap(tmp_path, "--out", str(out), "--", sys.executable, "-c", NOTHING)
    assert r.returncode == 0, r.stderr
    assert sorted(tree(out)) == ["capture.json", "parquet", "raw"]


@pytest.mark.parametrize("use_out", [True, False])
def test_command_not_found_leaves_no_folder(tmp_path: Path, use_out: bool) -> None:
    args = ["--out", str(tmp_path / "a" / "b" / "run")] if use_out else []
    r = cap(tmp_path, *args, "--", "no-such-command-tracekit")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ["tracekit: error: command not found: no-such-command-tracekit"]
    assert list(tmp_path.iterdir()) == []  # neither a/b/run (nor a, b) nor tracekit-runs/<ts>/


def test_missing_nsys_leaves_no_folder(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no nsys here
    r = cap(tmp_path, "--backend", "nsys", "--", sys.executable, "-c", "pass", env=env)
    assert r.returncode == 127
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracekit: error: nsys not found on PATH")
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_leaves_no_folder(tmp_path: Path) -> None:
    r = cap(tmp_path, "--sglang-url", "http://user:USERPW@127.0.0.1:9", "--steps", "2")
    assert r.returncode == 1
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("tracekit: error: http://<redacted>@127.0.0.1:9: cannot reach the SGLang server (")
    assert "USERPW" not in r.stderr + r.stdout
    assert list(tmp_path.iterdir()) == []
    r = cap(tmp_path, "--out", str(tmp_path / "x"), "--sglang-url", "http://127.0.0.1:9")  # no window bound: refused first
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "tracekit: error: http://127.0.0.1:9: --sglang-url needs --steps N or --duration S to bound the window"]
    assert list(tmp_path.iterdir()) == []


SECRETS = {"S3CRET", "T0KEN", "PASSW", "XKEYV", "XKEYV2", "TOKV", "HFVAL", "USERPW", "ENVSECRETVALUE"}
PROG = "import sys, torch\nfrom tracekit import phase\nwith phase('step'):\n    torch.ones(4) * 2\n"


def test_secrets_in_argv_never_reach_disk_or_screen(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    prog = tmp_path / "x.py"
    prog.write_text(PROG)
    before = prog.read_bytes()
    out = tmp_path / "run"
    args = ["--api_key", "S3CRET", "--hf_token", "T0KEN", "--password=PASSW", "--x_key", "XKEYV", "--x-key=XKEYV2",
            "--token", "TOKV", "HF_TOKEN=HFVAL", "https://me:USERPW@host/x", "--max-tokens", "100"]
    env = dict(os.environ, HF_TOKEN="ENVSECRETVALUE")
    r = cap(tmp_path, "--out", str(out), "--", sys.executable, str(prog), *args, env=env)
    assert r.returncode == 0, r.stderr
    assert prog.read_bytes() == before
    redacted = ["--api_key", "<redacted>", "--hf_token", "<redacted>", "--password=<redacted>", "--x_key", "<redacted>",
                "--x-key=<redacted>", "--token", "<redacted>", "HF_TOKEN=<redacted>", "https://<redacted>@host/x",
                "--max-tokens", "100"]
    doc = json.loads((out / "capture.json").read_text())
    assert doc["cmd"] == [sys.executable, str(prog), *redacted]
    (p,) = doc["processes"]
    assert p["argv"] == [str(prog), *redacted]
    (proc,) = (out / "raw").glob("*.proc.json")
    assert json.loads(proc.read_text())["argv"] == [str(prog), *redacted]
    # the summary line shows the redacted argv, cut at 80 characters
    assert r.stdout.splitlines()[1].endswith("  [" + " ".join([str(prog), *redacted])[:80] + "]")
    leaks = {s for s in SECRETS if s in r.stdout + r.stderr}
    for f in out.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            leaks |= {f"{f.name}:{s}" for s in SECRETS if s.encode() in data}
    assert not leaks
    assert sorted(x.name for x in (out / "parquet").iterdir()) == [f"{p['pid']}-x.parquet"]
