"""Time queries/flops.sql on a large trace that has shapes, and the report with and without it.

The 540 MB benchmark trace (bench/make_big_trace.py) was recorded without record_shapes, so its
matmul ops have no FLOPs and the formulas never run. This tiles a converted trace that has
shapes (default: TraceLens's H100 trace, 193 counted ops per copy) COPIES times, shifting times
past the previous copy and offsetting correlation / External id / seq so links stay one-to-one,
and keeps its Parquet metadata (the GPU name). Then it times, median of --repeat runs:
the `flops` analysis alone (as inside a report, after the lib/ modules it requires) and report.run with and without it.

    python bench/bench_flops.py SRC.parquet --copies 120 --out /tmp/flops_big.parquet
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from tracekit import report


def tile(src: Path, out: Path, copies: int) -> int:
    """Write ``copies`` shifted copies of ``src`` to ``out``; returns the row count."""
    con = duckdb.connect()
    span, corr, ext, seq = con.execute(
        f"SELECT max(ts_ns + coalesce(dur_ns, 0)) - min(ts_ns) + 1000, max(correlation) + 1, max(external_id) + 1, "
        f"max(seq) + 1 FROM read_parquet('{src}')").fetchone()
    tbl = con.sql(f"""
        SELECT * REPLACE (ts_ns + i * {span} AS ts_ns, launch_ts_ns + i * {span} AS launch_ts_ns,
                          correlation + i * {corr} AS correlation, external_id + i * {ext} AS external_id,
                          seq + i * {seq} AS seq)
        FROM read_parquet('{src}'), range({copies}) r(i) ORDER BY i, seq""").to_arrow_table()
    tbl = tbl.drop_columns(["i"]).replace_schema_metadata(pq.read_schema(src).metadata)
    pq.write_table(tbl, out)
    return tbl.num_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("--copies", type=int, default=120)
    ap.add_argument("--out", type=Path, default=Path("/tmp/flops_big.parquet"))
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    rows = tile(a.src, a.out, a.copies)
    print(f"{a.out}: {rows:,} events, {a.out.stat().st_size / 1e6:.1f} MB")
    without = tuple(x for x in report.ANALYSES if x != "flops")
    fl, tot_with, tot_without = [], [], []
    for _ in range(a.repeat):
        t: dict[str, float] = {}
        t0 = time.perf_counter()
        res = report.run(a.out, timings=t)
        tot_with.append(time.perf_counter() - t0)
        fl.append(t["flops"])
        t0 = time.perf_counter()
        report.run(a.out, analyses=without)
        tot_without.append(time.perf_counter() - t0)
    print(f"counted ops: {int(res['flops']['ops'].sum()):,}; flops rows: {len(res['flops'])}")
    print(f"flops analysis: median {statistics.median(fl):.3f} s (runs: {', '.join(f'{x:.3f}' for x in fl)})")
    print(f"report.run with flops: median {statistics.median(tot_with):.3f} s; "
          f"without: {statistics.median(tot_without):.3f} s")


if __name__ == "__main__":
    main()
