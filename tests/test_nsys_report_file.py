"""A real `.qdrep` goes through `nsys export` and gives the same rows as the SQLite we exported from it by hand."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import NSYS_DIR
from tracekit.ingest import convert
from tracekit.store import connect

REP = NSYS_DIR / "report-files" / "nvtx-examples" / "cupy.qdrep"
SQLITE = NSYS_DIR / "sqlite" / "nvtx-examples-reexported" / "cupy.nsys2022.4.sqlite"

pytestmark = [
    pytest.mark.skipif(not REP.exists(), reason="../shared/traces/nsys is absent"),
    pytest.mark.skipif(shutil.which("nsys") is None, reason="nsys not on PATH (Debian non-free `nsight-systems`)"),
]


def test_qdrep_matches_its_sqlite_export(tmp_path: Path) -> None:
    a, b = tmp_path / "rep.parquet", tmp_path / "sql.parquet"
    convert(REP, a)
    convert(SQLITE, b)
    q = ("SELECT kind, name, count(*), sum(dur_ns), min(ts_ns), max(phase_path) FROM events "
         "GROUP BY ALL ORDER BY ALL")
    assert connect(a).execute(q).fetchall() == connect(b).execute(q).fetchall()
