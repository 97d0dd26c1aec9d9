"""Time ``tracekit report`` and each analysis of ``queries/`` on a converted trace.

Usage: python bench/bench_report.py TRACE.parquet [--repeat N] [--rows] [--html]

Prints, per run: wall seconds of the whole report (``tracekit.report.run``: views, the lib/ modules
and every analysis, results fetched into pandas), then each file separately (as timed inside
the same run, so the lib/ modules' temp tables are shared as they are in a real report), and the
JSON/HTML rendering. ``--rows``: results fetched as tracekit.rows.Rows, as the terminal and
JSON report do (no pandas; issue 14). Issue #4's bar: whole report < 5 s, every single query < 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tracekit import report
from tracekit.view.html import render
from tracekit.view.records import to_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", help="converted Parquet file or folder")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--html", action="store_true", help="also time the HTML rendering (needs DataFrames: not with --rows)")
    ap.add_argument("--rows", action="store_true", help="fetch Rows (the terminal/JSON report's path), not DataFrames")
    a = ap.parse_args()
    totals: list[float] = []
    per: dict[str, list[float]] = {}
    for _ in range(a.repeat):
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        res = report.run(a.trace, timings=t, rows=a.rows)
        totals.append(time.perf_counter() - t0)
        for k, v in t.items():
            per.setdefault(k, []).append(v)
    print(f"trace: {a.trace}")
    print(f"report.run total: median {statistics.median(totals):.3f} s  (runs: {', '.join(f'{x:.3f}' for x in totals)})")
    for k, v in per.items():
        print(f"  {k:<12} median {statistics.median(v):.3f} s  max {max(v):.3f} s")
    t0 = time.perf_counter()
    to_json(res)
    print(f"to_json: {time.perf_counter() - t0:.3f} s")
    if a.html and not a.rows:
        t0 = time.perf_counter()
        render(res)
        print(f"to_html: {time.perf_counter() - t0:.3f} s")


if __name__ == "__main__":
    main()
