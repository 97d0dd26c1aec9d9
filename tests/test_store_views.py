"""The store's views are SQL in queries/lib/store_views.sql.in, and tracekit.store registers each of them.

Why: the views every query reads (``kernels``, ``ranges``, ``trace_devices``...) were Python strings in
tracekit/store.py; now a user reads them beside the queries. These tests check that the file is the source:
every view it declares exists on a connection, and the kind views hold what their rule says.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted  # noqa: E402

from tracekit import store  # noqa: E402
from tracekit.resources import queries_dir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SAMPLE = sorted((REPO / "samples" / "traces" / "spec_decode_k4" / "parquet").glob("*.parquet"))[0]


def test_every_declared_view_is_registered() -> None:
    declared = store.read_views(queries_dir() / "lib" / "store_views.sql.in")
    assert {"kernels", "runtime", "ranges", "trace_devices", "trace_notes", "trace_ranks", "trace_capture"} <= set(declared)
    con = store.connect(SAMPLE)
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert set(declared) <= views, f"declared in store_views.sql.in but not registered: {set(declared) - views}"


def test_kind_views_hold_their_kinds(tmp_path: Path) -> None:
    """On the planted trace (10 kernels, 1 copy, 10 runtime calls, 7 ranges) plus one token-count range."""
    ev = [*planted.events(), planted._x("user_annotation", "tracekit.count tokens=4", 50, 1)]
    con = store.connect(planted.write_kineto(tmp_path / "t.json.gz", ev))
    assert dict(con.execute("SELECT kind, count(*) FROM kernels GROUP BY 1").fetchall()) == {"kernel": 10, "memcpy": 1}
    assert con.execute("SELECT count(*) FROM runtime").fetchone() == (10,)
    assert con.execute("SELECT count(*) FROM ranges").fetchone() == (7,)  # the token count is no range


def test_parser_reads_one_view_per_statement(tmp_path: Path) -> None:
    """A view's SELECT runs to the ``;`` that ends a line; a ``;`` inside a line stays in the SELECT."""
    f = tmp_path / "v.sql"
    f.write_text("-- header;\nCREATE OR REPLACE VIEW a AS SELECT ';' AS x;\n\nCREATE OR REPLACE VIEW b AS\nSELECT 1\nFROM t;\n")
    assert store.read_views(f) == {"a": "SELECT ';' AS x", "b": "SELECT 1\nFROM t"}
