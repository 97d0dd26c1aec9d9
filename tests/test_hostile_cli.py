"""Hostile input to the verbs, second round (issue 23, items 1, 4, 6, 8, 11, 13, 14, 15, 17): one test per class.

Every case runs tracekit in a child process bounded in memory (RLIMIT_AS), file size (RLIMIT_FSIZE, the
full-disk cases) and wall time, so a regression fails here instead of taking the machine down. Servers
listen on 127.0.0.1 only. Each test states the exit code, the one stderr line and what the folder holds
afterwards (inputs byte for byte).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.test_cli_errors import snapshot
from tests.test_kineto_phases import EVENTS
from tracekit.ingest import convert

REPO = Path(__file__).resolve().parents[1]

#: The child: limits first, then the CLI. SIGXFSZ ignored so a write past RLIMIT_FSIZE fails with EFBIG,
#: as a write to a full disk fails with ENOSPC (an OSError from the write call, no file named).
_CHILD = textwrap.dedent("""
    import resource, signal, sys
    mem, fsize = int(sys.argv[1]), int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    if fsize >= 0:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    sys.argv = ["tracekit", *sys.argv[3:]]
    from tracekit.cli import main
    main()
""")


def tk(cwd: Path, *args: str, mem: int = 3 << 30, fsize: int = -1, timeout: float = 120,
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``tracekit ARGS`` in ``cwd`` under a memory limit (3 GiB), a file-size limit (none) and a timeout."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", _CHILD, str(mem), str(fsize), *args], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line(p: subprocess.CompletedProcess[str], *fragments: str, rc: int = 2) -> str:
    """``p`` ended with exit ``rc`` and exactly one stderr line, ``tracekit: error: ...`` holding ``fragments``."""
    assert p.returncode == rc, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


@pytest.fixture
def folder(tmp_path: Path, write_trace: Callable[..., Path]) -> Path:
    """good.json (a small Kineto trace with steps and kernels) and its conversion good.parquet."""
    write_trace(EVENTS, name="good.json")
    convert(tmp_path / "good.json", tmp_path / "good.parquet")
    return tmp_path


# ---- 1. SQL text built from data -------------------------------------------------------------------------

INJECTION = "x\" AS SELECT 1; COPY (SELECT 42 AS pwned) TO 'canary'; CREATE VIEW \"y"


def test_result_folder_names_are_never_sql(folder: Path) -> None:
    """A results folder's sub-folder names become view names: quoted, so the issue's folder name names a view
    and runs nothing (it wrote ./canary, exit 0). Paths with quotes and glob characters are read literally."""
    r = tk(folder, "report", "good.parquet", "--out", "res")
    assert r.returncode == 0, r.stderr
    hostile = folder / "res" / INJECTION
    hostile.mkdir()
    pq.write_table(pa.table({"v": [7]}), hostile / "it's [a]*.parquet")
    pq.write_table(pa.table({"v": [8]}), hostile / "ita.parquet")  # what the glob `[a]*` would match too
    before = snapshot(folder)
    r = tk(folder, "aggregate", "res", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert snapshot(folder) == before
    assert not (folder / "canary").exists() and not list(folder.rglob("canary*"))
    from tracekit.dataset import connect_results

    con = connect_results(str(folder / "res"))
    view = INJECTION.replace('"', '""')
    assert con.execute(f'SELECT v FROM "{view}" ORDER BY v').fetchall() == [(7,), (8,)]
    assert not list(folder.rglob("canary*"))


def test_result_folders_that_would_share_a_view_are_refused(folder: Path) -> None:
    r = tk(folder, "report", "good.parquet", "--out", "res")
    assert r.returncode == 0, r.stderr
    (folder / "res" / "gpu_idle_causes").mkdir()
    pq.write_table(pa.table({"v": [1]}), folder / "res" / "gpu_idle_causes" / "x.parquet")
    one_line(tk(folder, "aggregate", "res"), "res: result folders", "both give the view 'gpu_idle_causes'")
