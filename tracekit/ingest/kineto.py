"""Kineto (torch.profiler) Chrome-trace JSON -> the event schema, streamed.

The file is read in blocks; each block is cut at the last event boundary (a
cheap guess, proven by the block's decode; after a guess that fell inside a
string, the structure splitter of :func:`tracekit.ingest.kscan.split`, see
:meth:`KinetoReader._events`) and the complete events in it are decoded by msgspec into typed structs in one C
call (a generic ``json.load`` builds a dict per event and is 5x slower), then
turned into columns and handed to :class:`~tracekit.ingest.sink.TraceSink`.
Nothing but the current block and the linker's few columns stays in memory.

Exactness: Kineto writes microseconds, sometimes with three decimals. Values
below 2**52 ns are exact in float64 and are rounded (``rint``) to integer ns;
larger fractional values (epoch microseconds with ns digits, e.g. HTA's
``ns_resolution_trace``) cannot be held exactly by a float, so those blocks are
decoded again with the numbers kept as text and converted with decimal
arithmetic.

Tolerance: a block whose events break the fast typed decode (unknown top-level
fields, wrong types, bad UTF-8, ``NaN``/``Infinity`` literals, lone ``\\ud800``
escapes) is decoded generically and coerced event by event: one bad value costs
that value (null, or U+FFFD in text), never the other events; what was coerced
is counted in the trace's notes, as are events without a numeric ``ts``. A file that ends
mid-event (a crashed run) keeps every complete event and says how many bytes
were lost.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute  # for pa.compute

from tracekit.errors import TraceError
from tracekit.ingest import kscan
from tracekit.ingest.arrays import np_filled, num_array
from tracekit.ingest.kineto_kinds import (
    CAT_KIND,
    OTHER_KIND,
    PH_KIND,
    STEP_CATS,
    STEP_KIND,
    STEP_PREFIX,
    TEXT_ID_NOTES,
)
from tracekit.ingest.names import default_trace_name
from tracekit.ingest.sink import Prepared, TraceSink, keep_freed_blocks
from tracekit.redact import scrub

BLOCK = 4 << 20  # per in-flight block, decoding holds ~8x this in objects: keep it small
#: Largest single event (and largest part of the document before or after the event list) read: memory
#: stays bounded whatever the file (a gzip bomb, a 4 GiB string); past it, a one-line error.
MAX_EVENT = 256 << 20
#: Decoding threads. msgspec holds the GIL but DuckDB and the C scanner do not, so two threads overlap.
WORKERS = 2
_EXACT_LIMIT = 2.0**42  # µs; below it rint(µs * 1000) of a <=3-decimal value is exact (4.5e12 was not: ties)

Num = int | float | None
IntStr = int | str | None


class Ev(msgspec.Struct, forbid_unknown_fields=True):
    """One Chrome-trace event as Kineto writes it (unknown fields -> tolerant path)."""

    ph: str | None = None  # absent -> NULL, as the C scanner gives
    cat: str | None = None
    name: str | None = None
    pid: IntStr = None
    tid: IntStr = None
    ts: Num = None
    dur: Num = None
    args: msgspec.Raw = msgspec.Raw(b"")
    id: IntStr = None
    bp: str | None = None
    s: str | None = None
    tk__extra: dict | None = None  # filled only by the tolerant path


class EvText(Ev, forbid_unknown_fields=True):
    """Same event with ts/dur kept as JSON text, for exact ns conversion."""

    ts: msgspec.Raw = msgspec.Raw(b"")  # type: ignore[assignment]
    dur: msgspec.Raw = msgspec.Raw(b"")  # type: ignore[assignment]


_list_ev = msgspec.json.Decoder(list[Ev])
_list_ev_text = msgspec.json.Decoder(list[EvText])
_encode = msgspec.json.encode

_TOP_KEYS = set(Ev.__struct_fields__) - {"tk__extra"}
_NO_TS = "events without a numeric `ts` (ts_ns NULL)"
_NON_OBJECT = "non-object entries in traceEvents skipped"
_SEP = re.compile(rb"\s*,\s*\{")
_START = re.compile(rb'"traceEvents"\s*:\s*\[')
_JSON_TYPE = {
    ord("{"): "an object",
    ord('"'): "a string",
    ord("t"): "a boolean",
    ord("f"): "a boolean",
    ord("n"): "null",
    **{c: "a number" for c in b"-0123456789"},
}


class _Notes:
    """Counts of what had to be coerced, reported once per trace."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()

    def add(self, what: str, n: int = 1) -> None:
        local = getattr(self._local, "counts", None)
        if local is not None:  # inside capture(): counted apart
            local[what] += n
            return
        with self._lock:
            self.counts[what] += n

    @contextlib.contextmanager
    def capture(self) -> Iterator[Counter[str]]:
        """Count what this thread adds apart while the block runs (see :meth:`merge`)."""
        counts: Counter[str] = Counter()
        self._local.counts = counts
        try:
            yield counts
        finally:
            self._local.counts = None

    def merge(self, counts: Counter[str]) -> None:
        with self._lock:
            self.counts.update(counts)

    def lines(self) -> list[str]:
        return [f"{n} {what}" for what, n in sorted(self.counts.items())]


_I64 = 1 << 63


