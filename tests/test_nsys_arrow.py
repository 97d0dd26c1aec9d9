"""The nsys reader's two paths (ADBC rows straight into Arrow, and the ``json_group_array`` + msgspec
fallback) give the same Parquet, byte for byte in content and metadata.

Why: the ADBC path is there for speed only (issue 14); the JSON path defined the output before it and
still handles batches whose values do not have their column's declared type. Any difference between
the two would make a conversion depend on which driver is installed.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import tracekit.ingest.nsys as nsys_mod
from tracekit.ingest.nsys import convert_nsys

from .conftest import NSYS_DIR

needs_adbc = pytest.mark.skipif(nsys_mod._adbc_sqlite is None, reason="adbc-driver-sqlite is not installed")
EXPORTS = sorted((NSYS_DIR / "sqlite").glob("*/*.sqlite")) if NSYS_DIR.exists() else []


def _both(src: Path, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    fast = tmp / "adbc.parquet"
    convert_nsys(src, fast, trace="t")
    with monkeypatch.context() as m:
        m.setattr(nsys_mod, "_adbc_sqlite", None)
        slow = tmp / "json.parquet"
        convert_nsys(src, slow, trace="t")
    return fast, slow


def _same(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.schema.metadata == tb.schema.metadata
    for name in ta.column_names:
        assert ta.column(name).equals(tb.column(name)), name
    assert ta.equals(tb, check_metadata=True)


@needs_adbc
@pytest.mark.skipif(not EXPORTS, reason="../shared/traces/nsys is absent: the real nsys exports are needed")
@pytest.mark.parametrize("src", EXPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_real_exports_same_on_both_paths(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _same(*_both(src, tmp_path, monkeypatch))


VM = 1 << 48


def _runtime_export(path: Path, columns: str, strings: list[tuple[int, str]], rows: list[tuple]) -> Path:
    """StringIds and CUPTI_ACTIVITY_KIND_RUNTIME (eventClass 0, nameId 1, one thread) with ``columns`` after
    nameId; each row is (start, end, correlationId, *values of ``columns``)."""
    con = sqlite3.connect(path)
    con.executescript(f"""
        CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, {columns});
    """)
    con.executemany("INSERT INTO StringIds VALUES (?, ?)", strings)
    g = VM | (100 << 24) | 100
    values = ",".join("?" * (len(rows[0]) - 3))
    con.executemany(f"INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,0,{g},?,1,{values})", rows)
    con.commit()
    con.close()
    return path


def _odd_types(path: Path) -> Path:
    """Runtime rows whose INTEGER column holds a REAL in one row, and a REAL column (floats kept as args)."""
    return _runtime_export(path, "returnValue INTEGER, ratio REAL", [(1, "cudaLaunchKernel_v7000")],
                           [(10, 20, 7, 0, 0.1), (30, 40, 8, 1.5, None), (50, 60, 9, 2, 1 / 3)])


def test_odd_types_fall_back_to_the_json_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """returnValue 1.5 in an INTEGER column: that batch's member is the raw JSON number, as before ADBC.

    ratio is REAL: SQLite's JSON text of 1/3 has 15 significant digits, which both paths keep (the JSON
    path decoded exactly that text), so the member reads 0.333333333333333.
    """
    src = _odd_types(tmp_path / "odd.sqlite")
    fast, slow = _both(src, tmp_path, monkeypatch)
    _same(fast, slow)
    args = [json.loads(a) for a in pq.read_table(fast).column("args").to_pylist()]
    common = {"eventClass": 0, "api_name": "cudaLaunchKernel_v7000", "eventClassName": "CUDA runtime"}
    assert args == [
        {"eventClass": 0, "correlationId": 7, "returnValue": 0, "ratio": 0.1, **common},
        {"eventClass": 0, "correlationId": 8, "returnValue": 1.5, **common},
        {"eventClass": 0, "correlationId": 9, "returnValue": 2, "ratio": 0.333333333333333, **common},
    ]
    raw = pq.read_table(fast).column("args").to_pylist()
    assert raw[1] == ('{"eventClass":0,"correlationId":8,"returnValue":1.5,'
                      '"api_name":"cudaLaunchKernel_v7000","eventClassName":"CUDA runtime"}')


def _odd_args(path: Path) -> Path:
    """Runtime rows whose args members need SQLite's rendering to match the JSON path's: quotes, a control
    character and non-ASCII text, TEXT in an INTEGER column, a string id that is there and one that is not."""
    return _runtime_export(path, "returnValue INTEGER, note TEXT, mangledName INTEGER",
                           [(1, "cudaLaunchKernel_v7000"), (2, '_Z3f"o\\o')],
                           [(10, 20, 7, 0, 'say "hi" \\ ok', 2), (30, 40, 8, "oops", "tab\there \u00e9", 99),
                            (50, 60, 9, None, None, None)])


def test_args_rendered_in_sql_spell_members_as_the_json_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ADBC path renders args members in SQLite (nsys._member_sql); each text below is written out by hand
    from JSON's rules: escaped quote and backslash, ``\\t`` for the tab, non-ASCII kept, 'oops' quoted (TEXT
    in an INTEGER column), a dangling string id and NULLs left out."""
    src = _odd_args(tmp_path / "args.sqlite")
    fast, slow = _both(src, tmp_path, monkeypatch)
    _same(fast, slow)
    tail = '"api_name":"cudaLaunchKernel_v7000","eventClassName":"CUDA runtime"}'
    assert pq.read_table(fast).column("args").to_pylist() == [
        '{"eventClass":0,"correlationId":7,"returnValue":0,"note":"say \\"hi\\" \\\\ ok",'
        '"mangledName":"_Z3f\\"o\\\\o",' + tail,
        '{"eventClass":0,"correlationId":8,"returnValue":"oops","note":"tab\\there \u00e9",' + tail,
        '{"eventClass":0,"correlationId":9,' + tail,
    ]


