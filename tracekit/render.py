"""Terminal rendering shared by the CLI verbs (rich tables).

Cell text and column names come from trace files: control and bidi characters are shown escaped
(:func:`tracekit.safe.term`) and cells are rich ``Text`` (never parsed as markup).
"""

from __future__ import annotations

import math

import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tracekit.safe import term


def _fmt(v: object) -> str:
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return "NULL"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1e15 else f"{v:.6g}"
    if isinstance(v, int):
        return f"{v:,}"
    return term(v)


def frame_table(df: pd.DataFrame, title: str | None = None, limit: int = 1000) -> Table:
    """A rich Table of the first ``limit`` rows of ``df``; names are printed literally (no markup)."""
    t = Table(title=title, show_lines=False, header_style="bold")
    for c in df.columns:
        t.add_column(Text(term(c)), justify="right" if pd.api.types.is_numeric_dtype(df[c]) else "left", overflow="fold")
    for row in df.head(limit).itertuples(index=False):
        t.add_row(*[Text(_fmt(v)) for v in row])
    return t


def print_frame(df: pd.DataFrame, title: str | None = None, limit: int = 1000, console: Console | None = None) -> None:
    """Print ``df`` as a table, noting rows left out."""
    console = console or Console(markup=False, highlight=False)
    console.print(frame_table(df, title, limit))
    if len(df) > limit:
        console.print(f"({len(df) - limit:,} more rows; use --limit or --format csv)")
