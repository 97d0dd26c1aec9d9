"""tracekit/rows.py: the pandas-free result type of the terminal and JSON report (issue 14).

The view used to read pandas dtypes; it now reads the SQL types DuckDB reports. These tests pin the
places where the two differ (an INTEGER column with NULLs is float64 in some pandas versions, NULL is
NaN or NA there and None here) and check that a DataFrame handed in through the API renders exactly
as the rows DuckDB returned for the same query.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pytest

from tracekit import report, rows
from tracekit.view import model, terminal
from tracekit.view.html import render
from tracekit.view.records import to_json
from tracekit.view.warnings import warnings_of

REPO = Path(__file__).resolve().parents[1]
SAMPLE = sorted((REPO / "samples" / "traces" / "spec_decode_k4" / "parquet").glob("*.parquet"))[0]

TYPED = """SELECT * FROM (VALUES
    (1234::INTEGER, 2.0::DOUBLE, 1.5::DOUBLE, TRUE, 'a', 3.25::DECIMAL(6, 2), 5::HUGEINT),
    (NULL, NULL, 2.0, NULL, NULL, NULL, NULL),
    (56, 7.0, NULL, FALSE, 'b', 1.00, 6)) t(n, whole, frac, flag, name, dec, huge)"""


def _typed() -> rows.Rows:
    con = duckdb.connect()
    return rows.from_cursor(con.execute(TYPED))


def test_from_cursor_types_and_values() -> None:
    rs = _typed()
    assert rs.columns == ("n", "whole", "frac", "flag", "name", "dec", "huge")
    assert rs.types[:5] == ("INTEGER", "DOUBLE", "DOUBLE", "BOOLEAN", "VARCHAR")
    assert rs.types[5] == "DECIMAL(6,2)" and rs.types[6] == "HUGEINT"
    assert rs.col("n") == [1234, None, 56]
    assert rs.col("dec") == [3.25, None, 1.0] and all(isinstance(v, float) for v in rs.col("dec") if v is not None)
    assert rs.col("huge") == [5.0, None, 6.0]  # as pandas made of them: floats


def test_kinds_from_sql_types() -> None:
    rs = _typed()
    kinds = {c: model.kind_of(c, rs.type_of(c), rs.col(c)) for c in rs.columns}
    # INTEGER with a NULL is still a count; a DOUBLE of whole numbers reads as one; 1.5 makes a number
    assert kinds == {"n": "count", "whole": "count", "frac": "number", "flag": "bool", "name": "text",
                     "dec": "number", "huge": "count"}
    tab = model.table("t", rs)
    cells = {c.name: c.cells for c in tab.columns}
    assert cells["n"] == ["1,234", "NULL", "56"]
    assert cells["whole"] == ["2", "NULL", "7"]
    assert cells["frac"] == ["1.500", "2.000", "NULL"]
    assert cells["flag"] == ["yes", "NULL", "no"]
    assert cells["name"] == ["a", "NULL", "b"]


def test_frame_renders_like_rows() -> None:
    """One view path: the DataFrame of a query and its DuckDB rows give the same table."""
    con = duckdb.connect()
    rs = rows.from_cursor(con.execute(TYPED))
    df = con.execute(TYPED).df()
    a, b = model.table("t", rs), model.table("t", df)
    assert [(c.header, c.kind, c.cells) for c in a.columns] == [(c.header, c.kind, c.cells) for c in b.columns]


def test_series_column_still_accepted() -> None:
    assert model.column("launches", pd.Series([1234.0, None, 56.0])).cells == ["1,234", "NULL", "56"]
    assert model.column("ratio", pd.Series([0.5, None])).cells == ["0.500", "NULL"]


def test_rows_ops() -> None:
    rs = rows.Rows(("k", "v"), ("VARCHAR", "BIGINT"), (("b", 2), ("a", None), ("c", 1)))
    assert rs.sort_by("v").col("k") == ["c", "b", "a"]  # NULL last
    assert rs.where(lambda r: r["k"] != "a").col("v") == [2, 1]
    assert rs.select(["v", "k"], rename={"k": "key"}).columns == ("v", "key")
    assert rs.drop(["v"]).records() == [{"k": "b"}, {"k": "a"}, {"k": "c"}]
    assert len(rs.head(2)) == 2 and "v" in rs and "x" not in rs


def test_report_rows_and_frames_agree() -> None:
    """report.run(rows=True) and the DataFrame API give the same JSON document and terminal report."""
    res_rows = report.run(SAMPLE, rows=True)
    res_df = report.run(SAMPLE)
    assert res_rows.keys() == res_df.keys()
    assert all(isinstance(v, rows.Rows) for v in res_rows.values())
    assert all(isinstance(v, pd.DataFrame) for v in res_df.values())
    assert to_json(res_rows) == to_json(res_df)
    for width in (80, 120):
        assert terminal.report_lines(res_rows, width) == terminal.report_lines(res_df, width)
        assert (terminal.report_lines(res_rows, width, full=True, limit=10)
                == terminal.report_lines(res_df, width, full=True, limit=10))


def test_warnings_from_rows() -> None:
    """warnings_of reads Rows: a trust flag of severity warn is collected, info ones are not."""
    trust = rows.Rows(("trace", "flag", "severity", "message"), ("VARCHAR",) * 4,
                      (("t", "no_gpu_ops", "warn", "no kernels"), ("t", "fine", "info", "ok")))
    assert warnings_of({"trust": trust}) == [
        {"trace": "t", "analysis": "trust", "flag": "no_gpu_ops", "message": "no kernels"}]


@pytest.mark.parametrize("n, one", [(49_999, True), (50_000, False)])
def test_one_thread_if_small(n: int, one: bool) -> None:
    con = duckdb.connect()
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute(f"CREATE VIEW events AS SELECT * FROM range({n})")
    assert report.one_thread_if_small(con) is one
    assert con.execute("SELECT current_setting('threads')").fetchone()[0] == (1 if one else threads)


def test_html_from_rows_is_the_page_from_frames() -> None:
    """The page reads Rows (report --html imports no pandas, issue 25); DataFrames from the Python API are
    converted once: the same results give the same page either way, figures and timeline included."""
    rows = report.run(SAMPLE, rows=True)
    frames = report.run(SAMPLE)
    page = render(rows)
    assert page == render(frames)
    assert page.count("<svg class='fig'") >= 1 and "<svg class='timeline'" in page


# ---- the short verbs' tables (tracekit.render) in the view's layout ------------------------------------

def test_render_table_layout() -> None:
    """`tracekit sql`'s table: counts with separators, *_ns in a unit named in the header, ids bare, NULL
    spelled out, the rows left out counted with the verb's own options; never wider than the line."""
    from tracekit import render

    rs = rows.Rows(("name", "n", "dur_ns", "tid"), ("VARCHAR", "BIGINT", "BIGINT", "BIGINT"),
                   (("aten::mm", 1234, 2_500_000, 7960), ("aten::add", 56, 1_500_000, None), ("x", 1, 500_000, 1)))
    lines = render.table_text(rs, limit=2, width=80)
    assert lines[0].split() == ["name", "n", "dur_ms", "tid"]
    assert lines[2].split() == ["aten::mm", "1,234", "2.500", "7960"]
    assert lines[3].split() == ["aten::add", "56", "1.500", "NULL"]
    assert lines[4] == "(1 more row: --limit N or --format csv)"
    assert render.table_text(rs.empty(), title="t", width=80) == ["t: no rows (columns: name, n, dur_ns, tid)"]
    wide = rows.Rows(tuple(f"c{i}_count" for i in range(30)), ("BIGINT",) * 30, ((10**9,) * 30,))
    out = render.table_text(wide, width=60)
    assert all(len(ln) <= 60 for ln in out) and "(continued, 2/" in "\n".join(out)
    assert "\n".join(out).count("1,000,000,000") == 30  # every number whole, none cut


