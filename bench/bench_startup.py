"""Start-up of the short verbs against a bare DuckDB query started the same way (issue 14).

Each round runs, each in a fresh process and in this order: ``python -c "import duckdb;
duckdb.sql('select 1').fetchall()"``, ``tracekit sql FILE "select 1"``, ``tracekit info FILE`` and
``tracekit report FILE``; wall time includes interpreter start-up for all four. Rounds alternate the
commands, so a loaded machine slows them alike; the ratio to the bare query is per median.

    python bench/bench_startup.py [--rounds 5] [FILE]

(default FILE: the worker0 trace of samples/traces/serve_2workers/parquet.)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = sorted((ROOT / "samples" / "traces" / "serve_2workers" / "parquet").glob("*worker0.parquet"))[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path, default=DEFAULT)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--root", type=Path, action="append",
                    help="checkout to run tracekit from (repeatable: e.g. an older `git archive` beside this one)")
    a = ap.parse_args()
    tk = [sys.executable, "-m", "tracekit"]
    cmds: dict[str, tuple[list[str], Path]] = {
        "bare duckdb": ([sys.executable, "-c", "import duckdb; duckdb.sql('select 1').fetchall()"], ROOT)}
    for root in a.root or [ROOT]:  # `python -m` puts the working folder first on sys.path: that checkout runs
        tag = "" if not a.root else f" [{root.resolve().name}]"
        cmds[f"tracekit sql{tag}"] = ([*tk, "sql", str(a.file.resolve()), "select 1"], root)
        cmds[f"tracekit info{tag}"] = ([*tk, "info", str(a.file.resolve())], root)
        cmds[f"tracekit report{tag}"] = ([*tk, "report", str(a.file.resolve())], root)
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(a.rounds):
        for k, (c, cwd) in cmds.items():
            t = time.perf_counter()
            subprocess.run(c, check=True, stdout=subprocess.DEVNULL, cwd=cwd)
            times[k].append(time.perf_counter() - t)
    base = statistics.median(times["bare duckdb"])
    print(f"load average {os.getloadavg()[0]:.1f}; {a.rounds} rounds; median (min-max) seconds")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"{k:26s} {m:6.2f} ({min(v):.2f}-{max(v):.2f})  {m / base:4.2f}x bare")


if __name__ == "__main__":
    main()
