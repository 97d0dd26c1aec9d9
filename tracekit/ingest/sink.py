"""Streaming writer shared by every ingest: batches in, one finished Parquet out.

An ingest hands over record batches of the base columns as it parses (any
subset of :data:`tracekit.schema.COLUMNS`; missing ones become NULL). The sink
spills them to an uncompressed Arrow IPC file next to the output and keeps only
the few columns the linker needs in memory, so peak memory follows the number
of events (about 40 bytes each), not the size of the input. The spill file
(``.<out name>.<pid>@<host>.<random>.arrow``, about 1.2x the input) lives beside the
output, and is removed on success, error, SIGTERM/SIGINT, or, after a SIGKILL,
by the next conversion into that folder (see :mod:`tracekit.atomic`). ``finish`` runs
:func:`tracekit.ingest.link.link`, then streams the spilled batches back, adds
the link columns and writes the Parquet file under a temporary name that is
renamed into place only when complete: a failed conversion leaves no output.
The spill is read back zero-copy from a memory map, whose pages are handed back
as soon as the writer is past them (:class:`_PageDropper`).
Row groups are encoded on a writer thread while the calling thread prepares the
next one.

:class:`StreamSink` is the same sink for a reader that can deliver every range
first (nsys: NVTX_EVENTS holds them all): it spills only that table, then links
and writes every other batch as soon as it arrives, so the Parquet write runs
while the rest is read instead of after it. Both add the trace metadata to the
file when they close it (:func:`_parquet_out`).
"""

from __future__ import annotations

import contextlib
import contextvars
import ctypes
import dataclasses
import os
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import ipc

from tracekit import __version__, schema
from tracekit.atomic import atomic_path, drop_temp, make_temp, signals_deferred, stop_requested
from tracekit.errors import TraceError
from tracekit.ingest.arrays import bits, np_filled, np_values, num_array, str_array
from tracekit.ingest.link import (
    FB_BWD_OP,
    FB_END,
    FB_FWD_OP,
    FB_START,
    GPU_RANGE,
    RANGE,
    RUNTIME,
    BatchLinker,
    LinkInput,
    RangeTree,
    kind_codes,
    link,
)

BASE_FIELDS = [f for f in schema.ARROW_SCHEMA if f.name not in schema.LINK_COLUMNS + schema.SINK_COLUMNS]
BASE_SCHEMA = pa.schema(BASE_FIELDS)
#: Columns handed to the Parquet writer as dictionary arrays: trace and source (one value per trace, filled
#: here: readers leave them NULL) and the link columns (indices into the linker's few distinct phases, paths
#: and names). The writer then writes their dictionary pages as given instead of hashing every value, and
#: nobody builds the strings row by row. A file written this way holds plain UTF-8 columns: without
#: ``ARROW:schema`` in the file (see :func:`_parquet_out`) every reader reads them back as ``string``.
DICT_OUT = ("trace", "source", "phase", "phase_path", "phase_rule", "launch_name")
_DICT = pa.dictionary(pa.int32(), pa.string())
WRITE_SCHEMA = pa.schema([pa.field(f.name, _DICT) if f.name in DICT_OUT else f for f in schema.ARROW_SCHEMA])

#: Parquet settings (codec: see PARQUET_OPTIONS). Dictionary
#: encoding only for low-cardinality text: on `args`/`name`-like columns it was slower and larger than compression alone.
DICT_COLUMNS = [
    "trace",
    "source",
    "kind",
    "cat",
    "ph",
    "name",
    "phase",
    "phase_path",
    "phase_rule",
    "launch_name",
    "copy_kind",
]
#: Min/max statistics only where they can prune scans; on long free text they cost write time and prune nothing.
STATS_COLUMNS = [c for c in schema.COLUMN_NAMES if c not in ("args", "input_dims", "input_types", "name", "phase_path")]
#: Delta encoding for the near-monotonic int64 columns (they compress far better as deltas), and 64k values
#: per encoder call instead of 1024 (less CPU per value).
#: LZ4 (raw), not zstd-1: the Parquet writer is the conversion's critical path, and the report reads either
#: file as fast. The numbers behind these choices: docs/design.md, "Measurements behind the choices".
PARQUET_OPTIONS: dict[str, Any] = dict(
    compression="lz4",
    use_dictionary=DICT_COLUMNS,
    write_statistics=STATS_COLUMNS,
    column_encoding={"seq": "DELTA_BINARY_PACKED", "ts_ns": "DELTA_BINARY_PACKED", "row_id": "DELTA_BINARY_PACKED"},
    write_batch_size=64 * 1024,
)
#: A row group also ends when its rows reach this many bytes (never on real traces: 64k rows are ~10-40 MB).
ROW_GROUP_BYTES = 128 << 20
ROW_GROUP = 64 * 1024  # bounds the writer's buffer; DuckDB scans these as fast as its own 122,880


