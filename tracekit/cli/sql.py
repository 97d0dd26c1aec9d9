"""``tracekit sql TRACE "SELECT ..."``."""

from __future__ import annotations

import sys

import click

from tracekit.render import print_frame
from tracekit.store import connect


@click.command("sql")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option("-q", "--query", "query", help="SQL text (or give it as the last argument).")
@click.option("-f", "--file", "file", type=click.File("r"), help="Read the SQL from a file.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", default=1000, show_default=True, help="Rows printed in table format.")
def command(traces: tuple[str, ...], query: str | None, file: object, fmt: str, limit: int) -> None:
    """Run SQL over converted traces (Parquet files or folders; raw traces are converted and cached).

    Views: events, kernels (kernel/memcpy/memset rows), runtime, ranges.
    Example: tracekit sql trace.parquet "SELECT kind, count(*) FROM events GROUP BY 1"
    """
    paths = list(traces)
    if file is not None:
        sql = file.read()  # type: ignore[attr-defined]
    elif query is not None:
        sql = query
    elif len(paths) >= 2:
        sql = paths.pop()
    else:
        raise click.UsageError("give the SQL as the last argument, with -q, or with -f FILE")
    con = connect(paths)
    df = con.execute(sql).df()
    if fmt == "csv":
        df.to_csv(sys.stdout, index=False)
    elif fmt == "json":
        sys.stdout.write(df.to_json(orient="records", date_format="iso") + "\n")
    else:
        print_frame(df, limit=limit)
