"""A light result table: column names, DuckDB SQL types, rows as tuples.

Why not a DataFrame: ``tracekit report`` in a terminal needs a few dozen small result sets, and
importing pandas (with numpy and pyarrow) took longer than running every query on a small trace
(issue 14). DuckDB's ``fetchall()`` gives plain Python values and the cursor's ``description`` the
SQL type of each column, which is what the view model needs to tell a count from a number.

A DataFrame handed in through the Python API is converted once with :func:`from_frame`, so the
view has one code path. Its values are kept as pandas yields them (``pd.NA``, NaN) and every
reader goes through :func:`missing`, which knows pandas' markers without importing pandas.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

#: DuckDB integer types (a count or an id, whatever the values).
INTEGER_TYPES = frozenset(
    {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
)
#: DuckDB floating types (a count when every value is whole, else a number).
FLOAT_TYPES = frozenset({"FLOAT", "DOUBLE"})


def missing(v: object) -> bool:
    """SQL NULL as either source spells it: None, NaN, or pandas' NA/NaT (only when pandas is loaded)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return True
    pd = sys.modules.get("pandas")  # pandas' own NA markers can only come from a loaded pandas
    return pd is not None and (v is pd.NA or v is pd.NaT)


def num(v: Any) -> float:
    """A value of a result table as a float, NULL as 0 (a bar or box of nothing)."""
    return 0.0 if missing(v) else float(v)


def is_integer(sql_type: str) -> bool:
    return sql_type in INTEGER_TYPES


def is_float(sql_type: str) -> bool:
    return sql_type in FLOAT_TYPES or sql_type.startswith("DECIMAL")


def is_numeric(sql_type: str) -> bool:
    """Numbers and booleans (what pandas stored in a non-object column)."""
    return is_integer(sql_type) or is_float(sql_type) or sql_type == "BOOLEAN"


