"""Secrets on command lines and in trace metadata: every form, and no over-redaction.

Expected strings are written by hand from the rule in tracekit/redact.py's docstring: the
value of a secret-named flag or KEY=VALUE, URL userinfo, and credential-shaped values go;
everything else stays byte for byte.
"""

from __future__ import annotations

import ast
import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import pytest

from tracekit import redact
from tracekit.redact import REDACTED as R
from tracekit.redact import is_secret_key, redact_argv, redact_text, scrub

SECRETS = ("S3CRET", "T0KEN", "PASSW", "XKEYV", "XKEYV2", "TOKV", "HFVAL", "USERPW")


@pytest.mark.parametrize("text, expected", [
    ("python x.py --api_key S3CRET --hf_token T0KEN --password=PASSW",
     f"python x.py --api_key {R} --hf_token {R} --password={R}"),
    ("--api-key=S3CRET --x_key XKEYV --x-key=XKEYV2 --token TOKV",
     f"--api-key={R} --x_key {R} --x-key={R} --token {R}"),
    ("HF_TOKEN=HFVAL python serve.py", f"HF_TOKEN={R} python serve.py"),
    ("git clone https://me:USERPW@github.com/o/r.git", f"git clone https://{R}@github.com/o/r.git"),
    ("curl https://T0KEN@host/x?a=1&access_token=TOKV", f"curl https://{R}@host/x?a=1&access_token={R}"),
    ("--api-key 'two words' --n 1", f"--api-key {R} --n 1"),
    ("""--json-model-override-args '{"api_key": "S3CRET", "n": 2}'""", f"""--json-model-override-args '{{"api_key": "{R}", "n": 2}}'"""),
    ("--db-pass PASSW --apiKey S3CRET", f"--db-pass {R} --apiKey {R}"),
    ("echo hf_abcdefghijklmnopqrstuvwxyz0123", f"echo {R}"),
])
def test_redact_text_every_form(text: str, expected: str) -> None:
    assert redact_text(text) == expected


NOT_SECRET = ("python -m sglang.launch_server --model-path meta/Llama-3 --tp-size 2 --max-tokens 100 max_tokens=5 "
              "--max-new-tokens 3 --tokenizer-path /m/tok --port 30000 --mem-fraction-static 0.8 --monkey 3 "
              "--num-tokens 8 --skip-tokenizer-init --speculative-num-draft-tokens 4 https://host:8080/v1")


def test_normal_flags_are_not_redacted() -> None:
    assert redact_text(NOT_SECRET) == NOT_SECRET
    argv = NOT_SECRET.split()
    assert redact_argv(argv) == argv
    for k in ("max_tokens", "max_new_tokens", "tokenizer", "tokens", "num_keys", "monkey", "keyboard", "tp_size", "PATH"):
        assert not is_secret_key(k), k
    for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "api_key", "--api-key", "x_key", "--x-key", "AWS_SECRET_ACCESS_KEY",
              "password", "db_pass", "apiKey", "accessToken", "token", "key", "WANDB_API_KEY", "authorization"):
        assert is_secret_key(k), k


def test_secret_flag_before_another_option_redacts_nothing() -> None:
    assert redact_text("--auth --port 1") == "--auth --port 1"
    assert redact_argv(["--token", "--port", "1"]) == ["--token", "--port", "1"]


def test_redact_argv_list_forms() -> None:
    argv = ["python", "x.py", "--api_key", "S3CRET", "--hf_token", "T0KEN", "--password=PASSW", "--x_key", "XKEYV",
            "--x-key=XKEYV2", "--token", "TOKV", "HF_TOKEN=HFVAL", "https://u:USERPW@h/p", "--api-key", "two words",
            "--max-tokens", "100"]
    assert redact_argv(argv) == ["python", "x.py", "--api_key", R, "--hf_token", R, "--password=" + R, "--x_key", R,
                                 "--x-key=" + R, "--token", R, "HF_TOKEN=" + R, f"https://{R}@h/p", "--api-key", R,
                                 "--max-tokens", "100"]
    assert argv[3] == "S3CRET"  # a copy: the input list is untouched


def test_scrub_metadata_nested_lists_and_keys() -> None:
    meta = {"argv": ["serve.py", "--api-key", "S3CRET", "--tp", "2"], "cmd": "x --x-key=XKEYV", "HF_TOKEN": "HFVAL",
            "max_tokens": 7, "env": {"A": "1"}, "nested": [{"url": "https://u:USERPW@h"}], "devices": [{"name": "H100"}]}
    assert scrub(meta) == {"argv": ["serve.py", "--api-key", R, "--tp", "2"], "cmd": f"x --x-key={R}", "HF_TOKEN": R,
                           "max_tokens": 7, "env": R, "nested": [{"url": f"https://{R}@h"}], "devices": [{"name": "H100"}]}


