"""Nsight Systems (nsys) SQLite export -> the event schema, streamed.

Why it looks like this:

- **Columnar, not row by row.** Each batch of an event table (a rowid range) is
  read by the ADBC SQLite driver (``adbc-driver-sqlite``) straight into Arrow
  buffers in C, with the GIL released: no Python object per value. Where that
  driver is missing, or a batch holds values off its column's declared type
  (ADBC would promote them), the batch is one aggregate query returning one
  ``json_group_array`` text per column, which msgspec decodes (~4x faster than
  ``fetchmany``); the two paths give equal output (tests/test_nsys_arrow.py).
  Floats and untyped columns are fetched as ``json_quote`` text on both paths,
  so args spell them alike. Names are resolved from
  ``StringIds`` with one vectorised ``index_in`` + ``take`` per batch, enum
  labels with a vectorised lookup, and the ``args`` JSON is assembled with Arrow
  string kernels (NULL members left out). Python never loops over events.
- **Args rendered by SQLite on the ADBC path.** The driver's cost is per column
  and row (~35-65 ns, NULL or not), and nsys tables are wide and mostly NULL: the
  columns that only feed ``args`` are rendered by the query itself into one text
  column of ``"key":value`` pairs (``_member_sql``: SQLite's ``json_quote``, the
  JSON path's own spelling), constant NULL selections are not fetched at all, and
  a batch with a float member (spelt by Arrow's cast, which SQLite cannot match)
  is read again with one Arrow column per member (docs/design.md: measurements).
- **Two tables at a time.** SQLite queries and Arrow kernels release the GIL, so
  the table readers run on two worker threads (one connection each), and each
  reader's next query runs on a helper thread while it builds the current batch.
  Batches reach the sink in the fixed order of the readers: the output does not
  depend on timing.
- **Written while read.** NVTX_EVENTS holds every range, so it is read first and
  held (spilled); then its batches are linked and written first, while the other
  tables are still read, and every later batch as it arrives (``sink.StreamSink``).
  The Parquet write overlaps the read instead of following it.
- **Schema drift by column presence.** nsys 2020.3 .. 2026.2 exports differ in
  tables and columns (see ``shared/notes/nsys.md``). Every query is built from
  ``PRAGMA table_info``: absent tables are zero rows (lazy export), absent
  columns are NULL, unknown columns go to ``args`` and unknown tables are ignored.
- **Correlation is per process.** CUPTI correlation ids repeat across processes,
  so the schema's ``correlation`` is ``(pid << 32) | correlationId``, with pid
  from ``globalPid``/``globalTid`` (``(g >> 24) & 0xFFFFFF``) on both the GPU
  rows and the runtime rows; the shared linker then joins on equality.
- **Privacy.** ``META_DATA_CAPTURE`` environment rows, ``TARGET_INFO_SYSTEM_ENV``
  and ``ProcessStreams`` are never read; ``StringIds`` values are only copied
  when an event references them. The capture command line is kept, redacted.

Mapping (``cat`` = source table): KERNEL -> ``kernel``; MEMCPY -> ``memcpy``;
MEMSET -> ``memset``; RUNTIME (runtime + driver API) -> ``runtime`` (name
without the ``_vNNNN`` suffix, full name in args); SYNCHRONIZATION ->
``gpu_sync`` (named from the API call, syncType only as fallback); NVTX push/pop
and start/end -> ``range`` (PyTorch ``emit_nvtx`` suffixes ``, seq = N``, ``, op_id = N``,
``, sizes = [...]``, ``, input_op_ids = [...]`` removed from the name, raw text kept as
``raw_name`` in args), marks -> ``instant``, other NVTX records (domain,
category, thread naming) -> ``meta``; OSRT_API -> ``other`` with cat ``osrt``;
CUDA graph, profiler overhead, CUDA event, cuDNN/cuBLAS tables -> ``other``;
ThreadNames / PROCESSES -> ``meta`` rows named ``thread_name`` /
``process_name``. GPU rows put the stream in ``tid`` as Kineto does.
"""

from __future__ import annotations

import gc
import json
import os
import queue
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:  # SQLite rows straight into Arrow buffers (C), no Python object per value; the JSON path stays as fallback
    from tracekit.ingest import adbc_lite as _adbc_sqlite  # the DB-API's calls we use, without its pandas import
except ImportError:  # pragma: no cover - a dependency; kept optional so an install without it still converts
    _adbc_sqlite = None  # type: ignore[assignment]  # mypy's idiom for an optional module

from tracekit.errors import TraceError
from tracekit.ingest import kscan
from tracekit.ingest.arrays import num_array
from tracekit.ingest.names import default_trace_name
from tracekit.ingest.sink import Prepared, StreamSink, TraceSink, keep_freed_blocks
from tracekit.redact import redact_argv, redact_text

#: Rows per query. What is in flight (each reader's queue, the batch it builds, the query ahead) is a few
#: batches per reader, and with StreamSink they wait while the NVTX ranges are read and the writer keeps up:
#: 100k-row batches held ~190 MB more at peak than 50k ones on the 60x and 90x benchmark files, for no speed.
BATCH = 50000
#: SQLite instructions between two calls of the progress handler (:meth:`_Db._progress`): ~1 ms.
PROGRESS_STEPS = 100_000
_ROWID_MAX = (1 << 63) - 1
SOURCE = "nsys"

#: Tables whose presence marks a file as an nsys export.
EVENT_TABLES = (
    "CUPTI_ACTIVITY_KIND_KERNEL",
    "CUPTI_ACTIVITY_KIND_MEMCPY",
    "CUPTI_ACTIVITY_KIND_MEMSET",
    "CUPTI_ACTIVITY_KIND_RUNTIME",
    "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
    "NVTX_EVENTS",
    "OSRT_API",
)
#: Columns holding StringIds ids, resolved to text where they end up in ``args``.
STRING_ID_COLS = {"shortName", "mangledName", "demangledName", "nameId", "textId", "jsonTextId"}

#: Built-in enum values (the file's ENUM_* table, when present, wins for labels we do not know).
COPY_KIND = {
    0: "Unknown",
    1: "HtoD",
    2: "DtoH",
    3: "HtoA",
    4: "AtoH",
    5: "AtoA",
    6: "AtoD",
    7: "DtoA",
    8: "DtoD",
    9: "HtoH",
    10: "PtoP",
    11: "Unified HtoD",
    12: "Unified DtoH",
    13: "Unified DtoD",
}
MEM_KIND = {
    0: "Pageable",
    1: "Pinned",
    2: "Device",
    3: "Array",
    4: "Managed",
    5: "Device Static",
    6: "Managed Static",
    7: "Unknown",
}
SYNC_TYPE = {0: "Unknown Sync", 1: "Event Sync", 2: "Stream Wait Event", 3: "Stream Sync", 4: "Context Sync"}
NVTX_TYPE = {
    33: "NvtxCategory",
    34: "NvtxMark",
    39: "NvtxThread",
    59: "NvtxPushPopRange",
    60: "NvtxStartEndRange",
    70: "NvtxtPushPopRange",
    71: "NvtxtStartEndRange",
    75: "NvtxDomainCreate",
    76: "NvtxDomainDestroy",
}
NVTX_RANGE_TYPES = (59, 60, 70, 71)
NVTX_MARK_TYPES = (34,)
EVENT_CLASS = {0: "CUDA runtime", 1: "CUDA driver"}

#: API name (suffix stripped) -> gpu_sync event name, as Kineto names its `cuda_sync` events.
_SYNC_API = (
    (re.compile(r"^(cudaStreamSynchronize|cuStreamSynchronize)"), "Stream Sync"),
    (re.compile(r"^(cudaStreamWaitEvent|cuStreamWaitEvent)"), "Stream Wait Event"),
    (re.compile(r"^(cudaEventSynchronize|cuEventSynchronize|cudaEventQuery|cuEventQuery)"), "Event Sync"),
    (re.compile(r"^(cudaDeviceSynchronize|cuCtxSynchronize|cudaThreadSynchronize)"), "Context Sync"),
)


