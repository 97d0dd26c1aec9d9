"""The typed headers of queries/*.sql: what each output declares (``-- @column``) is what it gives on real traces,
every ``getvariable()`` is declared once (``-- @param``), and docs/queries.md is generated from them.

Why: the column lists were prose that nothing checked; the view now formats a column by its declared type, so a
declaration that falls behind its SELECT would mislabel numbers. Each output is run for real (the report's
analyses on the shipped real traces and the samples, the verb-only files on what their verbs need) and its
column names (in order) and DuckDB types are compared with the declaration.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import REPO, real_trace, shipped_sha256
from tracekit import querydoc, report
from tracekit.rows import Rows, from_cursor

DOC = REPO / "docs" / "queries.md"
SAMPLES = sorted((REPO / "samples" / "traces").glob("*/parquet"))
#: The shipped real traces (../shared's copies when it is there) and the samples.
INPUTS = [real_trace(rel) for rel in sorted(shipped_sha256())] + SAMPLES


def files() -> Iterator[report.SqlFile]:
    for name in report.list_queries(private=True):
        yield report.parse_sql(report.QUERY_DIR / f"{name}.sql")


def declared(key: str) -> list[report.ColumnDecl]:
    name, _, output = key.partition(".")
    return report.parse_sql(report.QUERY_DIR / f"{name}.sql").columns[output or name]


def mismatches(key: str, rows: Rows) -> list[str]:
    """How result ``key`` differs from its declaration: names in order, then each column's DuckDB type."""
    decl = declared(key)
    names = [c.name for c in decl]
    if names != list(rows.columns):
        extra = [c for c in rows.columns if c not in names]
        gone = [c for c in names if c not in rows.columns]
        return [(f"{key}: declared {names}, the SELECT gives {list(rows.columns)} (undeclared: {extra}; "
                 f"declared but absent: {gone})")]
    out = []
    for c, sql_type in zip(decl, rows.types):
        allowed = report.COLUMN_TYPES[c.type][1]
        if sql_type not in allowed and sql_type != '"NULL"':
            out.append(f"{key}.{c.name}: declared {c.type} ({', '.join(sorted(allowed))}) but DuckDB types it {sql_type}")
    return out


# ----------------------------------------------------------------------------- the declarations themselves

def test_every_output_declares_typed_documented_columns() -> None:
    problems = []
    for sf in files():
        for output, _ in sf.outputs:
            cols = sf.columns.get(output, [])
            if not cols:
                problems.append(f"{sf.name}.{output}: no @column lines after its @output marker")
            names = [c.name for c in cols]
            problems += [f"{sf.name}.{output}.{n}: declared twice" for n in {n for n in names if names.count(n) > 1}]
            problems += [f"{sf.name}.{output}.{c.name}: unknown type {c.type} (known: {', '.join(report.COLUMN_TYPES)})"
                         for c in cols if c.type not in report.COLUMN_TYPES]
            problems += [f"{sf.name}.{output}.{c.name}: no meaning" for c in cols if not c.meaning]
    assert not problems, "\n".join(problems)


def _reads(text: str) -> set[str]:
    sql = re.sub(r"--[^\n]*", "", text)  # what the SQL reads, not what its comments mention
    return set(re.findall(r"getvariable\('(\w+)'\)", sql))


def test_every_getvariable_is_declared_once_in_a_file_that_reads_it() -> None:
    declared_in: dict[str, list[str]] = {}
    read_anywhere: set[str] = set()
    problems = []
    for sf in files():
        text = (report.QUERY_DIR / f"{sf.name}.sql").read_text()
        reads = _reads(text)
        read_anywhere |= reads
        for p in sf.params:
            declared_in.setdefault(p.name, []).append(sf.name)
            if p.name not in reads:
                problems.append(f"{sf.name}.sql declares @param {p.name} but never reads getvariable('{p.name}')")
            if p.type not in report.PARAM_TYPES:
                problems.append(f"{sf.name}.sql: @param {p.name} has unknown type {p.type}")
    problems += [f"@param {n} declared in {', '.join(f)}: declare it once" for n, f in declared_in.items() if len(f) > 1]
    problems += [f"getvariable('{n}') is read but no file declares -- @param {n}" for n in sorted(read_anywhere - set(declared_in))]
    assert not problems, "\n".join(problems)


