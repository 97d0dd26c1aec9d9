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
from typing import Callable, Iterator

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
    exec(sys.argv[3])
    sys.argv = ["tracekit", *sys.argv[4:]]
    from tracekit.cli import main
    main()
""")


def tk(cwd: Path, *args: str, mem: int = 3 << 30, fsize: int = -1, timeout: float = 120, prelude: str = "",
       env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``tracekit ARGS`` in ``cwd`` under a memory limit (3 GiB), a file-size limit (none) and a timeout;
    ``prelude``: Python run in the child before the CLI (a fault injected)."""
    e = dict(os.environ if env is None else env)
    e["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-c", _CHILD, str(mem), str(fsize), prelude, *args], cwd=cwd, env=e,
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


# ---- 4. no output over an input, whichever writer --------------------------------------------------------

def test_report_html_median_step_file_never_replaces_an_input(folder: Path) -> None:
    """`report r.median_step.json.gz --html r.html` wrote its median-step slice over its own input (exit 0)."""
    import gzip

    (folder / "r.median_step.json.gz").write_bytes(gzip.compress((folder / "good.json").read_bytes()))
    os.link(folder / "good.parquet", folder / "s.median_step.json.gz")  # the same file under the sidecar's name
    before = snapshot(folder)
    r = tk(folder, "report", "r.median_step.json.gz", "--html", "r.html")
    one_line(r, "r.median_step.json.gz: is an input")
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if not k.endswith(".tracekit.parquet")} == before  # the cache may stay
    r = tk(folder, "report", "good.parquet", "--html", "s.html")
    one_line(r, "s.median_step.json.gz: is an input")
    r = tk(folder, "report", "good.parquet", "--html", "ok.html")  # the rule refuses inputs only
    assert r.returncode == 0, r.stderr
    assert (folder / "ok.html").is_file() and (folder / "ok.median_step.json.gz").is_file()


def test_every_writer_refuses_what_the_command_read(folder: Path) -> None:
    """The backstop under every writer (tracekit.atomic.make_temp): inside a command, a file opened as an input
    is never written, whichever writer tries; outside one (a library caller) nothing is remembered."""
    from tracekit import atomic, export_chrome
    from tracekit.errors import TraceError
    from tracekit.store import connect

    (folder / "other.json").write_bytes((folder / "good.json").read_bytes())
    before = snapshot(folder)
    with atomic.guarding_inputs():
        connect([folder / "good.json"])  # reads good.json through its cache good.json.tracekit.parquet
        for victim in ("good.json", "good.json.tracekit.parquet"):
            with pytest.raises(TraceError, match="is an input"):
                atomic.write_text(folder / victim, "x")
            with pytest.raises(TraceError, match="is an input"):
                export_chrome.export_chrome([folder / "good.parquet"], folder / victim)
            with pytest.raises(TraceError, match="is an input"):
                convert(folder / "other.json", folder / victim)
    assert {k: v for k, v in snapshot(folder).items() if k != "good.json.tracekit.parquet"} == before
    atomic.write_text(folder / "x.txt", "x")  # no command running: no rule
    with atomic.guarding_inputs():
        connect([folder / "good.parquet"])
        atomic.write_text(folder / "x.txt", "y")  # not an input


# ---- 8. a full disk -----------------------------------------------------------------------------------------

ENOSPC_SPILL = textwrap.dedent("""
    import pyarrow.ipc as ipc
    _new_file = ipc.new_file
    class _Full:
        def __init__(self, w): self._w = w
        def write_batch(self, b): raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
        def __getattr__(self, k): return getattr(self._w, k)
    ipc.new_file = lambda *a, **k: _Full(_new_file(*a, **k))
""")


