"""torch 1.8/1.9 Kineto layout (issue 24 item 3, issue 25 item 1): text tids, lower-case ``external id``,
GPUs under ``computeProperties`` or nowhere, and no layout that makes conversion super-linear.

The truth is planted: one step of a training loop written as torch 1.9 wrote it (numbers worked out by hand
below each event), converted with the C scanner and without it (the same rows and notes).
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tracekit import report
from tracekit.ingest import kineto, kscan
from tracekit.ingest.kineto import convert_kineto
from tracekit.store import connect, read_metadata

GPU = {"id": 0, "name": "GeForce RTX 2080 Ti", "totalGlobalMem": 11554717696, "computeMajor": 7,
       "computeMinor": 5, "multiProcessorCount": 68}


def _x(cat: str, name: str, pid: Any, tid: Any, ts: int, dur: int, args: dict[str, Any]) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _gpu_args(corr: int, ext: int, **more: Any) -> dict[str, Any]:
    return {"queued": 0, "device": 0, "context": 1, "stream": 7, "correlation": corr, "external id": ext, **more}


#: seq (row order) -> the event. Main thread "100" (pid 100; two events write the pid as text too), autograd
#: thread "101"; GPU rows on pid 0, tid "stream 7".
EVENTS: list[dict[str, Any]] = [
    _x("Operator", "ProfilerStep#1", 100, "100", 1000, 500, {"External id": 1}),                       # 0
    _x("Operator", "aten::conv2d", "100", "100", 1010, 50, {"External id": 2}),                        # 1
    _x("Runtime", "cudaLaunchKernel", 100, "100", 1020, 10, {"correlation": 11, "external id": 2}),    # 2
    _x("Kernel", "conv_kernel", 0, "stream 7", 1100, 40, _gpu_args(11, 2, grid=[4, 1, 1])),            # 3
    _x("Operator", "aten::add_", "100", "100", 1070, 30, {"External id": 3}),                          # 4
    _x("Runtime", "cudaLaunchKernelExC", 100, "100", 1075, 5, {"correlation": 12, "external id": 3}),  # 5
    _x("Kernel", "add_kernel", 0, "stream 7", 1130, 20, _gpu_args(12, 3)),                             # 6
    _x("Runtime", "cudaMemcpyAsync", 100, "101", 1200, 8, {"correlation": 13, "external id": 4}),      # 7
    _x("Memcpy", "Memcpy HtoD (Pageable -> Device)", 0, "stream 7", 1300, 10, _gpu_args(13, 4, bytes=4096)),  # 8
    {"ph": "s", "id": 11, "pid": 100, "tid": 100, "ts": 1020, "cat": "async", "name": "launch"},       # 9: integer tid
    {"ph": "f", "id": 11, "pid": 0, "tid": "stream 7", "ts": 1100, "cat": "async", "name": "launch", "bp": "e"},  # 10
    _x("Trace", "PyTorch Profiler (0)", "Spans", "PyTorch Profiler", 1000, 600, {"Op count": 0}),      # 11
    {"name": "thread_name", "ph": "M", "ts": 1000, "pid": 0, "tid": "stream 7", "args": {"name": "stream 7"}},  # 12
]
#: tids written as numeric text: seq 0, 1, 2, 4, 5, 7; as "stream 7": 3, 6, 8, 10, 12; pids as text: 1, 4.
NOTES = [
    "2 events with `pid` written as text holding a number (read as that number)",
    "6 events with `tid` written as text holding a number (read as that number)",
    "5 events with `tid` written as text `stream N` (read as N, the GPU stream; the text kept as @tid in args)",
]


def _write(tmp_path: Path, events: list[dict[str, Any]], devices: list[dict[str, Any]] | None,
           name: str = "t.json") -> Path:
    doc: dict[str, Any] = {"schemaVersion": 1}
    if devices is not None:
        doc["computeProperties"] = devices
    doc["traceEvents"] = events
    p = tmp_path / name
    p.write_text(json.dumps(doc, indent=2))  # indented, as Kineto wrote it
    return p


def _convert_both(tmp_path: Path, src: Path) -> Path:
    """Convert with the C scanner and without it; both must give the same rows and notes."""
    fast, slow = tmp_path / "fast.parquet", tmp_path / "slow.parquet"
    convert_kineto(src, fast, trace="t")
    convert_kineto(src, slow, trace="t", fast=False)
    q = "SELECT * EXCLUDE (args), args FROM events ORDER BY seq"
    a, b = connect(fast).execute(q).fetchall(), connect(slow).execute(q).fetchall()
    assert [r[:-1] + (r[-1] and json.loads(r[-1]),) for r in a] == [r[:-1] + (r[-1] and json.loads(r[-1]),) for r in b]
    assert read_metadata(fast)["t"]["notes"] == read_metadata(slow)["t"]["notes"]
    return fast


@pytest.mark.skipif(not kscan.AVAILABLE, reason="C scanner not built: nothing to compare the Python path with")
def test_torch19_layout(tmp_path: Path) -> None:
    out = _convert_both(tmp_path, _write(tmp_path, EVENTS, [GPU]))
    con = connect(out)
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT seq, kind, pid, tid, external_id, correlation, args->>'@tid', args->>'@pid' FROM events").fetchall()}
    assert rows == {
        0: ("range", 100, 100, 1, None, None, None),
        1: ("cpu_op", 100, 100, 2, None, None, None),
        2: ("runtime", 100, 100, 2, 11, None, None),
        3: ("kernel", 0, 7, 2, 11, "stream 7", None),
        4: ("cpu_op", 100, 100, 3, None, None, None),
        5: ("runtime", 100, 100, 3, 12, None, None),
        6: ("kernel", 0, 7, 3, 12, "stream 7", None),
        7: ("runtime", 100, 101, 4, 13, None, None),
        8: ("memcpy", 0, 7, 4, 13, "stream 7", None),
        9: ("flow", 100, 100, None, 11, None, None),
        10: ("flow", 0, 7, None, 11, "stream 7", None),
        11: ("other", None, None, None, None, "PyTorch Profiler", "Spans"),
        12: ("meta", 0, 7, None, None, "stream 7", None),
    }
    # GPU rows: launched by the runtime row of their correlation; the main thread's in ProfilerStep#1
    gpu = {r[0]: r[1:] for r in con.execute(
        "SELECT seq, launch_name, launch_ts_ns, launch_tid, phase, device, stream FROM kernels").fetchall()}
    assert {s: g[:3] + g[4:] for s, g in gpu.items()} == {
        3: ("cudaLaunchKernel", 1_020_000, 100, 0, 7),
        6: ("cudaLaunchKernelExC", 1_075_000, 100, 0, 7),
        8: ("cudaMemcpyAsync", 1_200_000, 101, 0, 7),
    }
    assert gpu[3][3] == gpu[6][3] == "ProfilerStep#1"
    assert con.execute("SELECT note FROM trace_notes ORDER BY note").fetchall() == [(n,) for n in sorted(NOTES)]
    assert con.execute("SELECT * FROM trace_devices").fetchall() == [
        ("t", 0, "GeForce RTX 2080 Ti", 68, None, "metadata", 0)]


def test_no_gpu_listed_still_has_device_rows(tmp_path: Path) -> None:
    """No computeProperties / deviceProperties: a row per device id GPU ops use (here 0 and 1), named NULL."""
    events = copy.deepcopy(EVENTS)
    events[6]["args"]["device"] = 1
    out = tmp_path / "t.parquet"
    convert_kineto(_write(tmp_path, events, None), out, trace="t")
    assert connect(out).execute("SELECT * FROM trace_devices ORDER BY device").fetchall() == [
        ("t", 0, None, None, None, "gpu_op", 0), ("t", 1, None, None, None, "gpu_op", 1)]


def test_capitalised_external_id_wins(tmp_path: Path) -> None:
    """Both spellings in one event (never written by torch): ``External id`` is read, on both paths."""
    events = copy.deepcopy(EVENTS)
    events[3]["args"]["External id"] = 9
    out = _convert_both(tmp_path, _write(tmp_path, events, [GPU]))
    assert connect(out).execute("SELECT external_id FROM events WHERE seq = 3").fetchall() == [(9,)]


def _overlap_message(tmp_path: Path, launch: str) -> tuple[str, Any]:
    events = copy.deepcopy(EVENTS)
    events[5]["name"] = launch
    out = tmp_path / f"{launch}.parquet"
    convert_kineto(_write(tmp_path, events, [GPU], name=f"{launch}.json"), out, trace="t")
    t = report.run(out, analyses=["trust"])["trust"]
    row = t[t["flag"] == "same_stream_overlap"].iloc[0]
    return row["message"], row["value"]


def test_overlap_names_programmatic_dependent_launch(tmp_path: Path) -> None:
    """add_kernel (1130-1150 us) starts before conv_kernel (1100-1140 us) ends on stream 7: 1 overlap of 3 ops;
    it was launched with cudaLaunchKernelExC, so the message names that cause too."""
    msg, value = _overlap_message(tmp_path, "cudaLaunchKernelExC")
    assert value == pytest.approx(1 / 3)
    assert msg == ("ops on one stream overlap: clock rounding or skew; 1 of them launched with cudaLaunchKernelExC "
                   "(programmatic dependent launch lets them overlap by design); union-busy times stay correct, "
                   "summed op times double count the overlap")
    msg, _ = _overlap_message(tmp_path, "cudaLaunchKernel")
    assert msg == ("ops on one stream overlap: clock rounding or skew; union-busy times stay correct, "
                   "summed op times double count the overlap")


def _generator() -> Any:
    path = Path(__file__).resolve().parents[1] / "bench" / "make_old_torch_trace.py"
    spec = importlib.util.spec_from_file_location("make_old_torch_trace", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fast", [True, False], ids=["scanner", "python"])
def test_conversion_is_linear_in_events(tmp_path: Path, fast: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """4x the events of the torch-1.9 layout (alternating variant) costs well under 10x the time (linear work is
    ~4x; best of 2 runs of each size, so a busy neighbour does not decide it), and the work is a few batches
    per block, not one per alternation (~1,600 batches for the 8,000 events before the fix)."""
    from tracekit.ingest.sink import TraceSink

    batches = 0
    append = TraceSink.append

    def counting(self: TraceSink, prepared: Any) -> None:
        nonlocal batches
        batches += prepared is not None
        append(self, prepared)

    monkeypatch.setattr(TraceSink, "append", counting)
    monkeypatch.setattr(kineto, "BLOCK", 256 << 10)  # several blocks, handed to the scanner as memoryviews
    gen = _generator()
    times, work = {}, {}
    for n in (2_000, 8_000):
        buf = io.StringIO()
        # every flow also carries Chrome's `tts`, which the C scanner does not know: flows (2 of each op's 5
        # events) alternate with events it reads. That made one generic batch (a DuckDB query, ~10-40 ms) per
        # flow: 1,243 events of such a layout took 11.7 s, 4,968 took 40.6 s, 20,103 took 349 s.
        gen.write_trace(buf, n, flows="tts")
        text = buf.getvalue()
        assert text.count('"tts"') > n // 3  # the flows (2 of each op's 5 events) alternate with the rest
        src = tmp_path / f"old{n}.json"
        src.write_text(text)
        best = float("inf")
        for r in range(2):
            batches = 0
            t0 = time.perf_counter()
            convert_kineto(src, tmp_path / f"old{n}_{r}.parquet", fast=fast)
            best = min(best, time.perf_counter() - t0)
        times[n], work[n] = best, batches
        # per block at most 2 * kscan.MAX_RAW_RUNS + 1 runs (before the fix: one batch per alternation)
        assert batches <= (src.stat().st_size // kineto.BLOCK + 2) * 17, (n, batches)
    assert connect(tmp_path / "old8000_0.parquet").execute("SELECT count(*) FROM events").fetchone()[0] > 8_000
    assert times[8_000] < 10 * times[2_000], times
