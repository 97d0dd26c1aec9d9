"""Time ``tracekit export-chrome`` on a converted trace: a few steps, one phase, and the whole trace.

Usage: python bench/bench_export_chrome.py TRACE.parquet [--steps 2:3] [--phase NAME] [--repeat N]

Prints wall seconds (median of N), events written, events per second and the process's peak RSS
after all runs. The whole-trace export is the worst case (every row rendered in Python); a slice
costs the lib/ modules plus the selection, whatever the trace size.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from tracekit.export_chrome import export_chrome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--steps", default="2:3")
    ap.add_argument("--phase", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-whole", action="store_true", help="skip the whole-trace export")
    a = ap.parse_args()
    cases = [("steps " + a.steps, {"steps": a.steps})]
    if a.phase:
        cases.append((f"phase {a.phase!r} + steps {a.steps}", {"steps": a.steps, "phase": a.phase}))
    if not a.no_whole:
        cases.append(("whole trace", {}))
    with tempfile.TemporaryDirectory() as d:
        for label, kw in cases:
            times, n = [], 0
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                n = export_chrome(a.trace, Path(d) / "out.json.gz", **kw)["events"]
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            print(f"{label:40s} {med:7.2f} s  {n:>10,} events  {n / med:>12,.0f} events/s  runs {', '.join(f'{t:.2f}' for t in times)}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