def test_escape_check_reads_the_values_bytes() -> None:
    """nsys._has_bytes_to_escape: yes for a control character, quote or backslash in a value, also in a slice."""
    import pyarrow as pa

    from tracekit.ingest.nsys import _has_bytes_to_escape

    assert not _has_bytes_to_escape(pa.array(["aten::mm", None, "\u00e9t\u00e9"]))
    assert not _has_bytes_to_escape(pa.array([None, None], pa.string()))
    for odd in ('say "hi"', "back\\slash", "tab\there", "nul\x00"):
        assert _has_bytes_to_escape(pa.array(["plain", odd, None]))
    arr = pa.array(['"quoted"', "plain", "also plain"])
    assert not _has_bytes_to_escape(arr.slice(1))
    assert _has_bytes_to_escape(arr.slice(0, 1))


def test_a_float_member_reads_the_batch_column_by_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A REAL args column with values: the SQL-rendered text cannot spell floats as Arrow does, so that batch is
    read with one Arrow column per member (integers all fine: no JSON path); 0.25 and 3.5 print exactly."""
    src = _runtime_export(tmp_path / "floats.sqlite", "ratio REAL, returnValue INTEGER", [(1, "cudaMemcpyAsync_v3020")],
                          [(10, 20, 7, 0.25, 0), (30, 40, 8, None, 0), (50, 60, 9, 3.5, 0)])
    read_json = []
    real_decode = nsys_mod._decode
    monkeypatch.setattr(nsys_mod, "_decode", lambda *a: read_json.append(1) or real_decode(*a))
    fast = tmp_path / "adbc.parquet"
    convert_nsys(src, fast, trace="t")
    assert not read_json  # the column-by-column ADBC read, not the JSON fallback
    tail = ',"returnValue":0,"api_name":"cudaMemcpyAsync_v3020","eventClassName":"CUDA runtime"}'
    assert pq.read_table(fast).column("args").to_pylist() == [
        '{"eventClass":0,"correlationId":7,"ratio":0.25' + tail,
        '{"eventClass":0,"correlationId":8' + tail,
        '{"eventClass":0,"correlationId":9,"ratio":3.5' + tail,
    ]
    monkeypatch.undo()
    _same(*_both(src, tmp_path, monkeypatch))


@needs_adbc
@pytest.mark.skipif(not EXPORTS, reason="../shared/traces/nsys is absent: the real nsys exports are needed")
@pytest.mark.parametrize("src", EXPORTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_rare_member_guess_does_not_change_args(src: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ADBC query tests the args members that had no value in a table's first rows for NULL together
    (nsys._rare_members); a member that does have values later must still be rendered. With a sample of one
    row, most members of every table are guessed rare and many are wrong: the output must not change."""
    assert nsys_mod.RARE_SAMPLE > 1
    default = tmp_path / "default.parquet"
    convert_nsys(src, default, trace="t")
    guesses: list[frozenset[str]] = []
    real = nsys_mod._rare_members
    monkeypatch.setattr(nsys_mod, "RARE_SAMPLE", 1)
    monkeypatch.setattr(nsys_mod, "_rare_members", lambda *a: guesses.append(real(*a)) or guesses[-1])
    one = tmp_path / "one_row.parquet"
    convert_nsys(src, one, trace="t")
    assert any(guesses)  # the rare-member query was used
    _same(default, one)