def _as_int(v: Any) -> int | None:
    """An int64 from an int, integral float or numeric string; None otherwise."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    elif isinstance(v, str):
        try:
            v = int(v.strip(), 0)
        except ValueError:
            return None
    if isinstance(v, int) and -_I64 <= v < _I64:
        return v
    return None


_STREAM_TID = re.compile(r"stream ([0-9]+)")


def _id_of_text(v: str, field: str) -> tuple[int | None, str | None]:
    """(the int64 a pid/tid written as text stands for, or None; the trace note that says so, or None).

    Numeric text (what :func:`_as_int` reads) is that number; a tid ``stream N`` is N, the GPU stream Kineto
    named the lane after (torch 1.8/1.9 wrote ``"tid": "stream 7"`` on GPU rows). Other text (Kineto's own
    "Spans"/"Traces" rows) is None and no note: modern traces have it too. The C scanner reads the plain
    decimal subset the same way (``dec_text`` in _kscan.c) and leaves the rest to this.
    """
    iv = _as_int(v)
    if iv is not None:
        return iv, TEXT_ID_NOTES[0 if field == "pid" else 1]
    m = _STREAM_TID.fullmatch(v) if field == "tid" else None
    if m is not None and int(m.group(1)) < _I64:
        return int(m.group(1)), TEXT_ID_NOTES[2]
    return None, None


def _coerce(d: Any, notes: _Notes) -> Ev | None:
    """Build an Ev from a generically decoded event; None if it is not an object."""
    if not isinstance(d, dict):
        notes.add(_NON_OBJECT)
        return None
    extra: dict[str, Any] = {}
    kw: dict[str, Any] = {}
    for k, v in d.items():
        if k not in _TOP_KEYS:
            extra[k] = v
            continue
        if k in ("ph", "cat", "name", "bp", "s"):
            if v is None or isinstance(v, str):
                kw[k] = v
            else:
                kw[k] = str(v)
                extra[k] = v
                notes.add(f"events with non-string `{k}` (stringified)")
        elif k in ("ts", "dur"):
            if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                kw[k] = v
            else:
                try:
                    kw[k] = float(v)  # numeric strings
                except (TypeError, ValueError):
                    extra[k] = v
                    notes.add(f"events with non-numeric `{k}` (kept in args)")
        elif k in ("pid", "tid", "id"):
            kw[k] = v if isinstance(v, (int, str)) and not isinstance(v, bool) else None
            if kw[k] is None and v is not None:
                extra[k] = v
                notes.add(f"events with wrong-typed `{k}` (kept in args)")
        elif k == "args":
            if isinstance(v, dict):
                kw["args"] = msgspec.Raw(_encode(v))
            elif v is not None:
                extra["args"] = v
                notes.add("events with non-object `args` (kept as @args)")
    if "ph" not in d:
        notes.add("events without `ph`")
    if extra:
        kw["tk__extra"] = extra
    return Ev(**kw)


def _kind_case() -> str:
    """SQL CASE giving ``kind`` from ph/cat/name: the rules of tracekit.ingest.kineto_kinds, written as SQL."""
    by_ph = "".join(f" WHEN '{p}' THEN '{k}'" for p, k in PH_KIND.items())
    by_cat = "".join(f" WHEN '{c}' THEN '{k}'" for c, k in CAT_KIND.items())
    step_cats = ", ".join(f"'{c}'" for c in STEP_CATS)
    return (
        f"coalesce(CASE ph{by_ph} END, "
        f"CASE WHEN cat IN ({step_cats}) AND starts_with(name, '{STEP_PREFIX}') THEN '{STEP_KIND}' END, "
        f"CASE cat{by_cat} END, '{OTHER_KIND}')"
    )


#: Integer-valued args: JSON integers, or strings holding a decimal or 0x-hex integer (AMD writes "stream": "0x0").
_INT_MACRO = """
CREATE OR REPLACE MACRO _int(j) AS CASE json_type(j)
  WHEN 'BIGINT' THEN TRY_CAST(j AS BIGINT)
  WHEN 'UBIGINT' THEN TRY_CAST(j AS BIGINT)
  WHEN 'VARCHAR' THEN CASE WHEN regexp_full_match(j ->> '$', '-?([0-9]+|0[xX][0-9a-fA-F]+)') THEN TRY_CAST(j ->> '$' AS BIGINT) END
END;
CREATE OR REPLACE MACRO _ints(j) AS CASE WHEN json_type(j) = 'ARRAY' THEN list_transform(CAST(j AS JSON[]), lambda e: CASE WHEN json_type(e) IN ('BIGINT', 'UBIGINT') THEN TRY_CAST(e AS INTEGER) END) END;
"""
#: Typed columns pulled out of ``args`` by DuckDB's JSON functions (one parse per event, in C++).
_BUILD_SQL = f"""
WITH b AS (
  SELECT *, {_kind_case()} AS kind,
         json_extract(args, ['$.correlation', '$.stream', '$.device', '$."External id"', '$.grid', '$.block',
                             '$."registers per thread"', '$."shared memory"', '$.bytes', '$."Input Dims"',
                             '$."Input type"', '$.flops', '$."graph id"', '$."external id"', '$."Input dims"']) AS x
  FROM c
)
SELECT kind, cat, ph, name, ts_ns, dur_ns, pid, tid,
  TRY_CAST(_int(x[3]) AS INTEGER) AS device,
  _int(x[2]) AS stream,
  coalesce(_int(x[1]), id_int) AS correlation,
  coalesce(_int(x[4]), _int(x[14])) AS external_id,  -- torch 1.8/1.9: "external id" on GPU and runtime rows
  _ints(x[5])[1] AS grid_x, _ints(x[5])[2] AS grid_y, _ints(x[5])[3] AS grid_z,
  _ints(x[6])[1] AS block_x, _ints(x[6])[2] AS block_y, _ints(x[6])[3] AS block_z,
  TRY_CAST(_int(x[7]) AS INTEGER) AS registers,
  _int(x[8]) AS shared_mem_bytes,
  _int(x[9]) AS bytes,
  CASE WHEN kind = 'memcpy' THEN regexp_extract(name, '(?:Memcpy|memcpy|Copy)\\s*([A-Za-z]+to[A-Za-z]+)', 1) END AS copy_kind,
  coalesce(x[10], x[15])::VARCHAR AS input_dims,  -- torch 1.8: "Input dims"
  x[11]::VARCHAR AS input_types,
  CASE WHEN json_type(x[12]) IN ('BIGINT', 'UBIGINT', 'DOUBLE') THEN TRY_CAST(x[12] AS DOUBLE) END AS flops,
  _int(x[13]) AS graph_id,
  CASE WHEN bp IS NULL AND s IS NULL AND extra IS NULL AND (id_int IS NULL OR x[1] IS NULL)
       THEN args
       ELSE json_merge_patch(json_merge_patch(coalesce(args, '{{}}'),
              json_object('@bp', bp, '@s', s, '@id', CASE WHEN x[1] IS NOT NULL THEN id_int END)),
              coalesce(extra, '{{}}'))::VARCHAR END AS args
