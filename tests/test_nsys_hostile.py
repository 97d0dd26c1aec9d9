"""Hostile nsys exports (issue 23, items 2, 7, 12), built from a real export of ../shared/traces/nsys/sqlite.

Each conversion that could exhaust memory or hang runs in a subprocess under ``resource`` limits (address space,
CPU seconds) and a timeout: a regression fails here instead of taking the machine down.
"""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, real_trace
from tests.limited import GIB, limited as _limited

SRC = real_trace("nsys/sqlite/nsys-ai/mock.sqlite")  # 373 KB, every table kind (../shared's, else the shipped copy)
KERNEL = "CUPTI_ACTIVITY_KIND_KERNEL"

pytestmark = pytest.mark.skipif(not SRC.exists(), reason=f"{SRC} is absent: neither ../shared/traces nor tests/data/real holds it")


def _copy(tmp_path: Path, name: str = "x.sqlite") -> Path:
    dst = tmp_path / name
    shutil.copyfile(SRC, dst)
    dst.chmod(0o644)
    return dst


def _convert_limited(src: Path, out: Path, **kw: int) -> dict:
    code = f"""
        import json, resource
        from tracekit.ingest.nsys import convert_nsys
        m = convert_nsys({str(src)!r}, {str(out)!r})
        print(json.dumps({{"events": m["events"], "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
    """
    p = _limited(code, **kw)
    assert p.returncode == 0, p.stderr[-4000:]
    return json.loads(p.stdout.splitlines()[-1])


def _rows(out: Path, sql: str = "SELECT * EXCLUDE (row_id, seq, trace, source) FROM events ORDER BY seq") -> list[tuple]:
    from tracekit.store import connect

    return connect(out).execute(sql).fetchall()


# -- item 2: memory ---------------------------------------------------------------------------------------


def test_rowid_near_2_62_reads_only_ranges_that_hold_rows(tmp_path: Path) -> None:
    """One kernel row moved to rowid 2**62: the planner made ~10**14 rowid ranges (MemoryError at 2.5 GB)."""
    plain, moved = _copy(tmp_path, "plain.sqlite"), _copy(tmp_path, "moved.sqlite")
    with sqlite3.connect(moved) as c:
        c.execute(f"UPDATE {KERNEL} SET rowid = {1 << 62} WHERE rowid = (SELECT max(rowid) FROM {KERNEL})")
        assert c.execute(f"SELECT max(rowid) FROM {KERNEL}").fetchone()[0] == 1 << 62
    a = _convert_limited(plain, tmp_path / "plain.parquet", mem=2 * GIB, cpu=60, timeout=120)
    b = _convert_limited(moved, tmp_path / "moved.parquet", mem=2 * GIB, cpu=60, timeout=120)
    assert a["events"] == b["events"]
    assert _rows(tmp_path / "plain.parquet") == _rows(tmp_path / "moved.parquet")


