"""Nothing destroyed, nothing half-written, nothing leaked: outputs vs inputs, --jobs with a bad file,
killed conversions, literal paths, what -o means, and terminal-safe names.

Each test states the files the folder must hold afterwards and checks the inputs byte for byte.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq
import pytest

from tests.test_cli_errors import assert_one_line_error, run_in, snapshot
from tests.conftest import NSYS_DIR
from tests.test_kineto_phases import EVENTS, X, kernel, launch
from tracekit import atomic
from tracekit.errors import TraceError
from tracekit.ingest import convert

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def folder(tmp_path: Path, write_trace: Callable[..., Path]) -> Path:
    """good.json (len(EVENTS) events), its Parquet good.parquet, and a dataset folder ds/ of it."""
    write_trace(EVENTS, name="good.json")
    convert(tmp_path / "good.json", tmp_path / "good.parquet")
    (tmp_path / "ds").mkdir()
    convert(tmp_path / "good.json", tmp_path / "ds" / "r0.parquet")
    return tmp_path


# ---- output onto input ---------------------------------------------------------------------------------

@pytest.mark.parametrize("args, victim", [
    (["report", "good.json", "--html", "good.json"], "good.json"),
    (["report", "good.parquet", "--html", "good.parquet"], "good.parquet"),
    (["report", "ds", "--html", "ds/r0.parquet"], "ds/r0.parquet"),
    (["export-chrome", "good.parquet", "-o", "good.parquet"], "good.parquet"),
    (["export-chrome", "good.parquet", "-o", "hard.parquet"], "hard.parquet"),
    (["export-chrome", "good.parquet", "-o", "sym.parquet"], "sym.parquet"),
    (["export-chrome", "sym.parquet", "-o", "good.parquet"], "good.parquet"),
    (["graphmap", "good.parquet", "-r", "good.json", "-o", "good.json"], "good.json"),
    (["diff", "good.parquet", "ds", "--html", "good.parquet"], "good.parquet"),
    (["compare", "--label", "a", "good.parquet", "--label", "b", "ds", "--html", "ds/r0.parquet"], "ds/r0.parquet"),
    (["convert", "good.json", "-o", "good.json"], "good.json"),
    (["convert", "good.json", "-o", "hard.json"], "hard.json"),
])
def test_output_onto_input_is_refused(folder: Path, args: list[str], victim: str) -> None:
    os.link(folder / "good.parquet", folder / "hard.parquet")
    os.link(folder / "good.json", folder / "hard.json")
    (folder / "sym.parquet").symlink_to("good.parquet")
    before = snapshot(folder)
    r = run_in(folder, args)
    assert_one_line_error(r, f"{victim}: is an input", "would destroy it")
    assert snapshot(folder) == before


def test_output_onto_the_cached_conversion_is_refused(folder: Path) -> None:
    """A raw input is read through <file>.tracekit.parquet: that file is an input too."""
    r = run_in(folder, ["sql", "good.json", "SELECT 1"])
    assert r.exit_code == 0
    before = snapshot(folder)
    r = run_in(folder, ["report", "good.json", "--html", "good.json.tracekit.parquet"])
    assert_one_line_error(r, "good.json.tracekit.parquet: is an input")
    assert snapshot(folder) == before


# ---- convert --jobs with a bad input -------------------------------------------------------------------

@pytest.mark.parametrize("jobs", ["1", "2"])
def test_convert_keeps_going_past_a_bad_input(folder: Path, jobs: str) -> None:
    (folder / "bad.json").write_text("{not json")
    (folder / "b.json").write_text(json.dumps({"traceEvents": EVENTS[:5]}))
    before = snapshot(folder)
    r = run_in(folder, ["convert", "good.json", "bad.json", "b.json", "-o", "out", "--jobs", jobs])
    assert r.exit_code == 2 and isinstance(r.exception, SystemExit), r.output
    err = r.stderr.splitlines()
    assert [ln for ln in err if ln.startswith("tracekit: error:")] == [ln for ln in err if "bad.json" in ln]
    assert len([ln for ln in err if "bad.json" in ln]) == 1
    assert err[-1] == "tracekit: 1 of 3 inputs failed; the others were converted"
    assert "Traceback" not in r.output
    assert sorted(os.listdir(folder / "out")) == ["_tracekit", "b.parquet", "good.parquet"]  # _tracekit: the dataset sidecar
    assert pq.read_metadata(folder / "out" / "good.parquet").num_rows == len(EVENTS)
    assert pq.read_metadata(folder / "out" / "b.parquet").num_rows == 5
    after = snapshot(folder)
    assert {k: v for k, v in after.items() if not k.startswith("out")} == before


def test_trace_error_pickles() -> None:
    """A --jobs worker's error crosses the process boundary by pickle (was: BrokenProcessPool)."""
    e = pickle.loads(pickle.dumps(TraceError("a/b.json", "empty file")))
    assert (type(e), e.path, e.problem, str(e)) == (TraceError, "a/b.json", "empty file", "a/b.json: empty file")


