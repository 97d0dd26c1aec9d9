"""The ``tracekit`` command: a thin layer over the library, one module per verb.

Each verb lives in ``tracekit/cli/<verb>.py`` and exposes a click command named
``command``; add a verb by adding its module name to :data:`VERBS`.

Errors are one line and exit 2 when they are the user's or their files' (:func:`tracekit.errors.user_message`):
:class:`tracekit.errors.TraceError`, an ``OSError`` naming a file (missing, unwritable, a folder),
a DuckDB error (a query's or a corrupt file's) and an invalid regular expression. Anything else is
a bug in tracekit and keeps its traceback (exit 1), which is what a bug report needs.
``TRACEKIT_DEBUG=1`` shows the traceback of the one-line errors too. Every verb runs with
:func:`tracekit.atomic.cleanup_on_signals`: SIGTERM/SIGINT remove half-written temporary files, and a
Ctrl-C ends as "interrupted", exit 130, whatever exception it became (DuckDB turns it into its own);
and with :func:`tracekit.atomic.guarding_inputs`: no write replaces a file the verb read, and a DuckDB
error (which names no file) is put on the inputs as the user gave them.
"""

from __future__ import annotations

import os

# Before pyarrow loads: its default mimalloc pool keeps every freed block, so a streamed conversion's RSS
# grows to the sum of its transient peaks; the system allocator (with malloc_trim in the sink) gives them back.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")

import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from tracekit import __version__
from tracekit.atomic import cleanup_on_signals, guarding_inputs, interrupted
from tracekit.errors import TraceError, user_message
from tracekit.safe import term

VERBS = [
    "convert",
    "sql",
    "queries",
    "info",
    "report",
    "capture",
    "graphmap",
    "diff",
    "compare",
    "export-chrome",
    "aggregate",
]


class _Group(click.Group):
    """Imports a verb's module only when that verb runs (``convert`` never loads pandas or matplotlib)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(VERBS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in VERBS:
            return None
        return importlib.import_module(f"tracekit.cli.{name.replace('-', '_')}").command

    def invoke(self, ctx: click.Context) -> object:
        inputs = None
        try:
            with cleanup_on_signals(), guarding_inputs() as inputs:
                return super().invoke(ctx)
        except KeyboardInterrupt:
            _interrupted()
        except Exception as e:  # sorted by one_line: the user's errors vs tracekit's bugs
            if interrupted():  # whatever the Ctrl-C turned into on its way out (DuckDB: "Query interrupted")
                _interrupted()
            msg = one_line(
                e, sorted(inputs.given) if inputs is not None else ()
            )  # sorted: diff/compare read in threads
            if msg is None or os.environ.get("TRACEKIT_DEBUG"):
                raise
            click.echo(f"tracekit: error: {msg}", err=True)
            sys.exit(2)


def _interrupted() -> NoReturn:
    """Ctrl-C: one line, exit 130 (128 + SIGINT, what a shell reports); temporary files are gone already (atomic)."""
    click.echo("tracekit: interrupted", err=True)
    sys.exit(130)


def one_line(e: BaseException, inputs: Sequence[str] = ()) -> str | None:
    """The one-line message for an error that is the user's or their input's (tracekit.errors.user_message),
    escaped for the terminal; None for a bug (and for click's own errors, which click prints).

    A DuckDB error names no file (an overflow on a hostile ``ts_ns``, malformed metadata): it is put on
    ``inputs``, the paths the command read as the user gave them.
    """
    if isinstance(e, click.ClickException):
        return None
    msg = user_message(e)
    if msg is not None and inputs and not isinstance(e, (TraceError, OSError)) and _is_duckdb(e):
        names = ", ".join(inputs[:3]) + (f" (and {len(inputs) - 3} more)" if len(inputs) > 3 else "")
        msg = f"{names}: {msg}"
    return None if msg is None else term(msg)


def _is_duckdb(e: BaseException) -> bool:
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(e, duckdb.Error)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tracekit")
def cli() -> None:
    """Where one LLM decode step's time goes, from torch.profiler and Nsight Systems traces."""


#: True once :func:`main` runs: the process is the command's own (console script, ``python -m tracekit``) and ends
#: with it, so a verb may change process-wide state that a library caller or a test's CliRunner must keep
#: (``convert`` hides pandas from pyarrow: tracekit/cli/convert.py, ``pandas_hidden``).
WHOLE_PROCESS = False


def exit_now() -> None:
    """End the process here, with status 0, without the interpreter's tear-down; only from :func:`main`'s process.

    Why: once ``convert`` has renamed its output and printed its line, the user still waited ~0.1 s (a tenth of
    a 1.2 s ADBC read of the same export) while Python unloaded numpy, pyarrow and the rest module by module
    (issue 25 item 4). Nothing is left to do: the file is complete and renamed, the writer and reader threads are
    joined, no temporary file is live. Output is flushed first; where that fails (a closed pipe) the normal exit
    runs, and reports it. A no-op outside a whole tracekit process (CliRunner, a library caller).
    """
    if not WHOLE_PROCESS:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(0)


def main() -> None:
    """Console-script entry point."""
    global WHOLE_PROCESS
    WHOLE_PROCESS = True
    cli(prog_name="tracekit")
