"""In-process A/B of code trees: ``report.run`` or ``convert`` timed after imports, alternating trees each round.

Why: on a shared 2-core machine whole-process ratios (bench_vs_hta.py, bench_nsys_process.py) move more
between runs of the same code than a 5-10% change moves them. Timing only the work, in fresh processes that
alternate the trees round by round, with CPU seconds beside wall seconds, shows what a change does.

    python bench/ab_trees.py report TRACE.parquet --rounds 6 --tree /work/wt-old --tree .
    python bench/ab_trees.py convert EXPORT.sqlite --rounds 6 --tree /work/wt-old --tree .

``report``: one warm-up ``report.run`` (imports, page cache), then one timed, as the CLI runs it (its own
connection, modules side by side). ``convert``: ``tracekit.ingest.convert`` into a temp file, pandas imported
before the clock (as a library caller has it). Each tree is put first on ``sys.path`` of its own child.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = {
    "report": """
import sys, time, resource
sys.path.insert(0, sys.argv[2])
from tracekit import report
report.run([sys.argv[1]], rows=True)
r0 = resource.getrusage(resource.RUSAGE_SELF); t = time.perf_counter()
report.run([sys.argv[1]], rows=True)
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
""",
    "convert": """
import sys, time, resource
sys.path.insert(0, sys.argv[2])
import pandas  # noqa: F401
from tracekit.ingest import convert
r0 = resource.getrusage(resource.RUSAGE_SELF); t = time.perf_counter()
convert(sys.argv[1], sys.argv[3])
r1 = resource.getrusage(resource.RUSAGE_SELF)
print(time.perf_counter() - t, r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
""",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=sorted(CHILD))
    ap.add_argument("input", type=Path)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--tree", type=Path, action="append", required=True, help="a checkout (repeatable)")
    a = ap.parse_args()
    got: dict[Path, list[tuple[float, float]]] = {t: [] for t in a.tree}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(a.rounds):
            for tree in a.tree:
                cmd = [sys.executable, "-c", CHILD[a.what], str(a.input.resolve()), str(tree.resolve()),
                       str(Path(tmp) / "out.parquet")]
                r = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=tmp)  # cwd: no `tracekit` there
                if r.returncode:
                    raise SystemExit(f"{tree}: {r.stderr[-500:]}")
                wall, cpu = map(float, r.stdout.split()[-2:])
                got[tree].append((wall, cpu))
    for tree, v in got.items():
        walls = sorted(round(w, 3) for w, _ in v)
        print(f"{tree}: wall median {statistics.median(w for w, _ in v):.3f} s {walls}, "
              f"CPU median {statistics.median(c for _, c in v):.3f} s")


if __name__ == "__main__":
    main()
