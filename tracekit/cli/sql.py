"""``tracekit sql TRACE "SELECT ..."``, ``tracekit sql TRACE -f FILE``, ``tracekit sql TRACE --query NAME``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import duckdb  # tracekit.store imports it anyway: no start-up cost

from tracekit.errors import TraceError, refuse_special
from tracekit.render import print_result, print_rows
from tracekit.store import connect

if TYPE_CHECKING:
    import pandas as pd


def _data(df: pd.DataFrame, fmt: str) -> None:
    """``--format csv`` / ``json``: pandas' CSV and JSON records (the formats are pandas')."""
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    else:
        sys.stdout.write(df.to_json(orient="records", date_format="iso") + "\n")


def _emit(cur: duckdb.DuckDBPyConnection, fmt: str, limit: int) -> None:
    """Print the pending result of ``cur.execute(...)``: a table from DuckDB's rows (no pandas), or data."""
    if fmt == "table":
        print_result(cur, limit=limit)
    else:
        _data(cur.df(), fmt)


def _shipped(name: str) -> bool:
    """Whether ``name`` is a shipped analysis."""
    from tracekit import report  # deferred: the engine (~0.01 s) loads only for a query file or a bare word

    return name in report.list_queries()


def _parse_params(items: tuple[str, ...]) -> dict[str, Any]:
    """``NAME=VALUE`` pairs; a VALUE that reads as an int, a float or true/false is passed as one."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise click.UsageError(f"--param {item!r}: expected NAME=VALUE")
        value: object = raw
        if raw.lower() in ("true", "false"):
            value = raw.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(raw)
                    break
                except ValueError:
                    pass
        out[name.strip()] = value
    return out


def _readable_text(path: Path) -> None:
    """``-f FILE`` is a readable regular file, else one line naming it (click's check printed three, issue 23)."""
    if not path.exists():
        raise TraceError(path, "no such file")
    if path.is_dir():
        raise TraceError(path, "is a folder: give an SQL file")
    refuse_special(path)
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise TraceError(path, f"cannot read: {e.strerror or e}") from None


@click.command("sql")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option(
    "-q",
    "--query",
    "query",
    help="SQL text, or the name of a shipped analysis (`tracekit queries` lists them) to run it as the report does.",
)
@click.option(
    "-f",
    "--file",
    "file",
    type=click.Path(),
    help="Read the SQL from a file; `-- @output NAME` sections each print a table.",
)
@click.option("--output", "output", help="With -f/--query NAME: print only this `@output` section.")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="With -f/--query NAME: set a query variable instead of its default (e.g. step_pattern=decode_step).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", default=1000, show_default=True, help="Rows printed in table format.")
def command(
    traces: tuple[str, ...],
    query: str | None,
    file: str | None,
    output: str | None,
    params: tuple[str, ...],
    fmt: str,
    limit: int,
) -> None:
    """Run SQL over converted traces (Parquet files or folders; raw traces are converted and cached).

    Views: events, kernels (kernel/memcpy/memset rows), runtime, ranges, trace_devices, trace_notes,
    trace_ranks, trace_capture.
    With -f FILE or --query NAME, the set-up of the modules the query's `@requires` line names
    (queries/lib/gpu_activity, steps, ...: each with its own @requires, each once) and the default of every getvariable() are loaded first, as `tracekit report` does.
    Example: tracekit sql trace.parquet "SELECT kind, count(*) FROM events GROUP BY 1"
    """
    paths = list(traces)
    path: Path | None = Path(file) if file else None
    if path is not None:
        _readable_text(path)
    sql: str | None = None
    if path is None and query is not None and re.fullmatch(r"[A-Za-z]\w*", query) and _shipped(query):
        from tracekit import report  # deferred (see _shipped)

        if query in report.VERB_OF:
            raise click.UsageError(f"{query} needs more than traces: run it with `tracekit {report.VERB_OF[query]}`")
        path = report.QUERY_DIR / f"{query}.sql"
    elif path is None:
        if query is not None:
            sql = query
        elif len(paths) >= 2:
            sql = paths.pop()
        else:
            raise click.UsageError("give the SQL as the last argument, with -q, -f FILE or --query NAME")
    con = connect(paths)
    con.execute("SET enable_progress_bar = false")
    try:
        _run(con, sql, path, params, output, fmt, limit)
    except duckdb.CatalogException as e:
        _missing_module(e, path)
        raise


def _missing_module(e: Exception, path: Path | None) -> None:
    """Raise a TraceError that names the `-- @requires` line to add when the SQL read a shipped module's table."""
    from tracekit import report  # deferred (see _shipped)
    from tracekit.errors import TraceError

    module = report.module_making(str(e))
    if module is not None:
        fix = (
            f"add `-- @requires {module}` to {path.name}"
            if path is not None
            else f"write the query to a file that starts with `-- @requires {module}` and run it with -f"
        )
        raise TraceError(path or "query", f"{str(e).splitlines()[0]} (queries/{module}.sql makes it: {fix})") from None


def _run(
    con: duckdb.DuckDBPyConnection,
    sql: str | None,
    path: Path | None,
    params: tuple[str, ...],
    output: str | None,
    fmt: str,
    limit: int,
) -> None:
    """Run ad-hoc SQL, or a file (shipped or the user's) after the modules it requires."""
    if path is None:
        assert sql is not None  # set above when there is no file (or a UsageError was raised)
        _emit(con.execute(sql), fmt, limit)
        return
    from tracekit import report  # deferred (see _shipped)

    sf = report.parse_sql(path)
    try:
        done = report.prepare(con, **_parse_params(params))
    except TypeError as e:  # an unknown variable name
        raise click.UsageError(f"--param: {e}") from None
    if not sf.outputs:  # a plain script: the result of its last statement
        for req in sf.requires:
            report.setup_file(con, req, done)
        _emit(con.execute(sf.setup), fmt, limit)
        return
    if output is not None and output not in dict(sf.outputs):
        raise click.UsageError(f"{path.name} has no output {output!r} (outputs: {', '.join(o for o, _ in sf.outputs)})")
    if output is not None:
        sf.outputs = [(o, s) for o, s in sf.outputs if o == output]
    if fmt == "table":  # DuckDB's rows, one table per output, a blank line between
        for i, (key, rows) in enumerate(report.run_sql(con, sf, done, rows=True).items()):
            if i:
                click.echo()
            print_rows(rows, title=key if len(sf.outputs) > 1 else None, limit=limit)
        return
    for df in report.run_sql(con, sf, done).values():
        _data(df, fmt)