# ---- what -o means --------------------------------------------------------------------------------------

def test_output_is_decided_by_what_the_user_gave(folder: Path) -> None:
    r = run_in(folder, ["convert", "good.json", "-o", "out.pq"])  # one input: a file, whatever the suffix
    assert r.exit_code == 0 and (folder / "out.pq").is_file()
    assert pq.read_metadata(folder / "out.pq").num_rows == len(EVENTS)
    r = run_in(folder, ["convert", "good.json", "-o", "ds"])  # an existing folder: inside it, where good.json
    # already is (r0.parquet): a rerun replaces its own file, never adds a second copy (issue 24)
    assert r.exit_code == 0 and sorted(os.listdir(folder / "ds")) == ["_tracekit", "r0.parquet"]
    assert pq.read_metadata(folder / "ds" / "r0.parquet").num_rows == len(EVENTS)
    r = run_in(folder, ["convert", "good.json", "-o", "new/"])  # a trailing slash: a folder
    assert r.exit_code == 0 and sorted(os.listdir(folder / "new")) == ["_tracekit", "good.parquet"]
    before = snapshot(folder)
    r = run_in(folder, ["convert", "good.json", "good.json", "-o", "out.pq"])  # several inputs, OUT a file
    assert_one_line_error(r, "out.pq: is a file; 2 inputs are written into a folder")
    assert snapshot(folder) == before


# ---- literal paths -------------------------------------------------------------------------------------

