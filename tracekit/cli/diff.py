"""``tracekit diff A B``: run B against baseline A, per phase and per step, with a CI gate."""

from __future__ import annotations

import sys

import click

from tracekit import compare as cmp
from tracekit.cli._inputs import refuse_input
from tracekit.cli._output import emit
from tracekit.cli._params import query_options
from tracekit.safe import term
from tracekit.view import compare as cmpview


@click.command("diff", epilog="\b\n" + cmp.GATE_HELP)
@click.argument("a", type=click.Path())
@click.argument("b", type=click.Path())
@click.option(
    "--fail-if",
    "conditions",
    multiple=True,
    metavar="COND",
    help="Exit 1 when COND holds, e.g. 'draft.ms_per_step > +5%' (repeatable; grammar below).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: diff, kernels, new_vanished, gate, fired.")
@click.option("--html", "html_out", type=click.Path(), help="Also write a self-contained HTML page here.")
@query_options("step_pattern", "top_n")
@click.option("--limit", default=40, show_default=True, help="Rows printed per table in terminal output.")
@query_options("warmup_steps")
def command(
    a: str,
    b: str,
    conditions: tuple[str, ...],
    as_json: bool,
    html_out: str | None,
    step_pattern: str | None,
    top_n: int | None,
    limit: int,
    warmup_steps: int | None,
) -> None:
    """Per-phase and per-step metrics of A and B side by side (delta, ratio), kernels that moved, new and vanished.

    A, B: converted Parquet files or folders (a folder = one run of several ranks); raw traces are converted and cached.
    """
    refuse_input(html_out, (a, b))
    results = cmp.diff(a, b, conditions=conditions, step_pattern=step_pattern, top_n=top_n, warmup_steps=warmup_steps)
    emit(
        results,
        as_json=as_json,
        html_out=html_out,
        title=f"tracekit diff: A={a} B={b}",
        to_json=cmpview.to_json,
        to_html=cmpview.to_html,
        show=lambda r: cmpview.print_results(r, limit=limit),
    )
    lines = cmp.fired(results)
    for line in lines:
        click.echo(term(f"tracekit: gate: {line}"), err=True)
    if lines:
        sys.exit(1)
