"""Helpers of the determinism tests: a shuffled copy of a converted trace, and result comparison.

A result is deterministic when it is a function of the trace's rows alone: neither the order an
engine reads them in (a shuffled copy, other row groups) nor the other traces of the dataset
(one trace alone vs inside a dataset) may change a single value.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def shuffled_copy(src: Path, dst: Path, seed: int = 7, row_group: int = 997) -> Path:
    """Write ``src``'s rows in a random order (same schema and footer metadata) in small row groups."""
    t = pq.read_table(src)
    if "row_id" not in t.column_names:  # a file from before schema version 2: its row ids are positions
        t = t.append_column("row_id", pa.array(np.arange(t.num_rows, dtype=np.int64)))
    perm = np.random.default_rng(seed).permutation(t.num_rows)
    pq.write_table(t.take(perm), dst, row_group_size=row_group)
    return dst


def _cell(v: Any) -> Any:
    """A value in a form that compares exactly and sorts (NULL/NaN as None, numpy scalars as Python)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(_cell(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _cell(x)) for k, x in v.items()))
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            return _cell(v.item())
        except (ValueError, AttributeError):
            pass
    return v


def rows(df: pd.DataFrame, trace: str | None = None) -> list[tuple[Any, ...]]:
    """The rows of ``df`` (those of ``trace`` if given and the frame has a ``trace`` column), in output order."""
    if trace is not None and "trace" in df.columns:
        df = df[df["trace"] == trace]
    return [tuple(_cell(v) for v in r) for r in df.itertuples(index=False, name=None)]


def differences(a: Mapping[str, pd.DataFrame], b: Mapping[str, pd.DataFrame], trace: str) -> list[str]:
    """Outputs whose rows for ``trace`` differ between two result sets (with the first differing row)."""
    out = []
    for name in sorted(set(a) | set(b)):
        if name not in a or name not in b:
            out.append(f"{name}: only in one result set")
            continue
        if list(a[name].columns) != list(b[name].columns):
            out.append(f"{name}: columns differ")
            continue
        ra, rb = rows(a[name], trace), rows(b[name], trace)
        if ra != rb:
            if sorted(map(repr, ra)) == sorted(map(repr, rb)):
                out.append(f"{name}: same rows, different order")
                continue
            first = next((i for i, (x, y) in enumerate(zip(ra, rb)) if x != y), min(len(ra), len(rb)))
            out.append(f"{name}: {len(ra)} vs {len(rb)} rows; first difference at row {first}: "
                       f"{ra[first] if first < len(ra) else None!r} vs {rb[first] if first < len(rb) else None!r}")
    return out
