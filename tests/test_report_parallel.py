"""The report's modules side by side (``report.run(workers=N)``, issue 25 item 2) give what one worker gives.

One worker runs the modules in order on one connection, as a user's ``tracekit sql`` session would: that is the
reference here. Several workers run them on cursors of one in-memory database, each module once the modules it
requires are built; every output must be the same rows, columns, types and order, and a failure or Ctrl-C must
come out as it would from one worker, with no worker left running.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests import planted
from tests.conftest import needs_traces, real_trace
from tracekit import report
from tracekit.store import connect

H100 = real_trace("kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
MI250 = real_trace("kineto/hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz")


def _workers_left() -> list[threading.Thread]:
    """The side-by-side workers still alive (report.run_side_by_side names its threads ``tracekit-report-N``);
    other tests may leave threads of their own (Ray, Spark), so the count of all threads says nothing."""
    return [t for t in threading.enumerate() if t.name.startswith("tracekit-report-")]


def _same(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert list(a) == list(b)  # the same outputs in the same order (the JSON report's key order)
    for k in a:
        assert (a[k].columns, a[k].types, a[k].data) == (b[k].columns, b[k].types, b[k].data), k


def test_planted_trace_same_rows(tmp_path: Path) -> None:
    trace = planted.write(tmp_path / "t.json")
    _same(report.run([trace], rows=True, workers=1), report.run([trace], rows=True, workers=3))


@needs_traces(H100, MI250)
@pytest.mark.parametrize("trace", [H100, MI250], ids=["h100", "mi250"])
def test_real_trace_same_rows(trace: Path, tmp_path: Path) -> None:
    one = report.run([trace], rows=True, workers=1)
    two = report.run([trace], rows=True, workers=2)
    _same(one, two)
    assert one["steps"].data  # a report with rows to compare, not two empty ones


def test_dataframes_and_arrow_same(tmp_path: Path) -> None:
    trace = planted.write(tmp_path / "t.json")
    for kw in ({"arrow": True}, {}):
        a, b = report.run([trace], workers=1, **kw), report.run([trace], workers=2, **kw)
        assert list(a) == list(b)
        for k in a:
            assert a[k].equals(b[k]), k


def test_needs_in_memory_connection(tmp_path: Path) -> None:
    trace = planted.write(tmp_path / "t.json")
    con = duckdb.connect(str(tmp_path / "user.duckdb"))  # a user's database file: no tables written into it
    with pytest.raises(ValueError, match="in-memory"):
        report.run([trace], con=con, workers=2)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE NOT temporary").fetchone() == (0,)


def test_given_connection_runs_one_worker_by_default(tmp_path: Path) -> None:
    """A caller's connection keeps TEMP objects (its database is not written) unless workers are asked for."""
    trace = planted.write(tmp_path / "t.json")
    con = duckdb.connect()
    report.run([trace], con=con, rows=True)
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE NOT temporary").fetchone() == (0,)
    con2 = duckdb.connect()
    report.run([trace], con=con2, rows=True, workers=2)
    assert con2.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    # the page's timeline runs after the report on the same connection, reading the tables the workers made
    assert len(report.run_timeline(con2, rows=True)["timeline"]) > 0


def test_error_is_the_one_worker_error(tmp_path: Path) -> None:
    """A bad regex fails in the first module that compiles it; several workers raise that same error."""
    trace = planted.write(tmp_path / "t.json")
    errors = []
    for workers in (1, 2):
        with pytest.raises(duckdb.Error) as e:
            report.run([trace], rows=True, workers=workers, step_pattern="(")
        errors.append((type(e.value), str(e.value)))
    assert errors[0] == errors[1]
    assert not _workers_left()


def test_ctrl_c_stops_every_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while one worker fetches an output: run raises KeyboardInterrupt, and no worker thread is left."""
    trace = planted.write(tmp_path / "t.json")
    real = report.from_cursor

    def interrupted(cur: Any, declared: Any) -> Any:
        if threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt
        return real(cur, declared)

    monkeypatch.setattr(report, "from_cursor", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.run([trace], rows=True, workers=2)
    assert not _workers_left()


def test_every_shipped_object_is_rewritten() -> None:
    """Each object a shipped module creates is made by a statement :func:`report.in_database` moves out of TEMP:
    a ``CREATE TEMP`` it missed would be private to one cursor, and the module reading it on another fails."""
    creates = re.compile(r"\bCREATE\b[^;(]*?\b(TABLE|VIEW|MACRO|FUNCTION|SEQUENCE|TYPE)\b", re.IGNORECASE)
    n = 0
    for path in sorted(report.QUERY_DIR.rglob("*.sql")):
        text = re.sub(r"--[^\n]*", "", path.read_text())
        for m in creates.finditer(report.in_database(text)):
            n += 1
            assert "TEMP" not in m.group(0).upper(), f"{path.name}: {m.group(0)!r}"
    assert n > 100
    assert report.in_database("CREATE OR REPLACE TEMP TABLE t AS SELECT 1") == "CREATE OR REPLACE TABLE t AS SELECT 1"
    assert report.in_database("CREATE TEMP TABLE IF NOT EXISTS t (a INT)") == "CREATE TABLE IF NOT EXISTS t (a INT)"


def test_parallel_on_a_connection_built_by_connect(tmp_path: Path) -> None:
    """``connect``'s views are in the database (not TEMP): every cursor of a side-by-side run sees them."""
    con = connect([planted.write(tmp_path / "t.json")])
    assert con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = 'events' AND NOT temporary"
    ).fetchone() == (1,)


def test_after_task_sees_its_modules(tmp_path: Path) -> None:
    """An :class:`report.After` task gets the outputs of the modules it waits on and a cursor where every module's
    tables are (the page's median-step export); with one worker or several it sees the same."""
    trace = planted.write(tmp_path / "t.json")
    seen: dict[int, tuple[Any, ...]] = {}

    def task(workers: int) -> report.After:
        def work(cur: duckdb.DuckDBPyConnection, outputs: Any) -> None:
            steps = cur.execute("SELECT count(*) FROM step_instances").fetchone()
            seen[workers] = (outputs["timeline"].data, steps)

        return report.After(("timeline",), work)

    for workers in (1, 2):
        out = report.run([trace], rows=True, workers=workers, also=("timeline",), after=(task(workers),))
        assert list(out)[-1] == "timeline"  # after the analyses' outputs
    assert seen[1] == seen[2]
    assert seen[1][1] == (2,)  # the planted trace's two steps
    assert seen[1][0]


def test_after_task_error_is_raised(tmp_path: Path) -> None:
    trace = planted.write(tmp_path / "t.json")

    def work(cur: duckdb.DuckDBPyConnection, outputs: Any) -> None:
        raise RuntimeError("export failed")

    for workers in (1, 2):
        with pytest.raises(RuntimeError, match="export failed"):
            report.run(
                [trace], rows=True, workers=workers, also=("timeline",), after=(report.After(("timeline",), work),)
            )
    assert not _workers_left()
