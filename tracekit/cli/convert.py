"""``tracekit convert INPUT... -o OUT``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

# Before numpy loads (tracekit.ingest): converting does no linear algebra, and OpenBLAS's idle worker
# threads spin for ~0.08 CPU-s after the import, on the cores the readers need. Only this process and
# its conversion workers see it: `convert` runs no user program.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

from tracekit import cli
from tracekit.atomic import converting
from tracekit.cli._inputs import refuse_input
from tracekit.cli._progress import task_progress
from tracekit.errors import TraceError
from tracekit.ingest import convert, default_trace_name
from tracekit.safe import markup, term
from tracekit.view.model import plural

if TYPE_CHECKING:
    from tracekit import naming


def plan(
    inputs: tuple[str, ...], out: str, trace: str | None = None, force: bool = False
) -> tuple[bool, list[naming.Planned]]:
    """``(single, [where each input goes])``: what the user gave decides, never the suffix of OUT.

    One input gives the file OUT (whatever its suffix), unless OUT is an existing folder or ends
    with a slash: then a dataset, OUT/<trace>.parquet. Several inputs need a folder: OUT/<trace>.parquet
    each, named by tracekit.naming (a collision is refused here, before anything is written).
    """
    from tracekit import naming  # pyarrow: only when a dataset is written

    o = Path(out)
    single = len(inputs) == 1 and not o.is_dir() and not out.endswith(os.sep)
    if single:
        return True, [naming.Planned(inputs[0], out, trace or default_trace_name(inputs[0]), [])]
    if o.exists() and not o.is_dir():
        raise TraceError(out, f"is a file; {len(inputs)} inputs are written into a folder: give a folder name")
    return False, naming.plan(list(inputs), out, trace, force)


@contextlib.contextmanager
def pandas_hidden() -> Iterator[None]:
    """While one file is converted by the ``tracekit`` process itself, ``import pandas`` fails.

    Why: pyarrow asks pandas whether each Python list, scalar or numpy array it converts is a pandas object
    (``pa.array``, ``pa.scalar``, compute calls with a Python operand), importing pandas to ask: ~0.2 s
    (``-X importtime``) of a process whose conversion never uses pandas (issue 25 item 4: the nsys reader makes such
    calls by the dozen; tracekit.ingest.arrays avoids them on the Kineto hot path). A failed import is pyarrow's
    "no pandas": it converts those inputs as plain sequences, the same values. It still imports pandas where one is
    really asked for (``to_pandas``) once the import works again. Only where the process is the command's own
    (:data:`tracekit.cli.WHOLE_PROCESS`): a library caller's other threads may import pandas meanwhile, and in a
    test process pyarrow would keep believing pandas absent for its probes. No-op when pandas is loaded already.
    """
    if not cli.WHOLE_PROCESS or "pandas" in sys.modules:
        yield
        return
    finder = _NoPandas()
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


class _NoPandas:
    """A meta path finder that fails ``import pandas`` (a ``None`` in sys.modules does not: Cython, which pyarrow
    is built with, takes it for the module)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("pandas is hidden while tracekit converts", name=name)


