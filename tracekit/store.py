"""Open converted traces in DuckDB and read their metadata.

``connect`` accepts Parquet files, folders of them (a dataset), and raw traces
(converted on the fly and cached next to the input as ``<name>.tracekit.parquet``,
or under ``$XDG_CACHE_HOME/tracekit`` when that folder is read-only). It
registers the views every query in ``queries/`` relies on:

- ``events``: every row of every trace;
- ``kernels``: kind in kernel / memcpy / memset;
- ``runtime``: kind = runtime;
- ``ranges``: kind = range, except the token-count events (``tracekit.count key=value ...``, see annotate.count): never a phase;
- ``trace_devices``: trace, device, name, sm_count, arch, id_source, gpu_index of the GPUs of each trace (see TRACE_DEVICES);
- ``trace_notes``: trace, note: what the converter had to skip, salvage or replace (truncation,
  bad bytes), so that the report can put it at the top as a warning (queries/headline.sql).
- ``trace_ranks``: trace, rank, world_size as each trace's metadata states them (NULL when unstated);
- ``trace_capture``: trace, activities (what ``tracekit capture`` recorded; NULL for other traces).

``connect_runs`` registers the same views over several labelled runs, each with a ``label`` column.

Paths are literal: DuckDB's ``read_parquet`` globs every path it is given, so ``run[1].parquet``
would read ``run1.parquet`` and ``star*.parquet`` every ``star...`` file. Each named file is passed
absolute with ``[``, ``*`` and ``?`` escaped (:func:`literal`); only a folder is expanded (to the
Parquet files under it). Every Parquet file is checked before DuckDB sees it (:func:`check_parquet`),
so an empty, truncated, random or foreign file is a one-line error naming it.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import duckdb

from tracekit.errors import TraceError, refuse_special
from tracekit.rawcache import RAW_SUFFIXES, cache_path  # moved there: convert imports no DuckDB

VIEWS = {
    "kernels": "SELECT * FROM events WHERE kind IN ('kernel', 'memcpy', 'memset')",
    "runtime": "SELECT * FROM events WHERE kind = 'runtime'",
    "ranges": "SELECT * FROM events WHERE kind = 'range' AND NOT starts_with(name, 'tracekit.count ')",
}
#: ``trace_devices``: the GPUs of each trace, in the id space of the GPU ops' ``device`` column.
#: Rows of two sources (``id_source``): ``metadata``, one per GPU the files' ``tracekit.traces``
#: metadata lists (Kineto deviceProperties, or torch 1.8's computeProperties: id/name/numSms (old:
#: multiProcessorCount)/gcnArchName/totalGlobalMem; nsys TARGET_INFO_*: id/name/sm_count; only Parquet
#: footers are read), and ``gpu_op``, one per device id that GPU ops use but no listed GPU has. That
#: happens when the trace lists no GPU at all (old or trimmed traces: name, sm_count and arch NULL,
#: ``gpu_index`` the id itself, as nothing renumbers it), and on ROCm: roctracer writes the HSA agent
#: id, which numbers the host's CPU agents first (GPU 0 is 2 on a two-socket host), while
#: deviceProperties list HIP device indices 0..N-1. Such a row takes the name, sm_count and arch of
#: the listed GPUs when they are all one model (the usual node), else NULL: which listed GPU it is
#: cannot be told from the trace. ``name``: the listed name; where it is empty or ROCm's generic "AMD
#: Radeon Graphics" and the LLVM target (gcnArchName) is known, the product named by the target and
#: CU count / memory as in AMD's "GPU specifications" table (rocm.docs.amd.com, reference/gpu-specs):
#: gfx90a 110 CUs MI250X, 104 CUs MI250/MI210 (one GCD each, same per-GCD peaks); gfx942 304 CUs
#: MI300X (192 GiB) or MI325X (256 GiB), 228 CUs MI300A; gfx950 256 CUs MI350X/MI355X.
#: ``gpu_index``: the listed GPU (the deviceProperties / TARGET_INFO id that ``tracekit info`` prints) that
#: the GPU ops of id ``device`` ran on: the one device numbering of every page and line (the HTML
#: timeline's GPU lanes). When every id GPU ops use is listed, it is ``device``. When some is not, the
#: trace's op ids are HSA agent ids (every CPU agent is numbered before the GPUs, in order), so
#: ``gpu_index = device - c`` with ``c`` the count of CPU agents, which the trace does not state: ``c``
#: is known when one value puts every used id on the listed range, i.e. when max(used) - max(listed) =
#: min(used) - min(listed) (one listed GPU and one used id: agent 9 is GPU 0; eight listed and ops on
#: agents 2..9: c = 2), else ``gpu_index`` is NULL (eight listed, ops on agent 9 only: GPU 7 with two CPU
#: agents, GPU 0 with nine). A trace whose used ids are all listed keeps them, though on ROCm a listed
#: id may itself be an agent id (the MI250 trace in ../shared: ops on 2 of listed 0..3): nothing in the
#: trace tells the two apart.
TRACE_DEVICES = """
WITH _listed AS (
    SELECT t.key AS trace, TRY_CAST(json_extract_string(d.value, '$.id') AS INTEGER) AS device,
           nullif(trim(json_extract_string(d.value, '$.name')), '') AS listed_name,
           nullif(split_part(json_extract_string(d.value, '$.gcnArchName'), ':', 1), '') AS arch,
           TRY_CAST(coalesce(json_extract_string(d.value, '$.numSms'), json_extract_string(d.value, '$.sm_count'),
                             json_extract_string(d.value, '$.multiProcessorCount')) AS INTEGER) AS sm_count,
           TRY_CAST(json_extract_string(d.value, '$.totalGlobalMem') AS BIGINT) AS mem
    FROM parquet_kv_metadata({files}) m,
         json_each(decode(m.value)::JSON) t,
         json_each(json_extract(t.value, '$.devices')) d
    WHERE decode(m.key) = 'tracekit.traces' AND json_type(json_extract(t.value, '$.devices')) = 'ARRAY'
), _named AS (
    SELECT trace, device, sm_count, arch,
           CASE WHEN (listed_name IS NULL OR listed_name = 'AMD Radeon Graphics') AND from_arch IS NOT NULL THEN from_arch
                ELSE listed_name END AS name
    FROM (SELECT *, CASE
            WHEN arch = 'gfx90a' AND sm_count = 110 THEN 'AMD Instinct MI250X (gfx90a, 1 GCD)'
            WHEN arch = 'gfx90a' AND sm_count = 104 THEN 'AMD Instinct MI250 (gfx90a, 1 GCD; or MI210)'
            WHEN arch = 'gfx942' AND sm_count = 304 AND mem >= 257698037760 THEN 'AMD Instinct MI325X (gfx942)'  -- >= 240 GiB: MI325X 256, MI300X 192
            WHEN arch = 'gfx942' AND sm_count = 304 THEN 'AMD Instinct MI300X (gfx942)'
            WHEN arch = 'gfx942' AND sm_count = 228 THEN 'AMD Instinct MI300A (gfx942)'
            WHEN arch = 'gfx950' THEN 'AMD Instinct MI350X/MI355X (gfx950)'
            WHEN arch IS NOT NULL THEN 'AMD ' || arch END AS from_arch FROM _listed)
), _one AS (
    SELECT trace, any_value(name) AS name, any_value(sm_count) AS sm_count, any_value(arch) AS arch
    FROM _named GROUP BY trace
    HAVING count(DISTINCT coalesce(name, '')) = 1 AND count(DISTINCT coalesce(sm_count, -1)) = 1
), _used AS (
    SELECT DISTINCT trace, device FROM read_parquet({files}, union_by_name = true)
    WHERE kind IN ('kernel', 'memcpy', 'memset') AND device IS NOT NULL
), _agent AS (  -- traces whose GPU ops use an id no listed GPU has: their op ids are HSA agent ids
    SELECT u.trace, CASE WHEN max(u.device) - l.lmax = min(u.device) - l.lmin AND min(u.device) - l.lmin > 0
                         THEN min(u.device) - l.lmin END AS offset
    FROM _used u JOIN (SELECT trace, min(device) AS lmin, max(device) AS lmax FROM _named GROUP BY trace) l USING (trace)
    GROUP BY u.trace, l.lmin, l.lmax
    HAVING bool_or(NOT EXISTS (SELECT 1 FROM _named n WHERE n.trace = u.trace AND n.device = u.device))
)
SELECT n.trace, n.device, n.name, n.sm_count, n.arch, 'metadata' AS id_source,
       CASE WHEN a.trace IS NULL OR n.device NOT IN (SELECT device FROM _used u WHERE u.trace = n.trace) THEN n.device
            ELSE n.device - a.offset END AS gpu_index
