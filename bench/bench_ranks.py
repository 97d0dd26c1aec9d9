"""Time and peak memory of ``tracekit report`` over a many-rank dataset made from one real rank.

Usage: python bench/bench_ranks.py [--source TRACE] [--ranks 64] [--work DIR] [--analyses comm,collectives]

Converts ``--source`` (default: the shared df_index_resolver trace, 216k events, rank 1 of a 2-rank
DDP job with 1,616 NCCL all-reduces) once, then writes ``--ranks`` Parquet files, one per rank: the
same rows with every timestamp (ts_ns, launch_ts_ns) shifted by that rank's own clock offset
(r * 1.000777 s, as unsynchronised hosts would have) and the trace metadata saying rank r of N.
Then runs ``python -m tracekit report DIR --json`` (all analyses, or ``--analyses`` via the Python
API) in a child process and prints its wall and CPU time and peak RSS (getrusage of the child), the load
average of the machine, and a check that collectives.sql recovered every planted clock offset.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO.parent / "shared" / "traces" / "kineto" / "hta" / "df_index_resolver" / "df_index_resolver.json.gz"
SHIFT_NS = 1_000_777_000  # rank r's clock runs r * 1.000777 s ahead of rank 0's


def make_dataset(source: Path, ranks: int, out: Path) -> int:
    """Write ``ranks`` shifted copies of ``source`` into ``out``; returns the rows per rank."""
    from tracekit.ingest import convert
    from tracekit.schema import META_TRACES

    out.mkdir(parents=True, exist_ok=True)
    base = out.parent / (source.name + ".parquet")
    if not base.exists():
        convert(source, base)
    table = pq.read_table(base)
    meta = dict(pq.read_schema(base).metadata or {})
    (trace_meta,) = json.loads(meta[META_TRACES]).values()
    for r in range(ranks):
        name = f"rank{r}"
        shift = pa.scalar(r * SHIFT_NS, pa.int64())
        t = table.set_column(table.schema.get_field_index("trace"), "trace", pa.array([name] * len(table), pa.string()))
        for col in ("ts_ns", "launch_ts_ns"):
            i = t.schema.get_field_index(col)
            t = t.set_column(i, col, pc.add(t.column(col), shift))
        m = {**meta, META_TRACES: json.dumps({name: {**trace_meta, "rank": r, "world_size": ranks}}).encode()}
        pq.write_table(t.replace_schema_metadata(m), out / f"{name}.parquet", compression="zstd")
    return len(table)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, default=DEFAULT)
    ap.add_argument("--ranks", type=int, default=64)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tracekit-bench-ranks"))
    ap.add_argument("--analyses", default="", help="comma-separated analyses (Python API); default: the CLI report, all")
    a = ap.parse_args()
    ds = a.work / f"ranks{a.ranks}"
    t0 = time.perf_counter()
    rows = make_dataset(a.source, a.ranks, ds)
    print(f"dataset: {a.ranks} ranks x {rows:,} rows = {a.ranks * rows:,} rows from {a.source.name} "
          f"({sum(f.stat().st_size for f in ds.iterdir()) / 1e6:.0f} MB Parquet) in {time.perf_counter() - t0:.1f} s")
    out = a.work / "report.json"
    if a.analyses:
        code = ("import json, sys; from tracekit import report; from tracekit.view.records import to_json; "
                "r = report.run(sys.argv[1], analyses=sys.argv[2].split(',')); json.dump(to_json(r), open(sys.argv[3], 'w'))")
        cmd = [sys.executable, "-c", code, str(ds), a.analyses, str(out)]
    else:
        cmd = [sys.executable, "-m", "tracekit", "report", str(ds), "--json"]
    load = os.getloadavg()
    t0 = time.perf_counter()
    with open(out, "w") if not a.analyses else open(os.devnull, "w") as f:
        subprocess.run(cmd, check=True, stdout=f)
    wall = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"report ({a.analyses or 'all analyses, CLI --json'}): {wall:.1f} s wall, {ru.ru_utime + ru.ru_stime:.1f} s CPU "
          f"(user+sys), peak RSS {ru.ru_maxrss / 1024:.0f} MB; load average before: {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}, after: {os.getloadavg()[0]:.2f}, on {os.cpu_count()} CPUs")
    doc = json.loads(out.read_text())
    al = doc["collectives"]["alignment"]
    bad = [x for x in al if x["offset_ns"] != x["rank"] * SHIFT_NS]
    print(f"collectives.alignment: {len(al)} ranks, offsets recovered exactly: {not bad}; "
          f"matched calls: {len(doc['collectives']['matched'])}; step_skew rows: {len(doc['collectives']['step_skew'])}")


if __name__ == "__main__":
    main()