@dataclass
class TableSpec:
    """How one nsys table maps onto the schema."""

    table: str
    kind: str  # schema kind (NVTX rows are re-kinded per eventType afterwards)
    start: str = "start"
    end: str | None = "end"
    thread: str | None = "globalTid"  # globalTid column (CPU side) ...
    process: str | None = None  # ... or globalPid column (GPU side)
    name_id: str | None = "nameId"
    cat: str | None = None  # default: the table name
    typed: dict[str, str] = field(default_factory=dict)  # schema column -> SQL expression over the table's columns
    consumed: tuple[str, ...] = ()  # source columns that only feed typed columns (kept out of args)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Db:
    """An open nsys export: connection, its tables/columns and the string table."""

    def __init__(self, path: Path) -> None:
        self.path = path
        _check_header(path)
        self._uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro&immutable=1"
        self._local = threading.local()
        self._conns: list[Any] = []  # sqlite3 and ADBC connections, closed together
        #: Set to abort every query running on this export's sqlite3 connections (see :meth:`_progress`).
        self.stop = threading.Event()
        self.deadline: float | None = None  # time.monotonic() past which queries abort (None: no limit)
        try:
            # Tables only: a view (or a virtual table) runs the file's own SQL, which may never end (a view
            # named CUPTI_ACTIVITY_KIND_KERNEL over an endless recursive CTE spun forever). nsys writes tables.
            rows = self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND coalesce(sql, '') NOT LIKE 'CREATE VIRTUAL%'"
            ).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as e:  # the latter: a damaged table name
            raise TraceError(path, f"not a readable SQLite database ({_one_line(e)})") from None
        self.tables = {r[0] for r in rows}
        self._cols: dict[str, dict[str, str]] = {}
        self._str_ids: pa.Array | None = None
        self._str_vals: pa.Array | None = None
        self._lut: np.ndarray | None = None
        self._longest: int | None = None
        self._suffixless: pa.Array | None = None

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection (tables are read on worker threads; sqlite3 releases the GIL in queries)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self._uri, uri=True, check_same_thread=False)
            conn.set_progress_handler(self._progress, PROGRESS_STEPS)
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA mmap_size=1073741824")
            self._local.conn = conn
            self._conns.append(conn)
        return conn

    def _progress(self) -> int:
        """SQLite's progress handler: non-zero aborts the query (it raises ``sqlite3.OperationalError``).

        Called every :data:`PROGRESS_STEPS` SQLite instructions, it is also where a signal reaches Python while
        a long query runs on the main thread: Python runs the signal's handler before this function's first
        line (SIGTERM: tracekit's cleanup, then the default action; SIGINT: KeyboardInterrupt, which the
        sqlite3 module swallows while it aborts the query, so :func:`_convert_sqlite` turns an abort that
        nobody asked for back into KeyboardInterrupt). ADBC connections have no such hook: they only run
        bounded queries (one rowid range of a table).
        """
        if self.stop.is_set():
            return 1
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.stop.set()
            return 1
        return 0

    def aborted_by_us(self) -> bool:
        """Whether an aborted query was aborted by :attr:`stop` or :attr:`deadline` (else: by a signal)."""
        return self.stop.is_set()

    @property
    def arrow_conn(self) -> Any | None:
        """This thread's ADBC SQLite connection (results straight into Arrow), or None without the driver.

        Opened like :attr:`conn` (read-only, immutable) with autocommit, so temp tables and pragmas behave the same.
        """
        if _adbc_sqlite is None:
            return None
        conn = getattr(self._local, "arrow_conn", None)
        if conn is None:
            conn = _adbc_sqlite.connect(self._uri, autocommit=True)
            with conn.cursor() as cur:
                cur.execute("PRAGMA temp_store=MEMORY")
                cur.execute("PRAGMA mmap_size=1073741824")
            self._local.arrow_conn = conn
            self._conns.append(conn)
        return conn

    def execute_everywhere(self, sql: str) -> None:
        """Run a statement (temp table set-up) on this thread's sqlite3 connection and on its ADBC connection."""
        self.conn.execute(sql)
        arrow = self.arrow_conn
        if arrow is not None:
            with arrow.cursor() as cur:
                cur.execute(sql)

    def close(self) -> None:
        for conn in self._conns:
            conn.close()

    def cols(self, table: str) -> dict[str, str]:
        """Column name -> declared type ('' when the table is absent -> empty dict)."""
        if table not in self._cols:
            if table not in self.tables:
                self._cols[table] = {}
            else:
                info = self.conn.execute(f"PRAGMA table_info({_ident(table)})").fetchall()
                self._cols[table] = {r[1]: (r[2] or "").upper() for r in info}
        return self._cols[table]

    def has(self, table: str, *cols: str) -> bool:
        c = self.cols(table)
        return bool(c) and all(x in c for x in cols)

    def strings(self) -> tuple[pa.Array, pa.Array]:
        """(ids, values) of StringIds, read once."""
        if self._str_ids is None:
            if not self.has("StringIds", "id", "value"):
                self._str_ids, self._str_vals = pa.array([], pa.int64()), pa.array([], pa.string())
            else:
                rows = self.conn.execute("SELECT id, value FROM StringIds").fetchall()
                ids, vals = (list(x) for x in zip(*rows)) if rows else ([], [])
                self._str_ids = pa.array(ids, pa.int64())
                self._str_vals = pa.array(vals, pa.string())
        assert self._str_vals is not None
        return self._str_ids, self._str_vals

    def longest_string(self) -> int:
        """Bytes of the longest StringIds value (0 without any)."""
        if self._longest is None:
            _, vals = self.strings()
            self._longest = int(pc.max(pc.binary_length(vals)).as_py() or 0) if len(vals) else 0
        return self._longest

    def _positions(self, ids: pa.Array) -> pa.Array:
        """Row of each id in the string table (NULL when absent): a dense lookup array when ids are dense."""
        sid, _ = self.strings()
        if self._lut is None and len(sid) and pc.min(sid).as_py() >= 0 and pc.max(sid).as_py() < 4 * len(sid) + 4096:
            lut = np.full(pc.max(sid).as_py() + 1, -1, np.int64)
            lut[sid.to_numpy()] = np.arange(len(sid))
            self._lut = lut  # complete before it is shared: other reader threads may be here too
        if self._lut is None:
            return pc.index_in(ids, value_set=sid)
        raw = ids.fill_null(-1).to_numpy(zero_copy_only=False)
        ok = (raw >= 0) & (raw < len(self._lut))
        pos = np.where(ok, self._lut[np.where(ok, raw, 0)], -1)
        return pa.array(pos, pa.int64(), mask=pos < 0)

    def suffixless(self) -> pa.Array:
        """StringIds values without an API version suffix (:func:`_strip_suffix`), row for row: the runtime table's
        names are a few hundred distinct strings over ~1M rows, so the regex runs over the string table once
        instead of over every row (0.08 of 1.4 s on a 968k-event export)."""
        if self._suffixless is None:
            _, vals = self.strings()
            self._suffixless = _strip_suffix(vals)  # complete before it is shared, as _lut
        return self._suffixless

    def resolve(self, ids: pa.Array, where: str, values: pa.Array | None = None) -> pa.Array:
        """StringIds values for ``ids`` (NULL stays NULL); a dangling id is a TraceError. ``values``: another
        column of the string table, row for row (:meth:`suffixless`), to take from instead."""
        if ids.null_count == len(ids):
            return pa.nulls(len(ids), pa.string())
        if "StringIds" not in self.tables:
            raise TraceError(self.path, f"no StringIds table, but {where} refers to string ids")
        _, sval = self.strings()
        idx = self._positions(ids)
        missing = pc.and_(pc.is_valid(ids), pc.is_null(idx))
        if pc.any(missing).as_py():
            bad = pc.filter(ids, missing)[0].as_py()
            n = pc.sum(missing).as_py()
            raise TraceError(self.path, f"StringIds has no row for id {bad} used by {where} ({n} rows affected)")
        return (sval if values is None else values).take(idx)

    def enum(self, table: str, builtin: dict[int, str]) -> dict[int, str]:
        """Built-in labels, extended by the file's ENUM_* table for ids we do not know."""
        out = dict(builtin)
        if self.has(table, "id", "label"):
            for i, label in self.conn.execute(f"SELECT id, label FROM {_ident(table)}"):
                out.setdefault(int(i), str(label))
        return out


def _check_header(path: Path) -> None:
    """Reject files that are not SQLite or that are shorter than their header says (truncated)."""
    try:
        with open(path, "rb") as f:
            head = f.read(100)
        size = path.stat().st_size
    except OSError as e:
        raise TraceError(path, f"cannot read ({e.strerror})") from None
    if not head.startswith(b"SQLite format 3\x00"):
        raise TraceError(
            path, "not an SQLite database (nsys exports are SQLite; export with `nsys export --type sqlite`)"
        )
    if len(head) < 100:
        raise TraceError(path, "truncated SQLite file (shorter than its 100-byte header)")
    page = int.from_bytes(head[16:18], "big")
    page = 65536 if page == 1 else page
    pages = int.from_bytes(head[28:32], "big")
    valid = head[24:28] == head[92:96]
    if valid and pages and size < page * pages:
        raise TraceError(path, f"truncated or corrupt SQLite database ({size} bytes, header says {page * pages})")


# ---------------------------------------------------------------------------------------------------------------
# SQL building


def _case(expr: str, labels: dict[int, str]) -> str:
    """SQL CASE mapping integer ``expr`` to text labels (NULL when unknown)."""
    whens = " ".join(f"WHEN {int(k)} THEN '{v.replace(chr(39), chr(39) * 2)}'" for k, v in sorted(labels.items()))
    return f"(CASE {expr} {whens} END)"


INT, STR, FLOAT, RAW = "int", "str", "float", "raw"
#: Typed schema columns that hold text (all others selected by a spec are integers).
_STR_TYPED = {"name", "copy_kind"}


def _decl_kind(decl: str) -> str:
    """Value kind of a column from its declared SQLite type (affinity rules, roughly)."""
    if "INT" in decl:
        return INT
    if any(x in decl for x in ("CHAR", "CLOB", "TEXT")):
        return STR
    if any(x in decl for x in ("REAL", "FLOA", "DOUB")):
        return FLOAT
    return RAW


@dataclass
class Sel:
    """One selected value: output key, SQL expression over ``t``, value kind, and whether it goes to args."""

    key: str
    expr: str
    kind: str
    arg: bool = False
    column: bool = False  # ``expr`` is the bare column reference (cheap to evaluate twice in SQL)
    string_id: str | None = None  # for StringIds lookups: the id column's reference (the SQL lookup only when set)


def _arg_sels(db: _Db, spec: TableSpec, extra: dict[str, str]) -> list[Sel]:
    """The row's columns not consumed by typed columns (string ids resolved to text), plus ``extra`` labels."""
    cols = db.cols(spec.table)
    skip = {spec.start, spec.end, spec.thread, spec.process, spec.name_id, *spec.consumed}
    out: list[Sel] = []
    for c, decl in cols.items():
        if c in skip:
            continue
        ref = "t." + _ident(c)
        if c in STRING_ID_COLS and "StringIds" in db.tables:
            out.append(Sel("a:" + c, f"(SELECT value FROM StringIds WHERE id = {ref})", STR, True, string_id=ref))
        elif "BLOB" in decl or decl == "":
            out.append(Sel("a:" + c, f"(CASE WHEN typeof({ref}) = 'blob' THEN hex({ref}) ELSE {ref} END)", RAW, True))
        else:
            out.append(Sel("a:" + c, ref, _decl_kind(decl), True, column=True))
    out += [Sel("a:" + k, v, STR, True) for k, v in extra.items()]
    return out