@pytest.mark.parametrize("how", ["enospc", "fsize"])
def test_full_disk_during_conversion(folder: Path, how: str) -> None:
    """The spill writer's OSError names no file: one line naming the output, nothing left (no .arrow, no .tmp)."""
    before = snapshot(folder)
    if how == "enospc":  # ENOSPC injected at the spill writer's write call
        r = tk(folder, "convert", "good.json", "-o", "out.parquet", prelude=ENOSPC_SPILL)
        one_line(r, "out.parquet: cannot write: No space left on device")
    else:  # a real write past RLIMIT_FSIZE (EFBIG), wherever it happens first
        r = tk(folder, "convert", "good.json", "-o", "out.parquet", fsize=2000)
        one_line(r, "out.parquet: cannot write: File too large")
    assert snapshot(folder) == before
    r = tk(folder, "export-chrome", "good.parquet", "-o", "x.json", fsize=100)
    one_line(r, "x.json: cannot write")
    assert snapshot(folder) == before
    r = tk(folder, "report", "good.json", prelude=ENOSPC_SPILL)  # the cached conversion of a raw input
    one_line(r, "good.json.tracekit.parquet: cannot write: No space left on device")
    assert snapshot(folder) == before


def test_full_disk_during_report_html_leaves_nothing(folder: Path) -> None:
    """The median-step file (~2 KB) fits, the page does not: neither stays (the median-step file was orphaned)."""
    before = snapshot(folder)
    r = tk(folder, "report", "good.parquet", "--html", "r.html", fsize=20_000)
    one_line(r, "r.html: cannot write")
    assert snapshot(folder) == before


def test_report_html_keeps_the_median_step_the_written_page_links(folder: Path) -> None:
    """`report --html r.html | head`: the page was written, then printing the terminal report failed (a closed
    pipe), and the median-step file the page links to was removed with the failure: a dangling link."""
    closed_pipe = textwrap.dedent("""
        import tracekit.view.terminal as t
        def print_report(*a, **k):
            raise BrokenPipeError(32, "Broken pipe")
        t.print_report = print_report
    """)
    r = tk(folder, "report", "good.parquet", "--html", "r.html", prelude=closed_pipe)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr
    page = (folder / "r.html").read_text()
    assert "href='r.median_step.json.gz'" in page and (folder / "r.median_step.json.gz").is_file()


# ---- 11. inputs that are not regular files ------------------------------------------------------------------

@pytest.mark.parametrize("args, name", [
    (["convert", "fifo.json", "-o", "o.parquet"], "fifo.json"),
    (["convert", "fifo.json", "-o", "out/"], "fifo.json"),  # the dataset path hashes its inputs first
    (["report", "fifo.json"], "fifo.json"),
    (["info", "fifo.parquet"], "fifo.parquet"),
    (["sql", "ds", "SELECT 1"], "fifo.parquet"),  # a FIFO inside a dataset folder
    (["sql", "good.parquet", "-f", "fifo.sql"], "fifo.sql"),
    (["export-chrome", "/dev/zero", "-o", "x.json"], "/dev/zero"),
])
def test_a_fifo_or_device_input_is_refused_not_waited_on(folder: Path, args: list[str], name: str) -> None:
    """open() on a FIFO blocks until a writer comes: tracekit hung forever. Now: one line, at once."""
    for n in ("fifo.json", "fifo.parquet", "fifo.sql"):
        os.mkfifo(folder / n)
    (folder / "ds").mkdir()
    os.link(folder / "good.parquet", folder / "ds" / "a.parquet")
    os.mkfifo(folder / "ds" / "fifo.parquet")
    before = snapshot_special(folder)
    r = tk(folder, *args, timeout=60)
    kind = "a device" if name.startswith("/dev") else "a FIFO"
    if args[-1] == "out/":  # a dataset conversion: one line per bad input, then its count line (and the sidecar)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        errs = [ln for ln in r.stderr.splitlines() if ln.startswith("tracekit: error:")]
        assert len(errs) == 1 and f"{name}: not a regular file ({kind})" in errs[0], r.stderr
        assert {k: v for k, v in snapshot_special(folder).items() if not k.startswith("out")} == before
        return
    one_line(r, f"{name}: not a regular file ({kind})")
    assert snapshot_special(folder) == before


def snapshot_special(folder: Path) -> dict[str, str]:
    """:func:`snapshot` that does not open FIFOs (reading one would block)."""
    import stat

    out = {}
    for p in sorted(folder.rglob("*")):
        mode = p.lstat().st_mode
        out[str(p.relative_to(folder))] = ("fifo" if stat.S_ISFIFO(mode) else "dir" if stat.S_ISDIR(mode)
                                           else __import__("hashlib").sha256(p.read_bytes()).hexdigest())
    return out


