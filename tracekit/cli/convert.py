"""``tracekit convert INPUT... -o OUT``."""

from __future__ import annotations

import os
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from tracekit.atomic import install_signal_cleanup, refuse_input
from tracekit.errors import TraceError
from tracekit.ingest import convert, default_trace_name
from tracekit.safe import markup


def _worker_init() -> None:
    """In a ``--jobs`` worker: die with the parent, removing this worker's temporary files on the way.

    A SIGTERM to ``tracekit convert`` kills the parent at once (see tracekit.atomic); without
    PR_SET_PDEATHSIG its workers would finish their file and write it after the user stopped the run.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    install_signal_cleanup()


def _one(src: str, dst: str, trace: str | None) -> dict[str, Any]:
    return convert(src, dst, trace=trace)


def plan(inputs: tuple[str, ...], out: str) -> tuple[bool, list[tuple[str, str]]]:
    """``(single, [(input, output file)])``: what the user gave decides, never the suffix of OUT.

    One input gives the file OUT (whatever its suffix), unless OUT is an existing folder or ends
    with a slash: then OUT/<trace>.parquet. Several inputs need a folder: OUT/<trace>.parquet each.
    """
    o = Path(out)
    single = len(inputs) == 1 and not o.is_dir() and not out.endswith(os.sep)
    if single:
        return True, [(inputs[0], out)]
    if o.exists() and not o.is_dir():
        raise TraceError(out, f"is a file; {len(inputs)} inputs are written into a folder: give a folder name")
    dsts = [(src, str(o / f"{default_trace_name(src)}.parquet")) for src in inputs]
    names = [d for _, d in dsts]
    if len(set(names)) != len(names):
        raise click.UsageError("two inputs have the same trace name; convert them into different folders")
    return False, dsts


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--out", required=True, type=click.Path(),
              help="Output file (one input, any suffix) or folder (several inputs, an existing folder or a path ending in /).")
@click.option("--trace", "trace_name", help="Trace id for a single input (default: the file name).")
@click.option("-j", "--jobs", default=1, show_default=True, help="Convert this many files in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
def command(inputs: tuple[str, ...], out: str, trace_name: str | None, jobs: int, quiet: bool) -> None:
    """Convert Kineto JSON(.gz) and nsys SQLite traces to the tracekit Parquet schema.

    One input gives the one file OUT; several inputs (or OUT an existing folder, or ending in /)
    give one OUT/<trace>.parquet per input. Paths are literal (no wildcards). Output is written to
    a temporary name and renamed when complete; it may not be one of the inputs. A bad input is
    reported in one line and the others are still converted; the exit code is then 2.
    """
    from tracekit.cli import one_line

    console = Console(stderr=True, quiet=quiet)
    if trace_name and len(inputs) > 1:
        raise click.UsageError("--trace names one trace; give one input")
    single, pairs = plan(inputs, out)
    for _, dst in pairs:
        refuse_input(dst, inputs)
    if not single:
        Path(out).mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, dict[str, Any]]] = []
    failed: list[str] = []

    def fail(e: Exception) -> None:
        msg = one_line(e)
        if msg is None:
            raise e  # a bug in tracekit: keep its traceback
        failed.append(msg)
        click.echo(f"tracekit: error: {msg}", err=True)

    if jobs > 1 and len(pairs) > 1:
        with ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init) as ex:
            futs = {ex.submit(_one, src, dst, trace_name): dst for src, dst in pairs}
            for f in as_completed(futs):
                try:
                    results.append((futs[f], f.result()))
                except Exception as e:  # noqa: BLE001  (sorted by fail)
                    fail(e)
    else:
        total = sum(os.path.getsize(s) for s, _ in pairs if os.path.isfile(s))
        with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      TimeRemainingColumn(), console=console, transient=True, disable=quiet or total < (16 << 20)) as bar:
            task = bar.add_task("converting", total=total)
            for src, dst in pairs:
                bar.update(task, description=f"converting {markup(Path(src).name)}")
                try:
                    results.append((dst, convert(src, dst, trace=trace_name, progress=lambda n: bar.advance(task, n))))
                except Exception as e:  # noqa: BLE001  (sorted by fail)
                    fail(e)
    for dst, meta in results:
        notes = meta.get("notes") or []
        console.print(markup(f"{dst}: {meta['events']:,} events (trace {meta['trace']!r})"
                             + ("" if not notes else "; notes: " + "; ".join(notes))))
    if failed:
        if len(pairs) > 1:
            click.echo(f"tracekit: {len(failed)} of {len(pairs)} inputs failed; the others were converted", err=True)
        raise SystemExit(2)
