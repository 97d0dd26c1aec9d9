"""Time `tracekit diff A B` on two large converted traces (issue 6: under 5 s on two 500 MB traces).

    python bench/bench_diff.py /tmp/dbench/a.parquet /tmp/dbench/b.parquet --repeat 3

Prints the in-process time of tracekit.compare.diff split per run (the lib/ modules + steps set-up +
_run_metrics) and for diff.sql, then the whole CLI (start-up included, JSON to /dev/null) with
the child's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a", type=Path)
    ap.add_argument("b", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from tracekit import compare as cmp

    cond = ["step.wall_ms > +5%"]
    totals, parts = [], []
    for _ in range(args.repeat):
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        res = cmp.diff(args.a, args.b, conditions=cond, timings=timings)
        totals.append(time.perf_counter() - t0)
        parts.append(timings)
    print(f"diff in-process: median {statistics.median(totals):.2f} s of {[round(t, 2) for t in totals]}")
    for k in parts[0]:
        print(f"  {k}: median {statistics.median(p[k] for p in parts):.2f} s")
    print(f"  metrics: {len(res['diff'])} run/step/phase rows, {len(res['diff.kernels'])} moved kernels, "
          f"{len(res['diff.new_vanished'])} new/vanished")
    exe = str(Path(sys.executable).with_name("tracekit"))
    walls = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        subprocess.run([exe, "diff", str(args.a), str(args.b), "--json", "--fail-if", cond[0]],
                       stdout=subprocess.DEVNULL, check=False)
        walls.append(time.perf_counter() - t0)
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"CLI `tracekit diff A B --json`: median {statistics.median(walls):.2f} s of {[round(t, 2) for t in walls]}, "
          f"peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
