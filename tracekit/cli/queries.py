"""``tracekit queries``: the shipped analyses, each with the first line of its SQL header."""

from __future__ import annotations

import click

from tracekit import report
from tracekit.safe import term


@click.command("queries")
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help="Also list the building blocks in queries/lib/ (`lib/gpu_activity`, `lib/run_metrics`, ...).",
)
def command(show_all: bool) -> None:
    """List the analyses in queries/ (run one with `tracekit sql TRACE --query NAME`; those marked
    [tracekit VERB] need that verb's inputs: labelled runs, a slice, a reference trace)."""
    names = report.list_queries(private=show_all)
    width = max(map(len, names), default=0)
    for name in names:
        verb = report.VERB_OF.get(name)
        how = f"  [tracekit {verb}]" if verb else ""
        click.echo(f"{name:<{width}}  {term(report.describe(name))}{how}")
