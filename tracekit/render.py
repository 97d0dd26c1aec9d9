"""Result tables of the short verbs (``sql``, ``info``, ``graphmap``; ``compare --sql``, ``aggregate``) on
the terminal, in the report's layout.

One table layout in the product (issue 14): rows go through the view model (:mod:`tracekit.view.model`:
typed, formatted columns, ``*_ns`` in a readable unit named in the header) and the width-aware layout
(:mod:`tracekit.view.terminal`: numbers never cut, text elided in the middle, column blocks when a
table is wider than the terminal, every string from a trace escaped by :func:`tracekit.safe.term`).

Start-up: nothing heavy is imported. ``tracekit sql``/``info`` print DuckDB rows (:func:`print_result`:
``fetchall`` and the cursor's SQL types) without pandas (its import alone took longer than the
query); a DataFrame (:func:`print_frame`) comes with its pandas loaded already.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tracekit.rows import Rows, from_frame, head_of_cursor
from tracekit.view.model import table
from tracekit.view.terminal import table_lines, terminal_width, wrap_text

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

#: What the "more rows" line suggests (the verbs' own options, not the report's).
MORE = "--limit N or --format csv"


def table_text(
    rows: Rows, title: str | None = None, limit: int = 1000, width: int | None = None, total: int | None = None
) -> list[str]:
    """The lines of ``rows`` as a table at ``width`` (the terminal's; 80 when piped), first ``limit`` rows;
    ``total``: the result's row count when ``rows`` holds only its head."""
    w = terminal_width(width)
    if not len(rows):  # say so, and which columns there would have been
        cols = ", ".join(rows.columns)
        return wrap_text(f"{title + ': ' if title else ''}no rows" + (f" (columns: {cols})" if cols else ""), w)
    tab = table(title or "", rows, title=title or "", limit=limit)
    tab = dataclasses.replace(tab, more=MORE, total_rows=tab.total_rows if total is None else total)
    return table_lines(tab, w)


def print_rows(
    rows: Rows, title: str | None = None, limit: int = 1000, width: int | None = None, total: int | None = None
) -> None:
    """Print ``rows`` as a table, noting rows left out (``total``: see :func:`table_text`)."""
    sys.stdout.write("\n".join(table_text(rows, title, limit, width, total)) + "\n")


def print_frame(df: pd.DataFrame, title: str | None = None, limit: int = 1000, width: int | None = None) -> None:
    """Print a DataFrame as a table (converted once to :class:`Rows`)."""
    print_rows(from_frame(df), title, limit, width)


def print_result(
    cur: duckdb.DuckDBPyConnection,
    title: str | None = None,
    limit: int = 1000,
    drop: Sequence[str] = (),
    width: int | None = None,
) -> None:
    """Print the pending result of ``cur.execute(...)`` as a table, without pandas; ``drop`` names columns left out."""
    rows, total = head_of_cursor(cur, limit)
    print_rows(rows.drop(drop) if drop else rows, title, limit, width, total)
