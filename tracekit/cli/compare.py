"""``tracekit compare --label k=2 a.parquet --label k=3 b.parquet ...``: a sweep over N labelled runs."""

from __future__ import annotations

import json
import sys

import click

from tracekit import compare as cmp
from tracekit.cli._inputs import refuse_input
from tracekit.cli._output import emit
from tracekit.cli._params import query_options
from tracekit.render import print_frame
from tracekit.store import connect_runs
from tracekit.view import compare as cmpview
from tracekit.view.records import frame_records


@click.command("compare", context_settings={"ignore_unknown_options": True})
@click.argument("runs", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--json", "as_json", is_flag=True, help="Print JSON: compare (long, label x metric), sweep, phases.")
@click.option("--html", "html_out", type=click.Path(), help="Also write an HTML page (tables + per-phase plot).")
@click.option("--sql", "sql", help="Run this SQL instead: events (with a label column), run_metrics, compare_matrix.")
@query_options("step_pattern")
@click.option("--limit", default=40, show_default=True, help="Rows printed per table in terminal output.")
@query_options("warmup_steps")
def command(
    runs: tuple[str, ...],
    as_json: bool,
    html_out: str | None,
    sql: str | None,
    step_pattern: str | None,
    limit: int,
    warmup_steps: int | None,
) -> None:
    """Sweep table and plot over N runs: wall ratio, per-step ms per phase, one column or row per label.

    RUNS: --label LABEL PATH... repeated (PATH: Parquet files or folders; all paths after a
    --label form that run, e.g. the ranks of one setting). A PATH before any --label is a run
    labelled by its file name. The first run is the baseline of every ratio.

    Example: tracekit compare --label k=1 k1.parquet --label k=2 k2.parquet --label k=3 k3/
    """
    parsed = cmp.parse_runs(runs)
    refuse_input(html_out, [p for _, paths in parsed for p in paths])
    if sql is not None:
        con = cmp.collect(parsed, step_pattern=step_pattern)
        connect_runs(parsed, con=con)
        df = con.execute(sql).df()
        if as_json:
            json.dump(frame_records(df), sys.stdout, default=str)
            sys.stdout.write("\n")
        else:
            print_frame(df, limit=limit)
        return
    results = cmp.compare(parsed, step_pattern=step_pattern, warmup_steps=warmup_steps)
    emit(
        results,
        as_json=as_json,
        html_out=html_out,
        title="tracekit compare: " + ", ".join(lb for lb, _ in parsed),
        to_json=cmpview.to_json,
        to_html=cmpview.to_html,
        show=lambda r: cmpview.print_results(r, limit=limit),
    )
