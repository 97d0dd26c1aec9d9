"""Check that two checkouts convert traces to equal Parquet tables (issue 14, item 3).

Why: speed work on the readers, the linker and the writer must not change their output. Each export is converted by each checkout
in a fresh child process (so each imports its own ``tracekit``), and the tables read back must be
``Table.equals`` with metadata, with the same row-group sizes.

Usage: python bench/check_nsys_same.py --old /tmp/old --new . [--factor 30] [--kineto] [--cli] [--any-order] [FILE ...]
(default FILEs: every .sqlite under ../shared/traces/nsys/sqlite, plus, with --factor N, the
bench_nsys.py enlargement of the largest one, and with --kineto every Kineto trace under
../shared/traces/kineto; a FILE may be either kind). Exit status 1 when any file differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_nsys import SHARED, enlarge, largest  # noqa: E402

CONVERT = """
import sys
sys.path.insert(0, sys.argv[3])
from tracekit.ingest import convert
convert(sys.argv[1], sys.argv[2], trace="t")
"""


def convert(code: Path, src: Path, out: Path, cli: bool = False) -> None:
    """``src`` -> ``out`` by ``code``'s library ``convert`` in a fresh process, or (``cli``) by its
    ``python -m tracekit convert SRC -o OUT --trace t -q`` as a user runs it (the CLI hides pandas from pyarrow
    and ends with os._exit: issue 25 item 4), from outside the checkout so that ``-m`` finds ``code``'s tracekit."""
    if not cli:
        subprocess.run([sys.executable, "-c", CONVERT, str(src), str(out), str(code)], check=True)
        return
    env = dict(os.environ, PYTHONPATH=str(code.resolve()))
    subprocess.run([sys.executable, "-m", "tracekit", "convert", str(src), "-o", str(out), "--trace", "t", "-q"],
                   check=True, env=env, cwd=tempfile.gettempdir())


def same(a: Path, b: Path) -> str | None:
    """None when equal, else what differs."""
    fa, fb = pq.ParquetFile(a), pq.ParquetFile(b)
    ga = [fa.metadata.row_group(i).num_rows for i in range(fa.num_row_groups)]
    gb = [fb.metadata.row_group(i).num_rows for i in range(fb.num_row_groups)]
    if ga != gb:
        return f"row groups {ga} != {gb}"
    ta, tb = fa.read(), fb.read()
    if ta.schema.metadata != tb.schema.metadata:
        return "schema metadata differs"
    for name in ta.column_names:
        if not ta.column(name).equals(tb.column(name)):
            return f"column {name} differs"
    return None if ta.equals(tb, check_metadata=True) else "tables differ"


def same_rows(a: Path, b: Path) -> str | None:
    """None when the two files hold the same rows in any order (every column but ``row_id``, which numbers the
    output order), the same count and the same schema metadata; else what differs. For a change that reorders the
    converter's output on purpose (issue 25 item 4: nsys writes its ranges first), where :func:`same` must differ.
    """
    import duckdb  # deferred: only this check needs it

    ma, mb = pq.read_schema(a).metadata, pq.read_schema(b).metadata
    if ma != mb:
        return "schema metadata differs"
    con = duckdb.connect()
    for x, y in ((a, b), (b, a)):
        q = "SELECT count(*) FROM (SELECT * EXCLUDE (row_id) FROM read_parquet(?) EXCEPT ALL " \
            "SELECT * EXCLUDE (row_id) FROM read_parquet(?))"
        (n,) = con.execute(q, [str(x), str(y)]).fetchall()[0]
        if n:
            return f"{n} rows of {x.name} are not in {y.name}"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--old", type=Path, required=True)
    ap.add_argument("--new", type=Path, default=ROOT)
    ap.add_argument("--factor", type=int, default=0, help="also check the bench_nsys enlargement by this factor")
    ap.add_argument("--kineto", action="store_true", help="also check every Kineto trace under ../shared/traces/kineto")
    ap.add_argument("--cli", action="store_true", help="convert with each checkout's `tracekit convert` command "
                    "(a whole process each), not its library call")
    ap.add_argument("--any-order", action="store_true", help="the same rows in any order (row_id aside), for a "
                    "change that reorders the output on purpose")
    a = ap.parse_args()
    bad = 0
    with tempfile.TemporaryDirectory(prefix="tk-same-") as tmp:
        files = a.files or sorted(SHARED.glob("*/*.sqlite"))
        if a.kineto:
            files += sorted(SHARED.parents[1].joinpath("kineto").rglob("*.json*"))
        if a.factor:
            big = Path(tmp) / f"big.x{a.factor}.sqlite"
            enlarge(largest(), big, a.factor)
            files.append(big)
        for i, src in enumerate(files):
            old, new = Path(tmp) / f"{i}.old.parquet", Path(tmp) / f"{i}.new.parquet"
            convert(a.old, src, old, a.cli)
            convert(a.new, src, new, a.cli)
            diff = same_rows(old, new) if a.any_order else same(old, new)
            bad += diff is not None
            print(f"{'SAME' if diff is None else 'DIFF'}  {src.name}{'' if diff is None else '  ' + diff}", flush=True)
    print(f"{len(files) - bad} same, {bad} different")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