@click.command("convert")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(),
    help="Output file (one input, any suffix) or folder (several inputs, an existing folder or a path ending in /).",
)
@click.option(
    "--trace",
    "trace_name",
    help="Trace id for a single input (default: the file name); in a folder also its file name.",
)
@click.option("-j", "--jobs", default=1, show_default=True, help="Convert this many files in parallel.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or summary.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray", "spark"]),
    default="local",
    show_default=True,
    help="Folder output: run each trace as one task here (local processes, a Ray cluster, Spark).",
)
@click.option("--ray-address", help="Ray cluster to use (default: $RAY_ADDRESS, else a local one).")
@click.option("--spark-master", help="Spark master (default: the active SparkSession, else local[2]).")
@click.option(
    "--force",
    is_flag=True,
    help="Folder output: convert again inputs whose bytes were converted there before, "
    "and replace a trace of the same name converted there from another input.",
)
def command(
    inputs: tuple[str, ...],
    out: str,
    trace_name: str | None,
    jobs: int,
    quiet: bool,
    executor: str = "local",
    ray_address: str | None = None,
    spark_master: str | None = None,
    force: bool = False,
) -> None:
    """Convert Kineto JSON(.gz) and nsys SQLite traces to the tracekit Parquet schema.

    One input gives the one file OUT; several inputs (or OUT an existing folder, or ending in /)
    give a dataset folder: one OUT/<trace>.parquet per input plus its sidecar
    _tracekit/traces.parquet, each input one task on --executor. Inputs with the same file name take
    their folder names (rank0__trace); a name another input holds in OUT is refused (--force replaces
    it); converting the same input again replaces its own file. Paths are literal (no wildcards).
    Output is written to a temporary name and renamed when complete; it may not be one of the
    inputs. A bad input is reported in one line and the others are still converted; the exit code
    is then 2.
    """
    console = Console(stderr=True, quiet=quiet)
    if trace_name and len(inputs) > 1:
        raise click.UsageError("--trace names one trace; give one input")
    single, planned = plan(inputs, out, trace_name, force)
    if single:
        refuse_input(out, inputs)
    else:
        for p in planned:
            refuse_input(str(Path(out) / p.rel), inputs)
        _dataset(list(inputs), out, executor, jobs, ray_address, spark_master, force, console, trace_name, planned)
        return
    src = inputs[0]
    size = os.path.getsize(src) if os.path.exists(src) else 0
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=quiet or size < (16 << 20),
    ) as bar:
        task = bar.add_task(f"converting {markup(Path(src).name)}", total=size)
        with converting(src, out), pandas_hidden():
            meta = convert(src, out, trace=trace_name, progress=lambda n: bar.advance(task, n))
    notes = meta.get("notes") or []
    console.print(
        markup(
            f"{out}: {plural(meta['events'], 'event')} (trace {meta['trace']!r})"
            + ("" if not notes else "; notes: " + "; ".join(notes))
        )
    )
    cli.exit_now()  # the file is written and renamed: no interpreter tear-down for the user to wait for


def _dataset(
    inputs: list[str],
    out: str,
    executor: str,
    jobs: int,
    ray_address: str | None,
    spark_master: str | None,
    force: bool,
    console: Console,
    trace_name: str | None = None,
    planned: list[naming.Planned] | None = None,
) -> None:
    """Folder output: one task per input on the chosen executor (tracekit.executors), then the sidecar.

    A failed input is named with its error and the others are still written; the exit status is then 2 (bad input).
    """
    from tracekit import dataset, executors  # pyarrow (tracekit.schema): only when a dataset is written

    ex = executors.make(executor, jobs=jobs, ray_address=ray_address, spark_master=spark_master)
    if "://" not in out:
        Path(out).mkdir(parents=True, exist_ok=True)
    with task_progress(console) as bar:
        task = bar.add_task(f"converting ({executor})", total=len(inputs))
        outcomes = executors.convert_many(
            inputs, out, ex, force=force, trace=trace_name, on_done=lambda o: bar.advance(task), planned=planned
        )
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if o.ok:
            v = o.value
            notes = v.get("notes") or []
            console.print(
                markup(
                    f"{v['dst']}: {plural(v['events'], 'event')} (trace {v['trace']!r})"
                    + (" [already converted: same bytes]" if v.get("skipped") else "")
                    + "".join(f" [replaces {r}]" for r in v.get("removed") or [])
                    + ("" if not notes else "; notes: " + "; ".join(notes))
                ),
                highlight=False,
                soft_wrap=True,
            )
    for o in failed:
        click.echo(f"tracekit: error: {term(o.error)}", err=True)  # one line, never wrapped
    skipped = sum(1 for o in outcomes if o.ok and o.value.get("skipped"))
    held = dataset.read_sidecar(out).num_rows  # what `report OUT` reads: the sidecar lists the files it reads
    console.print(
        markup(
            f"{len(outcomes) - len(failed)} of {len(outcomes)} traces converted ({skipped} skipped: same bytes "
            f"as before); the dataset holds {plural(held, 'trace')} (sidecar "
            f"{out.rstrip('/')}/_tracekit/traces.parquet)"
        ),
        highlight=False,
        soft_wrap=True,
    )
    if failed:
        if len(outcomes) > 1:
            click.echo(f"tracekit: {len(failed)} of {len(outcomes)} inputs failed; the others were converted", err=True)
        raise SystemExit(2)
