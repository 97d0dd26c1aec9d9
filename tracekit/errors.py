"""The errors users see: a file and a problem, on one line.

:class:`TraceError` is tracekit's own. :func:`user_message` sorts any exception into the user's
(their file is missing, unreadable or bad, their query or regular expression is wrong: one line
naming it) or tracekit's (a bug: ``None``, so the caller keeps the traceback). The CLI prints the
first kind as ``tracekit: error: ...`` and exits 2; a per-trace task (tracekit.executors) records it
as that trace's error. One function, so a bad file reads the same whichever path it failed on.
"""

from __future__ import annotations

import os
import re
import stat
import sys


class TraceError(Exception):
    """Bad or unusable input. ``str(err)`` is the one-line message: ``<file>: <problem>``."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Exceptions pickle as cls(*self.args) by default, i.e. with the one formatted message: that
        # breaks this two-argument __init__ and, with it, `convert --jobs N` (a worker's error crosses
        # a process boundary by pickle and came back as BrokenProcessPool).
        return (type(self), (self.path, self.problem))


def refuse_special(path: object) -> None:
    """Raise :class:`TraceError` when ``path`` exists and is neither a regular file nor a folder.

    A FIFO given as a trace blocked tracekit forever in ``open`` (issue 23); a device or socket is no trace
    either. Checked with ``stat`` (which never blocks) before anything opens an input; a missing path is
    left to the caller's own message.
    """
    try:
        mode = os.stat(str(path)).st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = (
            "a FIFO"
            if stat.S_ISFIFO(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "a device"
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "special"
        )
        raise TraceError(path, f"not a regular file ({kind}): give a trace file")


def _first_lines(text: str, n: int = 2) -> str:
    """The first ``n`` non-empty lines of ``text`` joined by " / " (DuckDB adds a caret diagram below)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " / ".join(lines[:n])


def user_message(e: BaseException) -> str | None:
    """The one-line message for an error that is the user's or their input's, or None for a bug.

    The text is raw (a file name may hold control characters): escape it before it reaches a
    terminal or a page (tracekit.safe).
    """
    if isinstance(e, TraceError):
        return str(e)
    if isinstance(e, OSError) and e.filename is not None:
        names = str(e.filename) + (f" -> {e.filename2}" if e.filename2 is not None else "")
        return f"{names}: {e.strerror or e}"
    if isinstance(e, re.error):
        return f"invalid regular expression {e.pattern!r}: {e.msg}"
    duckdb = sys.modules.get("duckdb")  # only loaded by work that queries: no import just to check
    if duckdb is not None and isinstance(e, duckdb.Error):
        return _first_lines(str(e))
    return None
