"""Whole-process time of ``tracekit report`` as terminal, JSON and HTML, for one or more code trees.

Usage: python bench/bench_report_html.py TRACE [--rounds 5] [--tree OLD --tree NEW]

Each round runs, each in a fresh process and in this order, for every tree (``PYTHONPATH=TREE``,
default: this checkout): ``report TRACE`` (terminal, piped), ``report TRACE --json`` and ``report TRACE
--html OUT`` (which also writes the median step for Perfetto). Rounds interleave trees and modes, so a
loaded machine slows them alike. Prints min / median / max wall seconds per tree and mode, the HTML
to terminal ratio per round (issue 25 item 3: within 1.5x), the CPU seconds of each process (user +
system: what a shared machine disturbs least), and the load average before and after
(the machine is shared: compare numbers of one run only).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = ("term", "json", "html")


def once(tree: Path, trace: str, mode: str, out_dir: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one report process (interpreter start-up included).

    CPU time is what a loaded machine disturbs least: on a shared 2-core box the wall time of a
    whole process can double from one round to the next; its CPU seconds move far less."""
    extra = {"term": [], "json": ["--json"], "html": ["--html", str(Path(out_dir) / "r.html")]}[mode]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tracekit", "report", trace, *extra], check=True, env=env,
                   stdout=subprocess.DEVNULL, cwd=out_dir)
    wall = time.perf_counter() - t
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tree", type=Path, action="append", help="code tree to run (repeatable); default: this checkout")
    a = ap.parse_args()
    trees = [t.resolve() for t in a.tree or [ROOT]]
    trace = str(Path(a.trace).resolve())
    times: dict[tuple[Path, str], list[float]] = {(t, m): [] for t in trees for m in MODES}
    cpu: dict[tuple[Path, str], list[float]] = {(t, m): [] for t in trees for m in MODES}
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tk_bench_") as out_dir:
        for tree in trees:  # warm the file cache and the .pyc files once, untimed
            once(tree, trace, "html", out_dir)
        for _ in range(a.rounds):
            for tree in trees:
                for m in MODES:
                    wall, c = once(tree, trace, m, out_dir)
                    times[(tree, m)].append(wall)
                    cpu[(tree, m)].append(c)
    load1 = os.getloadavg()
    print(f"{trace}\n{a.rounds} rounds; load average before {load0[0]:.2f} {load0[1]:.2f}, after {load1[0]:.2f} {load1[1]:.2f}")
    for tree in trees:
        for m in MODES:
            v, c = times[(tree, m)], cpu[(tree, m)]
            print(f"{str(tree):28s} {m:5s} wall min {min(v):.3f}  median {statistics.median(v):.3f}  max {max(v):.3f}"
                  f"   cpu min {min(c):.3f}  median {statistics.median(c):.3f}  max {max(c):.3f}")
        for what, d in (("wall", times), ("cpu", cpu)):
            ratio = [h / t for h, t in zip(d[(tree, "html")], d[(tree, "term")])]
            print(f"{str(tree):28s} html/term {what} per round: {', '.join(f'{r:.2f}' for r in ratio)} "
                  f"(median {statistics.median(ratio):.2f})")


if __name__ == "__main__":
    main()
