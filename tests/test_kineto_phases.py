"""Ground truth for phase attribution: a trace whose phases are known by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tracekit.ingest import convert
from tracekit.store import connect

PID = 100


def X(cat: str, name: str, ts: float, dur: float, tid: int = 1, pid: int = PID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def launch(ts: float, corr: int, tid: int = 1, name: str = "cudaLaunchKernel") -> dict[str, Any]:
    return X("cuda_runtime", name, ts, 5, tid=tid, correlation=corr)


def kernel(ts: float, corr: int, name: str, dur: float = 10, stream: int = 7) -> dict[str, Any]:
    return X("kernel", name, ts, dur, tid=stream, pid=0, correlation=corr, stream=stream, device=0,
             grid=[4, 2, 1], block=[128, 1, 1])


EVENTS = [
    # thread 1: step [0, 1000) > draft [100, 400) > lm_head [200, 300)
    X("user_annotation", "step", 0, 1000),
    X("user_annotation", "draft", 100, 300),
    X("user_annotation", "lm_head", 200, 100),
    launch(250.0007, 1),                      # inside lm_head; fractional µs -> 250001 ns (rounded, not truncated)
    launch(350, 2),                           # inside draft only
    launch(150, 3, name="cudaGraphLaunch"),   # graph launch inside draft: 3 kernels share corr 3
    launch(400, 5),                           # exactly at draft's end: belongs to step only
    launch(1500, 6),                          # outside every range
    # thread 2, interleaved in time with thread 1: sampler [120, 500)
    X("user_annotation", "sampler", 120, 380, tid=2),
    launch(300, 4, tid=2),                    # same time as lm_head on thread 1, but on thread 2
    # old-style step marker written as a cpu_op
    X("cpu_op", "ProfilerStep#7", 2000, 100, tid=3),
    launch(2050, 7, tid=3),
    # GPU side
    kernel(260, 1, "lm_head_gemm"),
    kernel(360, 2, "draft_k"),
    kernel(420, 3, "g0"), kernel(431, 3, "g1"), kernel(442, 3, "g2"),
    kernel(460, 5, "after_draft"),
    kernel(1510, 6, "outside"),
    kernel(310, 4, "sample_k", stream=9),
    kernel(2060, 7, "step7_k"),
    kernel(3000, 99, "orphan"),               # no launch in the trace (trimmed window)
]

EXPECTED = {  # kernel -> (phase, phase_path, launch_name)
    "lm_head_gemm": ("lm_head", "step/draft/lm_head", "cudaLaunchKernel"),
    "draft_k": ("draft", "step/draft", "cudaLaunchKernel"),
    "g0": ("draft", "step/draft", "cudaGraphLaunch"),
    "g1": ("draft", "step/draft", "cudaGraphLaunch"),
    "g2": ("draft", "step/draft", "cudaGraphLaunch"),
    "after_draft": ("step", "step", "cudaLaunchKernel"),
    "outside": (None, None, "cudaLaunchKernel"),
    "sample_k": ("sampler", "sampler", "cudaLaunchKernel"),
    "step7_k": ("ProfilerStep#7", "ProfilerStep#7", "cudaLaunchKernel"),
    "orphan": (None, None, None),
}


def test_kernel_phases(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    convert(write_trace(EVENTS), out)
    con = connect(out)
    rows = con.execute("SELECT name, phase, phase_path, launch_name FROM events WHERE kind = 'kernel'").fetchall()
    assert {r[0]: r[1:] for r in rows} == EXPECTED


def test_runtime_and_range_rows(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    convert(write_trace(EVENTS), out)
    con = connect(out)
    rt = con.execute("SELECT correlation, phase_path, ts_ns FROM runtime ORDER BY correlation").fetchall()
    assert rt == [
        (1, "step/draft/lm_head", 250001),
        (2, "step/draft", 350000),
        (3, "step/draft", 150000),
        (4, "sampler", 300000),
        (5, "step", 400000),
        (6, None, 1500000),
        (7, "ProfilerStep#7", 2050000),
    ]
    ranges = con.execute("SELECT name, phase, phase_path, kind FROM events WHERE kind = 'range' ORDER BY ts_ns").fetchall()
    assert ranges == [
        ("step", "step", "step", "range"),
        ("draft", "draft", "step/draft", "range"),
        ("sampler", "sampler", "sampler", "range"),
        ("lm_head", "lm_head", "step/draft/lm_head", "range"),
        ("ProfilerStep#7", "ProfilerStep#7", "ProfilerStep#7", "range"),
    ]
    # launch facts copied onto GPU rows; typed args
    k = con.execute("SELECT launch_ts_ns, launch_dur_ns, launch_tid, grid_x, grid_y, block_x, stream, device "
                    "FROM events WHERE name = 'lm_head_gemm'").fetchone()
    assert k == (250001, 5000, 1, 4, 2, 128, 7, 0)
