"""The progress bar of a run of per-trace tasks (``convert`` into a folder, ``report --out``): one look for both.

Not a verb (no ``command``): the ``_`` keeps it out of :data:`tracekit.cli.VERBS`' naming.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn


def task_progress(console: Console) -> Progress:
    """A transient bar counting finished tasks (done/total), with the time left, on ``console``."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
