"""Time every SQL statement of ``tracekit report`` on one input: where the report's SQL time goes.

Usage: python bench/profile_report.py TRACE [--html] [--top 30] [--planning] [--one-thread]

``--planning``: DuckDB's detailed profiling on the report's connection (one worker), and the totals of its
planner, optimizer and physical planner beside the execution's CPU: how much of the SQL time is fixed cost
per statement rather than work on rows (issue 25: 0.23 of 0.38 s on a 536-event export). ``--one-thread``:
``SET threads = 1`` (per-statement times without DuckDB's own parallelism).

Runs the report as the CLI does (``--html``: the HTML path, DataFrames on a caller's connection plus
``queries/timeline.sql``; else the terminal/JSON path, Rows on the report's own connection), with
``tracekit.report._exec_script`` and the output fetch wrapped so that each statement (split by DuckDB's
own parser) is timed alone. Prints the slowest statements with their file, the statement's first line
and its share of the SQL time, then the total per file. Numbers are wall seconds of one run: rerun to
see the noise (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict
from typing import Any

import duckdb

from tracekit import report

_TIMES: list[tuple[float, str, str]] = []  # (seconds, file, statement head)
_FILE = ["?"]
_PHASES: dict[str, float] = defaultdict(float)  # --planning: DuckDB's own split, summed over statements
_PLANNING = [False]


def _head(sql: str) -> str:
    body = re.sub(r"--[^\n]*", "", sql).strip()
    return re.sub(r"\s+", " ", body)[:110]


def _timed_exec(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if not (sql.strip() and re.sub(r"--[^\n]*", "", sql).strip()):
        return
    for st in con.extract_statements(sql):
        t0 = time.perf_counter()
        con.execute(st.query)
        _TIMES.append((time.perf_counter() - t0, _FILE[0], _head(st.query)))
        if _PLANNING[0]:
            info = json.loads(con.get_profiling_information(format="json"))
            for label, (part, key) in {"planner": ("planner", "total_time"), "optimizer": ("optimizer", "total_time"),
                                       "physical planner": ("physical_planner", "total_time"),
                                       "execution CPU": ("query", "cpu_time"),
                                       "query total": ("query", "total_time")}.items():
                _PHASES[label] += info.get(part, {}).get(key, 0.0)  # a statement without a plan has none


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--html", action="store_true", help="the HTML path (DataFrames, caller's connection, timeline)")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--planning", action="store_true", help="DuckDB's planner/optimizer/execution split")
    ap.add_argument("--one-thread", action="store_true", help="SET threads = 1")
    a = ap.parse_args()
    _PLANNING[0] = a.planning

    orig_setup, orig_run_sql = report.setup_file, report.run_sql
    report._exec_script = _timed_exec  # type: ignore[assignment]

    def setup_file(con: Any, name: str, done: set[str], *path: Any) -> Any:  # path: report's cycle guard
        prev, _FILE[0] = _FILE[0], name
        try:
            return orig_setup(con, name, done, *path)
        finally:
            _FILE[0] = prev

    def run_sql(con: Any, sf: Any, done: set[str], arrow: bool = False, rows: bool = False) -> Any:
        _FILE[0] = sf.name
        out: dict[str, Any] = {}
        for req in sf.requires:
            setup_file(con, req, done)
        _FILE[0] = sf.name
        if sf.name not in done:
            _timed_exec(con, sf.setup)
            done.add(sf.name)
        for o, sql in sf.outputs:
            t0 = time.perf_counter()
            key = sf.name if o == sf.name else f"{sf.name}.{o}"
            out[key] = (report.from_cursor(con.execute(sql)) if rows else con.execute(sql).df())
            _TIMES.append((time.perf_counter() - t0, sf.name, f"@output {o}"))
        return out

    report.setup_file = setup_file  # type: ignore[assignment]
    report.run_sql = run_sql  # type: ignore[assignment]
    _FILE[0] = "prepare"
    t0 = time.perf_counter()
    con = duckdb.connect() if (a.html or a.planning or a.one_thread) else None
    if con is not None and a.one_thread:
        con.execute("SET threads = 1")
    if con is not None and a.planning:
        con.execute("PRAGMA enable_profiling = 'no_output'")
        con.execute("PRAGMA profiling_mode = 'detailed'")
    res = report.run([a.trace], con=con, rows=not a.html)
    if a.html and con is not None:
        report.run_timeline(con)
    total = time.perf_counter() - t0
    sql_total = sum(t for t, _, _ in _TIMES)
    print(f"{a.trace}: report.run{' + timeline' if a.html else ''} {total:.3f} s, {len(_TIMES)} statements "
          f"{sql_total:.3f} s, {len(res)} outputs")
    for t, f, h in sorted(_TIMES, reverse=True)[:a.top]:
        print(f"{t:7.3f} {100 * t / sql_total:5.1f}%  {f:<12} {h}")
    per: dict[str, float] = defaultdict(float)
    for t, f, _ in _TIMES:
        per[f] += t
    if a.planning:
        print("DuckDB, summed over statements:", ", ".join(f"{k} {v:.3f} s" for k, v in _PHASES.items()))
    print("per file:", ", ".join(f"{f} {t:.3f}" for f, t in sorted(per.items(), key=lambda x: -x[1])))
    del orig_run_sql


if __name__ == "__main__":
    main()
