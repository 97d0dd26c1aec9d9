"""Cost of tracekit.phase annotations, and of ``tracekit capture`` on the sample's step time.

    .venv/bin/python bench/bench_phase.py                 # both parts
    .venv/bin/python bench/bench_phase.py --no-capture    # annotation costs only

Part 1 times one ``with phase("x"): pass`` (and the decorator form) in four
states: no capture (the fast path, target <= 1 us), inside a capture with the
window closed (NVTX only), and with torch.profiler recording (NVTX +
``record_function``); plus a bare ``record_function`` for reference. Each is
the best of several repeats, in microseconds per range (enter + exit).

Part 2 runs ``samples/spec_decode.py`` plainly and under ``tracekit capture``
(default settings: CPU activity, record_shapes) and compares the median step
time the sample reports, so the number includes profiler cost per op, not just
per range. Why medians of separate runs: step times on a shared CPU are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import timeit
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import tracekit.annotate as P  # noqa: E402
from tracekit.annotate import phase  # noqa: E402


def per_call_us(fn, number: int, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def bench_annotations(n: int) -> dict[str, float]:
    def ctx() -> None:
        with phase("step"):
            pass

    @phase("sampler")
    def deco() -> None:
        pass

    def empty() -> None:
        pass

    res: dict[str, float] = {}
    P._ACTIVE, P._RECORDING = False, False
    res["empty function call (reference)"] = per_call_us(empty, n)
    res["phase ctx, no capture"] = per_call_us(ctx, n)
    res["phase decorator, no capture"] = per_call_us(deco, n)
    P.enable(True)
    res["phase ctx, capture active, window closed (NVTX only)"] = per_call_us(ctx, n)
    try:
        import torch
        from torch.autograd.profiler import record_function
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return res

    def rf() -> None:
        with record_function("x"):
            pass

    res["bare torch record_function, no profiler"] = per_call_us(rf, n // 10)
    prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    prof.start()
    P.set_recording(True)
    m = max(1000, n // 50)  # every recorded range is kept in memory: keep the count modest
    res["phase ctx, torch.profiler recording"] = per_call_us(ctx, m, repeat=3)
    res["bare torch record_function, profiler recording"] = per_call_us(rf, m, repeat=3)
    P.set_recording(False)
    prof.stop()
    P._ACTIVE = False
    del torch
    return res


def spec_step_ms(cmd_prefix: list[str], steps: int) -> float:
    cmd = [*cmd_prefix, sys.executable, str(REPO / "samples" / "spec_decode.py"), "--steps", str(steps), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, check=True)
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("{"))
    return float(json.loads(line)["step_ms_median"])


def bench_capture(steps: int, runs: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"plain": [], "tracekit capture": []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(runs):
            out["plain"].append(spec_step_ms([], steps))
            cap = [sys.executable, "-m", "tracekit", "capture", "--out", os.path.join(d, f"r{i}"), "--"]
            out["tracekit capture"].append(spec_step_ms(cap, steps))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200_000, help="ranges per timing (fast paths)")
    ap.add_argument("--steps", type=int, default=30, help="sample steps per run (part 2)")
    ap.add_argument("--runs", type=int, default=3, help="runs per configuration (part 2)")
    ap.add_argument("--no-capture", action="store_true", help="skip part 2")
    a = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print("\n## annotation cost (us per range, best of repeats)")
    for k, v in bench_annotations(a.n).items():
        print(f"{v:9.3f}  {k}")
    if a.no_capture:
        return
    print(f"\n## samples/spec_decode.py median step (ms), {a.steps} steps, {a.runs} runs each")
    res = bench_capture(a.steps, a.runs)
    for k, v in res.items():
        print(f"{sorted(v)[len(v) // 2]:9.2f}  {k}   (runs: {', '.join(f'{x:.2f}' for x in v)})")
    plain, cap = (sorted(v)[len(v) // 2] for v in res.values())
    print(f"capture overhead on the step: {100 * (cap / plain - 1):+.1f}%")


if __name__ == "__main__":
    main()