def test_defaults_come_from_the_param_lines() -> None:
    # worked out from the headers by hand: kernels.sql declares top_n 50 (option --top), lm_head.sql vocab NULL,
    # flops.sql tf32 FALSE, collectives.sql a CHOICE; ec_trace is set by export-chrome, so it is no user default
    assert report.DEFAULTS["top_n"] == 50 and report.PARAMS["top_n"].option == "--top"
    assert report.DEFAULTS["vocab"] is None and report.DEFAULTS["tf32"] is False
    assert report.DEFAULTS["lm_head_regex"] == "(?i).*lm_head.*"
    assert report.PARAMS["rank_align"].choices == ("collective_end", "none")
    assert "ec_trace" in report.PARAMS and "ec_trace" not in report.DEFAULTS


def test_header_syntax(tmp_path: Path) -> None:
    f = tmp_path / "mine.sql"
    f.write_text("-- mine: a test file.\n"
                 "-- @param limit_n COUNT 7 --limit-n how many\n"
                 "--     rows, at most\n"
                 "-- @param who TEXT 'it''s' a name\n"
                 "CREATE TEMP TABLE _x AS SELECT 1 AS a;\n"
                 "-- @output mine\n"
                 "-- @column a     COUNT one\n"
                 "--               and more\n"
                 "-- @column b_ns  DURATION\n"
                 "--\n"
                 "--   not a continuation: a plain comment after a separator\n"
                 "SELECT a, 2 AS b_ns FROM _x;\n")
    sf = report.parse_sql(f)
    assert [(c.name, c.type, c.meaning) for c in sf.columns["mine"]] == [("a", "COUNT", "one and more"), ("b_ns", "DURATION", "")]
    assert [(p.name, p.type, p.default, p.option, p.meaning) for p in sf.params] == [
        ("limit_n", "COUNT", 7, "--limit-n", "how many rows, at most"), ("who", "TEXT", "it's", "--who", "a name")]


def test_queries_doc_is_current() -> None:
    assert DOC.read_text() == querydoc.markdown(), "run: python -m tracekit.querydoc > docs/queries.md"


# ----------------------------------------------------------------------------- declared against actual, on real traces

@pytest.mark.parametrize("path", INPUTS, ids=lambda p: p.parent.name + "/" + p.name)
def test_report_outputs_match_their_declaration(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} is absent")
    con = duckdb.connect()
    results: dict[str, Any] = report.run([str(path)], con=con, rows=True, small_one_thread=True)
    results.update(report.run_timeline(con, rows=True))  # run by report --html
    problems = [m for key, rows in results.items() for m in mismatches(key, rows)]
    assert not problems, "\n".join(problems)


@pytest.fixture
def capture(monkeypatch: pytest.MonkeyPatch) -> dict[str, Rows]:
    """Every output the verbs run through report.run_sql, as Rows (the verbs return DataFrames: types lost)."""
    seen: dict[str, Rows] = {}
    run_sql = report.run_sql

    def spy(con: duckdb.DuckDBPyConnection, sf: report.SqlFile, done: set[str], **kw: Any) -> dict[str, Any]:
        out = run_sql(con, sf, done, **kw)
        for o, sql in sf.outputs:
            seen[sf.name if o == sf.name else f"{sf.name}.{o}"] = from_cursor(con.execute(sql))
        return out

    monkeypatch.setattr(report, "run_sql", spy)
    return seen