@dataclass(frozen=True)
class Rows:
    """One result set. ``types`` are DuckDB type names (``BIGINT``, ``DOUBLE``, ``VARCHAR``...); ``declared``
    the types the query's header declares for its columns (``DURATION``, ``SHARE``...: tracekit.report's
    COLUMN_TYPES), which the view formats by, or empty for a result with no header (``tracekit sql``)."""

    columns: tuple[str, ...]
    types: tuple[str, ...]
    data: tuple[tuple[Any, ...], ...]
    declared: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.data)

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def type_of(self, name: str) -> str:
        return self.types[self.columns.index(name)]

    def declared_of(self, name: str) -> str | None:
        """The declared type of column ``name``; None when the result declares none."""
        return self.declared[self.columns.index(name)] if self.declared else None

    def _with(self, data: Iterable[tuple[Any, ...]]) -> Rows:
        """Other rows, the same columns (names, types, declared types)."""
        return Rows(self.columns, self.types, tuple(data), self.declared)

    def col(self, name: str) -> list[Any]:
        """The values of column ``name``, in row order."""
        i = self.columns.index(name)
        return [r[i] for r in self.data]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row (column name -> value)."""
        return [dict(zip(self.columns, r)) for r in self.data]

    def where(self, keep: Callable[[dict[str, Any]], bool]) -> Rows:
        """The rows whose record satisfies ``keep``."""
        return self._with(r for r in self.data if keep(dict(zip(self.columns, r))))

    def group_by(self, names: Sequence[str]) -> dict[tuple[Any, ...], Rows]:
        """Rows per distinct value of ``names``, in order of first appearance (NULL keys form a group too)."""
        idx = [self.columns.index(n) for n in names]
        out: dict[tuple[Any, ...], list[tuple[Any, ...]]] = {}
        for r in self.data:
            out.setdefault(tuple(r[i] for i in idx), []).append(r)
        return {k: self._with(v) for k, v in out.items()}

    def head(self, n: int | None) -> Rows:
        """The first ``n`` rows; all of them when ``n`` is None or 0 (as the view always read a limit of 0)."""
        return self if not n else self._with(self.data[:n])

    def empty(self) -> Rows:
        """No rows, the same columns."""
        return self._with(())

    def sort_by(self, name: str) -> Rows:
        """Rows ordered by ``name`` (stable; NULLs last, as pandas' ``sort_values`` puts NaN)."""
        i = self.columns.index(name)
        return self._with(sorted(self.data, key=lambda r: (missing(r[i]), 0 if missing(r[i]) else r[i])))

    def select(self, names: Sequence[str], rename: Mapping[str, str] | None = None) -> Rows:
        """Columns ``names`` in that order, optionally renamed."""
        idx = [self.columns.index(n) for n in names]
        rename = rename or {}
        return Rows(
            tuple(rename.get(n, n) for n in names),
            tuple(self.types[i] for i in idx),
            tuple(tuple(r[i] for i in idx) for r in self.data),
            tuple(self.declared[i] for i in idx) if self.declared else (),
        )

    def drop(self, names: Iterable[str]) -> Rows:
        gone = set(names)
        return self.select([c for c in self.columns if c not in gone])


EMPTY = Rows((), (), ())


#: Types whose Python values (Decimal, int beyond 64 bits) pandas made floats of; kept so, as before.
_AS_FLOAT = ("DECIMAL", "HUGEINT", "UHUGEINT")


def from_cursor(cur: duckdb.DuckDBPyConnection, declared: Sequence[tuple[str, str]] = ()) -> Rows:
    """The pending result of ``cur.execute(sql)``: names and SQL types from ``description``, rows from ``fetchall``.

    ``declared``: (name, type) per column as the query's header declares them; kept only when the names are
    the result's, in order (a header that fell behind its SELECT must not mislabel a column: the view then
    falls back on names, and tests/test_sql_headers.py fails)."""
    rows = _rows(cur, cur.fetchall())
    if declared and tuple(n for n, _ in declared) == rows.columns:
        return Rows(rows.columns, rows.types, rows.data, tuple(t for _, t in declared))
    return rows


def head_of_cursor(cur: duckdb.DuckDBPyConnection, limit: int) -> tuple[Rows, int]:
    """The first ``limit`` rows of the pending result (all of them when ``limit`` <= 0, as
    :meth:`Rows.head`) and how many rows it has in all.

    Why: ``tracekit sql big.parquet "SELECT * FROM events"`` shows 1,000 rows; holding millions of
    Python tuples to count the rest would grow with the trace. The rest is counted in chunks and dropped.
    """
    if limit <= 0:
        data = cur.fetchall()
        return _rows(cur, data), len(data)
    data = cur.fetchmany(limit)
    total = len(data)
    while chunk := cur.fetchmany(100_000):
        total += len(chunk)
    return _rows(cur, data), total


def _rows(cur: duckdb.DuckDBPyConnection, data: list[tuple[Any, ...]]) -> Rows:
    desc = cur.description or []
    types = tuple(str(d[1]) for d in desc)
    conv = [i for i, t in enumerate(types) if t.startswith(_AS_FLOAT)]
    if conv:
        data = [tuple(float(v) if i in conv and v is not None else v for i, v in enumerate(r)) for r in data]
    return Rows(tuple(d[0] for d in desc), types, tuple(data))


def _frame_type(s: pd.Series) -> str:
    """The SQL type a pandas column stands for (what the view looked at before it read SQL types)."""
    import pandas as pd  # loaded already: ``s`` is a Series

    if pd.api.types.is_bool_dtype(s):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(s):
        return "BIGINT"
    if pd.api.types.is_float_dtype(s):
        return "DOUBLE"
    if s.dtype == object:  # DuckDB's BOOLEAN with NULLs, in older pandas
        vals = [v for v in s if not missing(v)]
        if vals and all(isinstance(v, bool) for v in vals):
            return "BOOLEAN"
    return "VARCHAR"


def from_series(name: str, s: pd.Series) -> Rows:
    """A one-column :class:`Rows` of ``s`` (values as pandas yields them)."""
    return Rows((name,), (_frame_type(s),), tuple((v,) for v in s))


def from_frame(df: pd.DataFrame) -> Rows:
    """``df`` as :class:`Rows`: types from the dtypes, values as pandas yields them (Python scalars, NA, NaN)."""
    # the columns by position (names may repeat); zip of the Series is what itertuples(name=None) does,
    # without an .iloc lookup per column twice (half the HTML page's conversion time, issue 25)
    series = [s for _, s in df.items()]
    return Rows(tuple(str(c) for c in df.columns), tuple(_frame_type(s) for s in series), tuple(zip(*series)))


def as_rows(table: Any) -> Rows:
    """``table`` as :class:`Rows` (a DataFrame converted once; None is the empty table)."""
    if table is None:
        return EMPTY
    if isinstance(table, Rows):
        return table
    return from_frame(table)


def all_rows(results: Mapping[str, Any]) -> dict[str, Rows]:
    """Every result of ``results`` as :class:`Rows` (the view's one input type)."""
    return {k: as_rows(v) for k, v in results.items()}