#: Facts the caller of :func:`tracekit.ingest.convert` adds to the trace's metadata (``source_sha256``): set
#: there around the reader, merged by :meth:`TraceSink.finish`, so the readers need not pass them along.
EXTRA_META: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("tracekit_extra_meta", default={})  # noqa: B039  (read only: set() replaces it)


def _release_free_memory() -> None:
    """Hand freed heap pages back to the OS (glibc keeps them after the decode's many small objects)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_freed_blocks() -> None:
    """Let glibc reuse freed multi-MB blocks instead of unmapping them (and faulting fresh pages in again).

    glibc serves allocations above a threshold with mmap and unmaps them on free; its dynamic threshold
    starts at 128 KiB, so each 4 MB block's column buffers cost page faults twice. Fixing the threshold at
    32 MiB (the dynamic one's ceiling) with a 64 MiB trim threshold keeps them in the heap: the Kineto decode
    spent 0.2 s less in the kernel on a 540 MB trace, for ~10 MB more peak RSS. Process-wide and idempotent;
    :func:`_release_free_memory` still hands everything back before the link step.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(_M_TRIM_THRESHOLD, 64 << 20)
    except (OSError, AttributeError):
        pass


class _PageDropper:
    """Hands the pages of a memory-mapped spill file back once their rows are written, so they leave our RSS.

    Why: the spill is read back zero-copy from a memory map (no read into fresh buffers: on the 30x nsys file
    the finish took 0.17 CPU-s less), but every page touched would stay mapped, and peak RSS would grow by the
    whole spill (~1.2x the input). ``madvise(MADV_DONTNEED)`` on a read-only file mapping is always safe (a
    page touched again is read back from the page cache); it is asked only for batches whose rows the writer
    thread has written, else the writer would fault them in again. A no-op where ``madvise`` is unavailable.
    """

    _MADV_DONTNEED = 4
    _PAGE = 4096

    def __init__(self) -> None:
        # the mapping's bounds (:meth:`bounds`): a buffer outside them (a batch decoded into fresh memory)
        # turns dropping off, since MADV_DONTNEED on heap memory would zero live data
        self._base = self._end = 0
        self._batches: list[tuple[int, int]] = []  # (output rows up to this batch's end, address of its first byte)
        self._written = 0
        self._done = 0
        self._next = 0
        self._madvise: Any = None  # libc madvise, or None where it is missing or unsafe
        try:
            self._madvise = ctypes.CDLL("libc.so.6").madvise
            self._madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        except (OSError, AttributeError):
            self._madvise = None

    def bounds(self, mapped: pa.MemoryMappedFile) -> None:
        """Note where the spill is mapped (its first byte's address and its size)."""
        pos = mapped.tell()
        mapped.seek(0)
        self._base = mapped.read_buffer(1).address if mapped.size() else 0
        self._end = self._base + mapped.size()
        mapped.seek(pos)

    def read(self, batch: pa.RecordBatch, end_row: int) -> None:
        """Note the next batch read from the map (reader thread); ``end_row``: its last output row + 1."""
        addrs = [buf.address for col in batch.columns for buf in col.buffers() if buf is not None and buf.size]
        if any(not self._base <= a < self._end for a in addrs):
            self._madvise = None  # not all in the map: never drop
        if addrs:
            self._batches.append((end_row, min(addrs)))

    def written(self, rows: int) -> None:
        """``rows`` more output rows are written (writer thread): drop the pages before the first batch still needed."""
        self._written += rows
        if self._madvise is None or not self._batches:
            return
        n = len(self._batches)  # appended by the reader thread meanwhile: read the length once
        while self._next < n and self._batches[self._next][0] <= self._written:
            self._next += 1
        if self._next >= n:
            return
        lo = max(self._batches[0][1] & ~(self._PAGE - 1), self._done)  # page-aligned, inside the mapping
        hi = self._batches[self._next][1] & ~(self._PAGE - 1)
        if hi > lo:
            self._madvise(lo, hi - lo, self._MADV_DONTNEED)
            self._done = hi


def _i64(a: pa.Array) -> np.ndarray:
    """int64 numpy copy of an Arrow integer array, NULL -> -1."""
    return np_filled(a, -1, np.int64)


class _WriterThread:
    """Writes tables to a ParquetWriter on a thread of its own, at most one table queued.

    Leaving the ``with`` block waits for the writes; an error on the writer thread is raised there
    (and stops :meth:`put` from queueing more); an error in the block stops the thread without waiting
    for what is queued. It always waits for the write in progress, even when interrupted while waiting.
    """

    def __init__(self, writer: pq.ParquetWriter, on_written: Any = None) -> None:
        self._w = writer
        self._on_written = on_written  # called with each table's row count once it is written
        self._q: queue.Queue[pa.Table | None] = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._stop = False
        self._finished = False  # set by the thread as its last act (see _wait_for_thread)
        self._t = threading.Thread(target=self._run, name="tracekit-parquet-writer", daemon=True)

    def _run(self) -> None:
        try:
            while True:
                t = self._q.get()
                if t is None:
                    return
                if self._error is None and not self._stop:
                    try:
                        self._w.write_table(t, row_group_size=ROW_GROUP)
                        if self._on_written is not None:
                            self._on_written(t.num_rows)
                    except BaseException as e:  # noqa: BLE001  (re-raised on the caller's thread)
                        self._error = e
        finally:
            self._finished = True

    def put(self, table: pa.Table) -> None:
        if self._error is not None:
            raise self._error
        if stop_requested():  # a SIGINT/SIGTERM held back while the thread lives (see __enter__): stop here
            raise KeyboardInterrupt("signal received: the conversion stops")
        self._q.put(table)

    def __enter__(self) -> _WriterThread:
        # While the thread lives, a signal's KeyboardInterrupt is held back (tracekit.atomic.signals_deferred) and
        # raised by put() or when the thread is gone: never in the middle of the code that waits for it.
        self._deferred = signals_deferred()
        self._deferred.__enter__()
        try:
            self._t.start()
        except BaseException:
            self._deferred.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self._stop = True
        try:
            late = self._wait_for_thread()
        finally:
            self._deferred.__exit__(None, None, None)
        if late is not None:
            raise late
        if exc_type is None and self._error is not None:
            raise self._error

    def _wait_for_thread(self) -> BaseException | None:
        """Queue the end and wait until the thread is gone, whatever interrupts the wait; returns what interrupted it.

        Why so careful: the ParquetWriter is closed right after this, and closing it under a ``write_table`` aborted
        the process ("pure virtual method called", SIGABRT, or SIGSEGV) when a Ctrl-C landed in this wait (issue 24).
        After an interruption the remaining tables are skipped and the wait polls ``_finished``, not
        ``Thread.join``: a join interrupted by a signal can return at once afterwards while the thread still runs
        (CPython 3.11's _wait_for_tstate_lock releases the lock the running thread holds).
        """
        late: BaseException | None = None
        end_queued = False
        while not self._finished:
            try:
                if not end_queued:
                    self._q.put(None, timeout=0.05)
                    end_queued = True
                elif late is None:
                    self._t.join()
                else:
                    time.sleep(0.002)
            except queue.Full:
                continue
            except BaseException as e:  # noqa: BLE001  (returned, raised by __exit__ once the thread is gone)
                self._stop = True
                late = late or e
        return late


class _Out:
    """The output while it is written: batches in output order, whole row groups handed to the writer thread.

    Every row group but the last has ROW_GROUP rows whatever the batch sizes (2.16 M rows: 33 groups, was 59
    of uneven size); the rest of a batch starts the next group (zero-copy slices).
    """

    def __init__(self, wt: _WriterThread, pages: _PageDropper, trace: str, source: str) -> None:
        self.wt = wt
        self.pages = pages
        self.rows = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._pending_bytes = 0
        self._const = {"trace": str_array([trace]), "source": str_array([source])}

    def write(self, b: pa.RecordBatch, link: dict[str, pa.Array]) -> None:
        """One batch of base columns (BASE_SCHEMA) plus its link columns: the next rows of the output."""
        lo, hi = self.rows, self.rows + b.num_rows
        extra = dict(link)
        if b.column("seq").null_count == b.num_rows:
            extra["seq"] = num_array(np.arange(lo, hi, dtype=np.int64))
        extra["row_id"] = num_array(np.arange(lo, hi, dtype=np.int64))  # schema.SINK_COLUMNS
        zeros = num_array(np.zeros(b.num_rows, np.int32))
        for k, v in self._const.items():
            extra[k] = pa.DictionaryArray.from_arrays(zeros, v)
        cols = [extra[f.name] if f.name in extra else b.column(f.name) for f in WRITE_SCHEMA]
        rb = pa.RecordBatch.from_arrays(cols, schema=WRITE_SCHEMA)
        self._pending.append(rb)
        self._pending_rows += b.num_rows
        self._pending_bytes += rb.nbytes
        self.rows = hi
        if self._pending_rows >= ROW_GROUP:
            t = pa.Table.from_batches(self._pending)
            full = self._pending_rows - self._pending_rows % ROW_GROUP
            for at in range(0, full, ROW_GROUP):  # one row group at a time: each keeps its own dictionaries
                self.wt.put(_compact_dicts(t.slice(at, ROW_GROUP)))
            self._pending = t.slice(full).to_batches()
            self._pending_rows -= full
            self._pending_bytes = sum(x.nbytes for x in self._pending)
        elif self._pending_bytes >= ROW_GROUP_BYTES:
            # rows this large (a hostile input: one 40 MB string referenced by every row) make a shorter group:
            # memory stays a few groups' bytes, not ROW_GROUP rows of them
            self.flush()

    def flush(self) -> None:
        if self._pending or self.rows == 0:
            self.wt.put(_compact_dicts(pa.Table.from_batches(self._pending, schema=WRITE_SCHEMA)))
            self._pending, self._pending_rows, self._pending_bytes = [], 0, 0


#: Dictionaries of at most this many values (or an eighth of the group's rows) are written as they are.
DICT_KEEP = 512


def _compact_dicts(t: pa.Table) -> pa.Table:
    """The DICT_OUT columns of a row group with long dictionaries cut down to the entries the group uses.

    Why: the Parquet writer puts a dictionary array's whole dictionary into the row group's dictionary page,
    used or not, and a slice keeps its batch's dictionary: a batch with thousands of distinct range paths
    would repeat them all in every row group it spans. Short dictionaries (the usual few phases and paths)
    are left as they are.
    """
    for name in DICT_OUT:
        col = t.column(name)
        if all(len(c.dictionary) <= max(DICT_KEEP, len(c) // 8) for c in col.chunks):
            continue
        t = t.set_column(
            t.schema.get_field_index(name),
            WRITE_SCHEMA.field(name),
            pa.chunked_array([_compact(c) for c in col.chunks], type=_DICT),
        )
    return t


def _compact(c: pa.DictionaryArray) -> pa.DictionaryArray:
    """``c`` with a dictionary of only the values its indices use (same values row by row)."""
    idx = np_filled(c.indices, -1, np.int64)
    used = np.unique(idx[idx >= 0])
    if len(used) == len(c.dictionary):
        return c
    return pa.DictionaryArray.from_arrays(
        num_array(np.searchsorted(used, idx), idx < 0, pa.int32()), c.dictionary.take(num_array(used))
    )


@contextlib.contextmanager
def _parquet_out(path: Path, metadata: dict[bytes, bytes], trace: str, source: str) -> Iterator[_Out]:
    """Write ``path`` atomically: yields an :class:`_Out`; the trace metadata is read from ``metadata`` at the end.

    The key-value metadata is added when the file is closed, not when it is opened, so that rows can be
    written while notes and counts are still being gathered (tracekit.ingest.nsys writes while it reads).
    ``store_schema=False`` because pyarrow reads a file's schema metadata from its ``ARROW:schema`` entry,
    which is fixed at open, and else from the key-value metadata: every column type of the schema (int32,
    int64, double, string) reads back the same without it.
    """
    with (
        atomic_path(path) as tmp_out,
        pq.ParquetWriter(tmp_out, WRITE_SCHEMA, store_schema=False, **PARQUET_OPTIONS) as w,
    ):
        pages = _PageDropper()
        with _WriterThread(w, pages.written) as wt:
            out = _Out(wt, pages, trace, source)
            yield out
            out.flush()
        w.add_key_value_metadata(metadata)


def _merge_names(parts: list[tuple[pa.Array, np.ndarray]], rows: int) -> tuple[list[str], np.ndarray]:
    """One name dictionary for the batches' (dictionary, indices) pairs: the names and every row's index (-1: none)."""
    dicts = [d for d, _ in parts]
    combined = pa.concat_arrays(dicts) if dicts else str_array([])
    enc = combined.dictionary_encode()
    remap = np_values(enc.indices).astype(np.int32)
    name_idx = np.full(rows, -1, dtype=np.int32)
    row = off = 0
    for d, i in parts:
        has = i >= 0
        name_idx[row : row + len(i)][has] = remap[i[has] + off]
        row += len(i)
        off += len(d)
    return enc.dictionary.to_pylist(), name_idx


# Scalars for pyarrow.compute, made from arrays (a Python literal goes through pyarrow's Python conversion,
# which imports pandas: see tracekit.ingest.kscan).
_FLOW, _CPU_OP, _FWDBWD, _PH_S, _PH_F = str_array(["flow", "cpu_op", "fwdbwd", "s", "f"])
_FALSE = num_array(np.zeros(1, bool))[0]


def _mask(a: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, NULL -> False. From its bit buffer: ``to_numpy`` on booleans imports
    pandas (0.5 s of start-up for every conversion)."""
    a = pc.fill_null(a, _FALSE)
    if not len(a):
        return np.zeros(0, bool)
    return bits(a.buffers()[1], a.offset, len(a)).astype(bool)


_SEQ_RE = r'"Sequence number":\s*"?(?P<v>[0-9]{1,15})\b'
_FWD_TID_RE = r'"Fwd thread id":\s*"?(?P<v>[0-9]{1,15})\b'
#: Backward op names, for traces without ``Fwd thread id`` (torch < 1.10): the autograd engine's wrapper and
#: the autograd node functions (``MmBackward0``; ``MmBackward`` before torch 1.10).
_BWD_NAME_RE = r"^autograd::engine::evaluate_function: |Backward[0-9]*$"


#: The autograd facts of a batch that has none (rows, codes, sequence numbers).
_NO_AUTOGRAD_FACTS: tuple[np.ndarray, np.ndarray, np.ndarray] = (
    np.zeros(0, np.int64),
    np.zeros(0, np.int8),
    np.zeros(0, np.int64),
)


def _autograd_facts(col: dict[str, pa.Array]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of a batch that link backward work to forward ops (tracekit.ingest.link, rule ``forward_op``),
    sparse: (rows, FB_* codes, sequence numbers, -1 on flows).

    Kineto ``fwdbwd`` flows (kind flow, cat fwdbwd; ph ``s`` on the forward op, ``f`` on the backward op, the
    flow id in ``correlation``), and cpu_ops whose args hold a ``Sequence number``: a backward op when its
    ``Fwd thread id`` is above 0 (torch writes 0 on forward ops) or, without that key, when its name is a
    backward one; else a forward op. The args text is searched only on cpu_op rows that contain the key.
    """
    kind = col["kind"]
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    flow = _mask(pc.and_(pc.equal(kind, _FLOW), pc.equal(col["cat"], _FWDBWD)))
    if flow.any():
        at = np.flatnonzero(flow)
        ph = col["ph"].take(num_array(at))
        c = np.where(_mask(pc.equal(ph, _PH_S)), FB_START, np.where(_mask(pc.equal(ph, _PH_F)), FB_END, 0)).astype(
            np.int8
        )
        parts.append((at[c > 0], c[c > 0], np.full(int(np.count_nonzero(c)), -1, np.int64)))
    op = _mask(pc.equal(kind, _CPU_OP))
    if op.any():
        at = np.flatnonzero(op)
        args = col["args"].take(num_array(at))
        has = _mask(pc.match_substring(args, '"Sequence number"'))
        at, args = at[has], args.filter(num_array(has))
        seq = np_filled(pc.struct_field(pc.extract_regex(args, _SEQ_RE), [0]).cast(pa.int64()), -1, np.int64)
        ok = seq >= 0
        at, args, seq = at[ok], args.filter(num_array(ok)), seq[ok]
        if len(at):
            ftid = np_filled(pc.struct_field(pc.extract_regex(args, _FWD_TID_RE), [0]).cast(pa.int64()), -1, np.int64)
            bwd = ftid > 0
            nokey = np.flatnonzero(ftid < 0)
            if len(nokey):
                names = col["name"].take(num_array(at[nokey]))
                bwd[nokey] = _mask(pc.match_substring_regex(names, _BWD_NAME_RE))
            parts.append((at, np.where(bwd, FB_BWD_OP, FB_FWD_OP).astype(np.int8), seq))
    if not parts:
        return _NO_AUTOGRAD_FACTS
    rows, codes, seqs = (np.concatenate([p[i] for p in parts]) for i in range(3))
    return rows.astype(np.int64), codes, seqs


def _final_meta(meta: dict[str, Any], rows: int, source: str, ambiguous: int) -> dict[str, Any]:
    """The trace metadata as stored: the reader's, the caller's (EXTRA_META), counts and the linker's note."""
    meta = dict(meta, **EXTRA_META.get(), events=rows, source=source, converter_version=__version__)
    if ambiguous:  # link.py's rule for reused correlation ids; trust.sql flags them as well
        meta["notes"] = [
            *(meta.get("notes") or []),
            f"{ambiguous} GPU ops share their correlation id "
            "with several runtime calls: each is linked to the latest of them that started at or before it",
        ]
    return meta


def _spill_beside(out: Path) -> tuple[Path, ipc.RecordBatchFileWriter]:
    """A spill file (BASE_SCHEMA batches) for the conversion into ``out``: its path and an open writer.

    Beside the output, not in $TMPDIR: it can be ~1.2x the input, on the disk the user chose for the output
    (often /tmp is a small tmpfs, i.e. RAM). Named with our pid: see tracekit.atomic.
    """
    if out.is_dir():
        raise TraceError(out, "is a folder: give a file name")
    path = make_temp(out, ".arrow")
    return path, ipc.new_file(str(path), BASE_SCHEMA)


@dataclasses.dataclass
class Prepared:
    """A validated batch plus the linker's columns for it (see :meth:`TraceSink.prepare`)."""

    batch: pa.RecordBatch
    link: tuple[Any, ...]


class TraceSink:
    """Collects the events of one trace and writes ``out`` atomically on :meth:`finish`."""

    def __init__(self, out: str | os.PathLike[str], trace: str, source: str) -> None:
        self.out = Path(out)
        self.trace = trace
        self.source = source
        self._spill_path, self._spill = _spill_beside(self.out)
        self._link_parts: dict[str, list[Any]] = {
            k: [] for k in ("code", "pid", "tid", "ts", "dur", "corr", "name", "fb")
        }
        self.rows = 0
        self._closed = False

    @staticmethod
    def prepare(columns: dict[str, Any], autograd: bool = True) -> Prepared | None:
        """Validate one batch and extract what the linker needs. Pure: safe on worker threads.

        Values may be Arrow arrays, numpy arrays or lists; missing columns become NULL. ``trace`` and ``source``
        need not be given: the output's are the sink's.
        Without a ``seq`` column, rows are numbered in arrival order.
        ``autograd=False``: no autograd facts (empty): :class:`StreamSink`'s linker has no forward-op rule.
        """
        n = None
        arrays: list[Any] = []
        for f in BASE_FIELDS:
            v = columns.get(f.name)
            if v is None:
                arrays.append(None)
                continue
            a = v if isinstance(v, pa.Array) else pa.array(v, type=f.type, from_pandas=True)
            if a.type != f.type:
                a = a.cast(f.type)
            n = len(a) if n is None else n
            if len(a) != n:
                raise ValueError(f"column {f.name}: {len(a)} values, expected {n}")
            arrays.append(a)
        if not n:
            return None
        arrays = [a if a is not None else pa.nulls(n, f.type) for a, f in zip(arrays, BASE_FIELDS)]
        col = dict(zip(BASE_SCHEMA.names, arrays))
        code = kind_codes(col["kind"])
        # The linker reads names of ranges and runtime calls only: hash just those (a fifth of a typical trace).
        named = (code == RANGE) | (code == RUNTIME) | (code == GPU_RANGE)
        enc = col["name"].filter(num_array(named)).dictionary_encode()
        idx = np.full(n, -1, dtype=np.int32)
        idx[named] = np_filled(enc.indices, -1)
        link = (
            code,
            _i64(col["pid"]),
            _i64(col["tid"]),
            _i64(col["ts_ns"]),
            _i64(col["dur_ns"]),
            _i64(col["correlation"]),
            (enc.dictionary, idx),
            _autograd_facts(col) if autograd else _NO_AUTOGRAD_FACTS,
        )
        return Prepared(pa.RecordBatch.from_arrays(arrays, schema=BASE_SCHEMA), link)

    def append(self, prepared: Prepared | None) -> None:
        """Spill a prepared batch (in order: rows keep the order of the calls)."""
        if prepared is None:
            return
        self._spill.write_batch(prepared.batch)
        for k, v in zip(("code", "pid", "tid", "ts", "dur", "corr", "name"), prepared.link):
            self._link_parts[k].append(v)
        rows, fb_code, fb_seq = prepared.link[7]
        self._link_parts["fb"].append((rows + self.rows, fb_code, fb_seq))  # batch rows -> trace rows
        self.rows += prepared.batch.num_rows

    def add(self, columns: dict[str, Any]) -> None:
        """Append one batch (``prepare`` + ``append``)."""
        self.append(self.prepare(columns))

    def finish(self, meta: dict[str, Any]) -> Path:
        """Link, write the Parquet file and rename it into place. Returns the output path."""
        self._spill.close()
        p = self._link_parts
        _release_free_memory()

        def cat(k: str, dt: type) -> np.ndarray:
            # one key at a time, dropping its parts at once: peak stays near one copy of the link columns
            parts = p.pop(k)
            return np.concatenate(parts) if parts else np.zeros(0, dt)

        # One name dictionary for the trace: concatenate the batches' dictionaries, encode once, remap indices.
        name_dict, name_idx = _merge_names(p.pop("name"), self.rows)
        fb = p.pop("fb")
        fb_rows, fb_code, fb_seq = (
            np.concatenate([f[i] for f in fb]) if fb else np.zeros(0, dt)
            for i, dt in ((0, np.int64), (1, np.int8), (2, np.int64))
        )
        inp = LinkInput(
            cat("code", np.int8),
            cat("pid", np.int64),
            cat("tid", np.int64),
            cat("ts", np.int64),
            cat("dur", np.int64),
            cat("corr", np.int64),
            name_idx,
            name_dict,
            fb_rows,
            fb_code,
            fb_seq,
        )
        self._link_parts = {}
        res = link(inp)
        # Only these three are read again (launch_* columns); drop the rest before the write's buffers grow.
        ts, dur, tid = inp.ts, inp.dur, inp.tid
        del inp, name_idx
        _release_free_memory()
        final: dict[bytes, bytes] = {}
        try:
            with _parquet_out(self.out, final, self.trace, self.source) as out:
                # This thread reads the spill back and adds the link columns while the writer thread encodes
                # and compresses the previous row group (pyarrow's writer releases the GIL).
                with pa.memory_map(str(self._spill_path)) as src:  # zero-copy batches, see _PageDropper
                    out.pages.bounds(src)
                    reader = ipc.open_file(src)
                    for i in range(reader.num_record_batches):
                        b = reader.get_batch(i)
                        lo = out.rows
                        out.pages.read(b, lo + b.num_rows)
                        out.write(b, res.columns(ts, dur, tid, lo, lo + b.num_rows))
                final.update(
                    schema.schema_metadata(
                        {self.trace: _final_meta(meta, self.rows, self.source, res.ambiguous_launches)}
                    )
                )
        finally:
            drop_temp(self._spill_path)
            self._closed = True
        return self.out

    def abort(self) -> None:
        """Drop everything written so far (used on errors)."""
        if not self._closed:
            try:
                self._spill.close()
            except Exception:  # noqa: BLE001  (the error that made us drop is the one to report)
                pass
            drop_temp(self._spill_path)
            self._closed = True

    def __enter__(self) -> TraceSink:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()


class StreamSink:
    """Writes a trace while it is read, for a reader that can deliver every range first (nsys: NVTX_EVENTS).

    Why: :class:`TraceSink` can give no row its phase before the last range is read, so the link and the whole
    Parquet write wait for the end of the read (on the 30x nsys benchmark, 0.6 s after a 1.2 s read). Here the
    reader first hands over the batches of the table that holds the ranges (:meth:`hold`: they are spilled, as
    in TraceSink, since none can be linked before the last is read), then :meth:`start` builds the
    :class:`~tracekit.ingest.link.RangeTree`, the held batches are written (:meth:`append_held`; nsys puts them
    first, while its other tables are still read) and every later batch (:meth:`append`) is linked and written
    at once. Same rules as TraceSink: only the order of the work differs.
    """

    def __init__(self, out: str | os.PathLike[str], trace: str, source: str) -> None:
        self.out = Path(out)
        self.trace = trace
        self.source = source
        self._held_path, self._held = _spill_beside(self.out)
        self._held_link: list[tuple[Any, ...]] = []
        self._linker: BatchLinker | None = None
        self._meta: dict[bytes, bytes] = {}
        self._stack = contextlib.ExitStack()
        self._out: _Out | None = None
        self._closed = False

    @property
    def rows(self) -> int:
        return self._out.rows if self._out is not None else 0

    def hold(self, prepared: Prepared | None) -> None:
        """A batch of the ranges' table, read before the range tree exists: spilled, its linker columns kept."""
        if prepared is None:
            return
        self._held.write_batch(prepared.batch)
        self._held_link.append(prepared.link)

    def start(self) -> None:
        """Every range is held: build the range tree and open the output."""
        parts = self._held_link
        code = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int8)
        ranges = np.flatnonzero(code == RANGE)
        name_dict, name_idx = _merge_names([p[6] for p in parts], len(code))
        col = {
            k: np.concatenate([p[i] for p in parts])[ranges] if parts else np.zeros(0, np.int64)
            for i, k in ((1, "pid"), (2, "tid"), (3, "ts"), (4, "dur"))
        }
        self._linker = BatchLinker(
            RangeTree(col["pid"], col["tid"], col["ts"], col["dur"], name_idx[ranges], name_dict)
        )
        self._out = self._stack.enter_context(_parquet_out(self.out, self._meta, self.trace, self.source))

    def _write(self, batch: pa.RecordBatch, link_cols: tuple[Any, ...]) -> None:
        assert self._linker is not None and self._out is not None, "StreamSink.start() first"
        code, pid, tid, ts, dur, corr, *_ = link_cols
        self._out.write(batch, self._linker.columns(code, pid, tid, ts, dur, corr, batch.column("name")))

    def append(self, prepared: Prepared | None) -> None:
        """The next batch in output order: linked and written now."""
        if prepared is not None:
            self._write(prepared.batch, prepared.link)

    def append_held(self) -> None:
        """The held batches, linked and written now (read back zero-copy, pages dropped once written)."""
        assert self._out is not None, "StreamSink.start() first"
        self._held.close()
        out = self._out
        with pa.memory_map(str(self._held_path)) as src:
            out.pages.bounds(src)
            reader = ipc.open_file(src)
            for i in range(reader.num_record_batches):
                b = reader.get_batch(i)
                out.pages.read(b, out.rows + b.num_rows)
                self._write(b, self._held_link[i])
        self._held_link = []

    def finish(self, meta: dict[str, Any]) -> Path:
        """Close the output with the trace's metadata and rename it into place. Returns the output path."""
        assert self._linker is not None and self._out is not None, "StreamSink.start() first"
        try:
            self._meta.update(
                schema.schema_metadata(
                    {self.trace: _final_meta(meta, self._out.rows, self.source, self._linker.ambiguous_launches)}
                )
            )
            self._stack.close()  # flushes, waits for the writer, adds the metadata, renames into place
        finally:
            self.abort()
        return self.out

    def abort(self) -> None:
        """Drop everything written so far (used on errors)."""
        if not self._closed:
            self._closed = True
            try:
                self._held.close()
            except Exception:  # noqa: BLE001  (the error that made us abort is the one to report)
                pass
            drop_temp(self._held_path)
            exc = RuntimeError("conversion aborted")
            try:  # an unfinished output: leave its context with an error, so the temp file is removed
                self._stack.__exit__(type(exc), exc, None)
            except Exception:  # noqa: BLE001  (the error that made us abort is the one to report)
                pass

    def __enter__(self) -> StreamSink:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is not None:
            self.abort()
