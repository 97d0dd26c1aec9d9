"""Damaged nsys exports found by tests/fuzz/nsys_fuzz.py, as fixed cases: ``tracekit convert`` exits 2 with one
line naming the file, leaves nothing behind, and does not touch the input.

Seed: ../shared/traces/nsys/sqlite/nsys-ai/mock.sqlite (a real export), copied and damaged per case.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import real_trace
from tracekit.cli import cli

MOCK = real_trace("nsys/sqlite/nsys-ai/mock.sqlite")  # ../shared's, else the copy shipped in tests/data/real
pytestmark = pytest.mark.skipif(not MOCK.exists(), reason=f"{MOCK} is absent: these damage a real export")


def _damaged(tmp_path: Path, sql: str, params: tuple = ()) -> Path:
    src = tmp_path / "in" / "mock.sqlite"
    src.parent.mkdir()
    shutil.copyfile(MOCK, src)
    con = sqlite3.connect(src)
    con.execute(sql, params)
    con.commit()
    con.close()
    return src


def _convert_fails(tmp_path: Path, src: Path) -> str:
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    r = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out_dir / "mock.parquet")])
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tracekit: error: {src}: "), r.output
    assert list(out_dir.iterdir()) == [] and [p.name for p in src.parent.iterdir()] == ["mock.sqlite"]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    return lines[0]


def test_blob_where_a_pid_belongs(tmp_path: Path) -> None:
    """Was: pyarrow.lib.ArrowInvalid traceback (PROCESSES.pid read into an int64 array)."""
    src = _damaged(tmp_path, "UPDATE PROCESSES SET pid = ?", (b"\x00\xff",))
    line = _convert_fails(tmp_path, src)
    assert "unexpected values in the nsys database, is it damaged? (ArrowInvalid: Could not convert" in line


def test_undecodable_table_name(tmp_path: Path) -> None:
    """Was: UnicodeDecodeError traceback (a flipped byte in sqlite_master's table names)."""
    src = _damaged(tmp_path, "ALTER TABLE ThreadNames RENAME TO [x]")
    data = bytearray(src.read_bytes())
    at = data.index(b"CREATE TABLE \"x\"") if b"CREATE TABLE \"x\"" in data else data.index(b"CREATE TABLE [x]")
    data[at + 14] = 0xA3  # the table name's byte: not UTF-8
    src.write_bytes(bytes(data))
    line = _convert_fails(tmp_path, src)
    assert "not a readable SQLite database (" in line


def test_sqlite_error_text_with_newlines_stays_one_line(tmp_path: Path) -> None:
    """Was: a two-line message (SQLite quotes the undecodable value, newline included)."""
    src = _damaged(tmp_path, "UPDATE StringIds SET value = CAST(? AS TEXT) WHERE id = (SELECT min(id) FROM StringIds)",
                   (b"line one\nline two \xff",))
    line = _convert_fails(tmp_path, src)
    assert "corrupt or unreadable nsys database (Could not decode to UTF-8 column 'value' with text 'line one line two" in line
