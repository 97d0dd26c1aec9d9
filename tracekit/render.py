"""Terminal rendering shared by the CLI verbs (rich tables).

Cell text and column names come from trace files: control and bidi characters are shown escaped
(:func:`tracekit.safe.term`) and cells are rich ``Text`` (never parsed as markup).

Start-up: nothing heavy is imported here. rich loads when a table is printed, pandas never (a
DataFrame's own module is loaded already): ``tracekit sql``/``info`` print DuckDB rows through
:func:`print_rows` without pandas (issue 14: pandas alone was 0.9 s of a 1.3 s ``tracekit sql``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tracekit.safe import term
from tracekit.view.rows import missing

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

#: DuckDB result types printed right-aligned (as pandas' numeric dtypes were).
_NUMERIC = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
            "UHUGEINT", "FLOAT", "DOUBLE"}


def _fmt(v: object) -> str:
    if missing(v):
        return "NULL"
    if isinstance(v, Decimal):  # DuckDB DECIMAL results, shown like the floats pandas made of them
        v = float(v)
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 1e15 else f"{v:.6g}"
    if isinstance(v, int):
        return f"{v:,}"
    return term(v)


def rows_table(columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool],
               title: str | None = None, limit: int = 1000) -> Table:
    """A rich Table of the first ``limit`` rows; ``numeric`` columns right-aligned; names printed literally."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, show_lines=False, header_style="bold")
    for c, num in zip(columns, numeric):
        t.add_column(Text(term(c)), justify="right" if num else "left", overflow="fold")
    for row in rows[:limit]:
        t.add_row(*[Text(_fmt(v)) for v in row])
    return t


def frame_table(df: pd.DataFrame, title: str | None = None, limit: int = 1000) -> Table:
    """A rich Table of the first ``limit`` rows of ``df``; names are printed literally (no markup)."""
    import pandas as pd  # loaded already: ``df`` is one

    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    return rows_table([str(c) for c in df.columns], list(df.head(limit).itertuples(index=False)), numeric, title, limit)


def _print(table: Table, left_out: int, console: Console | None) -> None:
    if console is None:
        from rich.console import Console

        console = Console(markup=False, highlight=False)
    console.print(table)
    if left_out > 0:
        console.print(f"({left_out:,} more rows; use --limit or --format csv)")


def print_frame(df: pd.DataFrame, title: str | None = None, limit: int = 1000, console: Console | None = None) -> None:
    """Print ``df`` as a table, noting rows left out."""
    _print(frame_table(df, title, limit), len(df) - limit, console)


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], numeric: Sequence[bool],
               title: str | None = None, limit: int = 1000, console: Console | None = None) -> None:
    """Print rows (tuples) as a table, noting rows left out: the pandas-free twin of :func:`print_frame`."""
    _print(rows_table(columns, rows, numeric, title, limit), len(rows) - limit, console)


def print_result(cur: duckdb.DuckDBPyConnection, title: str | None = None, limit: int = 1000,
                 console: Console | None = None, drop: Sequence[str] = ()) -> None:
    """Print the pending result of ``cur.execute(...)`` as a table, without pandas; ``drop`` names columns left out."""
    desc = cur.description or []
    keep = [i for i, d in enumerate(desc) if d[0] not in drop]
    rows = cur.fetchall()
    if len(keep) != len(desc):
        rows = [tuple(r[i] for i in keep) for r in rows]
    numeric = [str(desc[i][1]) in _NUMERIC or str(desc[i][1]).startswith("DECIMAL") for i in keep]
    print_rows([desc[i][0] for i in keep], rows, numeric, title, limit, console)
