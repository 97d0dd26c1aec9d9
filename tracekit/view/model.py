"""The view model: result tables (:class:`~tracekit.rows.Rows`) turned into typed, formatted columns that a terminal or a page lays out.

Why a model between the SQL and the screen: the terminal and the HTML report must agree on how a
number reads (``70.63 ms``, ``12.5%``, tid ``7960`` without separators), and the layout code should
only decide widths, never formats. Every formatting rule lives here, once.

Column kinds come from the types each output of ``queries/`` declares (``-- @column name TYPE``, carried
by :class:`~tracekit.rows.Rows` as ``declared``: :func:`kind_of_declared`). A result with no header
(``tracekit sql`` on the user's own SQL, a DataFrame handed in) falls back on the naming conventions
(:func:`kind_of`): ``*_ns`` durations, ``*share*`` fractions 0..1, ``ts_ns``/``*_ts_ns`` timestamps,
``tid``/``pid``/``device``/``stream``/``step_index``... ids, integer counts, free text. Long-form tables
whose rows carry their own unit (``headline``: a ``unit`` column; ``steps.stats``: a ``metric`` named like
a column; declared ``VALUE``) are formatted row by row, with the unit in the cell.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.cells import cell_len

from tracekit.rows import Rows, as_rows, from_series, is_float, is_integer, is_numeric, missing

Kind = Literal["duration", "timestamp", "count", "number", "share", "id", "bool", "text"]
NUMERIC_KINDS = frozenset({"duration", "timestamp", "count", "number", "share", "id", "bool"})
NULL = "NULL"
ELLIPSIS = "…"

_ID_NAMES = frozenset(
    {
        "tid",
        "pid",
        "device",
        "stream",
        "step_index",
        "correlation",
        "rank",
        "row_order",
        "depth",
        "seq",
        "gid",
        "label_index",
        "index",
        "island",
        "rank_order",
    }
)
_TS_NAMES = frozenset(
    {
        "ts_ns",
        "window_start_ns",
        "window_end_ns",
        "first_ns",
        "last_ns",
        "gap_start_ns",
        "gap_end_ns",
        "start_ns",
        "end_ns",
    }
)
#: Duration units: (name, ns per unit), smallest first.
UNITS: tuple[tuple[str, float], ...] = (("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9))


def kind_of(name: str, sql_type: str | None = None, values: Sequence[Any] = ()) -> Kind:
    """The kind of column ``name``; its SQL type (and, for a DOUBLE, its ``values``) tell counts, numbers,
    booleans and text apart when the name does not."""
    n = name.lower()
    if n in _ID_NAMES or n.endswith(("_id", "_index", "_tid", "_pid", "_stream", "_device")):  # launch_tid, next_stream
        return "id"
    if n in _TS_NAMES or n.endswith("_ts_ns") or (n.endswith(("_start_ns", "_end_ns")) and "end_to_end" not in n):
        return "timestamp"
    if n.endswith("_ns") or "_ns_" in n or n == "ns":
        return "duration"
    if n == "share" or n.startswith("share_") or n.endswith("_share") or "_share_" in n:
        return "share"
    if sql_type is None:
        return "text"
    if sql_type == "BOOLEAN":
        return "bool"
    if is_integer(sql_type):
        return "count"
    if is_float(sql_type):
        vals = [float(v) for v in values if not missing(v)]
        if vals and all(math.isinf(v) or v.is_integer() for v in vals) and not n.startswith(("mean", "avg")):
            return "count"
        return "number"
    return "text"


#: The view's kind of each declared type whose kind does not depend on the SQL type and the values.
_KIND_OF_TYPE: dict[str, Kind] = {
    "DURATION": "duration",
    "TIMESTAMP": "timestamp",
    "SHARE": "share",
    "ID": "id",
    "BOOL": "bool",
    "TEXT": "text",
    "NOTE": "text",
    "FRAME": "text",
}


def kind_of_declared(declared: str, sql_type: str, values: Sequence[Any] = ()) -> Kind:
    """The kind of a column declared ``declared`` (``-- @column name TYPE``).

    COUNT, NUMBER, P_VALUE and VALUE share one rule, the one :func:`kind_of` applies to an unnamed number:
    integers are counts, and a float column whose values are all whole reads as a count too (a peak of
    989 TFLOP/s prints ``989``, not ``989.0``); MEAN (an average of counts) keeps its decimals.
    """
    if declared in _KIND_OF_TYPE:
        return _KIND_OF_TYPE[declared]
    if sql_type == "BOOLEAN":
        return "bool"
    if is_integer(sql_type):
        return "count"
    if not is_float(sql_type):
        return "text"
    vals = [float(v) for v in values if not missing(v)]
    if declared != "MEAN" and vals and all(math.isinf(v) or v.is_integer() for v in vals):
        return "count"
    return "number"


def header_of(name: str, kind: Kind, unit: str | None) -> str:
    """Column header: the SQL name with its ``ns`` token replaced by the unit shown (``wall_ns`` -> ``wall_ms``)."""
    if kind != "duration" or not unit:
        return name
    parts = name.split("_")
    if "ns" in parts:
        parts[parts.index("ns")] = unit
        return "_".join(parts)
    return f"{name}_{unit}"


_is_null = missing


def pick_unit(values_ns: Sequence[float]) -> tuple[str, float]:
    """The duration unit for a set of values: the largest unit in which their median magnitude is >= 1."""
    mags = sorted(abs(float(v)) for v in values_ns if not _is_null(v) and float(v) != 0)
    if not mags:
        return "ns", 1.0
    ref = mags[len(mags) // 2]
    idx = 0
    for i, u in enumerate(UNITS):
        if ref >= u[1]:
            idx = i
    # a long tail (166,131 us beside a 600 us median) reads better one unit up, while the median keeps 2 digits
    if idx + 1 < len(UNITS) and mags[-1] / UNITS[idx][1] >= 1e4 and ref / UNITS[idx + 1][1] >= 0.01:
        idx += 1
    return UNITS[idx]


def decimals_for(values: Sequence[float], sig: int = 4, cap: int = 3) -> int:
    """Decimals giving the median magnitude ``sig`` significant digits (3-4 for every value near it)."""
    mags = sorted(abs(float(v)) for v in values if not _is_null(v) and float(v) != 0)
    if not mags:
        return 0
    ref = mags[len(mags) // 2]
    digits = math.floor(math.log10(ref)) + 1
    return max(0, min(cap, sig - digits))


def fmt_fixed(v: float, decimals: int) -> str:
    """``v`` with ``decimals`` decimals and thousands separators (one separator style everywhere)."""
    return f"{v:,.{decimals}f}"


def fmt_duration(
    ns: Any, unit: tuple[str, float] | None = None, decimals: int | None = None, with_unit: bool = False
) -> str:
    """A duration in ns, in ``unit`` (picked from the value when None), 3-4 significant digits."""
    if _is_null(ns):
        return NULL
    ns = float(ns)
    unit = unit or pick_unit([ns])
    v = ns / unit[1]
    if decimals is None:
        decimals = 0 if unit[0] == "ns" else decimals_for([v])
    s = fmt_fixed(v, decimals)
    return f"{s} {unit[0]}" if with_unit else s


def fmt_share(v: Any) -> str:
    """A fraction as a percentage: ``0.1234`` -> ``12.3%``; small shares keep two significant digits."""
    if _is_null(v):
        return NULL
    p = float(v) * 100
    if p == 0:
        return "0%"
    if abs(p) >= 1:
        return f"{p:,.1f}%"
    if abs(p) >= 0.01:
        return f"{p:.2f}%"
    return "<0.01%" if p > 0 else "-<0.01%"


def fmt_count(v: Any, decimals: int = 0) -> str:
    """A count: integer with separators; a mean count gets ``decimals``."""
    if _is_null(v):
        return NULL
    f = float(v)
    if decimals == 0 and f == round(f):
        return f"{round(f):,}"
    return fmt_fixed(f, decimals)


def fmt_id(v: Any) -> str:
    """An id (tid, device, step index): digits only, never a thousands separator."""
    if _is_null(v):
        return NULL
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    return str(v)


def fmt_number(v: Any, decimals: int) -> str:
    """A plain number (FLOP/s, ratios): per-column decimals, separators."""
    if _is_null(v):
        return NULL
    if isinstance(v, bool):
        return str(v).lower()
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if abs(f) >= 1e15:
        return f"{f:.4g}"
    return fmt_fixed(f, decimals)


def fmt_p_value(v: Any) -> str:
    """A p-value: three decimals, or two significant digits below 0.001 (``3.4e-06``, never a bare ``0.000``)."""
    if _is_null(v):
        return NULL
    f = float(v)
    return f"{f:.3f}" if f >= 0.001 or f == 0 else f"{f:.1e}"


def fmt_bool(v: Any) -> str:
    return NULL if _is_null(v) else ("yes" if bool(v) else "no")


def fmt_text(v: Any) -> str:
    return NULL if _is_null(v) else str(v)


def fmt_in_unit(v: Any, unit: str) -> str:
    """One value of a long-form row whose unit is ``ns`` | ``count`` | ``share`` (unit written in the cell)."""
    if unit == "ns":
        return fmt_duration(v, with_unit=True)
    if unit == "share":
        return fmt_share(v)
    if _is_null(v):
        return NULL
    f = float(v)
    return fmt_count(f, 0 if f == round(f) else decimals_for([f], sig=4, cap=3))


def elide(text: str, width: int) -> str:
    """``text`` cut to ``width`` terminal cells in the MIDDLE, keeping both ends (``execute_…/step[DECODE bs=32]``).

    Both ends matter: a phase path differs at its leaf, a kernel name at its template arguments.
    The tail gets the extra cell, since leaves are at the end of paths.
    """
    if cell_len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    head_w = keep // 2
    tail_w = keep - head_w
    head, tail = "", ""
    for ch in text:
        if cell_len(head + ch) > head_w:
            break
        head += ch
    for ch in reversed(text):
        if cell_len(ch + tail) > tail_w:
            break
        tail = ch + tail
    return head + ELLIPSIS + tail


@dataclass
class Column:
    """One column ready to lay out: header, kind, formatted cells (full, unelided text)."""

    name: str
    header: str
    kind: Kind
    cells: list[str]
    hover: list[str] | None = None  # per cell, the full text shown on hover in HTML (a kernel's full name)
    declared: str | None = None  # the type its query declares (None: a result with no header)

    @property
    def numeric(self) -> bool:
        """Right-aligned, never elided nor wrapped."""
        return self.kind in NUMERIC_KINDS

    def natural_width(self) -> int:
        return max([cell_len(self.header)] + [cell_len(c) for c in self.cells])


@dataclass
class Table:
    """A titled table, or, when it has no rows, one sentence saying why (``empty``)."""

    key: str
    title: str
    columns: list[Column] = field(default_factory=list)
    total_rows: int = 0
    empty: str | None = None
    indent: list[int] | None = None  # per row, depth of the first column (phase trees)
    more: str = "--limit N, --json, or tracekit sql"  # where the rows left out can be seen

    @property
    def shown_rows(self) -> int:
        return len(self.columns[0].cells) if self.columns else 0


#: Why a section can be empty, in words a user can act on (key prefix -> sentence).
EMPTY_REASONS: dict[str, str] = {
    "kernels": "no GPU ops in the trace (CPU-only capture)",
    "launch": "no kernel launches (needs GPU ops and CUDA/HIP runtime rows)",
    "syncs": "no sync calls captured (needs CUDA runtime rows)",
    "gpu_idle": "no GPU ops, so no GPU idle time to classify",
    "steps": "no step matched the step pattern (set --step-pattern)",
    "lm_head": "no lm_head found by any method",
    "flops": "no matmul/attention ops with shapes (needs record_shapes=True) or no GPU time",
    "trust": "no trust flag raised",
    "phase_time": "no ranges and no GPU ops",
    "headline": "no step matched the step pattern (set --step-pattern)",
    "headline.notes": "no converter notes and every trace has steps",
    "headline.idle": "no GPU idle time inside the steps' GPU spans (no GPU ops, or no step matched)",
    "steps.median_step_ops": "no step matched the step pattern (set --step-pattern)",
    "graph_map": "no CUDA graph launches to map",
}


def empty_reason(key: str) -> str:
    """The sentence for an empty table ``key`` (most specific prefix wins)."""
    parts = key.split(".")
    for i in range(len(parts), 0, -1):
        k = ".".join(parts[:i])
        if k in EMPTY_REASONS:
            return EMPTY_REASONS[k]
    return "no rows"


def _row_unit(row: Mapping[str, Any]) -> str | None:
    """The unit of a long-form row: its ``unit`` column, or the kind its ``metric`` name implies."""
    u = row.get("unit")
    if isinstance(u, str) and u in ("ns", "count", "share"):
        return u
    m = row.get("metric")
    if isinstance(m, str):
        k = kind_of(m)
        return {"duration": "ns", "share": "share"}.get(k, "count")
    return None


#: Without a header, the columns that are a NOTE (a sentence explaining its row) by their name.
NOTE_NAMES = frozenset({"note", "notes", "message"})

#: Without a header, the columns that name a Python frame, `file(line): function` (queries/lib/frames.sql;
#: declared FRAME). They are kept whole in --json and the HTML table; the terminal shows the file's last two
#: path components (:func:`short_frame`).
FRAME_NAMES = frozenset({"user_frame"})


def is_note(col: Column) -> bool:
    """A sentence explaining its row: a footnote marker in the cell, the sentence once under the table."""
    return col.declared == "NOTE" if col.declared else col.name in NOTE_NAMES


def is_frame(col: Column) -> bool:
    """A Python frame (the terminal shortens its path, the page wraps it whole)."""
    return col.declared == "FRAME" if col.declared else col.name in FRAME_NAMES


_FRAME = re.compile(r"^(.*)\((\d+)\): (.*)$", re.S)


def short_frame(text: str, parts: int = 2) -> str:
    """``text`` with its file path cut to the last ``parts`` components, for the terminal:
    ``/srv/app/sglang/srt/model_executor/cuda_graph_runner.py(276): f`` -> ``model_executor/cuda_graph_runner.py(276): f``.

    Anything that is not ``file(line): function`` (NULL, a built-in) comes back unchanged.
    """
    m = _FRAME.match(text)
    if m is None:
        return text
    path = m.group(1)
    seps = [i for i, ch in enumerate(path) if ch in "/\\"]
    if len(seps) < parts:
        return text
    return f"{path[seps[-parts] + 1 :]}({m.group(2)}): {m.group(3)}"


def footnote(notes: list[str], text: str) -> int | None:
    """The footnote number of ``text`` (1-based), appending it to ``notes`` when new; None for no text.

    A note column repeats one sentence on many rows (the reason a value is NULL): the terminal and the
    page show ``[n]`` in the cell and each sentence once under the table."""
    if not text:
        return None
    if text not in notes:
        notes.append(text)
    return notes.index(text) + 1


#: Value columns of long-form tables (formatted per row with the row's unit).
_LONG_VALUES = ("mean", "p50", "p99", "min", "max", "value", "a", "b", "delta")


def column(
    name: str,
    values: Sequence[Any],
    kind: Kind | None = None,
    unit: tuple[str, float] | None = None,
    decimals: int | None = None,
    sql_type: str | None = None,
    declared: str | None = None,
) -> Column:
    """Format one column's values as a :class:`Column` (unit and decimals picked once for the whole column).

    ``sql_type``: the column's DuckDB type; without it ``values`` must be a pandas Series (its dtype says).
    ``declared``: the type the query's header declares (formats it); None: the column's name says (:func:`kind_of`).
    """
    if sql_type is None and hasattr(values, "dtype"):
        one = from_series(name, values)
        values, sql_type = one.col(name), one.types[0]
    vals = list(values)
    if kind is None:
        kind = kind_of_declared(declared, sql_type or "", vals) if declared else kind_of(name, sql_type, vals)
    cells = _cells(name, kind, vals, unit, decimals, declared)
    if isinstance(cells, Column):
        cells.declared = declared
        return cells
    return Column(name, name, kind, cells, declared=declared)


def _cells(
    name: str, kind: Kind, vals: list[Any], unit: tuple[str, float] | None, decimals: int | None, declared: str | None
) -> Column | list[str]:
    """The formatted cells of a column of ``kind`` (a whole :class:`Column` for durations: their header names the unit)."""
    if kind == "duration":
        mags = sorted(abs(float(v)) for v in vals if not _is_null(v) and float(v) != 0)
        if unit is None and mags and mags[-1] > 1000 * mags[len(mags) // 2] and mags[-1] >= 1e3:
            # values over more than 3 decades (89 ms beside 5 us): each cell in its own unit
            hdr = "_".join(p for p in name.split("_") if p != "ns") or name
            return Column(name, hdr, kind, [fmt_duration(v, with_unit=True) for v in vals])
        unit = unit or pick_unit(vals)
        dec = (
            decimals
            if decimals is not None
            else (0 if unit[0] == "ns" else decimals_for([float(v) / unit[1] for v in vals if not _is_null(v)]))
        )
        return Column(name, header_of(name, kind, unit[0]), kind, [fmt_duration(v, unit, dec) for v in vals])
    if kind in ("timestamp", "id"):
        return [fmt_id(v) for v in vals]
    if kind == "share":
        return [fmt_share(v) for v in vals]
    if kind == "count":
        return [fmt_count(v) for v in vals]
    p_value = declared == "P_VALUE" if declared else (name == "p_value" or name.endswith("_p_value"))
    if kind == "number" and p_value:
        return [fmt_p_value(v) for v in vals]
    if kind == "number":
        dec = decimals_for([v for v in vals if not _is_null(v) and not isinstance(v, str)])
        return [fmt_number(v, dec) for v in vals]
    if kind == "bool":
        return [fmt_bool(v) for v in vals]
    if (declared == "NOTE") if declared else (name in NOTE_NAMES):
        return [
            "" if _is_null(v) else str(v) for v in vals
        ]  # a note explains the rows that have one; NULL elsewhere is noise
    return [fmt_text(v) for v in vals]


def table(
    key: str,
    rows: Any,
    *,
    title: str | None = None,
    limit: int | None = None,
    drop: Sequence[str] = (),
    indent_by: str | None = None,
    empty: str | None = None,
    shared_unit: bool = False,
) -> Table:
    """The view of result ``key``: typed columns of its first ``limit`` rows, or the reason it is empty.

    ``rows``: a :class:`Rows` (or a DataFrame, converted once). ``drop`` removes columns (a ``trace``
    column holding one value is dropped by the caller), ``indent_by`` names an integer column giving each
    row's depth (kept out of the columns); ``shared_unit`` shows every duration column in one unit
    (columns meant to be compared).
    """
    title = title or key
    rs: Rows = as_rows(rows)
    if not len(rs):
        return Table(key, title, empty=empty or empty_reason(key))
    total = len(rs)
    view = rs.head(limit)
    indent = (
        [int(d) if not _is_null(d) else 0 for d in view.col(indent_by)] if indent_by and indent_by in view else None
    )
    cols = [c for c in view.columns if c not in drop and c != indent_by]
    declared = {c: view.declared_of(c) for c in view.columns}
    if view.declared:  # a column declared VALUE is in the unit its row names
        long_form = "VALUE" in view.declared
        per_row = {c for c in view.columns if declared[c] == "VALUE"}
    else:
        long_form = any(c in view for c in ("unit", "metric")) and any(c in view for c in _LONG_VALUES)
        per_row = set(_LONG_VALUES)
    out: list[Column] = []
    unit, dec = None, None
    if shared_unit:
        durs = [
            v
            for c in cols
            if (declared[c] == "DURATION" if view.declared else kind_of(c) == "duration")
            for v in view.col(c)
        ]
        unit = pick_unit(durs)
        dec = 0 if unit[0] == "ns" else decimals_for([float(v) / unit[1] for v in durs if not _is_null(v)])
    if long_form:
        units = [_row_unit(r) for r in view.records()]
    short = "short_name" in cols and "name" in cols  # kernels: the readable name shown, the full one on hover
    if short:
        cols = [c for c in cols if c != "short_name"]
    for c in cols:
        if short and c == "name":
            full = [fmt_text(v) for v in view.col("name")]
            shown = [fmt_text(s if not _is_null(s) else f) for s, f in zip(view.col("short_name"), view.col("name"))]
            out.append(Column("name", "name", "text", shown, hover=full, declared=declared["name"]))
            continue
        if long_form and c in per_row and is_numeric(view.type_of(c)):
            out.append(
                Column(
                    c,
                    c,
                    "number",
                    [fmt_in_unit(v, u or "count") for v, u in zip(view.col(c), units)],
                    declared=declared[c],
                )
            )
        elif long_form and c == "unit":
            continue  # the unit is written in each value cell
        else:
            out.append(column(c, view.col(c), unit=unit, decimals=dec, sql_type=view.type_of(c), declared=declared[c]))
    return Table(key, title, out, total, indent=indent)


def plural(n: Any, word: str) -> str:
    """``1 step`` / ``4 steps`` / ``1,029 steps``: a count agrees with its noun and has thousands separators, as
    every other count of the report (never an id: those are printed bare)."""
    shown = f"{n:,}" if isinstance(n, int) and not isinstance(n, bool) else f"{n}"
    return f"{shown} {word}{'' if n == 1 else 'es' if word.endswith('s') else 's'}"