FROM _named n LEFT JOIN _agent a USING (trace)
UNION ALL
SELECT u.trace, u.device, o.name, o.sm_count, o.arch, 'gpu_op',
       CASE WHEN u.trace IN (SELECT trace FROM _named) THEN u.device - a.offset ELSE u.device END
FROM _used u LEFT JOIN _one o USING (trace) LEFT JOIN _agent a USING (trace)
WHERE NOT EXISTS (SELECT 1 FROM _named n WHERE n.trace = u.trace AND n.device = u.device)"""
#: ``trace_notes``: one row per (trace, note) of the files' ``tracekit.traces`` metadata (the converter's notes).
TRACE_NOTES = """
SELECT t.key AS trace, json_extract_string(n.value, '$') AS note
FROM parquet_kv_metadata({files}) m,
     json_each(decode(m.value)::JSON) t,
     json_each(json_extract(t.value, '$.notes')) n
WHERE decode(m.key) = 'tracekit.traces' AND json_type(json_extract(t.value, '$.notes')) = 'ARRAY'"""
#: ``trace_ranks``: one row per trace: the distributed rank and world size its metadata states (Kineto
#: ``distributedInfo``; NULL for nsys and single-process traces). queries/collectives.sql numbers ranks with it.
TRACE_RANKS = """
SELECT t.key AS trace, TRY_CAST(json_extract_string(t.value, '$.rank') AS INTEGER) AS rank,
       TRY_CAST(json_extract_string(t.value, '$.world_size') AS INTEGER) AS world_size
