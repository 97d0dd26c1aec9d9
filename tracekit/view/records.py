"""``tracekit report --json``: result tables as JSON-safe records, one key per analysis, plus the warnings.

Why in the view: the document is a presentation of the engine's result tables, like the terminal and the page
(tests/test_layers.py: the engine never imports the view).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tracekit.rows import Rows, all_rows, from_frame
from tracekit.view.warnings import warnings_of

if TYPE_CHECKING:
    import pandas as pd


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        try:
            return _jsonable(v.item())
        except (ValueError, AttributeError):
            pass
    pd = sys.modules.get("pandas")  # pandas' markers can only come from a loaded pandas
    if pd is not None:
        if v is pd.NA or v is pd.NaT:
            return None
        if isinstance(v, pd.Timestamp):
            return v.isoformat()
    return v


def rows_records(rows: Rows) -> list[dict[str, Any]]:
    """JSON-safe records (NULL/NaN/NA -> null, numpy scalars -> Python)."""
    cols = rows.columns
    return [{k: _jsonable(v) for k, v in zip(cols, r)} for r in rows.data]


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records of a DataFrame (NaN/NA -> null, numpy scalars -> Python)."""
    return rows_records(from_frame(df))


def to_json(results: Mapping[str, Any]) -> dict[str, Any]:
    """One top-level key per analysis (``{table: records}``) plus ``summary`` and ``warnings``."""
    res = all_rows(results)
    doc: dict[str, Any] = {}
    for key, rs in res.items():
        analysis, _, sub = key.partition(".")
        doc.setdefault(analysis, {})[sub or analysis] = rows_records(rs)
    doc["warnings"] = warnings_of(res)
    return doc