def _selection(db: _Db, spec: TableSpec, extra_args: dict[str, str], extra_cols: dict[str, str]) -> list[Sel]:
    """Leading columns (start, end, owner, name_id, corr), typed columns, internal extras, then args columns."""
    cols = db.cols(spec.table)

    def col(c: str | None) -> str:
        return ("t." + _ident(c)) if c and c in cols else "NULL"

    owner = spec.thread if spec.thread in cols else spec.process
    sels = [
        Sel("start", col(spec.start), INT),
        Sel("end", col(spec.end) if spec.end else "NULL", INT),
        Sel("owner", col(owner), INT),
        Sel("name_id", col(spec.name_id) if spec.name_id else "NULL", INT),
        Sel("corr", col("correlationId"), INT),
    ]
    sels += [Sel(k, v, STR if k in _STR_TYPED else INT) for k, v in spec.typed.items()]
    sels += [Sel(k, v, INT) for k, v in extra_cols.items()]
    return sels + _arg_sels(db, spec, extra_args)


_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    INT: msgspec.json.Decoder(list[int | None]),
    STR: msgspec.json.Decoder(list[str | None]),
    FLOAT: msgspec.json.Decoder(list[float | None]),
    RAW: msgspec.json.Decoder(list[msgspec.Raw]),
}
_ARROW = {INT: pa.int64(), STR: pa.string(), FLOAT: pa.float64()}


def _decode(text: str, sel: Sel, where: str, path: Path) -> tuple[pa.Array, str]:
    """Arrow array of one ``json_group_array`` result; args columns of unexpected type fall back to raw JSON."""
    try:
        return pa.array(_DECODERS[sel.kind].decode(text), _ARROW[sel.kind]), sel.kind
    except (msgspec.ValidationError, KeyError):
        if not sel.arg:
            raise TraceError(path, f"{where}: values are not of the expected type ({sel.kind})") from None
    raws = _DECODERS[RAW].decode(text)
    arr = pa.array([bytes(r) for r in raws], pa.binary()).cast(pa.string())
    return pc.if_else(pc.equal(arr, "null"), pa.scalar(None, pa.string()), arr), RAW


def _arrow_expr(sel: Sel) -> str:
    """The ADBC query's expression for ``sel``: text of the JSON value where the JSON path's decoding matters.

    FLOAT and RAW values are fetched as ``json_quote`` text, the very text ``json_group_array`` would hold, so
    floats parse to the same doubles and raw members keep the same JSON spelling as on the JSON path.
    """
    return f"json_quote({sel.expr})" if sel.kind in (FLOAT, RAW) else sel.expr


#: An args part of several members already rendered as ``"k":v,"k2":v2`` (NULL or '': none of them): the args
#: text the ADBC query renders in SQLite (:func:`_member_sql`), or the labels of one enum column looked up at
#: once (:func:`_members`).
MEMBERS = "members"
#: Marks a float member in that text. Floats are spelt by Arrow's cast (the JSON path's rule), which SQLite
#: cannot match: a batch with a non-NULL float is read again with one Arrow column per member (nsys fills
#: REAL columns rarely: NVTX payloads).
_FLOAT_MARK = "\x1e"
_ARGS_KEY = "s:args"


def _member_sql(s: Sel) -> str:
    """SQL for one args member as ``"key":value`` text (NULL when the value is NULL), spelt as on the JSON path.

    Why in SQL: each column the ADBC driver puts into Arrow costs ~35-65 ns a row, NULL or not (nsys tables
    are wide and mostly NULL), and each member then took an Arrow cast and a join; SQLite renders all members
    into one text column for less. ``json_quote`` is the JSON path's own rendering (``json_group_array`` uses
    it), so raw and text members read alike; integers (the common case) skip it, as SQLite's integer text is
    what Arrow's cast gave. An integer column holding a REAL or TEXT value gets ``json_quote``, as the JSON path
    spells such a batch (raw members).
    """
    key = "'" + (_json_key(s.key) + ":").replace("'", "''") + "'"
    e = s.expr
    if s.kind == FLOAT:
        return f"(CASE WHEN ({e}) IS NULL THEN NULL ELSE char({ord(_FLOAT_MARK)}) END)"
    if s.column and s.kind == INT:
        return (
            f"(CASE WHEN {e} IS NULL THEN NULL WHEN {e} = CAST({e} AS INTEGER) THEN {key} || {e} "
            f"ELSE {key} || json_quote({e}) END)"
        )
    if s.column:
        return f"(CASE WHEN {e} IS NULL THEN NULL ELSE {key} || json_quote({e}) END)"
    if s.string_id:  # the lookup only for ids that are there; JSON null only for NULL
        return f"(CASE WHEN {s.string_id} IS NULL THEN NULL ELSE {key} || nullif(json_quote({e}), 'null') END)"
    return f"({key} || nullif(json_quote({e}), 'null'))"  # evaluated once


def _arrow_plan(sels: list[Sel], rare: frozenset[str] = frozenset()) -> tuple[list[Sel], str | None, bool]:
    """What the ADBC query selects: the leading/typed columns that are not constant NULL, the args text
    (SQL, or None without args), and whether that text must be checked for :data:`_FLOAT_MARK`.

    ``rare``: keys of members (see :func:`_rare_members`) that the query tests for NULL all at once, with one
    ``coalesce``, before it renders them one by one: rows where all of them are NULL render only the others.
    The text is the same whatever ``rare`` holds; only the work differs (nsys tables are wide and mostly NULL:
    NVTX_EVENTS has 12 such members, and their CASE expressions were half of its query).
    """
    lead = [s for s in sels if not s.arg and s.expr != "NULL"]
    members = [s for s in sels if s.arg]
    if not members:
        return lead, None, False
    mark = any(s.kind == FLOAT or _FLOAT_MARK in s.key for s in members)
    every = "concat_ws(',', " + ", ".join(_member_sql(m) for m in members) + ")"
    refs = [_null_ref(m) for m in members if m.key in rare]
    if not refs or None in refs:
        return lead, every, mark
    common = [m for m in members if m.key not in rare]
    some = "concat_ws(',', " + ", ".join(_member_sql(m) for m in common) + ")" if common else "''"
    names = [r for r in refs if r is not None]  # all of them (returned above otherwise): typed as str
    none = f"coalesce({', '.join(names)}) IS NULL" if len(names) > 1 else f"{names[0]} IS NULL"
    return lead, f"(CASE WHEN {none} THEN {some} ELSE {every} END)", mark


def _null_ref(s: Sel) -> str | None:
    """The column whose NULL makes member ``s`` NULL (None: not a plain column)."""
    return s.expr if s.column else s.string_id


#: Rows sampled (the first ones) to choose the members :func:`_arrow_plan` tests for NULL together.
RARE_SAMPLE = 4096


def _rare_members(db: _Db, table: str, sels: list[Sel]) -> frozenset[str]:
    """Keys of the args members with no value in the table's first rows (see :func:`_arrow_plan`).

    A guess about the rest of the table, and only a guess about speed: the args text does not depend on it.
    """
    cand = [s for s in sels if s.arg and _null_ref(s) is not None]
    if len(cand) < 3:
        return frozenset()
    sql = (
        f"SELECT {', '.join(f'count(c{i})' for i in range(len(cand)))} FROM "
        f"(SELECT {', '.join(f'{_null_ref(s)} AS c{i}' for i, s in enumerate(cand))} FROM {_ident(table)} AS t "
        f"LIMIT {RARE_SAMPLE})"
    )
    counts = db.conn.execute(sql).fetchone()
    rare = frozenset(s.key for s, n in zip(cand, counts) if not n)
    return rare if len(rare) >= 2 else frozenset()


def _from_arrow(col: pa.Array, sel: Sel) -> tuple[pa.Array, str] | None:
    """One ADBC result column as ``_decode`` would have built it, or None where only the JSON path knows.

    ADBC infers a column's type from the batch and promotes mixed values (an INTEGER column holding a REAL
    comes back as double, TEXT with a BLOB as binary); those batches go to the JSON path, whose typed decoding
    (and raw fallback for args) defines the output.
    """
    n = len(col)
    if sel.kind in (INT, STR):
        want = _ARROW[sel.kind]
        if col.type == want:
            return col, sel.kind
        if col.null_count == n:
            return pa.nulls(n, want), sel.kind
        return None
    if col.type != pa.string():
        return None
    text = pc.if_else(pc.equal(col, "null"), pa.scalar(None, pa.string()), col)
    if sel.kind == FLOAT:
        try:
            return pc.cast(text, pa.float64()), FLOAT
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return (text, RAW) if sel.arg else None
    return text, RAW


#: What one batch's text may reach when StringIds holds huge values (see :func:`_batch_rows`).
BATCH_BYTES = 64 << 20
#: StringIds values up to this size never shrink batches (real exports: kernel names of a few KB).
BIG_STRING = 1 << 20


