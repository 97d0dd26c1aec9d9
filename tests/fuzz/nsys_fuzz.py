"""Mutation fuzzing of the nsys SQLite reader: damaged exports give a converted trace or one clear TraceError.

Run in a subprocess by ``tests/test_fuzz.py`` (a crash of the interpreter is then a failed test, not a dead
pytest), and by hand for longer runs (BENCHMARKS.md)::

    python -m tests.fuzz.nsys_fuzz --seconds 600

Each case copies one real export from ../shared/traces/nsys/sqlite and damages it one way: bytes flipped in
its pages, a table or column dropped, values set to NULL or to a wrong type (text, blob, float, huge or
negative integers), rows deleted, the file cut short. Then ``tracekit.ingest.convert`` must either succeed
(the Parquet file is there and readable) or raise ``TraceError`` with a one-line message naming the file and
leave no output behind; the damaged input must be byte-for-byte unchanged. Anything else is a finding: the
case is kept in ``--findings`` and the loop exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sqlite3
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tracekit.errors import TraceError
from tracekit.ingest import convert
from tracekit.store import read_metadata

REPO = Path(__file__).resolve().parents[2]
SQLITE = REPO.parent / "shared" / "traces" / "nsys" / "sqlite"
WRONG = ["abc", b"\x00\xff", 1.5, -1, 0, (1 << 63) - 1, -(1 << 63), "", "0x10", 1e308]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _tables(con: sqlite3.Connection) -> list[str]:
    return [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({_ident(table)})")]


def mutate(path: Path, rng: random.Random) -> tuple[str, str]:
    """Damage the file at ``path`` in place; returns (kind of mutation, what exactly was done)."""
    op = rng.choice(["flip", "flip", "drop_table", "drop_column", "nulls", "wrong_type", "delete_rows", "truncate"])
    return op, _mutate(path, op, rng)


def _mutate(path: Path, op: str, rng: random.Random) -> str:
    if op == "flip":
        data = bytearray(path.read_bytes())
        n = rng.choice([1, 4, 32, 256])
        lo = rng.choice([0, 100])  # the header too, sometimes
        for _ in range(n):
            data[rng.randrange(lo, len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        return f"flip {n} bytes from offset {lo}"
    if op == "truncate":
        size = path.stat().st_size
        cut = rng.choice([rng.randrange(size), (rng.randrange(size) // 4096) * 4096])
        with open(path, "r+b") as f:
            f.truncate(cut)
        return f"truncate at {cut}"
    con = sqlite3.connect(path)
    try:
        tables = _tables(con)
        if not tables:
            return "no tables"
        t = rng.choice(tables)
        cols = _columns(con, t)
        if op == "drop_table":
            con.execute(f"DROP TABLE {_ident(t)}")
            return f"drop table {t}"
        c = rng.choice(cols)
        if op == "drop_column":
            keep = [x for x in cols if x != c]
            if not keep:
                return "single-column table"
            sel = ", ".join(map(_ident, keep))
            con.execute(f"CREATE TABLE tk_fuzz AS SELECT {sel} FROM {_ident(t)}")
            con.execute(f"DROP TABLE {_ident(t)}")
            con.execute(f"ALTER TABLE tk_fuzz RENAME TO {_ident(t)}")
            return f"drop column {t}.{c}"
        frac = rng.choice([0.01, 0.3, 1.0])
        where = f"abs(random()) % 1000 < {int(frac * 1000)}"
        if op == "nulls":
            con.execute(f"UPDATE {_ident(t)} SET {_ident(c)} = NULL WHERE {where}")
            return f"nulls in {t}.{c} ({frac})"
        if op == "wrong_type":
            v = rng.choice(WRONG)
            con.execute(f"UPDATE {_ident(t)} SET {_ident(c)} = ? WHERE {where}", (v,))
            return f"{v!r} in {t}.{c} ({frac})"
        con.execute(f"DELETE FROM {_ident(t)} WHERE {where}")
        return f"delete rows of {t} ({frac})"
    except sqlite3.Error as e:  # a constraint, or the mutation hit an odd schema: a no-op case
        return f"{op} failed: {e}"
    finally:
        con.commit()
        con.close()


def check(src: Path, out_dir: Path) -> str:
    """Convert ``src`` into ``out_dir``; 'ok' or 'error'. Raises AssertionError (or anything) on a finding."""
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out = out_dir / "out.parquet"
    try:
        meta = convert(src, out)
    except TraceError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(str(src)), f"bad message: {msg!r}"
        assert list(out_dir.iterdir()) == [], f"left behind: {sorted(p.name for p in out_dir.iterdir())}"
        result = "error"
    else:
        assert out.exists() and meta["events"] >= 0
        read_metadata(out)
        assert [p.name for p in out_dir.iterdir()] == ["out.parquet"], sorted(p.name for p in out_dir.iterdir())
        out.unlink()
        result = "ok"
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before, "the input was modified"
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-bytes", type=int, default=1 << 40, help="only seed files up to this size")
    ap.add_argument("--findings", type=Path, default=Path("nsys-findings"))
    ap.add_argument("--stats", type=Path)
    a = ap.parse_args()
    seeds = [p for p in sorted(SQLITE.rglob("*.sqlite")) if p.stat().st_size <= a.max_bytes]
    if not seeds:
        print("no seed files under", SQLITE, file=sys.stderr)
        return 3
    rng = random.Random(a.seed)
    counts = {"ok": 0, "error": 0}
    ops: dict[str, int] = {}
    stop = time.monotonic() + a.seconds
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tk-nsys-fuzz-") as tmp:
        work = Path(tmp) / "case.sqlite"
        out_dir = Path(tmp) / "out"
        out_dir.mkdir()
        while time.monotonic() < stop:
            seed = rng.choice(seeds)
            shutil.copyfile(seed, work)
            key, what = mutate(work, rng)
            ops[key] = ops.get(key, 0) + 1
            try:
                counts[check(work, out_dir)] += 1
            except Exception:  # noqa: BLE001  (anything but a clean result or a TraceError is a finding)
                a.findings.mkdir(parents=True, exist_ok=True)
                keep = a.findings / f"{seed.stem}-{sum(counts.values())}.sqlite"
                shutil.copyfile(work, keep)
                print(f"FINDING: {seed.name}: {what} (kept as {keep})\n{traceback.format_exc()}", file=sys.stderr)
                return 1
            for p in out_dir.iterdir():
                p.unlink()
    stats = {"cases": sum(counts.values()), **counts, "seconds": round(time.monotonic() - start, 1),
             "seeds": len(seeds), "mutations": ops, "findings": 0}
    print(json.dumps(stats))
    if a.stats:
        a.stats.write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
