"""Give kernels replayed from CUDA graphs the phases and shapes they had when launched op by op.

The alignment is an analysis and lives in ``queries/graph_map.sql``; this module only opens the
two traces, sets the SQL variables, runs the file and (for :func:`write_mapped`) substitutes the
mapped columns into a copy of the replay trace. Rows are identified by ``(kind, seq)``, unique
for GPU rows in both ingests (Kineto: index in ``traceEvents``; nsys: row order per table).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tracekit.atomic import atomic_path
from tracekit.errors import TraceError
from tracekit.ingest.sink import PARQUET_OPTIONS, ROW_GROUP
from tracekit.report import QUERY_DIR, run_file, set_params
from tracekit.store import connect, ensure_parquet, read_metadata

SQL_FILE = QUERY_DIR / "graph_map.sql"
#: Parquet key-value metadata key holding the counts of the mapping (JSON).
META_GRAPHMAP = b"tracekit.graphmap"
#: Columns ``write_mapped`` replaces in the replay trace.
MAPPED_COLUMNS = ("phase", "phase_path", "input_dims", "input_types", "args")


def _one_trace(path: Path) -> str:
    """The single trace name held by a converted file (a dataset of many traces is refused)."""
    names = list(read_metadata(path))
    if len(names) != 1:
        raise TraceError(path, f"expected one trace, found {len(names)}: give one converted file per side")
    return names[0]


def graph_map(
    replay: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    step_pattern: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
) -> dict[str, pd.DataFrame]:
    """Align the graph replays of ``replay`` with ``reference``; returns ``graph_map``,
    ``graph_map.summary`` and ``graph_map.rows`` (see the header of ``queries/graph_map.sql``).

    ``reference`` may be the replay trace itself: its eager kernels are then the reference.
    """
    rp, fp = ensure_parquet(replay), ensure_parquet(reference)
    if rp.is_dir() or fp.is_dir():
        raise TraceError(rp if rp.is_dir() else fp, "expected one trace file, not a folder")
    rname, fname = _one_trace(rp), _one_trace(fp)
    same = rp.resolve() == fp.resolve()
    if not same and rname == fname:
        raise TraceError(fp, f"replay and reference are both named {rname!r}: convert one with --trace NAME")
    con = connect([rp] if same else [rp, fp], con=con)
    con.execute("SET enable_progress_bar = false")
    set_params(con, {"step_pattern": step_pattern} if step_pattern else {})
    con.execute("SET VARIABLE graph_map_replay = ?", [rname])
    con.execute("SET VARIABLE graph_map_reference = ?", [fname])
    return run_file(con, SQL_FILE.stem)


def _replace(col: pa.ChunkedArray, idx: np.ndarray, values: pd.Series) -> pa.Array:
    """``col`` with rows ``idx`` set to ``values`` (None -> NULL)."""
    arr = np.array(col.to_pylist(), dtype=object)
    arr[idx] = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values]
    return pa.array(arr.tolist(), col.type)


def write_mapped(
    replay: str | os.PathLike[str],
    reference: str | os.PathLike[str],
    out: str | os.PathLike[str],
    step_pattern: str | None = None,
) -> dict[str, pd.DataFrame]:
    """Run :func:`graph_map` and write the replay trace to ``out`` with matched rows remapped.

    Same schema; matched rows get the new ``phase``/``phase_path``, the reference op's shapes and
    an ``@graphmap`` object in ``args``; every other row is copied unchanged. The counts go into
    the Parquet key-value metadata under ``tracekit.graphmap``. Written under a temporary name
    and renamed into place, so a failure leaves no output.
    """
    res = graph_map(replay, reference, step_pattern=step_pattern)
    summ = res["graph_map.summary"].iloc[0]
    if int(summ["replayed"]) == 0:
        raise TraceError(replay, "no GPU ops launched by a *GraphLaunch call: nothing to map")
    src = ensure_parquet(replay)
    table = pq.read_table(src)
    rows = res["graph_map.rows"]
    mapped = rows[rows["status"] == "matched"]
    key = pd.MultiIndex.from_arrays([table.column("kind").to_pandas(), table.column("seq").to_pandas()])
    if key.has_duplicates:
        dup = key[key.duplicated()][0]
        raise TraceError(src, f"rows are not unique by (kind, seq), e.g. {dup}: cannot write the mapping back")
    idx = key.get_indexer(pd.MultiIndex.from_arrays([mapped["kind"], mapped["seq"]]))
    if (idx < 0).any():
        raise TraceError(src, "a mapped row was not found again in the replay file")
    cols = {name: table.column(name) for name in table.column_names}
    for name in MAPPED_COLUMNS:
        cols[name] = _replace(cols[name], idx, mapped[name])
    md = dict(table.schema.metadata or {})
    md[META_GRAPHMAP] = json.dumps(
        {
            "reference": str(summ["reference_trace"]),
            "reference_file": str(reference),
            **{
                k: int(summ[k])
                for k in (
                    "graph_launches",
                    "distinct_sequences",
                    "replayed",
                    "matched",
                    "shaped",
                    "ambiguous",
                    "unmatched",
                )
            },
            "by_method": {str(k): int(v) for k, v in mapped["method"].value_counts().items()},
        },
        sort_keys=True,
    ).encode()
    new = pa.table([cols[n] for n in table.column_names], schema=table.schema.with_metadata(md))
    with atomic_path(out) as tmp:
        pq.write_table(new, tmp, row_group_size=ROW_GROUP, **PARQUET_OPTIONS)
    return res


def read_graphmap_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The ``tracekit.graphmap`` counts of a file written by :func:`write_mapped` (None if absent)."""
    raw = (pq.read_schema(path).metadata or {}).get(META_GRAPHMAP)
    return json.loads(raw) if raw else None


__all__ = ["graph_map", "read_graphmap_metadata", "write_mapped"]