FROM b
"""


class _Columns:
    """Turns a list of decoded events into schema columns.

    Python touches each event once per raw field (list comprehensions over the
    msgspec structs); everything per-event beyond that (kind rules, typed args,
    merging top-level extras into ``args``) is one DuckDB query per block.
    """

    def __init__(self, trace: str, notes: _Notes) -> None:
        import duckdb  # deferred: DuckDB loads when this reader runs (an nsys conversion never does)

        self.trace = trace
        self.notes = notes
        self.con = duckdb.connect(config={"threads": 2})
        self.con.execute(_INT_MACRO)

    def build(self, evs: list[Ev], ts_ns: np.ndarray, end_ns: np.ndarray, ts_valid: np.ndarray) -> dict[str, Any]:
        n = len(evs)
        extras: dict[int, dict[str, Any]] = {}
        pid = self._ints([e.pid for e in evs], "pid", extras, self.notes)
        tid = self._ints([e.tid for e in evs], "tid", extras, self.notes)
        ids = [e.id for e in evs]
        try:
            id_int = pa.array(ids, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            ints = [v if isinstance(v, int) and not isinstance(v, bool) and -_I64 <= v < _I64 else None for v in ids]
            id_int = pa.array(ints, pa.int64())
            for i, v in enumerate(ids):
                if v is not None and ints[i] is None:
                    extras.setdefault(i, {})["id"] = v
        dur = end_ns - ts_ns
        neg = dur < 0
        if neg.any():
            self.notes.add("events with negative duration (dur_ns set to 0, raw value kept as @dur)", int(neg.sum()))
            for i in np.flatnonzero(neg).tolist():
                d = evs[i].dur
                extras.setdefault(i, {})["dur"] = bytes(d).decode() if isinstance(d, msgspec.Raw) else d
            dur = np.where(neg, 0, dur)
        for i, e in enumerate(evs) if any(e.tk__extra for e in evs) else ():
            if e.tk__extra:
                extras.setdefault(i, {}).update(e.tk__extra)
        extra_col = pa.nulls(n, pa.string())
        if extras:
            ex: list[str | None] = [None] * n
            for i, x in extras.items():
                ex[i] = _encode({"@" + k: v for k, v in x.items()}).decode()
            extra_col = pa.array(ex, pa.string())
        args = pa.array([bytes(e.args) if len(e.args) else None for e in evs], pa.binary())
        try:
            args = args.cast(pa.string())
        except pa.ArrowInvalid:
            self.notes.add("args with invalid UTF-8 (bad bytes replaced)")
            args = pa.array(
                [b.decode("utf-8", "replace") if b is not None else None for b in args.to_pylist()], pa.string()
            )
        c = pa.table(
            {
                "ph": pa.array([e.ph for e in evs], pa.string()),
                "cat": pa.array([e.cat for e in evs], pa.string()),
                "name": pa.array([e.name for e in evs], pa.string()),
                "ts_ns": pa.array(ts_ns, pa.int64(), mask=~ts_valid),
                "dur_ns": pa.array(dur, pa.int64()),
                "pid": pid,
                "tid": tid,
                "id_int": id_int,
                "bp": pa.array([e.bp for e in evs], pa.string()),
                "s": pa.array([e.s for e in evs], pa.string()),
                "args": args,
                "extra": extra_col,
            }
        )
        self.con.register("c", c)
        try:
            t = self.con.sql(_BUILD_SQL).to_arrow_table()
        finally:
            self.con.unregister("c")
        if isinstance(t, pa.RecordBatchReader):
            t = t.read_all()
        t = t.combine_chunks()
        out: dict[str, Any] = {
            name: t.column(name).chunk(0) if t.column(name).num_chunks else pa.array([], pa.string())
            for name in t.column_names
        }
        return out

    @staticmethod
    def _ints(vals: list[Any], field: str, extras: dict[int, dict[str, Any]], notes: _Notes) -> pa.Array:
        """pid or tid values as int64: see :func:`_id_of_text` for text (torch 1.8/1.9 wrote tids as text).

        A value that is not a number, or whose number does not spell the text exactly, is also kept in
        ``extras`` (``@pid`` / ``@tid`` in args); text read as a number is counted in the notes.
        """
        try:
            return pa.array(vals, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            out = []
            counts: Counter[str] = Counter()
            for i, v in enumerate(vals):
                if isinstance(v, str):
                    iv, note = _id_of_text(v, field)
                    if note is not None:
                        counts[note] += 1
                else:
                    iv = _as_int(v)
                if v is not None and (iv is None or (isinstance(v, str) and str(iv) != v)):
                    extras.setdefault(i, {})[field] = v
                out.append(iv)
            for note, k in counts.items():
                notes.add(note, k)
            return pa.array(out, pa.int64())


def _to_ns(vals: list[Any]) -> tuple[np.ndarray, np.ndarray] | None:
    """Microsecond numbers -> (int64 ns rounded, valid mask), or None when float64 cannot be exact.

    JSON integers arrive as int (exact); decimals as float, exact to the ns only below
    :data:`_EXACT_LIMIT` µs. Above it the caller re-reads the numbers as text.
    """
    n = len(vals)
    try:
        arr = pa.array(vals)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    valid = (
        np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool) if arr.null_count else np.ones(n, bool)
    )
    if pa.types.is_integer(arr.type):
        if n and max(abs(pa.compute.min(arr).as_py() or 0), abs(pa.compute.max(arr).as_py() or 0)) >= 9 * 10**15:
            return None
        return arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * 1000, valid
    if pa.types.is_null(arr.type):
        return np.zeros(n, np.int64), valid
    f = arr.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
    if n and float(np.abs(f).max()) >= _EXACT_LIMIT:
        return None
    return np.rint(f * 1000.0).astype(np.int64), valid


def _text_to_ns(raws: list[msgspec.Raw]) -> tuple[np.ndarray, np.ndarray]:
    """Exact decimal conversion of JSON number texts (µs) to rounded int ns."""
    out = np.zeros(len(raws), np.int64)
    valid = np.zeros(len(raws), bool)
    for i, r in enumerate(raws):
        if len(r):
            t = bytes(r)
            try:
                if b"." in t or b"e" in t or b"E" in t:
                    v = int((Decimal(t.decode()) * 1000).to_integral_value())  # ROUND_HALF_EVEN
                else:
                    v = int(t) * 1000
                if -_I64 <= v < _I64:
                    out[i] = v
                    valid[i] = True
            except (InvalidOperation, ValueError, OverflowError):
                pass
    return out, valid


def _bad_utf8(err: Exception) -> bool:
    """Whether a decode failed only on invalid UTF-8 (msgspec < 0.23 raises UnicodeDecodeError, 0.23 a DecodeError)."""
    return isinstance(err, UnicodeDecodeError) or (
        isinstance(err, msgspec.DecodeError) and not isinstance(err, msgspec.ValidationError) and "UTF-8" in str(err)
    )


class _Lenient:
    """What the lenient decode replaced, counted per event (see :func:`_json_decode`)."""

    NONFINITE = "events with NaN/Infinity values (replaced by null)"
    SURROGATE = "events with lone UTF-16 surrogate escapes such as \\ud800 (replaced by U+FFFD)"


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
#: What only the lenient decode takes: NaN/Infinity literals, surrogate escapes, exponents beyond float range.
_LENIENT_ONLY = re.compile(rb"NaN|Infinity|\\u[dD][89a-fA-F]|[eE]\+?[0-9]{3}")


def _clean(v: Any, hits: set[str]) -> Any:
    """``v`` with non-finite floats -> None and lone surrogates -> U+FFFD; what was replaced goes in ``hits``.

    Why null for NaN/Infinity: JSON (and DuckDB's JSON type, which ``args`` is) has no such values, and a
    string "NaN" would change the value's type; the note says how many events had one.
    """
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):  # noqa: PLR0124  (v != v: NaN)
            hits.add(_Lenient.NONFINITE)
            return None
        return v
    if isinstance(v, str):
        if _LONE_SURROGATE.search(v):
            hits.add(_Lenient.SURROGATE)
            return _LONE_SURROGATE.sub("\ufffd", v)
        return v
    if isinstance(v, list):
        return [_clean(x, hits) for x in v]
    if isinstance(v, dict):
        return {_clean(k, hits): _clean(x, hits) for k, x in v.items()}
    return v


# ---- issue 23 item 17 (hostile-cli): a UTF-8 BOM is skipped; bytes after the document are trailing data, not truncation
_BOM = b"\xef\xbb\xbf"
_TRAILING = re.compile(r"trailing characters \(byte (\d+)\)")


def _skip_bom(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """``blocks`` without a leading UTF-8 byte order mark (Windows tools write one; JSON readers skip it)."""
    first = True
    for b in blocks:
        if first and b.startswith(_BOM):
            b = b[len(_BOM) :]
        first = False
        yield b


def _repeated_top_keys(doc: bytes) -> list[str]:
    """Keys that the top-level object ``doc`` gives more than once (a JSON decoder keeps only the last).

    Why: a document that repeats a key, e.g. a merge tool writing ``"deviceProperties"`` once per input, lost
    every earlier value (and any events inside it) without a word. Python's decoder hands each object's pairs to
    the hook innermost first, so its last call is the top-level object's. Run on the head and the tail only
    (small beside the events); a part it cannot read gives no answer.
    """
    last: list[tuple[str, Any]] = []

    def pairs(p: list[tuple[str, Any]]) -> dict[str, Any]:
        last[:] = p
        return {}

    try:
        json.loads(doc, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return []
    seen = Counter(k for k, _ in last)
    return sorted(k for k, n in seen.items() if n > 1)


def _trailing_start(doc: bytes) -> int | None:
    """Where ``doc`` stops being one JSON value when the rest is trailing bytes (msgspec's "trailing characters"), else None."""
    try:
        msgspec.json.decode(doc)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        m = _TRAILING.search(str(e))
        return int(m.group(1)) - 1 if m and int(m.group(1)) > 0 else None  # msgspec counts bytes from 1
    return None


# ---- end of issue 23 item 17


def _json_decode(data: bytes) -> tuple[Any, bool, bool]:
    """``(value, utf8_replaced, lenient)``: generic JSON decode that salvages what strict JSON rejects.

    Tried in order: msgspec (strict RFC 8259); the same with bad UTF-8 bytes replaced by U+FFFD; then the
    standard library's decoder, which also takes the ``NaN``/``Infinity``/``-Infinity`` literals Python's
    ``json.dump`` writes, lone ``\\ud800`` escapes and numbers beyond float range (``1e400``: Infinity).
    It runs only when the text holds one of those (:data:`_LENIENT_ONLY`): damaged or cut text is parsed
    once, not twice. ``lenient`` says the last one was used: the value
    may then hold non-finite floats and lone surrogates, which :func:`_clean` replaces (per event, so the
    notes can count events). Anything else raises ``msgspec.DecodeError``: one bad value does not cost the
    other events of its block.
    """
    utf8 = False
    try:
        return msgspec.json.decode(data), False, False
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        if _bad_utf8(e):
            data = data.decode("utf-8", "replace").encode()
            utf8 = True
            try:
                return msgspec.json.decode(data), True, False
            except msgspec.DecodeError:
                pass
    if not _LENIENT_ONLY.search(data):  # the standard library would fail too: skip its (slower) full parse
        raise msgspec.DecodeError("JSON is malformed")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text, utf8 = data.decode("utf-8", "replace"), True
    try:
        return json.loads(text, parse_constant=float), utf8, True
    except (ValueError, RecursionError) as e:  # json.JSONDecodeError is a ValueError
        raise msgspec.DecodeError(f"JSON is malformed ({type(e).__name__})") from None


class KinetoReader:
    """Streams one Kineto file into a :class:`TraceSink`."""

    def __init__(
        self, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None, fast: bool = True
    ) -> None:
        self.path = Path(path)
        self.fast = fast
        self.progress = progress
        self.notes = _Notes()
        self.meta: dict[str, Any] = {}
        self.lost_bytes = 0
        self._bare = False  # the file is a bare JSON array of events, not an object with traceEvents

    # -- block reading ---------------------------------------------------------------
    def _blocks(self) -> Iterator[bytes]:
        """Uncompressed pieces of at most BLOCK bytes; a truncated or corrupt gzip ends the stream with a note.

        gzip is inflated with a bounded output (``max_length``): a small file of zeros inflating a thousandfold
        costs one BLOCK at a time, not its whole inflated size.
        """
        try:
            raw = open(self.path, "rb")  # noqa: SIM115  (the `with raw:` below, once open succeeded)
        except OSError as e:
            raise TraceError(self.path, f"cannot open: {e.strerror or e}") from None
        with raw:
            gz = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            dec = zlib.decompressobj(16 + zlib.MAX_WBITS) if gz else None
            while True:
                chunk = raw.read(BLOCK // 4 if gz else BLOCK)
                if self.progress and chunk:
                    self.progress(len(chunk))
                if dec is None:
                    if not chunk:
                        return
                    yield chunk
                    continue
                if not chunk:
                    if not dec.eof:
                        self.notes.add("gzip stream ended early (truncated .gz)")
                    return
                try:
                    while chunk:
                        data = dec.decompress(chunk, BLOCK)
                        if data:
                            yield data
                        if dec.eof:  # concatenated gzip members
                            chunk = dec.unused_data
                            if chunk:
                                dec = zlib.decompressobj(16 + zlib.MAX_WBITS)
                        else:
                            chunk = dec.unconsumed_tail
                except zlib.error as e:
                    self.notes.add(f"corrupt gzip data, rest of file skipped ({e})")
                    return

    def run(self, sink: TraceSink) -> None:
        """Cut blocks on this thread, decode them on a pool of :data:`WORKERS`, append in file order."""
        keep_freed_blocks()
        # The decode makes few Python containers but many allocations: a cyclic-GC pass over every imported
        # module's objects each few blocks cost ~3% of the CPU time (perf), all of it holding the GIL.
        # (Process-wide while the file is read; re-enabled after.)
        gc_was = gc.isenabled()
        gc.disable()
        try:
            self._run(sink)
        finally:
            if gc_was:
                gc.enable()

    def _run(self, sink: TraceSink) -> None:
        self._sink = sink
        self._local = threading.local()
        self._all_cols: list[_Columns] = []
        blocks = _skip_bom(self._blocks())  # issue 23 item 17: a UTF-8 BOM is skipped
        # 1. the first byte that is not whitespace (whitespace-only pieces are dropped, however many)
        off = 0  # stream offset of buf[0]
        buf = b""
        for b in blocks:
            buf = b.lstrip()
            off += len(b) - len(buf)
            if buf:
                break
        if not buf:
            raise TraceError(self.path, "empty file")
        if buf[:1] == b"[":  # bare array of events (Chrome 'JSON array format')
            self._bare = True
            start, buf = off + 1, buf[1:]
        elif buf[:1] != b"{":
            raise TraceError(self.path, f"not JSON (starts with {buf[:20]!r})")
        else:
            start, buf = self._head(blocks, off, buf)
        # 2. events, block by block, decoded in parallel, appended in order
        data, start, code, at, st = self._events(blocks, start, buf)
        if code == kscan.NOT_JSON and self._nul_padded(data, at - start, blocks):
            # a crash-truncated file whose tail the filesystem filled with NUL bytes: the data ended at the first
            # NUL (never valid JSON, even inside a string); salvaged like any truncated file
            done = st[4] - start if st is not None and st[4] >= start else None
            self._finish_tail(data[: at - start], None, done)
            for c in self._all_cols:
                c.con.close()
            return
        if code in (kscan.NOT_JSON, kscan.TOO_DEEP):
            self._structure_error(code, at, data, start)
        events_end = None
        if code == kscan.LIST_END:
            # the rest of the document (its keys after the list), bounded like an event
            events_end = at - start
            tail, end = [data], start + len(data)
            for b in blocks:
                tail.append(b)
                end += len(b)
                if end - at > MAX_EVENT:
                    raise TraceError(
                        self.path, f"more than {MAX_EVENT >> 20} MB after the event list: not a trace this tool reads"
                    )
            data = b"".join(tail)
        # 3. the last event(s) and the tail of the document
        done = st[4] - start if st is not None and st[4] >= start else None
        self._finish_tail(data, events_end, done)
        for c in self._all_cols:  # the DuckDB connections, if the generic path ran
            c.con.close()

    def _events(
        self, blocks: Iterator[bytes], start: int, buf: bytes
    ) -> tuple[bytes, int, int, int, kscan.SplitState | None]:
        """Cut the event list into blocks and have them decoded on a pool of :data:`WORKERS`, appended in order.

        ``buf`` is the data from stream offset ``start``, where the first event starts. Returns what is left
        for the tail: (data, its stream offset, the :func:`kscan.split` code and position it stopped at, its
        state).

        Cuts are guessed first, as they cost nothing: the last ``}`` followed by ``,{`` in what was read.
        A guess is proven by the block's own decode: a block that starts where an event starts and decodes
        as complete events ends where one ends. A guess inside a string (a name holding ``},{``) makes its
        block fail to decode; then the blocks from there are dropped (notes are kept per block, so nothing
        counts twice) and the rest of the file is cut by its structure (:func:`kscan.split`, which follows
        strings and nesting in one linear pass). So a normal trace pays nothing for the structure, and a
        hostile one costs one wasted round of blocks at most.
        """
        pieces = [buf]  # held data, from stream offset `start`, not yet handed to a worker
        end = start + len(buf)
        guess = True  # cutting by guess (else by structure)
        st: kscan.SplitState | None = None
        cut: tuple[int, int] | None = None  # structure: the last boundary seen in what is held
        code, at = kscan.CONSUMED, -1
        eof = False
        # each entry: (its decode, its span of the stream up to the next block's start, that span's offset)
        entries: list[tuple[Future[tuple[list[Prepared | None], Counter[str]] | None], Any, int]] = []

        def by_structure(s0: int, data: bytes) -> None:
            """From now on cut by structure; ``data`` (at offset ``s0``) starts where an event starts."""
            nonlocal guess, start, pieces, end, st, cut, code, at
            guess, start, pieces, end = False, s0, [data], s0 + len(data)
            st, ce, cn, code, at = kscan.split(data, s0, None, kscan.EVENTS)
            cut = (ce, cn) if ce >= 0 else None

        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            while True:
                # 1. cut a block off what is held, when there is a block's worth
                if guess and (end - start >= BLOCK or eof):
                    data = b"".join(pieces) if len(pieces) > 1 else pieces[0]
                    pieces = [data]
                    g = self._last_boundary_guess(data) if not eof else None
                    if g is not None:
                        entries.append(
                            (
                                pool.submit(self._checked, memoryview(data)[: g[0]], True),
                                memoryview(data)[: g[1]],
                                start,
                            )
                        )  # no copies
                        pieces, start = [data[g[1] :]], start + g[1]
                    elif eof or end - start >= 2 * BLOCK:  # no guess (an event this large, or no objects)
                        by_structure(start, data)
                elif not guess and cut is not None and end - start >= BLOCK:
                    data = b"".join(pieces) if len(pieces) > 1 else pieces[0]
                    entries.append(
                        (
                            pool.submit(self._checked, memoryview(data)[: cut[0] - start], False),
                            memoryview(data)[: cut[1] - start],
                            start,
                        )
                    )
                    pieces, start, cut = [data[cut[1] - start :]], cut[1], None
                # 2. append the decoded blocks, in order; a guess that failed: back to its block, by structure
                last = eof or code != kscan.CONSUMED
                while entries and (entries[0][0].done() or len(entries) > WORKERS + 1 or last):
                    got = entries[0][0].result()
                    if got is None:
                        for f, _, _ in entries:
                            f.cancel()
                        spans = [bytes(x) for _, x, _ in entries]
                        for f, _, _ in entries:  # the blocks after it were cut after a false guess: dropped
                            if not f.cancelled():
                                f.exception()
                        s0 = entries[0][2]
                        entries.clear()
                        by_structure(s0, b"".join(spans + pieces))
                        break
                    entries.pop(0)
                    batches, counts = got
                    self.notes.merge(counts)
                    self._append(batches)
                if last and not entries and (not guess or eof):
                    if guess:  # eof: what is left is scanned for the tail
                        by_structure(start, b"".join(pieces))
                        continue
                    if code != kscan.CONSUMED or eof:
                        break
                if not guess and cut is None and end - start > MAX_EVENT:
                    raise TraceError(
                        self.path,
                        f"event larger than {MAX_EVENT >> 20} MB at byte {start} of the "
                        "(uncompressed) file: not a trace this tool reads",
                    )
                if eof or code != kscan.CONSUMED:
                    continue
                # 3. read on
                b = next(blocks, None)
                if b is None:
                    eof = True
                    continue
                pieces.append(b)
                if not guess:
                    st, ce, cn, code, at = kscan.split(b, end, st, kscan.EVENTS)
                    if ce >= 0:
                        cut = (ce, cn)
                end += len(b)
        return b"".join(pieces), start, code, at, st

    def _checked(self, body: memoryview, guessed: bool) -> tuple[list[Prepared | None], Counter[str]] | None:
        """:meth:`_columns_for` with its notes counted apart (merged when the block is appended); None when a
        block cut by guess does not decode (the guess fell inside a string, or the block is damaged)."""
        with self.notes.capture() as counts:
            if not guessed:
                return self._columns_for(body), counts
            try:
                return self._columns_for(body), counts
            except (TraceError, RecursionError):
                return None

    def _head(self, blocks: Iterator[bytes], off: int, buf: bytes) -> tuple[int, bytes]:
        """Read the document up to its top-level ``"traceEvents": [`` (found by its structure, not its text: an
        earlier value holding that text is not it); its other keys go to the metadata.

        ``buf`` starts at the document's ``{``, at stream offset ``off``. Returns (stream offset where the
        events start, the data held from there).
        """
        pieces = [buf]
        st, _, _, code, at = kscan.split(buf, off, None, kscan.HEAD)
        end = off + len(buf)
        while code == kscan.CONSUMED:
            if end - off > MAX_EVENT:
                raise TraceError(
                    self.path, f"more than {MAX_EVENT >> 20} MB before `traceEvents`: not a trace this tool reads"
                )
            b = next(blocks, None)
            if b is None:
                break
            pieces.append(b)
            st, _, _, code, at = kscan.split(b, end, st, kscan.HEAD)
            end += len(b)
        data = b"".join(pieces)
        if code in (kscan.NOT_JSON, kscan.TOO_DEEP):
            self._structure_error(code, at, data, off, where="before `traceEvents`")
        if code == kscan.NOT_A_LIST:
            what = _JSON_TYPE.get(data[at - off], "not a JSON value")
            raise TraceError(self.path, f"`traceEvents` is not a list (it is {what}): not a Kineto/Chrome trace")
        if code != kscan.EVENTS_START:  # the object ended, or the file did, without the key
            raise TraceError(self.path, "JSON without `traceEvents`: not a Kineto/Chrome trace")
        head = data[: st[6] - off]
        try:
            hd, _, lenient = _json_decode(head + b'"traceEvents": []}')
        except msgspec.DecodeError:
            raise TraceError(self.path, "not JSON: the part before `traceEvents` does not parse") from None
        except RecursionError:
            raise TraceError(self.path, "JSON nested too deeply before `traceEvents`") from None
        if not isinstance(hd, dict):
            raise TraceError(self.path, "not JSON: the part before `traceEvents` does not parse")
        self._add_meta(hd, lenient, _repeated_top_keys(head + b'"traceEvents": []}'))
        return at, data[at - off :]

    @staticmethod
    def _nul_padded(data: bytes, i: int, blocks: Iterator[bytes]) -> bool:
        """True when the byte at ``i`` is NUL and everything after it (the rest of ``data`` and of the stream,
        read block by block, nothing kept) is NUL or whitespace: zero padding after a crash, not damage."""
        if not (0 <= i < len(data)) or data[i] != 0:
            return False
        if data[i:].strip(b"\x00 \t\r\n"):
            return False
        return all(not b.strip(b"\x00 \t\r\n") for b in blocks)

    def _structure_error(self, code: int, at: int, data: bytes, start: int, where: str = "inside traceEvents") -> None:
        """Raise the one-line error for what :func:`kscan.split` stopped at (``data`` starts at offset ``start``)."""
        if code == kscan.TOO_DEEP:
            raise TraceError(
                self.path,
                f"JSON nested too deeply (more than {kscan.MAX_DEPTH} levels) {where}, "
                f"at byte {at} of the (uncompressed) file",
            )
        i = at - start
        near = data[max(0, i - 30) : i + 30]
        raise TraceError(self.path, f"not valid JSON {where} at byte {at} of the (uncompressed) file, near: {near!r}")

    def _append(self, batches: list[Prepared | None]) -> None:
        for b in batches:
            self._sink.append(b)

    def _cols(self) -> _Columns:
        """This thread's column builder (each holds its own DuckDB connection)."""
        c = getattr(self._local, "cols", None)
        if c is None:
            c = self._local.cols = _Columns(self._sink.trace, self.notes)
            self._all_cols.append(c)
        return c

    @staticmethod
    def _last_boundary_guess(buf: bytes) -> tuple[int, int] | None:
        """(end of the last complete-looking event, start of the next one) or None: the last ``}`` followed by
        ``,{``, which may be inside a string (see :meth:`_events`)."""
        pos = len(buf)
        for _ in range(10000):
            pos = buf.rfind(b"}", 0, pos)
            if pos < 0:
                return None
            m = _SEP.match(buf, pos + 1)
            if m:
                return pos + 1, m.end() - 1
        return None

    @staticmethod
    def _last_boundary(buf: bytes) -> tuple[int, int] | None:
        """(end of the last complete event, start of the next one) in ``buf``, which starts at an event; or None."""
        _, end, nxt, _, _ = kscan.split(buf, 0, None, kscan.EVENTS)
        return (end, nxt) if end >= 0 else None

    def _decode(self, body: bytes) -> tuple[list[Ev], np.ndarray, np.ndarray, np.ndarray] | None:
        """Decode ``[body]``; None if it is not valid JSON."""
        data = b"[" + body + b"]"
        try:
            evs: list[Ev] = _list_ev.decode(data)
            exact = True
        except (msgspec.DecodeError, UnicodeDecodeError):  # ValidationError is a DecodeError
            # wrong types, unknown fields, bad UTF-8, NaN, lone surrogates: coerced event by event
            try:
                evs = self._tolerant(data)
            except msgspec.DecodeError:
                return None  # not JSON at all (a false boundary, or damage): the caller cuts finer
            exact = False
        if exact:
            got = _to_ns([e.ts for e in evs])
            if got is not None:
                ts, tv = got
                du, dv = _to_ns([e.dur for e in evs]) or _text_to_ns(
                    [msgspec.Raw(_encode(e.dur)) if e.dur is not None else msgspec.Raw(b"") for e in evs]
                )
            else:
                exact = False
        if not exact:
            try:
                te = _list_ev_text.decode(data) if evs and not any(e.tk__extra for e in evs[:1]) else None
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                te = None
            if te is not None and len(te) == len(evs):
                ts, tv = _text_to_ns([e.ts for e in te])
                du, dv = _text_to_ns([e.dur for e in te])
            else:
                ts, tv = _text_to_ns(
                    [msgspec.Raw(_encode(e.ts)) if e.ts is not None else msgspec.Raw(b"") for e in evs]
                )
                du, dv = _text_to_ns(
                    [msgspec.Raw(_encode(e.dur)) if e.dur is not None else msgspec.Raw(b"") for e in evs]
                )
        missing_ts = ~tv
        if missing_ts.any():
            self.notes.add(_NO_TS, int(missing_ts.sum()))
        return evs, ts, ts + np.where(dv, du, 0), tv

    def _tolerant(self, data: bytes) -> list[Ev]:
        raw, replaced, lenient = _json_decode(data)
        if replaced:
            self.notes.add("blocks with invalid UTF-8 (bad bytes replaced by U+FFFD)")
        out = []
        for d in raw:
            if lenient:
                d = self._clean(d)
            e = _coerce(d, self.notes)
            if e is not None:
                out.append(e)
        return out

    def _add_meta(self, top: dict[str, Any], lenient: bool, repeated: list[str] | None = None) -> None:
        """Top-level keys (not events) into the trace metadata, cleaned as events are. A key given twice (in one
        part, ``repeated``, or before and after the events) keeps its last value, with a note naming it."""
        for k in sorted(set(repeated or ()) | {k for k in top if k in self.meta}):
            self.notes.add(
                f"file with the top-level key {json.dumps(k)} more than once: only its last value is kept "
                f"(the earlier ones, and any events inside them, are not in the output)"
            )
        for k, v in top.items():
            hits: set[str] = set()
            if lenient:
                try:
                    k, v = _clean(k, hits), _clean(v, hits)
                except RecursionError:
                    raise TraceError(self.path, f"top-level key {k!r} is nested too deeply") from None
            if hits:
                self.notes.add("top-level values with NaN/Infinity or lone surrogates (replaced by null/U+FFFD)")
            self.meta[k] = v

    def _clean(self, v: Any) -> Any:
        """:func:`_clean` of one event (or top-level value), counting it in the notes once per kind of fix."""
        hits: set[str] = set()
        try:
            v = _clean(v, hits)
        except RecursionError:
            raise msgspec.DecodeError("JSON nested too deeply") from None
        for h in hits:
            self.notes.add(h)
        return v

    def _columns_for(self, body: bytes | memoryview) -> list[Prepared | None]:
        """Columns of the events in ``body`` (runs on a worker thread).

        The C scanner (:mod:`tracekit.ingest.kscan`) takes every run of events it supports; the rest
        (string pids, unknown fields, wrong types, damage) goes through msgspec and the tolerant path.
        """
        if not kscan.AVAILABLE or not self.fast:
            return self._generic(bytes(body))
        out: list[Prepared | None] = []
        counts: Counter[str] = Counter()
        for run in kscan.scan_runs(body, counts):
            if isinstance(run, bytes):
                out += self._generic(run)
            else:
                if run["ts_ns"].null_count:
                    self.notes.add(_NO_TS, run["ts_ns"].null_count)
                d = run["dur_ns"]
                if d.null_count:
                    run["dur_ns"] = num_array(np_filled(d, 0))
                out.append(TraceSink.prepare(run))
        for what, k in counts.items():
            self.notes.add(what, k)
        return out

    def _generic(self, body: bytes) -> list[Prepared | None]:
        """The msgspec + DuckDB path for ``body``."""
        got = self._decode(body)
        if got is None:
            # A false boundary (inside a string) or damage: decode piece by piece.
            return self._pieces(body)
        return [TraceSink.prepare(self._cols().build(*got))] if got[0] else []

    def _pieces(self, body: bytes) -> list[Prepared | None]:
        """A block that does not decode as a whole: decode it event by event (along the boundaries its structure
        gives, one pass); the first event that does not parse is the error."""
        good: list[bytes] = []
        st = None
        pos, n = 0, len(body)
        mv = memoryview(body)
        while pos < n:
            st, end, nxt, code, _ = kscan.split(mv[pos:], pos, st, kscan.EVENTS, first=True)
            if code != kscan.BOUNDARY:
                end = nxt = n
            piece = body[pos:end]
            if piece.strip():
                if self._decode(piece) is None:
                    raise TraceError(self.path, f"not valid JSON inside traceEvents near: {piece.strip()[:60]!r}")
                good.append(piece)
            pos = nxt
        got = self._decode(b",".join(good)) if good else None
        return [TraceSink.prepare(self._cols().build(*got))] if got is not None and got[0] else []

    def _finish_tail(self, buf: bytes, events_end: int | None, done: int | None) -> None:
        """The last events, ``]`` and the document's tail keys; or, if it does not parse, a salvage.

        ``events_end``: where the event list's ``]`` is in ``buf`` (None: the file ended first); ``done``: the
        end of the last complete event in ``buf`` (None: none is complete). Both come from the structure
        (:func:`kscan.split`), so nothing here searches backwards. Bytes after a complete document are
        trailing data (a note), not a truncation (issue 23 item 17).
        """
        if events_end is not None:
            # a bare array ends with `]` and no `}`: close the object the tail is parsed in
            doc = b'{"traceEvents":[' + buf[events_end:] + (b"}" if self._bare else b"")
            end: int | None = None  # where trailing data starts, when there is some
            try:
                tail, _, lenient = _json_decode(doc)
            except msgspec.DecodeError:
                tail = None
                end = None if self._bare else _trailing_start(doc)
                if end is not None:
                    try:
                        tail, _, lenient = _json_decode(doc[:end])
                    except msgspec.DecodeError:
                        tail = None
                    else:
                        extra = len(doc[end:].strip())
                        if extra:
                            self.notes.add(
                                f"file with trailing data after the end of the JSON document: {extra} bytes ignored"
                            )
            if isinstance(tail, dict):
                if buf[:events_end].strip():
                    self._append(self._columns_for(buf[:events_end]))
                self._add_meta(
                    {k: v for k, v in tail.items() if k != "traceEvents"},
                    lenient,
                    [k for k in _repeated_top_keys(doc[:end] if end is not None else doc) if k != "traceEvents"],
                )
                return
        # Truncated (a run that crashed mid-export): keep the complete events.
        self.lost_bytes = len(buf.strip())
        if done is not None:
            self._append(self._columns_for(buf[:done]))
            rest = buf[done:].strip()
            self.lost_bytes = len(rest[1:].strip() if rest[:1] == b"," else rest)  # the separator is not lost
        self.notes.add(f"truncated file: {self.lost_bytes} bytes after the last complete event were lost")

    @staticmethod
    def _events_end(buf: bytes) -> int | None:
        """Where the event list's ``]`` is in ``buf`` (which starts at an event), or None."""
        _, _, _, code, at = kscan.split(buf, 0, None, kscan.EVENTS)
        return at if code == kscan.LIST_END else None

    def trace_meta(self) -> dict[str, Any]:
        """Trace-level facts for the Parquet metadata (secrets scrubbed)."""
        m = self.meta
        dist = d if isinstance(d := m.get("distributedInfo"), dict) else {}
        known = {"schemaVersion", "deviceProperties", "distributedInfo", "baseTimeNanoseconds", "traceEvents"}
        if not m.get("deviceProperties") and m.get("computeProperties"):
            known.add("computeProperties")  # the devices already
        return {
            "source_file": str(self.path),
            "profiler_version": m.get("schemaVersion"),
            "base_time_ns": m.get("baseTimeNanoseconds"),
            "devices": scrub(_devices(m)),
            "rank": dist.get("rank"),
            "world_size": dist.get("world_size"),
            "notes": self.notes.lines(),
            "extra": scrub({k: v for k, v in m.items() if k not in known}),
        }


def _devices(meta: dict[str, Any]) -> Any:
    """The GPUs the trace lists: ``deviceProperties``, or ``computeProperties`` where old torch (1.8) put them.

    Kept as written (store.TRACE_DEVICES reads ``numSms`` or the old ``multiProcessorCount``).
    """
    return meta.get("deviceProperties") or meta.get("computeProperties") or []


def convert_kineto(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trace: str | None = None,
    progress: Callable[[int], None] | None = None,
    fast: bool = True,
) -> dict[str, Any]:
    """Convert one Kineto JSON(.gz) file to ``out`` (Parquet). Returns the trace metadata written.

    ``fast=False`` skips the C scanner (the pure-Python path; the same rows, args whitespace aside).
    """
    reader = KinetoReader(path, progress, fast=fast)
    name = trace or default_trace_name(path)
    try:
        with TraceSink(out, name, "kineto") as sink:
            reader.run(sink)
            if sink.rows == 0:
                skipped = reader.notes.counts.get(_NON_OBJECT, 0)
                if skipped:
                    raise TraceError(
                        path, f"not a trace: none of the {skipped} entries of its event list is an event object"
                    )
                if reader.lost_bytes:
                    raise TraceError(
                        path, f"truncated before the first complete event ({reader.lost_bytes} bytes unusable)"
                    )
                raise TraceError(path, "no events in `traceEvents`")
            meta = reader.trace_meta()
            sink.finish(meta)
    except MemoryError:
        raise TraceError(path, "out of memory while reading it (a value too large for the memory available)") from None
    except RecursionError:  # the structure check (kscan.MAX_DEPTH) stops deep nesting first; this is the backstop
        raise TraceError(path, "JSON nested too deeply") from None
    return dict(meta, trace=name, events=sink.rows)
