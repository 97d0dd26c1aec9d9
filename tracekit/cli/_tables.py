"""``tracekit report --out DIR``: one task per trace writing every analysis output as a Parquet table.

Not a verb (the ``_`` keeps it out of :data:`tracekit.cli.VERBS`); kept apart from ``report.py`` so the
terminal/HTML presentation and the table writer change independently.
"""

from __future__ import annotations

from typing import Any

import click
from rich.console import Console

from tracekit import executors
from tracekit.cli._progress import task_progress
from tracekit.safe import markup, term


def write_tables(
    paths: list[str],
    out: str,
    executor: str,
    jobs: int,
    ray_address: str | None,
    spark_master: str | None,
    params: dict[str, Any],
) -> None:
    """Run :func:`tracekit.executors.report_many`; print what was written and every failed trace (exit 2: bad input)."""
    console = Console(stderr=True)
    ex = executors.make(executor, jobs=jobs, ray_address=ray_address, spark_master=spark_master)
    with task_progress(console) as bar:
        files = executors.event_files_of(paths)
        task = bar.add_task(f"report ({executor})", total=len(files))
        outcomes = executors.report_many(paths, out, ex, params=params, on_done=lambda o: bar.advance(task))
    failed = [o for o in outcomes if not o.ok]
    for o in failed:
        click.echo(f"tracekit: error: {term(o.error)}", err=True)  # one line, never wrapped
    ok = [o for o in outcomes if o.ok]
    tables = sorted({name for o in ok for name in o.value.get("outputs", {})})
    console.print(
        markup(
            f"{len(ok)} of {len(outcomes)} traces reported: {len(tables)} tables under {out.rstrip('/')}/"
            "<output>/<trace file>.parquet (cross-trace: tracekit aggregate " + out + ")"
        ),
        highlight=False,
        soft_wrap=True,
    )
    if failed:
        raise SystemExit(2)
