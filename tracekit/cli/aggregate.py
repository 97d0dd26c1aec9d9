"""``tracekit aggregate RESULTS``: cross-trace tables over what ``tracekit report --out RESULTS`` wrote."""

from __future__ import annotations

import sys

import click

from tracekit import report
from tracekit.dataset import connect_results
from tracekit.render import print_frame


@click.command("aggregate")
@click.argument("results")
@click.option(
    "--output",
    "output",
    help="Print only this output of queries/across_traces.sql (by_step, across_traces, per_trace).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@click.option("--limit", default=50, show_default=True, help="Rows printed per table in table format.")
def command(results: str, output: str | None, fmt: str, limit: int) -> None:
    """Step time across the traces (ranks) of a dataset: spread per step, the slowest rank, each trace vs the median.

    RESULTS: a folder or URL written by `tracekit report DATASET --out RESULTS`. The SQL is
    queries/across_traces.sql, run by DuckDB here; the same SQL runs in any engine over those tables.
    """
    con = connect_results(results)
    sf = report.parse_sql(report.QUERY_DIR / "across_traces.sql")
    names = [o for o, _ in sf.outputs]
    if output and output not in names:
        raise click.UsageError(f"--output {output!r}: one of {', '.join(names)}")
    out = report.run_sql(con, sf, set())
    for key, df in out.items():
        name = key.split(".", 1)[-1]
        if output and name != output:
            continue
        if fmt == "csv":
            df.to_csv(sys.stdout, index=False)
        elif fmt == "json":
            sys.stdout.write(df.to_json(orient="records") + "\n")
        else:
            print_frame(df, title=key, limit=limit)
