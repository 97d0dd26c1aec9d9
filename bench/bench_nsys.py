"""nsys SQLite -> Parquet conversion rate (events/s), on a real export and on a synthetic enlargement.

Why a synthetic enlargement: the largest real export we hold has ~32k events, so
fixed costs (opening the file, reading StringIds, writing the Parquet footer)
dominate. Replicating every event table N times with shifted timestamps and
correlation ids gives a file with N times the events and the same shape
(string table, names, nesting), which measures the per-event cost.

Usage: python bench/bench_nsys.py [--factor 10] [--repeat 3] [--floor] [FILE]
(default FILE: the largest .sqlite under ../shared/traces/nsys/sqlite).

``--floor`` (issue 14) also times the floor the converter is held to: every event table (and
StringIds) read with ``SELECT *`` into Arrow through adbc-driver-sqlite, one table after another on
one thread. Floor and ``convert_nsys`` run alternated, each in a fresh child process (start-up
included in neither: both time from after their imports), so a loaded machine slows both alike;
the ratio is reported per pair.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracekit.ingest.nsys import convert_nsys

SHARED = ROOT.parent / "shared" / "traces" / "nsys" / "sqlite"
#: Tables replicated by the enlargement (all event tables tracekit reads).
EVENT_TABLES = ("CUPTI_ACTIVITY_KIND_KERNEL", "CUPTI_ACTIVITY_KIND_RUNTIME", "CUPTI_ACTIVITY_KIND_MEMCPY",
                "CUPTI_ACTIVITY_KIND_MEMSET", "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION", "NVTX_EVENTS", "OSRT_API",
                "CUPTI_ACTIVITY_KIND_CUDA_EVENT", "CUPTI_ACTIVITY_KIND_OVERHEAD", "PROFILER_OVERHEAD",
                "CUDA_GRAPH_EVENTS")
TIME_COLS = ("start", "end", "timestamp")


def largest() -> Path:
    files = sorted(SHARED.glob("*/*.sqlite"), key=lambda p: p.stat().st_size)
    if not files:
        sys.exit(f"no .sqlite files under {SHARED}")
    return files[-1]


def enlarge(src: Path, dst: Path, factor: int) -> None:
    """Copy ``src`` to ``dst`` and replicate every event table ``factor`` times (shifted times and ids)."""
    shutil.copyfile(src, dst)
    con = sqlite3.connect(dst)
    tables = [t for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'") if t in EVENT_TABLES]
    lo, hi, corr = None, None, 0
    for t in tables:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
        for c in TIME_COLS:
            if c in cols:
                a, b = con.execute(f'SELECT min("{c}"), max("{c}") FROM {t}').fetchone()
                lo = a if lo is None or (a is not None and a < lo) else lo
                hi = b if hi is None or (b is not None and b > hi) else hi
        if "correlationId" in cols:
            corr = max(corr, con.execute(f"SELECT coalesce(max(correlationId), 0) FROM {t}").fetchone()[0])
    span = (hi - lo + 1) if lo is not None else 1
    for t in tables:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({t})")]
        n = con.execute(f"SELECT max(rowid) FROM {t}").fetchone()[0] or 0
        for k in range(1, factor):
            exprs = []
            for c in cols:
                q = f'"{c}"'
                if c in TIME_COLS:
                    exprs.append(f"{q} + {k * span}")
                elif c in ("correlationId", "rangeId"):
                    exprs.append(f"{q} + {k * (corr + 1)}")
                else:
                    exprs.append(q)
            con.execute(f"INSERT INTO {t} ({', '.join(chr(34) + c + chr(34) for c in cols)}) "
                        f"SELECT {', '.join(exprs)} FROM {t} WHERE rowid <= {n}")
    con.commit()
    con.execute("VACUUM")
    con.close()


def bench(path: Path, repeat: int) -> tuple[int, float]:
    """(events, best seconds) of converting ``path`` ``repeat`` times."""
    times, events = [], 0
    with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
        for i in range(repeat):
            t = time.perf_counter()
            meta = convert_nsys(path, Path(tmp) / f"out{i}.parquet")
            times.append(time.perf_counter() - t)
            events = meta["events"]
    return events, min(times)


FLOOR = """
import sqlite3, sys, time
import adbc_driver_sqlite.dbapi as adbc
tables = sys.argv[2].split(",")
t = time.perf_counter()
n = 0
with adbc.connect(sys.argv[1]) as conn:
    present = {r[0] for r in sqlite3.connect(sys.argv[1]).execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in tables:
        if table in present:
            with conn.cursor() as cur:
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": "100000"})
                cur.execute(f'SELECT * FROM "{table}"')
                n += cur.fetch_arrow_table().num_rows
print(time.perf_counter() - t, n)
"""
CONVERT = """
import os, sys, time
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")  # as the tracekit CLI sets them
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, sys.argv[3])
from tracekit.ingest.nsys import convert_nsys
t = time.perf_counter()
meta = convert_nsys(sys.argv[1], sys.argv[2])
print(time.perf_counter() - t, meta["events"])
"""


def floor_pairs(path: Path, repeat: int, code: list[Path]) -> None:
    """Alternate floor / convert (with each checkout in ``code``) in fresh child processes; print each run and
    the median ratio to the floor of the same round."""
    ratios: dict[Path, list[float]] = {c: [] for c in code}
    with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
        for i in range(repeat):
            f = subprocess.run([sys.executable, "-c", FLOOR, str(path), ",".join(EVENT_TABLES + ("StringIds",))],
                               check=True, capture_output=True, text=True).stdout.split()
            fs = float(f[0])
            line = f"  round {i + 1}: floor {fs:.3f} s ({int(f[1]):,} rows)"
            for root in code:
                c = subprocess.run([sys.executable, "-c", CONVERT, str(path), str(Path(tmp) / f"o{i}.parquet"), str(root)],
                                   check=True, capture_output=True, text=True).stdout.split()
                cs = float(c[0])
                ratios[root].append(cs / fs)
                line += f" | {root.resolve().name}: {cs:.3f} s ({int(c[1]):,} events, {cs / fs:.2f}x)"
            print(line, flush=True)
    for root, r in ratios.items():
        print(f"  {root}: convert / floor median {statistics.median(r):.2f}, best {min(r):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", type=Path)
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--floor", action="store_true", help="only the enlarged file: convert vs the ADBC read floor")
    ap.add_argument("--code", type=Path, action="append", help="with --floor: a checkout whose convert_nsys to time "
                    "(repeatable, e.g. an older `git archive`); default: this one")
    a = ap.parse_args()
    src = a.file or largest()
    with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:
        big = Path(tmp) / f"{src.stem}.x{a.factor}.sqlite"
        enlarge(src, big, a.factor)
        if a.floor:
            print(f"{src.name} x{a.factor} (synthetic), {big.stat().st_size / 1e6:.1f} MB")
            floor_pairs(big, a.repeat, a.code or [ROOT])
            return
        for label, p in ((src.name, src), (f"{src.name} x{a.factor} (synthetic)", big)):
            ev, sec = bench(p, a.repeat)
            mb = p.stat().st_size / 1e6
            print(f"{label:55s} {ev:>9,d} events {mb:7.1f} MB {sec:7.3f} s  {ev / sec / 1e6:6.2f} M events/s")


if __name__ == "__main__":
    main()