def test_end_to_end_is_a_duration_and_end_ns_a_timestamp() -> None:
    # steps.sql's end_to_end_ns is a step's span (CPU start to GPU end); gpu_end_ns / sync_end_ns are instants
    assert model.kind_of("end_to_end_ns", "BIGINT") == "duration"
    assert model.kind_of("mean_end_to_end_ns", "DOUBLE") == "duration"
    assert model.kind_of("gpu_end_ns", "BIGINT") == "timestamp"
    assert model.kind_of("window_start_ns", "BIGINT") == "timestamp"


def test_p_values_never_print_a_bare_zero() -> None:
    assert model.fmt_p_value(3.4e-06) == "3.4e-06"
    assert model.fmt_p_value(0.00019) == "1.9e-04"
    assert model.fmt_p_value(0.025) == "0.025"
    assert model.fmt_p_value(None) == "NULL"
    col = model.column("p_value", [0.5, 2e-5], sql_type="DOUBLE")
    assert col.cells == ["0.500", "2.0e-05"]


def test_head_of_cursor_keeps_the_head_and_counts_the_rest() -> None:
    con = duckdb.connect()
    got, total = rows.head_of_cursor(con.execute("SELECT range AS i FROM range(250001)"), 3)
    assert got.col("i") == [0, 1, 2] and got.type_of("i") == "BIGINT" and total == 250_001
    got, total = rows.head_of_cursor(con.execute("SELECT range AS i FROM range(5)"), 0)  # 0: no limit
    assert got.col("i") == [0, 1, 2, 3, 4] and total == 5
    got, total = rows.head_of_cursor(con.execute("SELECT 1 AS x WHERE false"), 10)
    assert len(got) == 0 and got.columns == ("x",) and total == 0
