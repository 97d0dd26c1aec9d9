"""``tracekit convert INPUT... -o OUT``."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from tracekit.ingest import convert


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(), help="Output .parquet (one input) or folder (dataset: one Parquet per trace).")
@click.option("--trace", "trace_name", help="Trace id for a single input (default: the file name).")
@click.option("-j", "--jobs", default=1, show_default=True, help="Convert this many files in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option("--executor", type=click.Choice(["local", "ray", "spark"]), default="local", show_default=True,
              help="Folder output: run each trace as one task here (local processes, a Ray cluster, Spark).")
@click.option("--ray-address", help="Ray cluster to use (default: $RAY_ADDRESS, else a local one).")
@click.option("--spark-master", help="Spark master (default: the active SparkSession, else local[2]).")
@click.option("--force", is_flag=True, help="Folder output: convert again inputs whose bytes were converted there before.")
def command(inputs: tuple[str, ...], out: str, trace_name: str | None, jobs: int, quiet: bool, executor: str = "local",
            ray_address: str | None = None, spark_master: str | None = None, force: bool = False) -> None:
    """Convert Kineto JSON(.gz) and nsys SQLite traces to the tracekit Parquet schema.

    One input and an OUT ending in .parquet gives one file; otherwise OUT is a
    folder with one <trace>.parquet per input plus the dataset's sidecar
    _tracekit/traces.parquet, each input one task on --executor (a failed input
    is named and the others written; exit status 1). Output is written to a
    temporary name and renamed when complete.
    """
    console = Console(stderr=True, quiet=quiet)
    single = len(inputs) == 1 and out.endswith(".parquet")
    if trace_name and len(inputs) > 1:
        raise click.UsageError("--trace names one trace; give one input")
    if not single:
        _dataset(list(inputs), out, executor, jobs, ray_address, spark_master, force, console, trace_name)
        return
    src = inputs[0]
    size = os.path.getsize(src) if os.path.exists(src) else 0
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=console, transient=True, disable=quiet or size < (16 << 20)) as bar:
        task = bar.add_task(f"converting {Path(src).name}", total=size)
        meta = convert(src, out, trace=trace_name, progress=lambda n: bar.advance(task, n))
    notes = meta.get("notes") or []
    console.print(f"{out}: {meta['events']:,} events (trace {meta['trace']!r})" + ("" if not notes else "; notes: " + "; ".join(notes)))


def _dataset(inputs: list[str], out: str, executor: str, jobs: int, ray_address: str | None, spark_master: str | None,
             force: bool, console: Console, trace_name: str | None = None) -> None:
    """Folder output: one task per input on the chosen executor (tracekit.executors), then the sidecar.

    A failed input is named with its error and the others are still written; the exit status is then 1.
    """
    from rich.progress import MofNCompleteColumn

    from tracekit import executors
    from tracekit.safe import markup, term

    ex = executors.make(executor, jobs=jobs, ray_address=ray_address, spark_master=spark_master)
    if "://" not in out:
        Path(out).mkdir(parents=True, exist_ok=True)
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task(f"converting ({executor})", total=len(inputs))
        outcomes = executors.convert_many(inputs, out, ex, force=force, trace=trace_name, on_done=lambda o: bar.advance(task))
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if o.ok:
            v = o.value
            notes = v.get("notes") or []
            console.print(markup(f"{v['dst']}: {v['events']:,} events (trace {v['trace']!r})"
                                 + (" [already converted: same bytes]" if v.get("skipped") else "")
                                 + ("" if not notes else "; notes: " + "; ".join(notes))), highlight=False, soft_wrap=True)
    for o in failed:
        click.echo(f"tracekit: error: {term(o.error)}", err=True)  # one line, never wrapped
    skipped = sum(1 for o in outcomes if o.ok and o.value.get("skipped"))
    console.print(markup(f"{len(outcomes) - len(failed)} of {len(outcomes)} traces converted ({skipped} skipped: same bytes "
                         f"as before); sidecar {out.rstrip('/')}/_tracekit/traces.parquet"), highlight=False, soft_wrap=True)
    if failed:
        raise SystemExit(1)
