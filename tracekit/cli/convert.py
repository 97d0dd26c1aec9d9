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
@click.option("--executor", type=click.Choice(["local", "ray", "spark"]), default="local", show_default=True,
              help="Folder output: run each trace as one task here (local processes, a Ray cluster, Spark).")
@click.option("--ray-address", help="Ray cluster to use (default: $RAY_ADDRESS, else a local one).")
@click.option("--spark-master", help="Spark master (default: the active SparkSession, else local[2]).")
@click.option("--force", is_flag=True, help="Folder output: convert again inputs whose bytes were converted there before.")
def command(inputs: tuple[str, ...], out: str, trace_name: str | None, jobs: int, quiet: bool, executor: str = "local",
            ray_address: str | None = None, spark_master: str | None = None, force: bool = False) -> None:
    """Convert Kineto JSON(.gz) and nsys SQLite traces to the tracekit Parquet schema.

    One input and an OUT ending in .parquet gives one file; otherwise OUT is a
    folder with one <trace>.parquet per input. Output is written to a temporary
    name and renamed when complete.
    """
    console = Console(stderr=True, quiet=quiet)
    single = len(inputs) == 1 and out.endswith(".parquet")
    if trace_name and len(inputs) > 1:
        raise click.UsageError("--trace names one trace; give one input")
    if not single:
        _dataset(list(inputs), out, executor, jobs, ray_address, spark_master, force, console)
        return
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


def _dataset(inputs: list[str], out: str, executor: str, jobs: int, ray_address: str | None, spark_master: str | None,
             force: bool, console: Console) -> None:
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
        outcomes = executors.convert_many(inputs, out, ex, force=force, on_done=lambda o: bar.advance(task))
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
