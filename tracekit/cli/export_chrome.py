"""``tracekit export-chrome TRACE [--phase P] [--steps A:B] -o out.json[.gz]``."""

from __future__ import annotations

import json

import click
from rich.console import Console

from tracekit.cli._inputs import refuse_input
from tracekit.cli._params import query_options
from tracekit.export_chrome import Steps, export_chrome
from tracekit.safe import term


def _steps(ctx: click.Context, param: click.Parameter, value: str | None) -> Steps | None:
    if value is None:
        return None
    try:
        return Steps.parse(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("export-chrome")
@click.argument("traces", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(),
    help="Output .json or .json.gz (written to a temporary name, then renamed).",
)
@click.option("--trace", "trace_name", help="Which trace of a dataset (needed when it holds several).")
@click.option(
    "--phase",
    help="Keep ranges whose phase_path has this element (e.g. draft), the events in them and the GPU ops they launched.",
)
@click.option(
    "--steps",
    callback=_steps,
    help="Step instances A:B (1-based, inclusive; also A, A:, :B), as numbered by `tracekit report`.",
)
@query_options("step_pattern")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as one JSON object.")
def command(
    traces: tuple[str, ...],
    out: str,
    trace_name: str | None,
    phase: str | None,
    steps: Steps | None,
    step_pattern: str | None,
    as_json: bool,
) -> None:
    """Write a slice of a trace as Chrome trace JSON for Perfetto (ui.perfetto.dev) or chrome://tracing.

    TRACE: converted Parquet files or folders (raw Kineto/nsys traces are converted and cached).
    Flow arrows are kept when both their ends are in the slice; times keep ns precision.
    """
    refuse_input(out, traces)
    res = export_chrome(list(traces), out, trace=trace_name, phase=phase, steps=steps, step_pattern=step_pattern)
    if as_json:
        click.echo(json.dumps(res))
        return
    sel = ", ".join(
        x for x in (f"phase {phase!r}" if phase else "", f"steps {steps} of {res['steps']}" if steps else "") if x
    )
    Console(markup=False, highlight=False).print(
        term(
            f"wrote {res['out']}: {res['events']:,} events ({res['flows']:,} flow rows) of trace {res['trace']!r}"
            + (f", {sel}" if sel else "")
        )
    )
