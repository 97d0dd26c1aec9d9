"""Open converted traces in DuckDB and read their metadata.

``connect`` accepts Parquet files, folders of them (a dataset), and raw traces
(converted on the fly and cached next to the input as ``<name>.tracekit.parquet``,
or under ``$XDG_CACHE_HOME/tracekit`` when that folder is read-only). It
registers the views every query in ``queries/`` relies on (their SQL: ``queries/lib/store_views.sql.in``):

- ``events``: every row of every trace;
- ``kernels``: kind in kernel / memcpy / memset;
- ``runtime``: kind = runtime;
- ``ranges``: kind = range, except the token-count events (``tracekit.count key=value ...``, see annotate.count): never a phase;
- ``trace_devices``: trace, device, name, sm_count, arch, id_source, gpu_index of the GPUs of each trace;
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

from tracekit.atomic import converting, note_input
from tracekit.errors import TraceError, refuse_special
from tracekit.ingest import convert
from tracekit.rawcache import RAW_SUFFIXES, cache_path
from tracekit.resources import queries_dir

#: One ``CREATE OR REPLACE VIEW name AS <SELECT>;`` of queries/lib/store_views.sql.in (its ``;`` ends a line).
_VIEW = re.compile(r"^CREATE OR REPLACE VIEW (\w+) AS\s(.*?);$", re.MULTILINE | re.DOTALL)


def read_views(path: Path) -> dict[str, str]:
    """``{view name: its SELECT}`` of a file of ``CREATE OR REPLACE VIEW`` statements, in file order.

    Why SQL in a file: the views every query reads are SQL like the queries, and a user reads them where the
    queries are (queries/lib/store_views.sql.in) rather than in Python strings.
    """
    return {m[1]: m[2] for m in _VIEW.finditer(path.read_text())}


_ALL_VIEWS = read_views(queries_dir() / "lib" / "store_views.sql.in")
#: The views over ``events`` (``kernels``, ``runtime``, ``ranges``), by name.
VIEWS = {n: body for n, body in _ALL_VIEWS.items() if "{files}" not in body}
#: The views over the files' trace-level metadata, by name (each a template of ``{files}``, a list literal).
META_VIEWS = {n: body for n, body in _ALL_VIEWS.items() if "{files}" in body}

#: Columns a file must have to be read as a tracekit trace (the rest may be missing in older files).
REQUIRED_COLUMNS = ("trace", "kind", "name", "ts_ns", "dur_ns")


def ensure_parquet(path: str | os.PathLike[str]) -> Path:
    """Parquet for ``path``: itself if already Parquet, else a cached conversion (refreshed when the source is newer)."""
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
    files: list[str] = []
    for path in paths:
        note_input(path, given=True)
        p = ensure_parquet(path)
        if p.is_dir():
            # Paths under a `_` or `.` name are not events (tracekit.dataset's sidecar, Spark's _SUCCESS, temp files).
            found = sorted(
                str(f) for f in p.rglob("*.parquet") if not any(x[:1] in ("_", ".") for x in f.relative_to(p).parts)
            )
            if not found:
                raw = sorted(
                    f
                    for f in p.rglob("*")
                    if f.is_file()
                    and not f.name.startswith(".")
                    and f.name.endswith(RAW_SUFFIXES)
                    and not f.name.endswith(".proc.json")
                )
                if not raw:
                    raise TraceError(
                        p, "folder holds no .parquet files and no raw traces (.json, .json.gz, .sqlite, .nsys-rep)"
                    )
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
        raise TraceError(
            p, f"truncated Parquet file ({size:,} bytes, no footer): the write did not finish; convert the trace again"
        )
    try:
        names = [r[0] for r in _footer_query(p, "SELECT name FROM parquet_schema({f})")]
    except duckdb.Error as e:
        raise TraceError(
            p, f"corrupt Parquet footer ({str(e).splitlines()[0] if str(e) else type(e).__name__})"
        ) from None
    # Not the tracekit.traces metadata: a Parquet file derived with DuckDB's COPY (a filtered slice) has
    # none and is still readable; only its trace-level facts (GPUs, notes) are then unknown.
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        raise TraceError(
            p,
            f"not a tracekit Parquet file (no column {', '.join(missing)}): convert the raw trace with `tracekit convert`",
        )
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
    (n_with,) = _footer_query(
        lst, "SELECT count(DISTINCT file_name) FROM parquet_schema({f}) WHERE name = 'row_id'", is_list=True
    )[0]
    every, some = n_with == len(set(files)), n_with > 0
    if every:
        return f"SELECT * FROM read_parquet({lst}, union_by_name = true)"
    drop = "file_row_number, row_id" if some else "file_row_number"
    return (
        f"SELECT * EXCLUDE ({drop}), {'coalesce(row_id, file_row_number)' if some else 'file_row_number'} AS row_id "
        f"FROM read_parquet({lst}, union_by_name = true, file_row_number = true)"
    )


def _register(con: duckdb.DuckDBPyConnection, events: str, meta: dict[str, str]) -> duckdb.DuckDBPyConnection:
    """The views every query reads: ``events`` (its SELECT given), the kind views, and the metadata views
    (:data:`META_VIEWS`: ``trace_devices``, which queries/flops.sql picks peaks by, ``trace_notes``,
    ``trace_ranks``) with the SELECT given for each."""
    con.execute(f"CREATE OR REPLACE VIEW events AS {events}")
    for name, body in {**VIEWS, **meta}.items():
        con.execute(f"CREATE OR REPLACE VIEW {name} AS {body}")
    return con


def connect(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str], con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the ``events``/``kernels``/``runtime``/``ranges`` views over ``paths``."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = parquet_files(paths)
    lst = _files_sql(files)
    return _register(
        con or duckdb.connect(), _events_select(files), {n: t.format(files=lst) for n, t in META_VIEWS.items()}
    )


def snapshot_meta(con: duckdb.DuckDBPyConnection) -> None:
    """Make each metadata view (:data:`META_VIEWS`: ``trace_devices``, ``trace_notes``, ...) read a table of its
    rows, computed once now, in ``con``'s database (an in-memory one: ``tracekit.report.run`` with several
    workers). The views' SQL stays the one definition; this only stops it being planned and run at every read.

    Why: ``trace_devices`` is a large query (footer JSON, the GPU ops' device ids, ROCm agent offsets) that DuckDB
    plans again wherever a module reads it, ~20 times in a report: 16-18 ms a read on the 18k-event H100 trace,
    almost all planning; ``lib/gpu_activity``, which every other module waits on, read it twice (43 -> 7 ms)."""
    for name in META_VIEWS:
        con.execute(f"CREATE OR REPLACE TABLE _{name}_rows AS SELECT * FROM {name}")
        con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _{name}_rows")


def connect_runs(
    runs: Iterable[tuple[str, Iterable[str | os.PathLike[str]]]], con: duckdb.DuckDBPyConnection | None = None
) -> duckdb.DuckDBPyConnection:
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
    return _register(
        con or duckdb.connect(), " UNION ALL BY NAME ".join(parts), {n: " UNION ALL ".join(q) for n, q in meta.items()}
    )


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
    rows = _footer_query(
        path, f"SELECT value FROM parquet_kv_metadata({{f}}) WHERE key = {_lit(META_TRACES_KEY)}::BLOB"
    )
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
        json.dumps(doc, ensure_ascii=False).encode(
            "utf-8"
        )  # a lone surrogate escape (\ud800): DuckDB's JSON refuses it
    except (UnicodeError, ValueError, RecursionError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise TraceError(path, f"corrupt {META_TRACES_KEY} metadata in the Parquet footer ({detail[:200]})") from None
    if not isinstance(doc, dict) or not all(isinstance(k, str) and isinstance(v, dict) for k, v in doc.items()):
        raise TraceError(
            path, f"corrupt {META_TRACES_KEY} metadata in the Parquet footer (not an object of one object per trace)"
        )
    return doc


def read_metadata(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Trace-level facts of a converted file or dataset: ``{trace: {source, devices, rank, ...}}``."""
    out: dict[str, dict[str, Any]] = {}
    for f in parquet_files([path]):
        raw = _traces_meta_raw(f)
        if raw:
            out.update(parse_traces_meta(raw, f))
    return out