def test_paths_with_glob_characters_are_literal(tmp_path: Path, write_trace: Callable[..., Path]) -> None:
    """run[1].json is that file, not run1.json; star*.json is that file, not every star... file."""
    write_trace(EVENTS, name="run[1].json")
    write_trace(EVENTS[:3], name="run1.json")
    write_trace(EVENTS[:4], name="star*.json")
    write_trace(EVENTS[:2], name="star1.json")
    decoys = {n: (tmp_path / n).read_bytes() for n in ("run1.json", "star1.json")}
    for name, n in (("run[1].json", len(EVENTS)), ("star*.json", 4)):
        r = run_in(tmp_path, ["sql", name, "SELECT count(*) AS n, count(DISTINCT trace) AS t FROM events", "--format", "csv"])
        assert r.exit_code == 0, r.output
        assert r.stdout.splitlines() == ["n,t", f"{n},1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run[1].json", "run[1].json.tracekit.parquet", "run1.json", "star*.json", "star*.json.tracekit.parquet", "star1.json"])
    assert {n: (tmp_path / n).read_bytes() for n in decoys} == decoys
    # converted files with glob characters, read by every verb that opens Parquet
    r = run_in(tmp_path, ["convert", "run1.json", "-o", "run1.parquet"])
    r = run_in(tmp_path, ["convert", "run[1].json", "-o", "run[1].parquet"])
    assert r.exit_code == 0
    r = run_in(tmp_path, ["info", "run[1].parquet", "--json"])
    assert json.loads(r.stdout)["traces"]["run[1]"]["events"] == len(EVENTS)
    r = run_in(tmp_path, ["report", "run[1].parquet", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)["summary"]["summary"]
    assert [(s["trace"], s["events"]) for s in summary] == [("run[1]", len(EVENTS))]


# ---- terminal control bytes from traces ----------------------------------------------------------------

EVIL = "k\x1b]0;pwned\x07\x1b[2J[bold]x\u202e"
EVIL_SHOWN = "k\\x1b]0;pwned\\x07\\x1b[2J[bold]x\\u202e"


def test_names_from_traces_are_escaped_on_the_terminal(tmp_path: Path, write_trace: Callable[..., Path]) -> None:
    events = [X("user_annotation", "step", 0, 1000), X("user_annotation", EVIL, 100, 300),
              launch(150, 1), kernel(160, 1, EVIL)]
    write_trace(events, name="evil.json",
                deviceProperties=[{"id": 0, "name": "H100" + EVIL, "numSms": 132}])
    r = run_in(tmp_path, ["convert", "evil.json", "-o", "evil.parquet"])
    assert r.exit_code == 0
    outs = {
        "info": run_in(tmp_path, ["info", "evil.parquet"]).stdout,
        "sql": run_in(tmp_path, ["sql", "evil.parquet", "SELECT DISTINCT name FROM events WHERE name LIKE 'k%'"]).stdout,
        "report": run_in(tmp_path, ["report", "evil.parquet", "--limit", "200"]).stdout,
    }
    for verb, out in outs.items():
        assert not any(c in out for c in "\x1b\x07\u202e"), verb
        assert EVIL_SHOWN in out, verb  # shown, escaped, with [bold] printed literally
    assert "H100" + EVIL_SHOWN in outs["info"]
    # CSV and JSON are data: exact
    r = run_in(tmp_path, ["sql", "evil.parquet", "SELECT DISTINCT name FROM kernels", "--format", "json"])
    assert json.loads(r.stdout) == [{"name": EVIL}]
    r = run_in(tmp_path, ["sql", "evil.parquet", "SELECT DISTINCT name FROM kernels", "--format", "csv"])
    assert r.stdout.splitlines() == ["name", EVIL]


# ---- killed conversions ---------------------------------------------------------------------------------

def _big_trace(path: Path, pairs: int = 300_000) -> None:
    """A Kineto trace of ``pairs`` launch+kernel pairs (~75 MB): conversion takes about a second here."""
    parts = []
    for i in range(pairs):
        parts.append('{"ph":"X","cat":"cuda_runtime","name":"cudaLaunchKernel","pid":1,"tid":1,"ts":%d,"dur":3,'
                     '"args":{"correlation":%d}}' % (i * 10, i))
        parts.append('{"ph":"X","cat":"kernel","name":"k%d","pid":0,"tid":7,"ts":%d,"dur":5,'
                     '"args":{"correlation":%d,"device":0,"stream":7}}' % (i % 50, i * 10 + 4, i))
    path.write_text('{"schemaVersion":1,"traceEvents":[' + ",".join(parts) + "]}")


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("big") / "big.json"
    _big_trace(p)
    return p


def _start_and_signal(cwd: Path, args: list[str], sig: int, watch: Path) -> subprocess.Popen[bytes]:
    """Start ``tracekit convert`` and send ``sig`` once a temporary file shows up in ``watch``."""
    p = subprocess.Popen([sys.executable, "-m", "tracekit", "convert", *args], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (watch.is_dir() and any(n.startswith(".") for n in os.listdir(watch))):
        assert p.poll() is None, "conversion finished before a temporary file was seen"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(0.1)
    p.send_signal(sig)
    p.wait(timeout=60)
    return p


@pytest.mark.parametrize("sig, rc", [(signal.SIGTERM, -signal.SIGTERM), (signal.SIGINT, 130)])
def test_terminated_conversion_leaves_nothing(tmp_path: Path, big: Path, sig: int, rc: int) -> None:
    os.link(big, tmp_path / "big.json")
    before = snapshot(tmp_path)
    p = _start_and_signal(tmp_path, ["big.json", "-o", "big.parquet"], sig, tmp_path)
    assert p.returncode == rc, p.stderr.read()
    assert b"Traceback" not in p.stderr.read()
    assert snapshot(tmp_path) == before  # no .arrow spill, no .tmp, no output; the input unchanged


def test_sigint_at_every_line_of_the_temp_file_code_ends_130_leaving_nothing(write_trace: Callable[..., Path]) -> None:
    """Issue 24: a SIGINT landing while a temporary file was being made or opened once exited 2 ("cannot write ...:
    No such file or directory"); at line granularity it deadlocked (the handler waited for the registry's lock its
    own thread held) or left the new file behind (created, not yet registered). tests/signal_sweep.py sends SIGINT
    at each line of that code, one conversion per line: every run must end 130 with no temporary file; a complete
    output may stay only where the signal came after its rename (the work was done)."""
    src = write_trace(EVENTS, name="t.json")
    r = subprocess.run([sys.executable, "-m", "tests.signal_sweep", str(src)], cwd=REPO, capture_output=True,
                       text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-2000:]
    points = json.loads(r.stdout)["points"]
    where = {p[0].split(":")[0] for p in points}
    assert {"make_temp", "_create_registered", "_spill_beside", "_parquet_out", "atomic_path", "note_input"} <= where
    bad = [p for p in points if p[1] != 130 or p[2] not in ([], ["t.parquet"])]
    assert bad == []
    # the output stays only once it was renamed into place: from the first such point on, never before it
    kept = [i for i, p in enumerate(points) if p[2] == ["t.parquet"]]
    assert kept and kept == list(range(kept[0], len(points)))


def test_terminated_parallel_conversion_leaves_nothing(tmp_path: Path, big: Path) -> None:
    """SIGTERM to the parent of --jobs 2: its workers die with it and remove their spill files."""
    os.link(big, tmp_path / "a.json")
    os.link(big, tmp_path / "b.json")
    before = snapshot(tmp_path)
    p = _start_and_signal(tmp_path, ["a.json", "b.json", "-o", "ds", "--jobs", "2"], signal.SIGTERM, tmp_path / "ds")
    assert p.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 30
    while os.listdir(tmp_path / "ds") and time.monotonic() < deadline:  # workers finish dying
        time.sleep(0.05)
    assert os.listdir(tmp_path / "ds") == []
    assert {k: v for k, v in snapshot(tmp_path).items() if k != "ds"} == before


def test_killed_conversion_is_cleaned_by_the_next_run(tmp_path: Path, big: Path, write_trace: Callable[..., Path]) -> None:
    """SIGKILL runs no handler: the spill file stays, named with the dead pid; the next run in the folder removes it."""
    os.link(big, tmp_path / "big.json")
    p = _start_and_signal(tmp_path, ["big.json", "-o", "big.parquet"], signal.SIGKILL, tmp_path)
    assert p.returncode == -signal.SIGKILL
    left = [n for n in os.listdir(tmp_path) if n.startswith(".")]
    assert len(left) == 1 and left[0].startswith(f".big.parquet.{p.pid}@{atomic._host()}.") and left[0].endswith(".arrow")
    write_trace(EVENTS, name="small.json")
    r = run_in(tmp_path, ["convert", "small.json", "-o", "small.parquet"])
    assert r.exit_code == 0
    assert sorted(os.listdir(tmp_path)) == ["big.json", "small.json", "small.parquet"]


def test_remove_stale_keeps_live_processes_files(tmp_path: Path) -> None:
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    try:
        h = atomic._host()
        names = [f".x.parquet.{live.pid}@{h}.abc123.arrow", f".x.parquet.{dead.pid}@{h}.abc123.arrow",
                 f".r.html.{dead.pid}@{h}.q_1.tmp", f".x.parquet.{os.getpid()}@{h}.zz.tmp", ".hidden",
                 f"x.{dead.pid}@{h}.a.tmp", f".x.parquet.{dead.pid}@other-host.abc123.arrow"]
        for n in names:
            (tmp_path / n).write_text("")
        removed = atomic.remove_stale(tmp_path)
        assert sorted(p.name for p in removed) == sorted(names[1:3])
        assert sorted(os.listdir(tmp_path)) == sorted(names[:1] + names[3:])
    finally:
        live.kill()
        live.wait()


def test_a_write_error_without_a_file_name_names_the_output(tmp_path: Path) -> None:
    """pyarrow reports a full disk as a bare OSError: the one-line error names the output, no temporary file stays."""
    with pytest.raises(TraceError) as e:
        with atomic.atomic_path(tmp_path / "out.parquet") as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(28, "Error writing bytes to file. Detail: [errno 28] No space left on device")
    assert str(e.value) == f"{tmp_path / 'out.parquet'}: cannot write: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device"
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(not (NSYS_DIR / "sqlite").exists(), reason="../shared/traces/nsys is absent: a real nsys export is enlarged")
def test_terminated_nsys_conversion_leaves_nothing(tmp_path: Path) -> None:
    """The nsys reader writes its output while it reads (StreamSink: the held NVTX spill and the Parquet
    temp file at once): SIGTERM mid-way leaves neither behind, nor an output."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from bench_nsys import enlarge, largest

    enlarge(largest(), tmp_path / "big.sqlite", 10)
    before = snapshot(tmp_path)
    p = _start_and_signal(tmp_path, ["big.sqlite", "-o", "big.parquet"], signal.SIGTERM, tmp_path)
    assert p.returncode == -signal.SIGTERM, p.stderr.read()
    assert b"Traceback" not in p.stderr.read()
    assert snapshot(tmp_path) == before