FROM parquet_kv_metadata({files}) m, json_each(decode(m.value)::JSON) t
WHERE decode(m.key) = 'tracekit.traces'"""

#: ``trace_capture``: one row per trace: ``activities``, the profiler activities ``tracekit capture`` recorded
#: (``CPU,CUDA``; ``CPU`` when that torch had no CUDA), from the ``tracekit_capture`` key the capture bootstrap
#: adds to the trace (kept in the metadata's ``extra``); NULL for a trace not made by ``tracekit capture``.
#: A CPU-only run captured with CUDA on needs no advice to turn CUDA on (queries/trust.sql, headline.sql).
TRACE_CAPTURE = """
SELECT t.key AS trace, json_extract_string(t.value, '$.extra.tracekit_capture') AS activities
FROM parquet_kv_metadata({files}) m, json_each(decode(m.value)::JSON) t
WHERE decode(m.key) = 'tracekit.traces'"""


#: The views over the files' trace-level metadata, by name (each a template of ``{files}``, a list literal).
META_VIEWS = {"trace_devices": TRACE_DEVICES, "trace_notes": TRACE_NOTES, "trace_ranks": TRACE_RANKS,
              "trace_capture": TRACE_CAPTURE}

#: Columns a file must have to be read as a tracekit trace (the rest may be missing in older files).
REQUIRED_COLUMNS = ("trace", "kind", "name", "ts_ns", "dur_ns")


def ensure_parquet(path: str | os.PathLike[str]) -> Path:
    """Parquet for ``path``: itself if already Parquet, else a cached conversion (refreshed when the source is newer)."""
    from tracekit.atomic import converting, note_input

    p = Path(path)
    if not p.exists():
        raise TraceError(p, "no such file or folder")
    refuse_special(p)
    note_input(p)
    if p.is_dir() or p.suffix == ".parquet":
        return p
    with open(p, "rb") as f:
        if f.read(4) == b"PAR1":
            return p
    cached = cache_path(p)
    with _cache_lock:
        lock = _cache_locks.setdefault(str(cached), threading.Lock())
    # One conversion per cache file at a time: `compare` opens its runs on threads, and a second thread converting
    # the same raw file would write the cache the first has by then read (refused: tracekit.atomic.refuse_read).
    with lock:
        if cached.exists() and cached.stat().st_mtime >= p.stat().st_mtime:
            return cached
        from tracekit.ingest import convert

        with converting(p, cached):
            convert(p, cached)
    return cached


_cache_lock = threading.Lock()
_cache_locks: dict[str, threading.Lock] = {}


def parquet_files(paths: Iterable[str | os.PathLike[str]], check: bool = True) -> list[str]:
    """All Parquet files behind ``paths`` (folders are read recursively).

    A folder with no Parquet in it but raw traces (a download of per-rank ``.json.gz``) stands
    for those traces: each is converted once and cached, as a raw file given directly is.
    ``check`` validates each file up front (:func:`check_parquet`), so one bad file is named before
    DuckDB reads anything; the per-trace executors pass False and let each task check its own file,
    so one bad file fails alone.
    """
    from tracekit.atomic import note_input

    files: list[str] = []
    for path in paths:
        note_input(path, given=True)
        p = ensure_parquet(path)
        if p.is_dir():
            # Paths under a `_` or `.` name are not events (tracekit.dataset's sidecar, Spark's _SUCCESS, temp files).
            found = sorted(str(f) for f in p.rglob("*.parquet")
                           if not any(x[:1] in ("_", ".") for x in f.relative_to(p).parts))
            if not found:
                raw = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith(".")
                             and f.name.endswith(RAW_SUFFIXES) and not f.name.endswith(".proc.json"))
                if not raw:
                    raise TraceError(p, "folder holds no .parquet files and no raw traces (.json, .json.gz, .sqlite, .nsys-rep)")
                found = [str(ensure_parquet(f)) for f in raw]
            files += found
        else:
            files.append(str(p))
    for f in files:
        note_input(f)
    if check:
        for f in files:
            check_parquet(f)
    return files


def check_parquet(path: str | os.PathLike[str]) -> None:
    """Raise :class:`TraceError` naming ``path`` unless it is a complete Parquet file with tracekit's columns.

    Reads only the first and last bytes and the footer (what DuckDB would choke on first, with a
    traceback): too small, no ``PAR1`` magic, truncated (no footer), unreadable footer,
    or a missing core column (another program's Parquet).
    """
    p = Path(path)
    refuse_special(p)  # a FIFO named x.parquet inside a dataset folder would block the open below
    try:
        size = p.stat().st_size
        with open(p, "rb") as f:
            head = f.read(4)
            f.seek(max(size - 4, 0))
            tail = f.read(4)
    except OSError as e:
        raise TraceError(p, f"cannot read: {e.strerror or e}") from None
    if size == 0:
        raise TraceError(p, "empty file, not a Parquet file")
    if head != b"PAR1":
        raise TraceError(p, f"not a Parquet file (starts with {head!r}); raw traces are .json, .json.gz or .sqlite")
    if size < 12 or tail != b"PAR1":
        raise TraceError(p, f"truncated Parquet file ({size:,} bytes, no footer): the write did not finish; convert the trace again")
    try:
        names = [r[0] for r in _footer_query(p, "SELECT name FROM parquet_schema({f})")]
    except duckdb.Error as e:
        raise TraceError(p, f"corrupt Parquet footer ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    # Not the tracekit.traces metadata: a Parquet file derived with DuckDB's COPY (a filtered slice) has
    # none and is still readable; only its trace-level facts (GPUs, notes) are then unknown.
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise TraceError(p, f"not a tracekit Parquet file (no column {', '.join(missing)}): convert the raw trace with `tracekit convert`")
    raw = _traces_meta_raw(p)
    if raw:  # absent is fine (see above); present, it must parse: the views read it
        parse_traces_meta(raw, p)


_GLOB_CHARS = re.compile(r"[\[*?]")


def literal(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute with DuckDB's glob characters escaped (``[`` -> ``[[]``): read as named, not matched."""
    return _GLOB_CHARS.sub(lambda m: f"[{m[0]}]", os.path.abspath(path))


def _files_sql(files: Iterable[str]) -> str:
    """A DuckDB list literal of ``files``, each read literally."""
    return "[" + ", ".join(_lit(literal(f)) for f in files) + "]"


def files_sql(files: Iterable[str]) -> str:
    """:func:`_files_sql` for the other modules that build SQL text over files (tracekit.dataset)."""
    return _files_sql(files)


def _lit(text: str) -> str:
    """SQL string literal (``'`` doubled; DuckDB reads no backslash escapes in a plain literal)."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """``name`` as a quoted SQL identifier (``"`` doubled): what SQL text built from data uses for names.

    Names from files (a results folder's sub-folder names, tracekit.dataset) are untrusted: a folder named
    ``x" AS SELECT 1; COPY ... TO 'f'; CREATE VIEW "y`` must name a view, not run a COPY (issue 23).
    """
    return '"' + name.replace('"', '""') + '"'


def _events_select(files: list[str]) -> str:
    """``SELECT`` of every row of ``files`` with a ``row_id`` on every row.

    Files from before schema version 2 have no ``row_id`` column; for their rows it is the row's position
    in its file (DuckDB's ``file_row_number``), the number the converter would have written there.
    """
    lst = _files_sql(files)
    # One footer query over all files, with DuckDB (no pyarrow import on the sql/info path: start-up, issue 14).
    (n_with,) = _footer_query(lst, "SELECT count(DISTINCT file_name) FROM parquet_schema({f}) WHERE name = 'row_id'",
                              is_list=True)[0]
    every, some = n_with == len(set(files)), n_with > 0
    if every:
        return f"SELECT * FROM read_parquet({lst}, union_by_name = true)"
    drop = "file_row_number, row_id" if some else "file_row_number"
    return (f"SELECT * EXCLUDE ({drop}), {'coalesce(row_id, file_row_number)' if some else 'file_row_number'} AS row_id "
            f"FROM read_parquet({lst}, union_by_name = true, file_row_number = true)")


def _register(con: duckdb.DuckDBPyConnection, events: str, meta: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """The views every query reads: ``events`` (its SELECT given), the kind views, and the metadata views
    (:data:`META_VIEWS`: ``trace_devices``, which queries/flops.sql picks peaks by, ``trace_notes``,
    ``trace_ranks``) with the SELECT given for each."""
    con.execute(f"CREATE OR REPLACE VIEW events AS {events}")
    for name, body in {**VIEWS, **meta}.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    return con


def connect(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
            con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``events``/``kernels``/``runtime``/``ranges`` views over ``paths``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = parquet_files(paths)
    lst = _files_sql(files)
    return _register(con or duckdb.connect(), _events_select(files), {n: t.format(files=lst) for n, t in META_VIEWS.items()})


def connect_runs(runs: Iterable[tuple[str, Iterable[str | os.PathLike[str]]]],
                 con: duckdb.DuckDBPyConnection | None = None) -> duckdb.DuckDBPyConnection:
    """Like :func:`connect` over several labelled runs: ``events`` gains a ``label`` column.

    Two runs may hold traces with the same name (the same script run twice), so ``trace``
    alone cannot tell them apart; ``label`` (e.g. ``k=2``, or ``A`` / ``B``) can.
    """
    parts: list[str] = []
    meta: dict[str, list[str]] = {n: [] for n in META_VIEWS}
    for label, paths in runs:
        files = parquet_files(paths)
        lst = _files_sql(files)
        parts.append(f"SELECT *, {_lit(label)} AS label FROM ({_events_select(files)})")
        for n, t in META_VIEWS.items():
            meta[n].append(f"SELECT *, {_lit(label)} AS label FROM ({t.format(files=lst)})")
    if not parts:
        raise TraceError("runs", "no run given")
    return _register(con or duckdb.connect(), " UNION ALL BY NAME ".join(parts),
                     {n: " UNION ALL ".join(q) for n, q in meta.items()})


#: Parquet key-value metadata key of the trace-level facts (``tracekit.schema.META_TRACES``, spelled out here so
#: that ``sql``/``info`` start without pyarrow; tests/test_startup.py checks the two agree).
META_TRACES_KEY = "tracekit.traces"


def _footer_query(path: str | os.PathLike[str], sql: str, is_list: bool = False) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``{f}`` = the file, read literally; with ``is_list``, ``path`` is a ready list literal)
    over Parquet footers, with DuckDB.

    DuckDB rather than pyarrow: ``tracekit sql``/``info`` need DuckDB anyway, and pyarrow's import was
    a large share of their start-up.
    """
    global _footer_con, _footer_pid
    with _footer_lock:
        if _footer_con is None or _footer_pid != os.getpid():  # a forked child gets a connection of its own
            _footer_con, _footer_pid = duckdb.connect(), os.getpid()
        return _footer_con.execute(sql.format(f=str(path) if is_list else _lit(literal(path)))).fetchall()


#: One in-memory connection for every footer read (opening one costs ~15 ms, 3-4 of them per `report`);
#: it holds no state between reads, and the lock keeps threads from sharing it at once.
_footer_con: duckdb.DuckDBPyConnection | None = None
_footer_pid = 0
_footer_lock = threading.Lock()


def _traces_meta_raw(path: str | os.PathLike[str]) -> bytes | None:
    rows = _footer_query(path, f"SELECT value FROM parquet_kv_metadata({{f}}) WHERE key = {_lit(META_TRACES_KEY)}::BLOB")
    return rows[0][0] if rows and rows[0][0] else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_traces_meta(raw: bytes | str, path: object) -> dict[str, dict[str, Any]]:
    """The ``tracekit.traces`` footer value of ``path``, checked: a JSON object of one object per trace.

    Footers are data (anyone can write a Parquet file): a value that is not that is a one-line
    :class:`TraceError` naming the file, here and before DuckDB's views parse it (they read it as JSON:
    a DuckDB error naming no file, or a JSONDecodeError traceback in `info`, issue 23).
    """
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        doc = json.loads(text, parse_constant=_no_constant)
        json.dumps(doc, ensure_ascii=False).encode("utf-8")  # a lone surrogate escape (\ud800): DuckDB's JSON refuses it
    except (UnicodeError, ValueError, RecursionError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TraceError(path, f"corrupt {META_TRACES_KEY} metadata in the Parquet footer ({detail[:200]})") from None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in doc.items()):
        raise TraceError(path, f"corrupt {META_TRACES_KEY} metadata in the Parquet footer (not an object of one object per trace)")
    return doc


def read_metadata(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Trace-level facts of a converted file or dataset: ``{trace: {source, devices, rank, ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for f in parquet_files([path]):
        raw = _traces_meta_raw(f)
        if raw:
            out.update(parse_traces_meta(raw, f))
    return out
