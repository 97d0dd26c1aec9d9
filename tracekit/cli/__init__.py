"""The ``tracekit`` command: a thin layer over the library, one module per verb.

Each verb lives in ``tracekit/cli/<verb>.py`` and exposes a click command named
``command``; add a verb by adding its module name to :data:`VERBS`. Errors of
bad input (:class:`tracekit.errors.TraceError`) print one line and exit 2.
"""

from __future__ import annotations

import os

# Before pyarrow loads: its default mimalloc pool keeps every freed block, so a streamed conversion's RSS
# grows to the sum of its transient peaks; the system allocator (with malloc_trim in the sink) gives them back.
# Measured on a 486 MB trace: peak RSS 623 MB -> 464 MB.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import importlib  # noqa: E402
import sys  # noqa: E402

import click  # noqa: E402

from tracekit import __version__  # noqa: E402
from tracekit.errors import TraceError  # noqa: E402

VERBS = ["convert", "sql", "queries", "info", "report", "capture", "graphmap", "diff", "compare", "export-chrome", "aggregate"]


class _Group(click.Group):
    """Imports a verb's module only when that verb runs (``convert`` never loads pandas or matplotlib)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        return importlib.import_module(f"tracekit.cli.{name.replace('-', '_')}").command  # type: ignore[no-any-return]

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except TraceError as e:
            click.echo(f"tracekit: error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracekit")
def cli() -> None:
    """Where one LLM decode step's time goes, from torch.profiler and Nsight Systems traces."""


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="tracekit")