def test_redact_module_is_standard_library_only() -> None:
    """The capture bootstrap loads tracekit/redact.py by path in programs that may not have tracekit's dependencies."""
    src = Path(redact.__file__)
    tree = ast.parse(src.read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__", "re", "typing"}, mods
    code = ("import importlib.util, sys; s = importlib.util.spec_from_file_location('r', sys.argv[1]); "
            "m = importlib.util.module_from_spec(s); s.loader.exec_module(m); print(m.redact_argv(['--token', 'T0KEN']))")
    r = subprocess.run([sys.executable, "-I", "-S", "-c", code, str(src)], capture_output=True, text=True)  # no site-packages
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(["--token", R])


def test_kineto_metadata_redacted_in_parquet(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    from tracekit.ingest import convert
    from tracekit.store import read_metadata

    events = [{"ph": "X", "cat": "cpu_op", "name": "aten::mm", "pid": 1, "tid": 1, "ts": 10, "dur": 5, "args": {}}]
    src = write_trace(events, argv=["serve.py", "--api_key", "S3CRET", "--hf_token", "T0KEN", "--tp-size", "2"],
                      command="serve.py --password=PASSW --x_key XKEYV --x-key=XKEYV2 --token TOKV",
                      launcher={"cmd": "HF_TOKEN=HFVAL python", "url": "https://me:USERPW@host/x"})
    before = src.read_bytes()
    out = tmp_path / "t.parquet"
    convert(src, out)
    assert src.read_bytes() == before
    (m,) = read_metadata(out).values()
    assert m["extra"]["argv"] == ["serve.py", "--api_key", R, "--hf_token", R, "--tp-size", "2"]
    assert m["extra"]["command"] == f"serve.py --password={R} --x_key {R} --x-key={R} --token {R}"
    assert m["extra"]["launcher"] == {"cmd": f"HF_TOKEN={R} python", "url": f"https://{R}@host/x"}
    blob = out.read_bytes()
    assert not [s for s in SECRETS if s.encode() in blob]


def test_nsys_command_line_redacted_in_parquet(tmp_path: Path) -> None:
    from tests.test_nsys_ingest import _tiny
    from tracekit.ingest import convert
    from tracekit.store import read_metadata

    db = _tiny(tmp_path / "cap.sqlite")
    args = ["serve.py", "--api-key", "S3CRET", "--password=PASSW", "--x_key", "XKEYV", "HF_TOKEN=HFVAL",
            "https://u:USERPW@host/x", "--max-tokens", "100"]
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE META_DATA_CAPTURE (name TEXT, value TEXT)")
    con.executemany("INSERT INTO META_DATA_CAPTURE VALUES (?, ?)",
                    [("PROCESS_1:COMMAND", "python")] + [(f"PROCESS_1:ARGUMENT_{i}", a) for i, a in enumerate(args)])
    con.commit()
    con.close()
    before = db.read_bytes()
    out = tmp_path / "cap.parquet"
    convert(db, out)
    assert db.read_bytes() == before
    (m,) = read_metadata(out).values()
    assert m["extra"]["command_line"] == (f"python serve.py --api-key {R} --password={R} --x_key {R} HF_TOKEN={R} "
                                          f"https://{R}@host/x --max-tokens 100")
    blob = out.read_bytes()
    assert not [s for s in SECRETS if s.encode() in blob]


def test_capture_help_documents_redaction() -> None:
    r = subprocess.run([sys.executable, "-m", "tracekit", "capture", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert "redacted" in r.stdout and "--force" in r.stdout


def test_bootstrap_redacts_argv_and_fails_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bootstrap's argv for .proc.json: redacted with redact.py loaded by path; only the program name without it."""
    import importlib.util

    from tracekit.capture import CaptureOptions, bootstrap_dir, capture_env

    cfg = json.loads(capture_env(CaptureOptions(), tmp_path / "raw", base={})["TRACEKIT_CAPTURE"])
    assert cfg["redact"] == redact.__file__
    monkeypatch.syspath_prepend(str(bootstrap_dir()))  # as in the profiled program: its tracekit_hooks import
    spec = importlib.util.spec_from_file_location("_boot_under_test", bootstrap_dir() / "tracekit_bootstrap.py")
    boot = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(boot)  # type: ignore[union-attr]
    monkeypatch.setattr(sys, "argv", ["/srv/serve.py", "--api-key", "S3CRET", "--tp-size", "2"])
    assert boot._argv() == ["serve.py"]  # nothing loaded yet: fail closed
    boot._load_redact(str(tmp_path / "missing.py"))
    assert boot._argv() == ["serve.py"]
    assert boot.S.notes == ["argv not recorded: cannot load the redaction rules (FileNotFoundError)"]
    boot._load_redact(cfg["redact"])
    assert boot._argv() == ["/srv/serve.py", "--api-key", R, "--tp-size", "2"]
