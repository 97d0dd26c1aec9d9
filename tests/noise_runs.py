"""Constructed Kineto runs with a planted per-step distribution, for the noise-aware diff/compare tests.

One run = ``steps`` ProfilerStep-free ``step`` ranges on one thread (pid 100, tid 1), 5000 us apart.
Step i (1-based, starting at t = i * 5000 us):

  step        t .. t+4000
    draft     t+100 .. t+2600   cudaLaunchKernel t+150 (+20) -> draft_kernel t+200, dur DRAFT[i] us
    verify    t+2700 .. t+3900  cudaLaunchKernel t+2750 (+20) -> verify_kernel, dur 300 us, at t+2800 or,
                                when the draft kernel is still running then, right after it (one stream)
    tracekit.count accepted=ACC[i] drafted=4 batch_size=1 tokens=ACC[i]+1 at t+3950 (zero length)

so per step: draft.gpu_ms_per_step = DRAFT[i] / 1000, draft.incl_gpu_ms_per_step the same
(nothing runs under draft), step.gpu_op_ms = (DRAFT[i] + 300) / 1000, step.wall_ms = 4.
The DRAFT lists are planted by the tests (integer us), so medians and ratios are known exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from tests import planted

PID, TID, STREAM = 100, 1, 7


def _x(cat: str, name: str, ts: int, dur: int, pid: int = PID, tid: int = TID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def events(draft_us: Sequence[int], accepted: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The run's events; ``accepted`` (per step) adds the tracekit.count events."""
    ev: list[dict[str, Any]] = []
    corr = 1000
    for i, d in enumerate(draft_us, start=1):
        t = i * 5000
        ev += [
            _x("user_annotation", "step", t, 4000),
            _x("user_annotation", "draft", t + 100, 2500),
            _x("cuda_runtime", "cudaLaunchKernel", t + 150, 20, correlation=corr),
            _x("kernel", "draft_kernel", t + 200, int(d), pid=0, tid=STREAM, device=0, stream=STREAM, correlation=corr),
            _x("user_annotation", "verify", t + 2700, 1200),
            _x("cuda_runtime", "cudaLaunchKernel", t + 2750, 20, correlation=corr + 1),
            _x("kernel", "verify_kernel", t + max(2800, 200 + int(d)), 300, pid=0, tid=STREAM, device=0, stream=STREAM, correlation=corr + 1),
        ]
        if accepted is not None:
            a = accepted[i - 1]
            ev.append(_x("user_annotation", f"tracekit.count accepted={a} batch_size=1 drafted=4 tokens={a + 1}", t + 3950, 0))
        corr += 2
    return ev


def write(path: Path, draft_us: Sequence[int], accepted: Sequence[int] | None = None) -> Path:
    """A gzipped Kineto trace of :func:`events`."""
    return planted.write_kineto(path, events(draft_us, accepted))