def test_sparse_rowids_read_every_row_once_in_few_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rowids spaced wider than a batch: every row once, in rowid order, in full batches (one query per row,
    each holding a batch's worth of buffers, took 123 s and 6.5 GB for 32k such rows)."""
    from tracekit.ingest import nsys

    src = _copy(tmp_path)
    with sqlite3.connect(src) as c:
        n = c.execute(f"SELECT count(*) FROM {KERNEL}").fetchone()[0]
        for i in range(40):
            c.execute(f"INSERT INTO {KERNEL} SELECT * FROM {KERNEL} WHERE rowid = (SELECT min(rowid) FROM {KERNEL})")
        c.execute(f"UPDATE {KERNEL} SET rowid = rowid * 1000 + 7, start = rowid WHERE rowid > {n}")
    monkeypatch.setattr(nsys, "BATCH", 3)
    db = nsys._Db(src)
    try:
        sels = [nsys.Sel("start", "t.start", nsys.INT)]
        got = [list(b["start"][0].to_pylist()) for b in nsys._batches(db, KERNEL, sels)]
        want = [r[0] for r in db.conn.execute(f"SELECT start FROM {KERNEL} ORDER BY rowid")]
    finally:
        db.close()
    assert [x for b in got for x in b] == want
    assert len(got) <= len(want) // 3 + 3, [len(b) for b in got]


def test_huge_string_referenced_by_many_rows_is_bounded(tmp_path: Path) -> None:
    """A 4 MB StringIds value as name, short and mangled name of 200 kernel rows (2.4 GB of text if one batch
    held every copy, plus its copies): converted under a 3 GiB address-space limit, every copy intact."""
    src = _copy(tmp_path)
    big = "k" * (4 << 20)
    with sqlite3.connect(src) as c:
        sid = c.execute("SELECT max(id) + 1 FROM StringIds").fetchone()[0]
        c.execute("INSERT INTO StringIds (id, value) VALUES (?, ?)", (sid, big))
        row = c.execute(f"SELECT min(rowid) FROM {KERNEL}").fetchone()[0]
        for _ in range(200):
            c.execute(f"INSERT INTO {KERNEL} SELECT * FROM {KERNEL} WHERE rowid = ?", (row,))
        c.execute(f"UPDATE {KERNEL} SET demangledName = ?, shortName = ?, mangledName = ? WHERE rowid > ?",
                  (sid, sid, sid, row + 1))
    out = tmp_path / "big.parquet"
    got = _convert_limited(src, out, mem=3 * GIB, cpu=120, timeout=240)
    assert got["rss_kb"] < 1500 << 10
    n, named, argsized = _rows(out, f"SELECT count(*), count(*) FILTER (WHERE length(name) = {len(big)}), "
                                    f"count(*) FILTER (WHERE length(args) > {2 * len(big)}) FROM events "
                                    f"WHERE kind = 'kernel'")[0]
    assert n >= 200 and named == argsized == 200


# -- item 12: args keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("adbc", [True, False])
def test_column_names_with_quote_and_backslash_give_valid_args(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               adbc: bool) -> None:
    from tracekit.ingest import nsys

    if not adbc:
        monkeypatch.setattr(nsys, "_adbc_sqlite", None)
    elif nsys._adbc_sqlite is None:
        pytest.skip("no ADBC SQLite driver")
    src = _copy(tmp_path)
    with sqlite3.connect(src) as c:
        c.execute(f'ALTER TABLE {KERNEL} ADD COLUMN "we""ird\\col" INTEGER DEFAULT 7')
        c.execute(f'ALTER TABLE {KERNEL} ADD COLUMN "tab\tname" TEXT DEFAULT \'v"\\\'')
    out = tmp_path / "k.parquet"
    nsys.convert_nsys(src, out)
    args = [r[0] for r in _rows(out, "SELECT args FROM events WHERE kind = 'kernel'")]
    assert args
    for a in args:
        d = json.loads(a)
        assert d['we"ird\\col'] == 7 and d["tab\tname"] == 'v"\\'
    bad = _rows(out, "SELECT count(*) FROM events WHERE args IS NOT NULL AND NOT json_valid(args)")[0][0]
    assert bad == 0


# -- item 7: views and signals ----------------------------------------------------------------------------


ENDLESS = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"


def test_endless_view_is_not_read(tmp_path: Path) -> None:
    """The kernel table replaced by a view over an endless recursive CTE: ignored (tables only), the rest converts."""
    src = _copy(tmp_path)
    with sqlite3.connect(src) as c:
        cols = [r[1] for r in c.execute(f"PRAGMA table_info({KERNEL})")]
        c.execute(f"DROP TABLE {KERNEL}")
        sel = ", ".join(f"x AS {col}" for col in cols)
        c.execute(f"CREATE VIEW {KERNEL} AS WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) "
                  f"SELECT {sel} FROM r")
        c.execute("CREATE VIEW StringIdsView AS " + ENDLESS)
    t = time.monotonic()
    got = _convert_limited(src, tmp_path / "v.parquet", mem=2 * GIB, cpu=30, timeout=60)
    assert got["events"] > 0 and time.monotonic() - t < 50
    assert _rows(tmp_path / "v.parquet", "SELECT count(*) FROM events WHERE kind = 'kernel'")[0][0] == 0


def _long_query_child(src: Path, setup: str = "") -> subprocess.Popen[str]:
    code = f"""
        import sys, time
        from tracekit.atomic import install_signal_cleanup
        from tracekit.ingest import nsys
        install_signal_cleanup()
        db = nsys._Db(nsys.Path({str(src)!r}))
        {setup}
        print("ready", flush=True)
        t = time.monotonic()
        try:
            db.conn.execute("SELECT count(*) FROM ({ENDLESS})").fetchone()
        except nsys.sqlite3.OperationalError as e:
            print("aborted", e, db.aborted_by_us(), round(time.monotonic() - t, 1), flush=True)
        except KeyboardInterrupt:
            print("keyboardinterrupt", flush=True)
    """
    pre = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (60, 60))\n"
    return subprocess.Popen([sys.executable, "-c", pre + textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_is_serviced_during_a_long_query(tmp_path: Path, sig: int) -> None:
    """A query that never ends on the main thread: SIGTERM ends the process, SIGINT aborts the query (the
    converter turns that abort into KeyboardInterrupt), within seconds."""
    p = _long_query_child(_copy(tmp_path))
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        p.send_signal(sig)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if sig == signal.SIGTERM:
        assert p.returncode == -signal.SIGTERM, (p.returncode, out, err[-2000:])
    else:
        assert out.startswith("aborted interrupted False"), (out, err[-2000:])


def test_deadline_aborts_a_long_query(tmp_path: Path) -> None:
    p = _long_query_child(_copy(tmp_path), setup="db.deadline = time.monotonic() + 1.0")
    out, err = p.communicate(timeout=30)
    assert out.split()[1:4] == ["aborted", "interrupted", "True"], (out, err[-2000:])
    assert float(out.split()[-1]) < 10


def test_sigint_during_conversion_query_is_keyboard_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An abort that tracekit did not ask for (the progress handler saw SIGINT) becomes KeyboardInterrupt, not
    a 'corrupt database' error."""
    from tracekit.ingest import nsys

    src = _copy(tmp_path)

    def interrupted(self: nsys._Reader) -> None:
        raise sqlite3.OperationalError("interrupted")

    monkeypatch.setattr(nsys._Reader, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        nsys.convert_nsys(src, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_memory_error_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracekit.errors import TraceError
    from tracekit.ingest import nsys

    src = _copy(tmp_path)

    def boom(self: nsys._Reader) -> None:
        raise MemoryError

    monkeypatch.setattr(nsys._Reader, "run", boom)
    with pytest.raises(TraceError, match="out of memory") as e:
        nsys.convert_nsys(src, tmp_path / "o.parquet")
    assert str(src) in str(e.value) and not (tmp_path / "o.parquet").exists()
