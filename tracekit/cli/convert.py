"""``tracekit convert INPUT... -o OUT``."""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from tracekit.ingest import convert, default_trace_name


def _one(src: str, dst: str, trace: str | None) -> dict:
    return convert(src, dst, trace=trace)


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--out", required=True, type=click.Path(), help="Output .parquet (one input) or folder (dataset: one Parquet per trace).")
@click.option("--trace", "trace_name", help="Trace id for a single input (default: the file name).")
@click.option("-j", "--jobs", default=1, show_default=True, help="Convert this many files in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def command(inputs: tuple[str, ...], out: str, trace_name: str | None, jobs: int, quiet: bool) -> None:
    """Convert Kineto JSON(.gz) and nsys SQLite traces to the tracekit Parquet schema.

    One input and an OUT ending in .parquet gives one file; otherwise OUT is a
    folder with one <trace>.parquet per input. Output is written to a temporary
    name and renamed when complete.
    """
    console = Console(stderr=True, quiet=quiet)
    single = len(inputs) == 1 and out.endswith(".parquet")
    if trace_name and len(inputs) > 1:
        raise click.UsageError("--trace names one trace; give one input")
    jobs_list = []
    for src in inputs:
        dst = out if single else str(Path(out) / f"{default_trace_name(src)}.parquet")
        jobs_list.append((src, dst, trace_name))
    if not single:
        Path(out).mkdir(parents=True, exist_ok=True)
        names = [d for _, d, _ in jobs_list]
        if len(set(names)) != len(names):
            raise click.UsageError("two inputs have the same trace name; convert them into different folders")
    results = []
    if jobs > 1 and len(jobs_list) > 1:
        with ProcessPoolExecutor(max_workers=jobs) as ex:
            futs = {ex.submit(_one, *j): j for j in jobs_list}
            for f in as_completed(futs):
                results.append((futs[f][1], f.result()))
    else:
        total = sum(os.path.getsize(s) for s, _, _ in jobs_list)
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=console, transient=True, disable=quiet or total < (16 << 20)) as bar:
            task = bar.add_task("converting", total=total)
            for src, dst, tn in jobs_list:
                bar.update(task, description=f"converting {Path(src).name}")
                results.append((dst, convert(src, dst, trace=tn, progress=lambda n: bar.advance(task, n))))
    for dst, meta in results:
        notes = meta.get("notes") or []
        console.print(f"{dst}: {meta['events']:,} events (trace {meta['trace']!r})" + ("" if not notes else "; notes: " + "; ".join(notes)))
