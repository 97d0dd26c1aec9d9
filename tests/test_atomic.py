"""tracekit.atomic: the one temp-then-rename used by every writer (Parquet, graphmap, HTML, Chrome export)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tracekit.atomic import atomic_path, write_text
from tracekit.errors import TraceError


def test_success_renames_with_plain_open_mode(tmp_path: Path) -> None:
    dest = tmp_path / "sub" / "out.txt"
    with atomic_path(dest) as tmp:
        assert tmp.parent == dest.parent and not dest.exists()
        tmp.write_text("x")
    umask = os.umask(0)
    os.umask(umask)
    assert dest.read_text() == "x" and dest.stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in dest.parent.iterdir()] == ["out.txt"]


def test_failure_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    dest = tmp_path / "out.txt"
    dest.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert dest.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_text_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(TraceError, match="cannot write"):
        write_text(tmp_path / "f" / "page.html", "<html>")  # parent is a file