def _batch_rows(db: _Db, table: str) -> int:
    """Rows per batch of ``table``: :data:`BATCH`, fewer when StringIds holds a value over :data:`BIG_STRING`.

    Each row's string ids are resolved to text (its name, its args), so a batch may hold one copy of the longest
    value per reference and row: a 40 MB value referenced by 600 kernel rows needed over 24 GB in one batch.
    Then a batch takes as many rows as :data:`BATCH_BYTES` allows for rows made of that value only.
    """
    longest = db.longest_string()
    if longest <= BIG_STRING:
        return BATCH
    refs = 1 + sum(1 for c in db.cols(table) if c in STRING_ID_COLS)
    return max(1, min(BATCH, BATCH_BYTES // (longest * refs)))


def _batches(db: _Db, table: str, sels: list[Sel]) -> Iterator[dict[str, tuple[pa.Array, str]]]:
    """Batches of the selection as Arrow arrays.

    Each batch is a rowid range. With the ADBC SQLite driver, SQLite's rows go straight into Arrow buffers
    in C (the floor for reading an nsys export). Without it, or for a batch whose values do not have the
    declared types, the batch is one aggregate query instead: ``json_group_array`` per column, decoded by
    msgspec (~4x faster than ``fetchmany``, which creates a Python tuple and one object per value).
    """
    t = _ident(table)
    inner = ", ".join(f"{s.expr} AS c{i}" for i, s in enumerate(sels))
    outer = ", ".join(f"json_group_array(c{i})" for i in range(len(sels)))
    try:
        lo = db.conn.execute(f"SELECT min(rowid) FROM {t}").fetchone()[0]
        rowid = True
        where = "WHERE t.rowid >= ? AND t.rowid <= ?"
    except sqlite3.OperationalError:  # a WITHOUT ROWID table (not written by nsys): one batch
        lo, rowid, where = None, False, ""
    seek = f"SELECT min(rowid) FROM {t} WHERE rowid >= ?"
    step = _batch_rows(db, table)
    sql = f"SELECT count(*), {outer} FROM (SELECT {inner} FROM {t} AS t {where})"
    rare = _rare_members(db, table, sels) if _adbc_sqlite is not None else frozenset()
    lead, args_sql, check_mark = _arrow_plan(sels, rare)
    arrow_sel = ", ".join(
        [f"{s.expr} AS c{i}" for i, s in enumerate(lead)] + ([f"{args_sql} AS a"] if args_sql else [])
    )
    column_sel = ", ".join(f"{_arrow_expr(s)} AS c{i}" for i, s in enumerate(sels))
    # The next batch's query runs on a helper thread while this one is decoded and built. It uses this thread's
    # connections (temp tables live there), which nothing else touches until the query is collected.
    conn, arrow = db.conn, db.arrow_conn

    def fetch_json(r: tuple[int, ...]) -> dict[str, tuple[pa.Array, str]] | None:
        row = conn.execute(sql, r).fetchone()
        if not row[0]:
            return None
        return {s.key: _decode(text, s, f"{table}.{s.key}", db.path) for s, text in zip(sels, row[1:])}

    def adbc(select: str, r: tuple[int, ...]) -> list[pa.Array] | None:
        """The batch's columns by ADBC ([] when empty), or None where the driver refused a value."""
        rng = f"WHERE t.rowid >= {int(r[0])} AND t.rowid <= {int(r[1])}" if r else ""
        assert arrow is not None  # its callers run only with an ADBC connection
        try:
            with arrow.cursor() as cur:
                cur.adbc_statement.set_options(**{"adbc.sqlite.query.batch_rows": str(BATCH)})
                cur.execute(f"SELECT {select} FROM {t} AS t {rng}")
                got = cur.fetch_arrow_table()
        except _adbc_sqlite.Error:  # e.g. a value whose type changed after ADBC chose the column's type
            return None
        return [c.combine_chunks() if c.num_chunks != 1 else c.chunk(0) for c in got.columns] if got.num_rows else []

    def typed(chosen: list[Sel], cols: list[pa.Array]) -> dict[str, tuple[pa.Array, str]] | None:
        """Each column as ``_from_arrow`` makes it, or None when one of them needs the JSON path."""
        out: dict[str, tuple[pa.Array, str]] = {}
        for s, c in zip(chosen, cols):
            a = _from_arrow(c, s)
            if a is None:
                return None
            out[s.key] = a
        return out

    def fetch_columns(r: tuple[int, ...]) -> dict[str, tuple[pa.Array, str]] | None:
        """One Arrow column per selection, args members too: for batches with a float member."""
        cols = adbc(column_sel, r)
        if cols is None:
            return fetch_json(r)
        out = typed(sels, cols)
        return fetch_json(r) if out is None else (out or None)

    def fetch(r: tuple[int, ...]) -> dict[str, tuple[pa.Array, str]] | None:
        if arrow is None:
            return fetch_json(r)
        cols = adbc(arrow_sel, r)
        if cols is None:
            return fetch_json(r)
        if not cols:
            return None
        n = len(cols[0])
        out = typed(lead, cols)
        if out is None:
            return fetch_json(r)
        for s in sels:  # constant NULL selections were left out of the query
            if not s.arg and s.expr == "NULL":
                out[s.key] = (pa.nulls(n, _ARROW[s.kind]), s.kind)
        if args_sql:
            text = cols[-1]
            if text.type != pa.string():
                return fetch_json(r)
            if check_mark and pc.any(pc.match_substring(text, _FLOAT_MARK)).as_py():
                return fetch_columns(r)
            out[_ARGS_KEY] = (text, MEMBERS)
        return out

    last_of = f"SELECT max(rowid) FROM (SELECT rowid FROM {t} WHERE rowid >= ? ORDER BY rowid LIMIT {step})"

    def job(r: tuple[int, int] | None) -> tuple[dict[str, tuple[pa.Array, str]] | None, tuple[int, int] | None]:
        """The batch of rowids ``r[0] <= rowid <= r[1]``, and the next range that holds a row (None: none).

        Batches are the rowid ranges ``lo + k * step`` of a plain range scan (so the output is the same), but
        only those that hold a row are visited: the next one is found by an O(log n) seek of the b-tree, not by
        stepping through empty ranges (a row moved to rowid 2**62 made ~10**14 of them). Where the rows of a
        range fill under half its rowids (sparse rowids: one row per range would make a query per row), the
        next range is the next ``step`` rows that exist instead.
        """
        if r is None:
            return fetch(()), None
        got = fetch(r)
        if r[1] >= _ROWID_MAX:
            return got, None
        nxt = conn.execute(seek, (r[1] + 1,)).fetchone()[0]
        if nxt is None:
            return got, None
        n = 0 if got is None else len(next(iter(got.values()))[0])
        if 2 * n >= r[1] - r[0] + 1:  # dense rowids: the next range of the plain scan that holds a row
            k = (nxt - lo) // step
            return got, (max(nxt, lo + k * step), min(lo + (k + 1) * step - 1, _ROWID_MAX))
        return got, (nxt, conn.execute(last_of, (nxt,)).fetchone()[0])

    with ThreadPoolExecutor(1, thread_name_prefix="tracekit-nsys-query") as ahead:
        if not rowid:  # one batch of the whole table
            fut: Any = ahead.submit(job, None)
        else:  # None: an empty table
            fut = ahead.submit(job, (lo, min(lo + step - 1, _ROWID_MAX))) if lo is not None else None
        while fut is not None:
            got, nxt = fut.result()
            fut = ahead.submit(job, nxt) if nxt is not None else None  # runs while this batch is built
            if got is not None:
                yield got


def _has_bytes_to_escape(a: pa.Array) -> bool:
    """Whether any value of a string array holds a control character, ``"`` or ``\\`` (a scan of its bytes).

    Why not a regex: this is asked of every text member of every batch, and RE2's per-value cost was 20x numpy's
    over the data buffer (values are contiguous there; bytes under a NULL slot can only make it answer yes,
    which takes the slower exact path).
    """
    if len(a) == 0 or a.null_count == len(a):
        return False
    if a.type != pa.string():
        a = a.cast(pa.string())
    off = np.frombuffer(a.buffers()[1], np.int32, len(a) + 1, a.offset * 4)
    data = np.frombuffer(a.buffers()[2], np.uint8)[off[0] : off[-1]]
    return bool((data < 0x20).any() or (data == 0x22).any() or (data == 0x5C).any())


def _json_str(a: pa.Array) -> pa.Array:
    """JSON string literals of a string array (vectorised; Python only for control characters)."""
    if _has_bytes_to_escape(a):
        if pc.any(pc.match_substring_regex(a, r"[\x00-\x1f]")).as_py():
            return pa.array([None if v is None else json.dumps(v, ensure_ascii=False) for v in a.to_pylist()], _STR)
        a = pc.replace_substring(pc.replace_substring(a, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise('"', a, '"', "")


def _json_key(key: str) -> str:
    """The JSON string literal of args member ``key`` (``"a:<name>"``): a column name may hold ``"`` or ``\\``."""
    return json.dumps(key[2:], ensure_ascii=False)


def _json_objects(parts: list[tuple[str, pa.Array, str]], n: int) -> pa.Array:
    """One JSON object text per row from columns ``("a:<key>", values, kind)``; NULL members are left out.

    A part of kind ``MEMBERS`` holds several members already rendered (``"k":v`` joined by commas, NULL or ''
    for none). A batch where no member has a value gets NULL, otherwise rows without one ``{}``.
    """
    pieces: list[Any] = []  # joined once at the end: members without NULLs go in as (key text, values) directly
    for key, arr, kind in parts:
        if arr.null_count == len(arr):
            continue
        if kind == STR and not _has_bytes_to_escape(arr):
            # the quotes go into the join itself: one pass over the text instead of two (_json_str's and this one)
            if arr.null_count:
                pieces.append(pc.fill_null(pc.binary_join_element_wise(f',{_json_key(key)}:"', arr, '"', ""), ""))
            else:
                pieces += [f',{_json_key(key)}:"', arr, '"']
            continue
        if kind == MEMBERS:  # members rendered already ("k":v,...): one piece for several keys
            size = pc.binary_length(arr)
            if not pc.max(size).as_py():  # none in this batch
                continue
            if not arr.null_count and pc.min(size).as_py():  # some in every row: the join takes them as they are
                pieces += [",", arr]
            else:
                pieces.append(
                    pc.if_else(pc.fill_null(pc.greater(size, 0), False), pc.binary_join_element_wise(",", arr, ""), "")
                )
            continue
        if kind == STR:
            val = _json_str(arr)
        elif kind == FLOAT:
            val = pc.if_else(pc.is_finite(arr), pc.cast(arr, pa.string()), pa.scalar(None, pa.string()))
        elif kind == INT:
            val = pc.cast(arr, pa.string())
        else:
            val = arr
        if val.null_count:
            pieces.append(pc.fill_null(pc.binary_join_element_wise(f",{_json_key(key)}:", val, ""), ""))
        else:
            pieces += [f",{_json_key(key)}:", val]
    if not pieces:
        return pa.nulls(n, pa.string())
    if isinstance(pieces[0], str):  # the first member is in every row: no leading comma to strip
        return pc.binary_join_element_wise("{" + pieces[0][1:], *pieces[1:], "}", "")
    body = pc.binary_join_element_wise(*pieces, "") if len(pieces) > 1 else pieces[0]
    body = pc.utf8_slice_codeunits(body, 1)
    return pc.binary_join_element_wise("{", body, "}", "")


# ---------------------------------------------------------------------------------------------------------------
# Column helpers

_I64 = pa.int64()
_STR = pa.string()


def _pid_of(g: pa.Array) -> pa.Array:
    return pc.bit_wise_and(pc.shift_right(g, 24), 0xFFFFFF)


def _tid_of(g: pa.Array) -> pa.Array:
    return pc.bit_wise_and(g, 0xFFFFFF)


def _correlation(pid: pa.Array, corr: pa.Array) -> pa.Array:
    return pc.bit_wise_or(pc.shift_left(pid, 32), pc.bit_wise_and(corr, 0xFFFFFFFF))


def _const(n: int, v: Any, t: pa.DataType = _STR) -> pa.Array:
    return pa.array([v] * n, t) if n < 64 else pa.repeat(pa.scalar(v, t), n)


def _quoted(mapping: dict[int, str]) -> dict[int, str]:
    """Labels as JSON string literals, spelt as :func:`_json_str` spells each value: with :func:`_labels` they
    make an args member of kind RAW, quoted once per label instead of once per row."""
    return {k: json.dumps(v, ensure_ascii=False) for k, v in mapping.items()}


def _labels(ids: pa.Array, mapping: dict[int, str]) -> pa.Array:
    """Enum ids -> label strings (NULL for NULL or unknown ids), vectorised."""
    size = max(mapping) + 2 if mapping else 1
    lut = pa.array([mapping.get(i) for i in range(size - 1)] + [None], pa.string())
    ok = pc.and_(pc.greater_equal(ids, 0), pc.less(ids, size - 1))
    return lut.take(pc.if_else(ok, ids, pa.scalar(size - 1, ids.type)))


def _members(ids: pa.Array, labels: dict[str, dict[int, str]]) -> pa.Array:
    """Enum ids -> the args members ``"key":label`` of several label maps (each a :func:`_quoted` mapping), joined.

    One lookup per row for all of them, and one piece in :func:`_json_objects`' join instead of two per key:
    the same text as one RAW member per key (a NULL label leaves its key out; none at all gives NULL).
    """
    keys = sorted({i for m in labels.values() for i in m})
    joined = {i: ",".join(f'"{k}":{m[i]}' for k, m in labels.items() if m.get(i) is not None) for i in keys}
    return _labels(ids, {i: v for i, v in joined.items() if v})


def _strip_suffix(names: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(names, pattern=r"_v\d+$", replacement="")


#: What a table reader yields: a batch for the sink (None when empty) or a note for the trace metadata.
Item = Prepared | None | str
_DONE = object()  # end of one table reader's queue
WORKERS = 2  # table readers running at once (their SQLite queries and Arrow kernels release the GIL)
LOOKAHEAD = 2  # batches a reader may run ahead of the sink


class _Reader:
    """Streams the tables of one export into a sink.

    Each table reader (``runtime`` ... ``names``) is a generator of batches and notes. ``run`` runs them on
    ``WORKERS`` threads (one SQLite connection each) and appends their output to the sink in the fixed order
    of the readers, so the output does not depend on thread timing.
    """

    def __init__(self, db: _Db, sink: StreamSink, progress: Callable[[int], None] | None, size: int) -> None:
        self.db = db
        self.sink = sink
        self.progress = progress
        self.notes: list[str] = []
        self.counts: dict[str, int] = {}
        self.rt_corr: list[pa.Array] = []  # runtime correlation keys, for naming sync rows
        self.rt_name: list[pa.Array] = []
        self.vms: set[int] = set()
        self._runtime_read = threading.Event()
        self._stop = threading.Event()  # set by run() when it stops consuming (error): workers give up
        self._size = max(size, 1)  # progress is reported in bytes of the input file, as for Kineto
        self._total = 0
        self._done = 0
        self._sent = 0

    # -- plumbing -------------------------------------------------------------------------------------------
    def _estimate(self, tables: list[str]) -> None:
        """Expected row count (max rowid, O(log n) per table) for progress reporting in bytes of the file."""
        for t in tables:
            if t in self.db.tables:
                self._total += self.db.conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {_ident(t)}").fetchone()[0]

    def _advance(self, rows: int) -> None:
        self._done += rows
        if not self.progress or not self._total:
            return
        step = min(self._size, self._size * self._done // self._total) - self._sent
        if step > 0:
            self.progress(step)
            self._sent += step

    def _emit(self, table: str, cols: dict[str, Any]) -> Prepared | None:
        """The batch, validated for the sink (``run`` appends it in table order)."""
        n = len(cols["ts_ns"])
        seq0 = self.counts.get(table, 0)
        cols.setdefault("seq", num_array(np.arange(seq0, seq0 + n, dtype=np.int64)))
        self.counts[table] = seq0 + n
        return TraceSink.prepare(cols, autograd=False)  # StreamSink links no forward ops: no facts to find

    def _base(self, spec: TableSpec, b: dict[str, pa.Array]) -> dict[str, Any]:
        """ts/dur/pid/tid/correlation/name/cat/args columns common to all event tables."""
        n = len(b["start"])
        start, owner, corr = b["start"], b["owner"], b["corr"]
        pid = _pid_of(owner)
        cpu_side = spec.thread is not None and spec.thread in self.db.cols(spec.table)
        out: dict[str, Any] = {
            "ts_ns": start,
            "dur_ns": pc.subtract(b["end"], start) if spec.end else _const(n, 0, _I64),
            "pid": pid,
            "tid": _tid_of(owner) if cpu_side else pa.nulls(n, _I64),
            "correlation": _correlation(pid, corr) if corr.null_count < n else pa.nulls(n, _I64),
            "cat": _const(n, spec.cat or spec.table),
            "kind": _const(n, spec.kind),
            "ph": _const(n, "X" if spec.end else "i"),
        }
        if spec.name_id:
            out["name"] = self.db.resolve(b["name_id"], f"{spec.table}.{spec.name_id}")
        for k in spec.typed:
            out[k] = b[k]
        return out

    def _table(
        self,
        spec: TableSpec,
        extra_args: dict[str, str] | None = None,
        extra_cols: dict[str, str] | None = None,
        post: Callable[[dict[str, Any], dict[str, pa.Array]], None] | None = None,
    ) -> Iterator[Item]:
        if not self.db.cols(spec.table) or spec.start not in self.db.cols(spec.table):
            return
        sels = _selection(self.db, spec, extra_args or {}, extra_cols or {})
        for got in _batches(self.db, spec.table, sels):
            b = {k: v[0] for k, v in got.items()}
            parts = [(k, *v) for k, v in got.items() if k.startswith(("a:", "s:"))]  # args members, in order
            cols = self._base(spec, b)
            cols["args"] = parts  # post() may add ("a:<key>", array, kind) members computed in Arrow
            if post:
                post(cols, b)
            cols["args"] = _json_objects(cols["args"], len(b["start"]))
            yield self._emit(spec.table, cols)

    # -- tables ---------------------------------------------------------------------------------------------
    def runtime(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_RUNTIME"
        spec = TableSpec(t, "runtime")
        cls_json = _quoted(self.db.enum("ENUM_NSYS_EVENT_CLASS", EVENT_CLASS))
        has_class = "eventClass" in self.db.cols(t)
        dup = [0]

        def post(cols: dict[str, Any], b: dict[str, pa.Array]) -> None:
            cols["args"].append(("a:api_name", cols["name"], STR))
            cols["name"] = self.db.resolve(b["name_id"], f"{t}.nameId", self.db.suffixless())
            if has_class:
                cols["args"].append(("a:eventClassName", _labels(b["event_class"], cls_json), RAW))
                # eventClass 67-69 rows (CUDA backtrace records) repeat an API call with its correlationId: keep
                # them as runtime rows (nsys counts them in cuda_api_sum) but out of the launch join.
                ec = b["event_class"]
                api = pc.fill_null(pc.is_in(ec, value_set=pa.array([0, 1], _I64)), True)
                dup[0] += len(ec) - (pc.sum(api).as_py() or 0)
                cols["correlation"] = pc.if_else(api, cols["correlation"], pa.scalar(None, _I64))
            self.rt_corr.append(cols["correlation"])
            self.vms.update(pc.unique(pc.shift_right(b["owner"], 48)).to_pylist())
            self.rt_name.append(cols["name"])

        try:
            yield from self._table(spec, {}, {"event_class": "t.eventClass"} if has_class else {}, post=post)
        finally:
            self._runtime_read.set()  # syncs() names its rows from rt_corr / rt_name
        if dup[0]:
            yield (
                f"{dup[0]} runtime rows are not CUDA runtime/driver calls (e.g. eventClass 67, CUDA "
                "backtrace duplicates of a call): kept as runtime rows without correlation"
            )

    def kernels(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_KERNEL"
        c = self.db.cols(t)
        if not c:
            return

        def g(x: str) -> str:
            return f"t.{_ident(x)}" if x in c else "NULL"

        name_col = "demangledName" if "demangledName" in c else "shortName"
        typed = {
            "device": g("deviceId"),
            "stream": g("streamId"),
            "grid_x": g("gridX"),
            "grid_y": g("gridY"),
            "grid_z": g("gridZ"),
            "block_x": g("blockX"),
            "block_y": g("blockY"),
            "block_z": g("blockZ"),
            "registers": g("registersPerThread"),
            "shared_mem_bytes": f"(coalesce({g('staticSharedMemory')}, 0) + coalesce({g('dynamicSharedMemory')}, 0))"
            if ("staticSharedMemory" in c or "dynamicSharedMemory" in c)
            else "NULL",
            "graph_id": g("graphId"),
        }
        consumed = (
            "deviceId",
            "streamId",
            "gridX",
            "gridY",
            "gridZ",
            "blockX",
            "blockY",
            "blockZ",
            "registersPerThread",
            "graphId",
            "correlationId",
            "demangledName",
        )
        spec = TableSpec(
            t, "kernel", thread=None, process="globalPid", name_id=name_col, typed=typed, consumed=consumed
        )

        def post(cols: dict[str, Any], b: dict[str, pa.Array]) -> None:
            if name_col == "demangledName" and "shortName" in c and cols["name"].null_count:
                short = self.db.resolve(b["short_id"], f"{t}.shortName")
                cols["name"] = pc.coalesce(cols["name"], short)
            self._gpu_common(cols)

        yield from self._table(spec, extra_cols={"short_id": g("shortName")}, post=post)

    def _gpu_common(self, cols: dict[str, Any]) -> None:
        cols["device"] = pa.array(cols["device"], pa.int32())
        cols["stream"] = pa.array(cols["stream"], _I64)
        cols["tid"] = cols["stream"]  # as Kineto: GPU rows carry the stream in tid

    def memcpy(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_MEMCPY"
        c = self.db.cols(t)
        if not c:
            return

        def g(x: str) -> str:
            return f"t.{_ident(x)}" if x in c else "NULL"

        kinds = self.db.enum("ENUM_CUDA_MEMCPY_OPER", COPY_KIND)
        mem = self.db.enum("ENUM_CUDA_MEM_KIND", MEM_KIND)
        copy = _case(g("copyKind"), kinds)
        typed = {
            "device": g("deviceId"),
            "stream": g("streamId"),
            "bytes": g("bytes"),
            "copy_kind": copy,
            "name": f"('[CUDA memcpy ' || coalesce({copy}, 'Unknown') || ']')",
        }
        extra = {"srcKindName": _case(g("srcKind"), mem), "dstKindName": _case(g("dstKind"), mem)}
        spec = TableSpec(
            t,
            "memcpy",
            thread=None,
            process="globalPid",
            name_id=None,
            typed=typed,
            consumed=("deviceId", "streamId", "bytes", "correlationId"),
        )
        yield from self._table(spec, extra, post=lambda cols, b: self._gpu_common(cols))

    def memset(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_MEMSET"
        c = self.db.cols(t)
        if not c:
            return

        def g(x: str) -> str:
            return f"t.{_ident(x)}" if x in c else "NULL"

        mem = self.db.enum("ENUM_CUDA_MEM_KIND", MEM_KIND)
        typed = {"device": g("deviceId"), "stream": g("streamId"), "bytes": g("bytes"), "name": "'[CUDA memset]'"}
        spec = TableSpec(
            t,
            "memset",
            thread=None,
            process="globalPid",
            name_id=None,
            typed=typed,
            consumed=("deviceId", "streamId", "bytes", "correlationId"),
        )
        yield from self._table(
            spec, {"memKindName": _case(g("memKind"), mem)}, post=lambda cols, b: self._gpu_common(cols)
        )

    def syncs(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION"
        c = self.db.cols(t)
        if not c:
            return

        def g(x: str) -> str:
            return f"t.{_ident(x)}" if x in c else "NULL"

        stype = self.db.enum("ENUM_CUPTI_SYNC_TYPE", {})
        typed = {"device": g("deviceId"), "stream": g("streamId"), "sync_type": g("syncType")}
        spec = TableSpec(
            t,
            "gpu_sync",
            thread=None,
            process="globalPid",
            name_id=None,
            typed=typed,
            consumed=("deviceId", "streamId", "correlationId"),
        )
        extra = {"syncTypeName": _case(g("syncType"), stype)} if stype else {}
        while not self._runtime_read.wait(0.1):
            if self._stop.is_set():
                return
        rt_corr = pa.chunked_array(self.rt_corr, _I64).combine_chunks() if self.rt_corr else pa.array([], _I64)
        rt_name = (
            pa.chunked_array(self.rt_name, pa.string()).combine_chunks() if self.rt_name else pa.array([], pa.string())
        )
        fallback = [0]

        def post(cols: dict[str, Any], b: dict[str, pa.Array]) -> None:
            n = len(cols["ts_ns"])
            api = (
                rt_name.take(pc.index_in(cols["correlation"], value_set=rt_corr))
                if len(rt_corr)
                else pa.nulls(n, pa.string())
            )
            enc = api.dictionary_encode()
            lut = [_sync_name(s) for s in enc.dictionary.to_pylist()]
            by_api = pa.array(lut, pa.string()).take(enc.indices) if lut else pa.nulls(n, pa.string())
            labels = pa.array([SYNC_TYPE.get(i, "Unknown Sync") for i in range(5)] + ["Unknown Sync"], pa.string())
            st = b["sync_type"]
            idx = pc.if_else(pc.and_(pc.greater_equal(st, 0), pc.less(st, 5)), st, pa.scalar(5, _I64))
            by_type = labels.take(idx)
            cols["name"] = pc.coalesce(by_api, by_type, pa.scalar("Unknown Sync"))
            used = pc.sum(pc.and_(pc.is_null(by_api), pc.is_valid(by_type))).as_py() or 0
            fallback[0] += used
            cols.pop("sync_type")
            self._gpu_common(cols)

        yield from self._table(spec, extra, post=post)
        if fallback[0]:
            yield f"{fallback[0]} sync rows had no matching API call; named from syncType (unreliable across nsys versions)"

    def nvtx(self) -> Iterator[Item]:
        t = "NVTX_EVENTS"
        c = self.db.cols(t)
        if not c or "eventType" not in c:
            return
        domain: dict[str, str] = {}  # the args member naming the range's domain: none when no domain was created
        if "domainId" in c and self._domains():
            domain["domain"] = (
                "(CASE WHEN t.domainId != 0 THEN (SELECT d.name FROM temp._tk_domains AS d "
                "WHERE d.domainId = t.domainId AND d.gpid = (t.globalTid >> 24)) END)"
            )
        typed = {"name": "t.text" if "text" in c else "NULL", "etype": "t.eventType"}
        text_id = {"text_id": "t.textId"} if "textId" in c else {}
        spec = TableSpec(t, "range", name_id=None, typed=typed, consumed=("text", "textId", "eventType"))
        open_ranges = [0]
        types = _quoted(self.db.enum("ENUM_NSYS_EVENT_TYPE", NVTX_TYPE))
        styles = _quoted({59: "PushPop", 70: "PushPop", 60: "StartEnd", 71: "StartEnd"})

        def post(cols: dict[str, Any], b: dict[str, pa.Array]) -> None:
            et = b["etype"]
            if text_id:  # registered strings (textId) win over inline text, as in nsys's reports
                cols["name"] = pc.coalesce(self.db.resolve(b["text_id"], f"{t}.textId"), cols["name"])
            cols["args"].append(
                ("a:eventTypeName+style", _members(et, {"eventTypeName": types, "style": styles}), MEMBERS)
            )
            is_range = pc.is_in(et, value_set=pa.array(NVTX_RANGE_TYPES, _I64))
            name, raw = _emit_nvtx_name(cols["name"], is_range)
            cols["name"] = name
            cols["args"].append(("a:raw_name", raw, STR))
            is_mark = pc.is_in(et, value_set=pa.array(NVTX_MARK_TYPES, _I64))
            cols["kind"] = pc.if_else(is_range, "range", pc.if_else(is_mark, "instant", "meta"))
            cols["ph"] = pc.if_else(is_range, "X", pc.if_else(is_mark, "i", "M"))
            dur = cols["dur_ns"]
            cols["dur_ns"] = pc.if_else(is_range, dur, pa.scalar(0, _I64))
            open_ranges[0] += pc.sum(pc.and_(is_range, pc.is_null(dur))).as_py() or 0
            cols.pop("etype")

        yield from self._table(spec, domain, text_id, post=post)
        if open_ranges[0]:
            yield f"{open_ranges[0]} NVTX ranges were never closed (end NULL): dur_ns NULL"

    def _domains(self) -> bool:
        """temp._tk_domains(gpid, domainId, name) from the eventType 75 (domain create) rows; False when there
        are none (then every range's domain member is NULL, and the query leaves it out: 9% of its time)."""
        run = self.db.execute_everywhere  # the batches read through either connection of this thread
        run("DROP TABLE IF EXISTS temp._tk_domains")
        run("CREATE TEMP TABLE _tk_domains (gpid INTEGER, domainId INTEGER, name TEXT, PRIMARY KEY (domainId, gpid))")
        text = "text"
        if self.db.has("NVTX_EVENTS", "textId") and "StringIds" in self.db.tables:
            text = "coalesce((SELECT value FROM StringIds WHERE id = textId), text)"
        fill = (
            f"INSERT OR IGNORE INTO temp._tk_domains SELECT globalTid >> 24, domainId, {text} "
            "FROM NVTX_EVENTS WHERE eventType = 75 AND domainId IS NOT NULL"
        )
        self.db.conn.execute(fill)
        rows = self.db.conn.execute("SELECT gpid, domainId, name FROM temp._tk_domains").fetchall()
        if not rows:
            return False
        arrow = self.db.arrow_conn
        if arrow is None:
            return True
        # The ADBC connection gets the same rows as a JSON literal instead of a second scan of NVTX_EVENTS (no
        # index on eventType); values JSON cannot hold exactly (blobs) take the scan again.
        if all(type(v) in (int, str, type(None)) for r in rows for v in r):
            lit = json.dumps(rows).replace("'", "''")
            fill = (
                "INSERT OR IGNORE INTO temp._tk_domains SELECT value ->> 0, value ->> 1, value ->> 2 "
                f"FROM json_each('{lit}')"
            )
        with arrow.cursor() as cur:
            cur.execute(fill)
        return True

    def cpu_intervals(self) -> Iterator[Item]:
        """OSRT, CUDA graph, overhead and library tables: kind ``other``."""
        specs = [
            TableSpec("OSRT_API", "other", cat="osrt"),
            TableSpec("CUDA_GRAPH_EVENTS", "other"),
            TableSpec("CUDA_GRAPH_NODE_EVENTS", "other"),
            TableSpec("PROFILER_OVERHEAD", "other"),
            TableSpec("CUPTI_ACTIVITY_KIND_OVERHEAD", "other"),
            TableSpec("CUDNN_EVENTS", "other"),
            TableSpec("CUBLAS_EVENTS", "other"),
        ]
        for spec in specs:
            c = self.db.cols(spec.table)
            if not c:
                continue
            if spec.name_id not in c:
                spec.name_id = None
            if spec.thread not in c:
                spec.thread, spec.process = None, "globalPid"
            if spec.end not in c:
                spec.end = None

            def post(cols: dict[str, Any], b: dict[str, pa.Array], spec: TableSpec = spec) -> None:
                if not spec.name_id:
                    cols["name"] = _const(len(cols["ts_ns"]), spec.table)
                if spec.table == "CUPTI_ACTIVITY_KIND_OVERHEAD":
                    cols["correlation"] = pa.nulls(len(cols["ts_ns"]), _I64)  # not a GPU op: keep the linker off it

            yield from self._table(spec, post=post)

    def cuda_events(self) -> Iterator[Item]:
        t = "CUPTI_ACTIVITY_KIND_CUDA_EVENT"
        c = self.db.cols(t)
        if "timestamp" not in c:
            if c and self.db.conn.execute(f"SELECT count(*) FROM {_ident(t)}").fetchone()[0]:
                yield f"{t}: no timestamp column in this export; its rows are skipped"
            return

        def g(x: str) -> str:
            return f"t.{_ident(x)}" if x in c else "NULL"

        typed = {"device": g("deviceId"), "stream": g("streamId"), "name": "'[CUDA event record]'"}
        spec = TableSpec(
            t,
            "other",
            start="timestamp",
            end=None,
            thread=None,
            process="globalPid",
            name_id=None,
            typed=typed,
            consumed=("deviceId", "streamId"),
        )

        def post(cols: dict[str, Any], b: dict[str, pa.Array]) -> None:
            cols["device"] = pa.array(cols["device"], pa.int32())
            cols["stream"] = pa.array(cols["stream"], _I64)
            cols["correlation"] = pa.nulls(len(cols["ts_ns"]), _I64)

        yield from self._table(spec, post=post)

    def names(self) -> Iterator[Item]:
        """ThreadNames and PROCESSES -> ``meta`` rows (``thread_name`` / ``process_name``)."""
        db = self.db
        if db.has("ThreadNames", "nameId", "globalTid"):
            rows = db.conn.execute(
                "SELECT globalTid, nameId, json_object('priority', t.priority) FROM ThreadNames AS t"
                if db.has("ThreadNames", "priority")
                else "SELECT globalTid, nameId, '{}' FROM ThreadNames"
            ).fetchall()
            if rows:
                g, nid, args = (list(x) for x in zip(*rows))
                gt = pa.array(g, _I64)
                names = db.resolve(pa.array(nid, _I64), "ThreadNames.nameId")
                args = [_json_with_name(a, v) for a, v in zip(args, names.to_pylist())]
                yield self._meta("ThreadNames", "thread_name", _pid_of(gt), _tid_of(gt), args)
        if db.has("PROCESSES", "pid", "name"):
            rows = db.conn.execute(
                "SELECT pid, json_object('name', name, 'globalPid', "
                + ("globalPid" if db.has("PROCESSES", "globalPid") else "NULL")
                + ") FROM PROCESSES"
            ).fetchall()
            if rows:
                pid, args = (list(x) for x in zip(*rows))
                yield self._meta("PROCESSES", "process_name", pa.array(pid, _I64), pa.nulls(len(pid), _I64), args)

    def _meta(self, table: str, name: str, pid: pa.Array, tid: pa.Array, args: list[str]) -> Prepared | None:
        n = len(args)
        return self._emit(
            table,
            {
                "kind": _const(n, "meta"),
                "cat": _const(n, table),
                "ph": _const(n, "M"),
                "name": _const(n, name),
                "ts_ns": pa.nulls(n, _I64),
                "dur_ns": pa.array([0] * n, _I64),
                "pid": pid,
                "tid": tid,
                "args": pa.array(args, pa.string()),
            },
        )

    def run(self) -> None:
        order = [
            "CUPTI_ACTIVITY_KIND_RUNTIME",
            "CUPTI_ACTIVITY_KIND_KERNEL",
            "CUPTI_ACTIVITY_KIND_MEMCPY",
            "CUPTI_ACTIVITY_KIND_MEMSET",
            "CUPTI_ACTIVITY_KIND_SYNCHRONIZATION",
            "NVTX_EVENTS",
            "OSRT_API",
        ]
        self._estimate(order)
        self.db.strings()  # shared by every table: read before the workers start
        tasks = [
            self.runtime,
            self.kernels,
            self.memcpy,
            self.memset,
            self.syncs,
            self.nvtx,
            self.cpu_intervals,
            self.cuda_events,
            self.names,
        ]
        held = tasks.index(self.nvtx)  # NVTX_EVENTS holds every range: read first, written first (StreamSink)
        queues: list[queue.Queue[Any]] = [queue.Queue(maxsize=LOOKAHEAD) for _ in tasks]
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="tracekit-nsys") as pool:
            # Started in this order, consumed in the order of the tasks (the rows of the output keep it): a
            # worker only ever waits on a queue that the consumer reaches before any task not yet started.
            for i in [held, *(i for i in range(len(tasks)) if i != held)]:
                pool.submit(self._produce, tasks[i], queues[i])
            try:
                held_notes: list[str] = []
                for item in self._drain(queues[held]):
                    if isinstance(item, str):
                        held_notes.append(item)
                    elif item is not None:
                        self.sink.hold(item)
                        self._advance(item.batch.num_rows)
                self.sink.start()
                # the ranges go first in the output: linked and written while the other tables are still read (at
                # their place after the GPU tables they were ~0.2 s of main-thread work and a Parquet tail after the
                # last read: the conversion of the 968k-event export 1.61 -> 1.45 s, issue 25 item 4)
                self.sink.append_held()
                for i, q in enumerate(queues):
                    if i == held:
                        self.notes += held_notes  # the notes keep the tables' order
                        continue
                    for item in self._drain(q):
                        if isinstance(item, str):
                            self.notes.append(item)
                        elif item is not None:
                            self.sink.append(item)
                            self._advance(item.batch.num_rows)
            except BaseException:
                self.db.stop.set()  # queries still running on the workers' connections abort
                raise
            finally:
                self._stop.set()

    @staticmethod
    def _drain(q: queue.Queue[Any]) -> Iterator[Item]:
        """One table reader's items, until its end (an exception it raised is raised here)."""
        while (item := q.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item

    def _produce(self, task: Callable[[], Iterator[Item]], q: queue.Queue[Any]) -> None:
        """Run one table's reader on a worker thread into ``q`` (then ``_DONE``, or the exception it raised)."""

        def put(item: Any) -> bool:
            while not self._stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    pass
            return False

        if self._stop.is_set():  # run() has given up (an earlier reader failed)
            return
        try:
            for item in task():
                if not put(item):
                    return
            put(_DONE)
        except BaseException as e:  # noqa: BLE001  (raised again by run() on the caller's thread)
            put(e)


#: What ``torch.autograd.profiler.emit_nvtx`` appends to an op's name (torch/csrc/profiler/util.cpp, getNvtxStr):
#: ``NAME[, seq = N][, op_id = N][, sizes = [[...], ...]][, input_op_ids = [(id,nr), ...]]``, in this order.
#: op_id is new for every call, so raw names never repeat and each call would be a phase of its own.
EMIT_NVTX_SUFFIX = r"(, seq = \d+)?(, op_id = \d+)?(, sizes = \[.*\])?(, input_op_ids = \[.*\])?$"


def _emit_nvtx_base(names: pa.Array) -> pa.Array:
    """``names`` with :data:`EMIT_NVTX_SUFFIX` removed: the C extension's byte-level reading of that regex
    (:func:`tracekit.ingest.kscan.emit_nvtx_cut`: 0.01 s instead of 0.15 s for the 574k ranges of a 968k-event
    emit_nvtx export) when it can, else the regex itself."""
    cut = kscan.emit_nvtx_cut(names)
    return cut if cut is not None else pc.replace_substring_regex(names, pattern=EMIT_NVTX_SUFFIX, replacement="")


def _emit_nvtx_name(names: pa.Array, is_range: pa.Array) -> tuple[pa.Array, pa.Array]:
    """Range names without emit_nvtx's per-call suffixes, and the raw name where one was removed (else NULL).

    Phases are derived from range names (tracekit.ingest.link), so ``aten::mul, op_id = 317177`` and
    ``aten::mul, op_id = 317178`` must both become ``aten::mul`` for phases to aggregate. Marks and
    other NVTX records keep their text. The raw text stays in args (``raw_name``): nothing is lost.
    """
    base = _emit_nvtx_base(names)
    changed = pc.and_(pc.fill_null(pc.not_equal(base, names), False), pc.fill_null(is_range, False))
    return pc.if_else(changed, base, names), pc.if_else(changed, names, pa.scalar(None, pa.string()))


def _json_with_name(args: str, name: str | None) -> str:
    d = json.loads(args) if args else {}
    d = {"name": name, **d}
    return json.dumps(d)


def _sync_name(api: str | None) -> str | None:
    if api is None:
        return None
    for rx, label in _SYNC_API:
        if rx.match(api):
            return label
    return None


# ---------------------------------------------------------------------------------------------------------------
# Trace metadata


def _kv(db: _Db, table: str) -> dict[str, str]:
    if not db.has(table, "name", "value"):
        return {}
    out: dict[str, str] = {}
    for k, v in db.conn.execute(f"SELECT name, value FROM {_ident(table)}"):
        if k is not None and "ENVIRONMENT" not in str(k).upper():
            out.setdefault(str(k), v)
    return out


def _command_line(capture: dict[str, str]) -> list[str]:
    """Capture command line(s) from META_DATA_CAPTURE, secret-looking values redacted."""
    cmds = []
    for k in sorted(capture):
        m = re.match(r"^(PROCESS_\d+):COMMAND$", k)
        if not m:
            continue
        args = []
        i = 0
        while f"{m[1]}:ARGUMENT_{i}" in capture:
            args.append(str(capture[f"{m[1]}:ARGUMENT_{i}"]))
            i += 1
        cmds.append(" ".join(redact_argv([str(capture[k]), *args])))  # as a list: "--api-key", "S" are two arguments
    return cmds


def _devices(db: _Db) -> list[dict[str, Any]]:
    """GPU facts from TARGET_INFO_GPU (2021+) or TARGET_INFO_CUDA_GPU (2020.3)."""
    if db.has("TARGET_INFO_CUDA_GPU", "name"):
        c = db.cols("TARGET_INFO_CUDA_GPU")
        want = {
            "id": "deviceId",
            "name": "name",
            "sm_count": "numMultiprocessors",
            "memory_mib": "globalMemorySize",
            "clock_khz": "coreClockRate",
            "compute_major": "computeCapabilityMajor",
            "compute_minor": "computeCapabilityMinor",
            "bus": "pciBusId",
            "memory_bandwidth": "globalMemoryBandwidth",
        }
        return _rows_as_dicts(db, "TARGET_INFO_CUDA_GPU", {k: v for k, v in want.items() if v in c})
    if db.has("TARGET_INFO_GPU", "name"):
        c = db.cols("TARGET_INFO_GPU")
        want = {
            "id": "id" if "id" in c else "deviceId",
            "cuda_device": "cuDevice",
            "name": "name",
            "sm_count": "smCount",
            "memory_bytes": "totalMemory",
            "clock_hz": "clockRate",
            "compute_major": "computeMajor",
            "compute_minor": "computeMinor",
            "bus": "busLocation",
            "uuid": "uuid",
            "chip": "chipName",
            "memory_bandwidth": "memoryBandwidth",
            "l2_cache_bytes": "l2CacheSize",
        }
        return _rows_as_dicts(db, "TARGET_INFO_GPU", {k: v for k, v in want.items() if v in c})
    return []


def _rows_as_dicts(db: _Db, table: str, cols: dict[str, str]) -> list[dict[str, Any]]:
    sql = f"SELECT {', '.join(_ident(v) for v in cols.values())} FROM {_ident(table)}"
    return [{k: v for k, v in zip(cols, r)} for r in db.conn.execute(sql)]


def _trace_meta(db: _Db, source_file: str, notes: list[str]) -> dict[str, Any]:
    export = _kv(db, "META_DATA_EXPORT") or _kv(db, "EXPORT_META_DATA")
    capture = _kv(db, "META_DATA_CAPTURE")
    version = export.get("EXPORT_PRODUCT_VERSION")
    notes = list(notes)
    if version is None:
        notes.append("export has no metadata table (nsys before 2021, e.g. 2020.3): profiler_version unknown")
    base = None
    if db.has("TARGET_INFO_SESSION_START_TIME", "utcEpochNs"):
        r = db.conn.execute("SELECT utcEpochNs FROM TARGET_INFO_SESSION_START_TIME LIMIT 1").fetchone()
        base = int(r[0]) if r and r[0] is not None else None
    devices = _devices(db)
    if not devices:
        notes.append(
            "export has no GPU device table (TARGET_INFO_GPU): GPU names, SM counts and peak FLOP/s are unknown"
        )
    extra: dict[str, Any] = {}
    for key, label in (
        ("EXPORT_SCHEMA_VERSION", "export_schema_version"),
        ("EXPORT_PARAM_TIME_NORMALIZE", "ts_normalize"),
        ("EXPORT_PARAM_TIME_SHIFT", "ts_shift"),
        ("DERIVED_FROM", "derived_from"),
        ("DERIVED_WINDOW_NS", "derived_window_ns"),
        ("DERIVED_BY", "derived_by"),
    ):
        if key in export:
            extra[label] = redact_text(str(export[key]))
    for key, val in capture.items():
        if key.endswith("CUDA_GRAPH_TRACE_OPTIONS:MODE"):
            extra["cuda_graph_trace"] = val
    cmds = _command_line(capture)
    if cmds:
        extra["command_line"] = cmds[0] if len(cmds) == 1 else cmds
    return {
        "source_file": source_file,
        "profiler_version": version,
        "base_time_ns": base,
        "devices": devices,
        "rank": None,
        "world_size": None,
        "notes": notes,
        "extra": extra,
    }


# ---------------------------------------------------------------------------------------------------------------
# Entry points


def _export_report(path: Path, tmpdir: str) -> Path:
    """``nsys export --type sqlite`` of a .nsys-rep/.qdrep into ``tmpdir``; TraceError when nsys is absent."""
    nsys = shutil.which("nsys")
    if not nsys:
        raise TraceError(
            path,
            f"is an nsys report and `nsys` is not on PATH; export it by hand with "
            f"`nsys export --type sqlite -o {path.with_suffix('.sqlite').name} {path.name}` "
            f"and convert the .sqlite",
        )
    out = Path(tmpdir) / (path.stem + ".sqlite")
    cmd = [nsys, "export", "--type", "sqlite", "--force-overwrite", "true", "-o", str(out), str(path)]
    try:
        res = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TraceError(path, f"`nsys export` failed to run ({e})") from None
    if res.returncode != 0 or not out.exists():
        msg = (res.stderr or res.stdout or "").strip().splitlines()
        raise TraceError(
            path, f"`nsys export --type sqlite` failed (exit {res.returncode}): {msg[-1] if msg else 'no output'}"
        )
    return out


def convert_nsys(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trace: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Convert one nsys export (.sqlite, or .nsys-rep/.qdrep via the nsys CLI) to ``out`` (Parquet)."""
    p = Path(path)
    name = trace or default_trace_name(p)
    if p.suffix in (".nsys-rep", ".qdrep"):
        with tempfile.TemporaryDirectory(prefix="tracekit-nsys-") as tmp:
            sqlite_path = _export_report(p, tmp)
            return _convert_sqlite(sqlite_path, out, name, progress, source_file=str(path))
    return _convert_sqlite(p, out, name, progress, source_file=str(path))


def _convert_sqlite(
    p: Path, out: str | os.PathLike[str], name: str, progress: Callable[[int], None] | None, source_file: str
) -> dict[str, Any]:
    if not p.exists():
        raise TraceError(p, "no such file")
    db = _Db(p)
    keep_freed_blocks()  # every batch allocates multi-MB Arrow buffers: reuse them (30x file: ~0.2-0.6 s less kernel time)
    try:
        if "StringIds" not in db.tables and not any(t in db.tables for t in EVENT_TABLES):
            raise TraceError(
                p, "SQLite database but not an Nsight Systems export (no StringIds and no CUPTI/NVTX/OSRT tables)"
            )
        with StreamSink(out, name, SOURCE) as sink:
            reader = _Reader(db, sink, progress, Path(source_file).stat().st_size)
            # No cyclic GC while the tables are read: each batch makes a few hundred Arrow wrappers, and GC
            # passes over every loaded module's objects were ~3% of the CPU (perf, 30x file), all under the GIL.
            gc_was = gc.isenabled()
            gc.disable()
            try:
                reader.run()
            finally:
                if gc_was:
                    gc.enable()
            if len(reader.vms) > 1:
                reader.notes.append(
                    "several VM ids in globalTid: correlation keys use pid only and may collide across hosts"
                )
            meta = _trace_meta(db, source_file, reader.notes)
            meta["table_rows"] = dict(sorted(reader.counts.items()))
            sink.finish(meta)
        return dict(meta, trace=name, events=sink.rows)
    except sqlite3.DatabaseError as e:
        if isinstance(e, sqlite3.OperationalError) and "interrupt" in str(e):
            if db.deadline is not None and time.monotonic() > db.deadline:
                raise TraceError(p, "reading the nsys database took past its deadline") from None
            if not db.aborted_by_us():  # the progress handler saw a signal: SIGINT's KeyboardInterrupt was lost there
                raise KeyboardInterrupt from None
        raise TraceError(p, f"corrupt or unreadable nsys database ({_one_line(e)})") from None
    except TraceError:
        raise
    except MemoryError:
        raise TraceError(p, "out of memory while reading it (a value too large for the memory available)") from None
    except _damage_errors() as e:  # found by tests/fuzz/nsys_fuzz.py: wrong-typed or missing values
        raise TraceError(
            p, f"unexpected values in the nsys database, is it damaged? ({type(e).__name__}: {_one_line(e)})"
        ) from None
    finally:
        db.close()


def _one_line(e: BaseException) -> str:
    """An exception's text for a one-line message (SQLite quotes damaged values, newlines included)."""
    text = " ".join(str(e).split())
    return text if len(text) <= 200 else text[:200] + "..."


def _damage_errors() -> tuple[type[BaseException], ...]:
    """What a damaged export (a value of the wrong type, a NULL, a missing column) makes the reader raise.

    Why not every exception: a real bug (an AttributeError, say) should still show as one.
    """
    import duckdb  # deferred: an error path; converting an nsys export loads no DuckDB (tests/test_startup.py)

    return (
        pa.ArrowException,
        ValueError,
        TypeError,
        OverflowError,
        KeyError,
        IndexError,
        msgspec.MsgspecError,
        duckdb.Error,
    )