# ---- 15. option values that would exhaust memory ------------------------------------------------------------

def test_report_width_is_bounded(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--width 1000000000` was a MemoryError traceback (lines are built that wide): refused by click's range."""
    r = tk(folder, "report", "good.parquet", "--width", "1000000000", mem=1 << 30, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "--width" in r.stderr and "20<=x<=4096" in r.stderr
    r = tk(folder, "report", "good.parquet", "--width", "4096", mem=2 << 30, timeout=60)
    assert r.returncode == 0, r.stderr
    from tracekit.view import terminal

    monkeypatch.setattr(terminal.sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(terminal.shutil, "get_terminal_size", lambda fallback: os.terminal_size((10**9, 24)))
    assert terminal.terminal_width() == terminal.MAX_WIDTH  # COLUMNS=1000000000 on a terminal


# ---- 17. messages that name the file ----------------------------------------------------------------------

@pytest.mark.parametrize("args, fragment", [
    (["sql", "good.parquet", "-f", "adir"], "adir: is a folder: give an SQL file"),
    (["sql", "good.parquet", "-f", "nosuch.sql"], "nosuch.sql: no such file"),
    (["report", "good.parquet", "--html", "adir"], "adir: is a folder: give a file name"),
    (["export-chrome", "good.parquet", "-o", "adir"], "adir: is a folder: give a file name"),
    (["diff", "good.parquet", "good.parquet", "--html", "adir"], "adir: is a folder: give a file name"),
])
def test_path_problems_are_one_line_not_a_usage_error(folder: Path, args: list[str], fragment: str) -> None:
    """click's own path checks printed a three-line usage error; tracekit's name the file in one line."""
    (folder / "adir").mkdir()
    before = snapshot(folder)
    one_line(tk(folder, *args, timeout=60), fragment)
    assert snapshot(folder) == before


@pytest.mark.parametrize("args, victim, fragment", [
    (["sql", "good.parquet", "-f", "q.sql"], "q.sql", "q.sql: cannot read: Permission denied"),
    (["info", "good.parquet"], "good.parquet", "good.parquet: cannot read: Permission denied"),
    (["report", "good.json"], "good.json", "good.json: Permission denied"),
    (["convert", "good.json", "-o", "o.parquet"], "good.json", "good.json: "),
])
def test_unreadable_input_is_one_line(folder: Path, args: list[str], victim: str, fragment: str) -> None:
    """chmod 000 cannot make a file unreadable for root (the tests' user here): the open's PermissionError is injected.
    It was click's three-line usage error for `sql -f`; every input is one line naming it."""
    (folder / "q.sql").write_text("SELECT 1")
    deny = ("import builtins, io\n_open = builtins.open\n"
            "def _deny(f, *a, **k):\n"
            f"    if str(f).endswith({victim!r}): raise PermissionError(13, 'Permission denied', str(f))\n"
            "    return _open(f, *a, **k)\nbuiltins.open = io.open = _deny\n")
    before = snapshot(folder)
    one_line(tk(folder, *args, prelude=deny, timeout=60), fragment)
    assert snapshot(folder) == before


# ---- 13. corrupt tracekit.traces footer metadata -------------------------------------------------------------

def _with_meta(src: Path, dst: Path, value: bytes) -> None:
    t = pq.read_table(src)
    md = dict(t.schema.metadata or {})
    md[b"tracekit.traces"] = value
    pq.write_table(t.replace_schema_metadata(md), dst)


@pytest.mark.parametrize("value, fragment", [
    (b"{not json", "Expecting property name"),
    (b"[1, 2]", "not an object of one object per trace"),
    (b'{"good": 5}', "not an object of one object per trace"),
    (b'{"good": {"x": "\xff"}}', "can't decode byte 0xff"),
    (rb'{"good": {"x": "\ud800"}}', "surrogates not allowed"),  # Python's json reads it, DuckDB's does not
    (b'{"good": {"x": NaN}}', "NaN is not JSON"),
    (b'{"good": {"x": ' + b"[" * 5000 + b"]" * 5000 + b"}}", "recursion"),
])
def test_corrupt_footer_metadata_is_one_line_naming_the_file(folder: Path, value: bytes, fragment: str) -> None:
    """info and export-chrome died in json.loads (traceback); report and sql in DuckDB's JSON cast, naming no file."""
    _with_meta(folder / "good.parquet", folder / "bad.parquet", value)
    before = snapshot(folder)
    for args in (["info", "bad.parquet"], ["info", "bad.parquet", "--json"], ["export-chrome", "bad.parquet", "-o", "x.json"],
                 ["report", "bad.parquet"], ["sql", "bad.parquet", "SELECT count(*) FROM trace_devices"]):
        one_line(tk(folder, *args, timeout=60), "bad.parquet: corrupt tracekit.traces metadata", fragment)
    assert snapshot(folder) == before


def test_odd_but_valid_footer_values_are_shown(folder: Path) -> None:
    """Valid JSON of unexpected shapes (a string event count, a non-list devices or notes) is shown, not a traceback."""
    _with_meta(folder / "good.parquet", folder / "odd.parquet",
               b'{"good": {"events": "many", "devices": ["x", 3], "notes": 5, "rank": "zz"}}')
    for args in (["info", "odd.parquet"], ["info", "odd.parquet", "--json"], ["report", "odd.parquet"]):
        r = tk(folder, *args, timeout=60)
        assert r.returncode == 0 and "Traceback" not in r.stderr, (args, r.stderr)
    assert "many events" in tk(folder, "info", "odd.parquet").stdout


# ---- 17. DuckDB errors name the input -------------------------------------------------------------------------

def test_overflow_on_extreme_times_names_the_file(folder: Path) -> None:
    """dur_ns = 2^62 on every row: the step sums overflow INT64 in DuckDB (an INT128 conversion error naming no file)."""
    t = pq.read_table(folder / "good.parquet")
    i = t.schema.get_field_index("dur_ns")
    pq.write_table(t.set_column(i, "dur_ns", pa.array([2**62] * t.num_rows, pa.int64())), folder / "dur.parquet")
    i = t.schema.get_field_index("ts_ns")
    pq.write_table(t.set_column(i, "ts_ns", pa.array([2**63 - 10] * t.num_rows, pa.int64())), folder / "ts.parquet")
    one_line(tk(folder, "report", "dur.parquet", timeout=60), "dur.parquet: Conversion Error", "INT128")
    one_line(tk(folder, "info", "ts.parquet", timeout=60), "ts.parquet: Out of Range Error")
    one_line(tk(folder, "diff", "good.parquet", "dur.parquet", timeout=60), "dur.parquet, good.parquet: Conversion Error")
    one_line(tk(folder, "sql", "good.parquet", "SELECT nope", timeout=60), "good.parquet: Binder Error")


# ---- 14. Ctrl-C -------------------------------------------------------------------------------------------------

#: Preludes that hold the report at one point (telling the test through the file named by $TK_MARK) until SIGINT.
HOLD = {
    # inside a DuckDB query: it ended as "RuntimeError: Query interrupted" with a traceback (exit 1). The modules
    # run side by side (report.run_side_by_side), so the query held is on the main thread or on a worker's
    # (whichever takes kernels.sql): the main thread is interrupted there, or while it waits for that worker
    "query": """
import os, pathlib, tracekit.report as r
_exec_script = r._exec_script
def exec_script(con, sql):
    if sql.lstrip().startswith("-- kernels:"):
        pathlib.Path(os.environ["TK_MARK"]).write_text("x")
        con.execute("SELECT count(*) FROM range(1000000000000)").fetchall()
    return _exec_script(con, sql)
r._exec_script = exec_script
""",
    # during a lazy import on the --html path (the page's timeline module, imported after the analyses). It was
    # DuckDB's lazy pandas import, which printed a false "'pandas' is required" (exit 2); report --html no longer
    # imports pandas (issue 25: SVG figures read Rows), so the hold sits on the import that is left there
    "lazy import": """
import os, pathlib, sys, time
class Hold:
    def find_spec(self, name, path=None, target=None):
        if name == "tracekit.view.timeline":
            pathlib.Path(os.environ["TK_MARK"]).write_text("x")
            time.sleep(60)
        return None
sys.meta_path.insert(0, Hold())
""",
    # after the median-step file was written, while the page is rendered: that file must go too
    "page": """
import os, pathlib, time, tracekit.view.html as h
def render(*a, **k):
    pathlib.Path(os.environ["TK_MARK"]).write_text("x")
    time.sleep(60)
h.render = render
""",
}


@pytest.mark.parametrize("where", list(HOLD))
def test_ctrl_c_during_report_is_exit_130_and_leaves_nothing(folder: Path, tmp_path_factory: pytest.TempPathFactory,
                                                              where: str) -> None:
    mark = tmp_path_factory.mktemp("mark") / "held"
    args = ["report", "good.parquet"] + (["--html", "r.html"] if where != "query" else [])
    before = snapshot(folder)
    e = dict(os.environ, PYTHONPATH=str(REPO), TK_MARK=str(mark))
    p = subprocess.Popen([sys.executable, "-c", _CHILD, str(3 << 30), "-1", HOLD[where], *args], cwd=folder, env=e,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not mark.exists():
            assert p.poll() is None, p.stderr.read() if p.stderr else ""
            assert time.monotonic() < deadline, "the report never reached the point held"
            time.sleep(0.02)
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert err.strip().splitlines() == ["tracekit: interrupted"], err
    assert snapshot(folder) == before  # no median-step file, no temporary file


# ---- 6. capture --sglang-url against a hostile server ----------------------------------------------------------

@pytest.fixture
def server() -> Iterator[Callable[[type[BaseHTTPRequestHandler]], str]]:
    """Start HTTP servers on 127.0.0.1 (an ephemeral port each): returns a function handler -> base URL."""
    started: list[ThreadingHTTPServer] = []

    def start(handler: type[BaseHTTPRequestHandler]) -> str:
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for srv in started:
        srv.shutdown()
        srv.server_close()


class _Quiet(BaseHTTPRequestHandler):
    seen: list[str] = []

    def log_message(self, *a: object) -> None:
        pass


def _capture(cwd: Path, url: str, *extra: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return tk(cwd, "capture", "--out", str(cwd / "c"), "--sglang-url", url, "--steps", "2", *extra, mem=1 << 30,
              timeout=timeout)


def test_sglang_endless_body_is_not_read_whole(tmp_path: Path, server: Callable[..., str]) -> None:
    """An endless answer was read whole (2 GiB in 4 s, then a traceback): the client stops at 1 MiB, under a 1 GiB limit."""
    class Endless(_Quiet):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(1 << 16):  # 4 GiB at most, if nothing stopped it
                    self.wfile.write(chunk)
            except OSError:
                pass

    t0 = time.monotonic()
    r = _capture(tmp_path, server(Endless))
    line = one_line(r, "body larger than 1 MiB", rc=1)
    assert line.startswith("tracekit: error: http://127.0.0.1:")
    assert time.monotonic() - t0 < 30 and list(tmp_path.iterdir()) == []


def test_sglang_silent_server_hits_the_deadline(tmp_path: Path) -> None:
    """A server that accepts and never answers held tracekit 600 s per socket operation, silently."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # the kernel completes connections; nobody reads or answers
        t0 = time.monotonic()
        r = _capture(tmp_path, f"http://127.0.0.1:{s.getsockname()[1]}", "--sglang-timeout", "3")
    one_line(r, "no answer within 3 s", rc=1)
    assert time.monotonic() - t0 < 30 and list(tmp_path.iterdir()) == []


def test_sglang_wait_prints_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """While it waits, a line every PROGRESS_EVERY_S seconds (here 0.3), then the deadline (2 s)."""
    import socket

    from tracekit import capture

    monkeypatch.setattr(capture, "PROGRESS_EVERY_S", 0.3)
    lines: list[str] = []
    out: list[BaseException] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)

        def go() -> None:
            try:
                capture.http_post(f"http://127.0.0.1:{s.getsockname()[1]}/start_profile", {}, deadline_s=2, log=lines.append)
            except BaseException as e:  # noqa: BLE001
                out.append(e)

        th = threading.Thread(target=go, daemon=True)
        th.start()
        th.join(timeout=30)
    assert not th.is_alive(), "the deadline did not hold"
    assert isinstance(out[0], capture.ServerError) and str(out[0]) == "no answer within 2 s"
    assert 3 <= len(lines) <= 8 and all(ln.startswith("waiting for the server's answer to /start_profile (") for ln in lines)


def test_sglang_connect_timeout() -> None:
    """A server whose accept queue is full never completes the handshake (Linux drops the SYN): the connect is
    bounded by its own timeout (here 1 s), not by the request's deadline."""
    import socket

    from tracekit import capture

    out: list[BaseException] = []
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        port = s.getsockname()[1]
        fill = []
        for _ in range(4):  # fill the backlog: these are never accepted
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fill.append(c)
        time.sleep(0.2)

        def go() -> None:
            try:
                capture.http_post(f"http://127.0.0.1:{port}/start_profile", {}, deadline_s=60, log=lambda _: None,
                                  connect_s=1)
            except BaseException as e:  # noqa: BLE001
                out.append(e)

        t0 = time.monotonic()
        th = threading.Thread(target=go, daemon=True)
        th.start()
        th.join(timeout=30)
        for c in fill:
            c.close()
    assert not th.is_alive() and time.monotonic() - t0 < 10
    assert str(out[0]) == "cannot reach the SGLang server (no connection within 1 s)"


def test_sglang_redirect_to_another_origin_is_refused(tmp_path: Path, server: Callable[..., str]) -> None:
    hits: list[str] = []

    class Other(_Quiet):
        def do_POST(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        do_GET = do_POST

    other = server(Other)

    class Redirect(_Quiet):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            hits.append("first " + self.path)
            self.send_response(307)
            self.send_header("Location", f"{other}/start_profile" if self.path == "/start_profile" else "/again")
            self.send_header("Content-Length", "0")
            self.end_headers()

    r = _capture(tmp_path, server(Redirect))
    one_line(r, f"redirected to another origin ({other}): refused", rc=1)
    assert hits == ["first /start_profile"] and list(tmp_path.iterdir()) == []


def test_sglang_same_origin_redirect_is_followed(tmp_path: Path, server: Callable[..., str]) -> None:
    hits: list[str] = []

    class Moved(_Quiet):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hits.append(self.path)
            if self.path == "/start_profile":
                self.send_response(308)
                self.send_header("Location", "/v2/start_profile")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            assert json.loads(body)["num_steps"] == 2
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    r = _capture(tmp_path, server(Moved), "--sglang-timeout", "2")
    one_line(r, "the server wrote no trace into", rc=1)  # this fake writes none; what matters is where it went
    assert hits == ["/start_profile", "/v2/start_profile"]


# ---- 17. Kineto files that are whole but not bare JSON: a BOM, trailing bytes ---------------------------------

@pytest.mark.parametrize("name, wrap, note", [
    ("bom.json", lambda d: b"\xef\xbb\xbf" + d, None),
    ("bom.json.gz", lambda d: __import__("gzip").compress(b"\xef\xbb\xbf" + d), None),
    ("trail.json", lambda d: d + b"\ngarbage{{", "1 file with trailing data after the end of the JSON document: 9 bytes ignored"),
    ("nul.json", lambda d: d + b"\x00" * 100, "1 file with trailing data after the end of the JSON document: 100 bytes ignored"),
])
def test_bom_is_skipped_and_trailing_bytes_are_not_truncation(folder: Path, name: str, wrap: Callable[[bytes], bytes],
                                                              note: str | None) -> None:
    """A BOM was "not a Kineto JSON file"; bytes after a complete document were "truncated file: N bytes lost"."""
    (folder / name).write_bytes(wrap((folder / "good.json").read_bytes()))
    r = tk(folder, "convert", name, "-o", "out.parquet", timeout=60)
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    from tracekit.store import read_metadata

    ((_, meta),) = read_metadata(folder / "out.parquet").items()
    assert meta["events"] == len(EVENTS)
    assert [n for n in meta["notes"] if "truncated" in n] == []
    assert meta["notes"] == ([note] if note else [])