def test_compare_and_diff_outputs_match_their_declaration(capture: dict[str, Rows]) -> None:
    from tracekit import compare as cmp

    a, b = (str(p) for p in SAMPLES[:2])
    cmp.diff(a, b, conditions=["step.wall_ms > +5%"])
    cmp.compare([("A", [a]), ("B", [b])])
    assert {"diff", "diff.gate", "compare", "compare.noise"} <= set(capture)
    problems = [m for key, rows in capture.items() for m in mismatches(key, rows)]
    assert not problems, "\n".join(problems)


def test_graph_map_outputs_match_their_declaration(capture: dict[str, Rows], tmp_path: Path) -> None:
    from tests import test_graphmap as g
    from tracekit.graphmap import graph_map

    ref = g.write(tmp_path / "ref.json", g.eager_step("ProfilerStep#1", 1000, g.FORWARD, 1))
    rep = g.write(tmp_path / "replay.json", g.replay_events())
    graph_map(rep, ref)
    assert {"graph_map", "graph_map.summary", "graph_map.rows"} <= set(capture)
    problems = [m for key, rows in capture.items() for m in mismatches(key, rows)]
    assert not problems, "\n".join(problems)


def test_across_traces_outputs_match_their_declaration(capture: dict[str, Rows], tmp_path: Path) -> None:
    from tracekit import executors
    from tracekit.dataset import connect_results

    two_ranks = next(p for p in SAMPLES if p.parent.name == "serve_2workers")
    executors.report_many([str(two_ranks)], str(tmp_path / "res"), executors.make("local", jobs=1))
    con = connect_results(str(tmp_path / "res"))
    report.run_sql(con, report.parse_sql(report.QUERY_DIR / "across_traces.sql"), set())
    problems = [m for key, rows in capture.items() for m in mismatches(key, rows)]
    assert not problems, "\n".join(problems)


def test_export_chrome_outputs_match_their_declaration() -> None:
    from tracekit.store import connect

    con = connect([str(SAMPLES[0])])
    sf = report.parse_sql(report.QUERY_DIR / "export_chrome.sql")
    report.prepare(con, sf.requires)  # the modules it reads (export-chrome's runner does the same)
    trace = con.execute("SELECT min(trace) FROM events").fetchone()[0]  # type: ignore[index]
    # the variables tracekit.export_chrome sets: steps 1..2 of the trace, no phase filter
    con.execute("SET VARIABLE ec_trace = ?", [trace])
    con.execute("SET VARIABLE ec_phase = CAST(NULL AS VARCHAR)")
    con.execute("SET VARIABLE ec_step_first = CAST(1 AS BIGINT)")
    con.execute("SET VARIABLE ec_step_last = CAST(2 AS BIGINT)")
    report._exec_script(con, sf.setup)
    problems = [m for o, sql in sf.outputs
                for m in mismatches("export_chrome" + ("" if o == "export_chrome" else f".{o}"), from_cursor(con.execute(sql)))]
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------- the view reads the declared type

def test_view_formats_by_declared_type_not_by_name() -> None:
    from tracekit.view.model import table

    data = ((1_500_000, 1_500_000), (2_500_000, 2_500_000))
    typed = Rows(("foo", "x_ns"), ("BIGINT", "BIGINT"), data, ("DURATION", "COUNT"))
    cols = table("t", typed).columns
    # foo: declared DURATION, median 2.5e6 ns -> ms, 4 significant digits -> 3 decimals; the header names the unit
    assert (cols[0].header, cols[0].cells) == ("foo_ms", ["1.500", "2.500"])
    # x_ns: declared COUNT although its name says duration
    assert (cols[1].header, cols[1].cells) == ("x_ns", ["1,500,000", "2,500,000"])
    # no header (tracekit sql on the user's own SQL): the names decide, as before
    bare = table("t", Rows(typed.columns, typed.types, data)).columns
    assert [c.cells for c in bare] == [["1,500,000", "2,500,000"], ["1.500", "2.500"]]
    # a selection keeps each column's declared type with it
    assert typed.select(["x_ns"], rename={"x_ns": "y"}).declared == ("COUNT",)
