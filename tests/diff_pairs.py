"""Ground-truth trace pairs for the diff/compare tests, built from tests/planted.py's events.

``variant(f, add_kernel)`` stretches the ``draft`` phase of step 1 (range 100..1100 us) and
everything inside it (its cudaGraphLaunch and three 100 us graph kernels) by the factor ``f``
about its start, and shifts every later event of step 1 by the extra time, so no other phase
changes length. ``add_kernel`` adds one launch + kernel ``added_kernel`` (100 us) in ``verify``.
With f = 1.2 and add_kernel (worked by hand, per step = over the trace's 2 steps):
  draft.ms_per_step 0.5 -> 0.6 (1000 -> 1200 us / 2);  draft.gpu_ms_per_step 0.15 -> 0.18
  verify.gpu_ms_per_step 0.15 -> 0.20 (300 -> 400 us / 2);  step.launches 3.5 -> 4 (7 -> 8 kernel launches / 2)
  run.gpu_op_ms 8.905 -> 9.065 (+60 us stretch, +100 us added);  step.wall_ms 10.5 both
  graph_kernel_a/b/c 0.1 -> 0.12 ms each; added_kernel new (0 -> 0.1 ms, count 0 -> 1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import planted

DRAFT_START, DRAFT_END, STEP1_END = 100, 1100, 20000


def variant(f: float = 1.0, add_kernel: bool = False) -> list[dict[str, Any]]:
    """The planted events with draft stretched by ``f`` (integer us for f in 1.0, 1.2, 1.5)."""
    ev = planted.events()
    if add_kernel:
        ev += [planted._rt("cudaLaunchKernel", 13300, 20, 41), planted._k("added_kernel", 13600, 100, 41)]
    extra = round((DRAFT_END - DRAFT_START) * (f - 1))
    out = []
    for e in ev:
        e = dict(e)
        if DRAFT_START <= e["ts"] and e["ts"] + e["dur"] <= DRAFT_END:
            ts, dur = DRAFT_START + (e["ts"] - DRAFT_START) * f, e["dur"] * f
            assert ts == int(ts) and dur == int(dur), "choose f so that times stay integer us"
            e["ts"], e["dur"] = int(ts), int(dur)
        elif DRAFT_END <= e["ts"] < STEP1_END:
            e["ts"] += extra
        out.append(e)
    return out


def write(path: Path, f: float = 1.0, add_kernel: bool = False) -> Path:
    """A gzipped Kineto trace of :func:`variant`; the trace is named after the file."""
    return planted.write_kineto(path, variant(f, add_kernel))
