"""``tracekit graphmap REPLAY --reference REF``: phases and shapes for kernels replayed from CUDA graphs."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from tracekit.cli._inputs import refuse_input
from tracekit.cli._params import query_options
from tracekit.graphmap import graph_map, write_mapped
from tracekit.render import print_frame
from tracekit.safe import term
from tracekit.view.records import frame_records


@click.command("graphmap")
@click.argument("replay", type=click.Path())
@click.option(
    "--reference",
    "-r",
    required=True,
    type=click.Path(),
    help="Trace of the same model run op by op: an eager run (CUDA graphs off) or a profile of the "
    "graph capture. May be REPLAY itself (its eager kernels are then the reference).",
)
@click.option(
    "--out", "-o", type=click.Path(), help="Write REPLAY here as Parquet with matched kernels remapped (same schema)."
)
@query_options("step_pattern")  # the step ranges cut from the reference's phase paths
@click.option("--json", "as_json", is_flag=True, help="Print JSON: per-launch table and summary.")
@click.option("--limit", default=25, show_default=True, help="Launch rows printed in terminal output.")
def command(replay: str, reference: str, out: str | None, step_pattern: str | None, as_json: bool, limit: int) -> None:
    """Align each cudaGraphLaunch's replayed kernels with the reference's launches (queries/graph_map.sql)
    and report how many were matched; with --out, write the replay trace with their inner phase_path and op shapes.
    """
    refuse_input(out, (replay, reference))

    res = (
        write_mapped(replay, reference, out, step_pattern=step_pattern)
        if out
        else graph_map(replay, reference, step_pattern=step_pattern)
    )
    shown = {k: v for k, v in res.items() if k != "graph_map.rows"}
    if as_json:
        doc: dict[str, Any] = {k.partition(".")[2] or k: frame_records(v) for k, v in shown.items()}
        if out:
            doc["out"] = out
        json.dump(doc, sys.stdout, default=str)
        sys.stdout.write("\n")
        return
    print_frame(res["graph_map"].drop(columns=["trace"]), title="graph launches", limit=limit)
    click.echo()
    print_frame(res["graph_map.summary"], title="summary")
    if out:
        click.echo(term(f"wrote {out}"))
