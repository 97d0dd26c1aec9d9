"""Fast path for one block of Kineto events: the C scanner ``_kscan`` -> pyarrow arrays.

:func:`scan_block` takes what :meth:`KinetoReader._emit` receives (complete
events separated by commas, no brackets) and returns the base columns as
pyarrow arrays, or None when the block is outside the subset the scanner
supports; the caller then decodes the block the generic (msgspec) way.
:func:`scan_runs` splits a block into runs instead: column dicts for the
supported events and raw text for the others (Kineto's own "Spans"/"Traces"
events with string pids), so one odd event does not send its block to the slow
path.

Supported subset (anything else -> None for the whole block):

* every element is an object whose keys are among ph, cat, name, pid, tid, ts,
  dur, args, id, bp, s (each at most once, spelled without escapes);
* ph/cat/name/bp/s are strings or null; pid/tid/id JSON integers within int64
  or null; ts/dur JSON numbers without exponent (or null), dur not negative
  after rounding; args an object;
* valid JSON and valid UTF-8 (no lone surrogates), a number of ns within int64;
* ``Input Dims`` / ``Input type`` values spelled as DuckDB's JSON re-serialisation (the msgspec path) would
  spell them: no escapes in their strings, no fraction, exponent or ``-0`` in their numbers, integers
  within int64 (found by ``tests/fuzz/kscan_fuzz.py``; real traces hold integer shapes and plain names).

Columns: ts_ns/dur_ns are the decimal text times 1000, exact, half-to-even;
NULL when absent. Typed args come from the top-level keys of ``args`` (first
occurrence of a key wins); integer args accept JSON integers and strings of a
decimal or ``0x`` hex integer (a negative hex string is NULL, as DuckDB's
TRY_CAST gives). ``args`` is the args object compacted (whitespace outside
strings removed, escapes as written) with ``@bp``, ``@s`` and ``@id`` (the
last only when args has a ``correlation`` key) put first. ``correlation`` is
the args correlation when it converts, else ``id``. Args keys and typed string
values may use escapes (matched and converted after unescaping).

``kind`` and ``copy_kind`` are computed here with pyarrow.compute from the one table of kind rules
(tracekit.ingest.kineto_kinds), which kineto.py's ``_kind_case`` writes as SQL.

The same extension also serves the nsys reader once: :func:`emit_nvtx_cut` strips torch emit_nvtx's per-call
suffixes from range names (tracekit.ingest.nsys), a regex's work done byte by byte.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.ingest.arrays import num_array, str_array
from tracekit.ingest.kineto_kinds import CAT_KIND, OTHER_KIND, PH_KIND, STEP_CATS, STEP_KIND, STEP_PREFIX, TEXT_ID_NOTES

try:
    from tracekit.ingest import _kscan  # type: ignore[attr-defined]  # the C extension ships no stub
except ImportError:  # extension not built: the package works pure-Python
    _kscan = None

AVAILABLE = _kscan is not None

STR_COLS = ("ph", "cat", "name", "bp", "s", "input_dims", "input_types", "args")
I64_COLS = (
    "pid",
    "tid",
    "ts_ns",
    "dur_ns",
    "id",
    "correlation",
    "stream",
    "external_id",
    "shared_mem_bytes",
    "bytes",
    "graph_id",
)
I32_COLS = ("device", "registers", "grid_x", "grid_y", "grid_z", "block_x", "block_y", "block_z")
#: Columns returned by :func:`scan_block` besides kind and copy_kind: the base columns of kineto's
#: ``_Columns.build`` less trace/source/seq. (The C scanner also returns bp, s and id; they are in ``args``
#: and ``correlation`` already.)
COLUMNS = tuple(c for c in STR_COLS + I64_COLS + I32_COLS + ("flops",) if c not in ("bp", "s", "id"))

# The kind rules of tracekit.ingest.kineto_kinds, as pyarrow arrays.
_CAT_KEYS = str_array(list(CAT_KIND))
_CAT_VALS = str_array(list(CAT_KIND.values()))
_PH_KEYS = str_array(list(PH_KIND))
_PH_VALS = str_array(list(PH_KIND.values()))
_OP_CATS = str_array(list(STEP_CATS))
# Scalars for pyarrow.compute, made from arrays: a Python literal argument goes through pyarrow's Python
# conversion, which imports pandas (see link.str_array).
_RANGE, _OTHER, _MEMCPY, _EMPTY, _NULL_STR = str_array([STEP_KIND, OTHER_KIND, "memcpy", "", None])
_FALSE = num_array(np.zeros(1, bool))[0]
_COPY_RE = r"(?:Memcpy|memcpy|Copy)\s*(?P<k>[A-Za-z]+to[A-Za-z]+)"

_TYPES = {
    **{c: pa.string() for c in STR_COLS},
    **{c: pa.int64() for c in I64_COLS},
    **{c: pa.int32() for c in I32_COLS},
    "flops": pa.float64(),
}


def _array(typ: pa.DataType, n: int, bufs: tuple[Any, ...]) -> pa.Array:
    valid = bufs[0]
    return pa.Array.from_buffers(
        typ,
        n,
        [None if valid is None else pa.py_buffer(valid), *(pa.py_buffer(b) for b in bufs[1:])],
        null_count=0 if valid is None else -1,
    )


def kind_of(ph: pa.Array, cat: pa.Array, name: pa.Array) -> pa.Array:
    """``kind`` from ph/cat/name by the rules of tracekit.ingest.kineto_kinds, vectorised."""
    by_cat = pc.take(_CAT_VALS, pc.index_in(cat, value_set=_CAT_KEYS))
    step = pc.and_(pc.is_in(cat, value_set=_OP_CATS), pc.starts_with(name, STEP_PREFIX))
    by_cat = pc.if_else(pc.fill_null(step, _FALSE), _RANGE, by_cat)
    by_ph = pc.take(_PH_VALS, pc.index_in(ph, value_set=_PH_KEYS))
    return pc.coalesce(by_ph, by_cat, _OTHER)


def copy_kind_of(kind: pa.Array, name: pa.Array) -> pa.Array:
    """Memcpy direction for memcpy rows ('' when the name does not say, as DuckDB's regexp_extract), else NULL."""
    is_copy = pc.equal(kind, _MEMCPY)
    if not pc.any(is_copy).as_py():
        return pa.nulls(len(kind), pa.string())
    # the regex runs on the memcpy rows only (a few per block), not on every name
    is_copy = pc.fill_null(is_copy, _FALSE)
    sub = name.filter(is_copy)
    got = pc.struct_field(pc.extract_regex(sub, _COPY_RE), [0])
    got = pc.if_else(pc.is_null(sub), _NULL_STR, pc.fill_null(got, _EMPTY))
    return pc.replace_with_mask(pa.nulls(len(kind), pa.string()), is_copy, got)


def _columns(raw: dict[str, Any], counts: Counter[str] | None = None) -> dict[str, pa.Array]:
    """pyarrow columns of one scan; its counts of pid/tid read from text go to ``counts`` (note -> rows)."""
    n = raw.pop("n")
    text_ids = raw.pop("text_ids", (0, 0, 0))
    if counts is not None:
        for note, k in zip(TEXT_ID_NOTES, text_ids):
            if k:
                counts[note] += k
    out = {name: _array(_TYPES[name], n, raw[name]) for name in COLUMNS}
    out["kind"] = kind_of(out["ph"], out["cat"], out["name"])
    out["copy_kind"] = copy_kind_of(out["kind"], out["name"])
    return out


def scan_block(body: bytes) -> dict[str, pa.Array] | None:
    """Columns of one block of events, or None (extension missing, or block outside the supported subset)."""
    if _kscan is None:
        return None
    raw = _kscan.scan(body)
    return None if raw is None else _columns(raw)


def scan_block_prefix(body: bytes) -> tuple[dict[str, pa.Array] | None, int]:
    """(columns of the leading events the scanner supports, offset in ``body`` of the first one it does not).

    The offset is ``len(body)`` when the whole block is supported; ``body[offset:]`` (which starts at an
    event) is left for the generic path. ``(None, 0)`` when the first event is unsupported or the extension
    is missing.
    """
    if _kscan is None:
        return None, 0
    raw, stop, _ = _kscan.scan_prefix(body)
    return (None if raw is None else _columns(raw)), stop


#: Most runs of unsupported events one block may be split into; past it the whole block takes the generic
#: path. Each run costs a fixed ~10-40 ms (a DuckDB query, a batch, its buffers): a layout where supported
#: and unsupported events alternate (a torch 1.9 trace whose flows had integer tids and the rest text) made
#: one run per event, and conversion took minutes for 80k events (issue 25 item 1). Bounded, every block
#: costs O(its bytes) plus a constant.
MAX_RAW_RUNS = 8


def scan_runs(body: bytes | memoryview, counts: Counter[str] | None = None) -> list[dict[str, pa.Array] | bytes]:
    """The block as runs, in event order: column dicts for runs of supported events, and ``bytes`` for runs
    of events the scanner does not support (complete events separated by commas, for the generic path).

    Kineto puts a few profiler events with string pid/tid ("Spans", "Traces", "") among the others, not
    always at the end; with this the rest of their block still goes through the scanner. Malformed JSON
    makes everything from there one ``bytes`` run; more than :data:`MAX_RAW_RUNS` unsupported runs make the
    whole block one. Without the extension: ``[body]``. ``counts``: see :func:`_columns`.
    """
    if _kscan is None:
        return [bytes(body)]
    return [bytes(body[a:b]) if cols is None else cols for a, b, cols in runs(body, counts)]


def runs(
    body: bytes | memoryview, counts: Counter[str] | None = None
) -> list[tuple[int, int, dict[str, pa.Array] | None]]:
    """:func:`scan_runs` with the byte span of each run in ``body`` (cols None: a run left to the generic path)."""
    if _kscan is None:
        return [(0, len(body), None)] if bytes(body).strip() else []
    out: list[tuple[int, int, dict[str, Any] | None]] = []
    mv = memoryview(body)
    pos, n = 0, len(body)
    raw_start = -1  # start of the pending run of unsupported events
    raw_runs = 0
    while pos < n:
        raw, stop, bad_end = _kscan.scan_prefix(mv[pos:])
        if raw is not None:
            if raw_start >= 0:
                out.append((raw_start, pos, None))
                raw_start = -1
            out.append((pos, pos + stop, raw))
        if pos + stop >= n:
            pos = n
            break
        if raw_start < 0:
            raw_start = pos + stop
            raw_runs += 1
            if raw_runs > MAX_RAW_RUNS:  # alternating layout: one generic run, no scans turned into columns
                return _whole(body)
        if bad_end < 0:
            pos = n
            break
        pos += bad_end
        while pos < n and body[pos] in b" \t\r\n,":  # the separator: whitespace, one comma, whitespace
            pos += 1
    if raw_start >= 0:
        out.append((raw_start, pos, None))
    # trim separators and whitespace off the spans; drop empty ones
    res = []
    for a, b, cols in out:
        while a < b and body[a] in b" \t\r\n,":
            a += 1
        while b > a and body[b - 1] in b" \t\r\n,":
            b -= 1
        if a < b:
            res.append((a, b, None if cols is None else _columns(cols, counts)))
    return res


def _whole(body: bytes | memoryview) -> list[tuple[int, int, dict[str, pa.Array] | None]]:
    """All of ``body`` as one run for the generic path, separators trimmed off both ends."""
    a, b = 0, len(body)  # body may be a memoryview (no strip): trimmed as runs() trims its spans
    while a < b and body[a] in b" \t\r\n,":
        a += 1
    while b > a and body[b - 1] in b" \t\r\n,":
        b -= 1
    return [(a, b, None)] if a < b else []


# -- emit_nvtx suffixes (nsys range names) ---------------------------------------------------------------
def emit_nvtx_cut(names: pa.Array) -> pa.Array | None:
    """``names`` (a ``string`` array) without torch emit_nvtx's per-call suffixes, as
    ``pc.replace_substring_regex(names, tracekit.ingest.nsys.EMIT_NVTX_SUFFIX, "")`` gives them, cut by the C
    extension (see ``emit_nvtx_cut`` in ``_kscan.c``); None when it is not built, for another type, or for text it
    leaves to the regex (a byte >= 0x80 after a comma). Why: the regex cost 0.15 CPU-s of a 968k-event nsys
    conversion whose ranges all carry ``, op_id = N``; tests/test_emit_nvtx_cut.py holds the two to the same text."""
    if _kscan is None or names.type != pa.string() or not len(names):
        return None
    valid, offsets, data = names.buffers()
    if data is None:
        return None
    got = _kscan.emit_nvtx_cut(offsets, data, names.offset, len(names))
    if got is None:
        return None
    if valid is not None and names.offset:  # the new buffers start at row 0: so must the validity bitmap
        valid = pc.is_valid(names).buffers()[1]
    return pa.Array.from_buffers(pa.string(), len(names), [valid, pa.py_buffer(got[0]), pa.py_buffer(got[1])])


# -- structure splitter -----------------------------------------------------------------------------------


#: :func:`split` codes (see the comment above ``kscan_split`` in ``_kscan.c``)
CONSUMED, LIST_END, EVENTS_START, NOT_A_LIST, NO_KEY, TOO_DEEP, NOT_JSON, BOUNDARY = range(8)
EVENTS, HEAD = 0, 1
MAX_DEPTH = 500  # the C scanner's SPLIT_MAX_DEPTH; msgspec and DuckDB take a little under 1000

SplitState = tuple[int, int, int, int, int, int, int]


def split(
    chunk: bytes | memoryview, base: int, state: SplitState | None, mode: int, first: bool = False
) -> tuple[SplitState, int, int, int, int]:
    """Follow the JSON structure of a stream fed chunk by chunk: ``(state, cut_end, cut_next, code, at)``.

    Linear in the input and blind to values: it tracks strings, escapes and nesting only, so a ``},{`` inside
    a string is never taken for an event boundary. ``base`` is the offset of ``chunk`` in the stream; every
    position returned is absolute. ``state`` is what the previous call returned (None at the start); its
    fifth item is the end of the last complete depth-0 element. Mode :data:`EVENTS` starts just after the
    event list's ``[``: ``(cut_end, cut_next)`` is the chunk's last comma between two events (the comma and
    the position after it), or ``(-1, -1)``; with ``first`` it returns at the first (code :data:`BOUNDARY`).
    Mode :data:`HEAD` starts at the document's ``{`` and stops where the top-level ``"traceEvents"`` list
    starts (code :data:`EVENTS_START`, ``at`` after its ``[``, ``state[6]`` the key's quote). Other codes:
    :data:`LIST_END` (``at``: the list's ``]``), :data:`NOT_A_LIST`, :data:`NO_KEY`, :data:`TOO_DEEP`
    (deeper than :data:`MAX_DEPTH`), :data:`NOT_JSON` (``at``: the first byte JSON cannot have there).
    """
    if _kscan is not None:
        return _kscan.split(chunk, base, state, mode, int(first))
    return _py_split(bytes(chunk), base, state, mode, first)


_KEY = b"traceEvents"
_STR_STOP = re.compile(rb'["\\\x00-\x1f]')
_TOKEN = re.compile(rb"[ \t\r\n]*(?:([0-9A-Za-z+.\-]+)|([^ \t\r\n]))")


def _py_split(
    b: bytes, base: int, state: SplitState | None, mode: int, first: bool
) -> tuple[SplitState, int, int, int, int]:
    """Pure-Python :func:`split` (the same state machine as ``_kscan.c``), for when the extension is absent."""
    depth, in_str, seen, key, done, kstate, kstart = state or (0, 0, 0, -1, -1, 0, -1)
    cut_end = cut_next = -1
    p, n = 0, len(b)

    def ret(code: int, at: int) -> tuple[SplitState, int, int, int, int]:
        return (depth, in_str, seen, key, done, kstate, kstart), cut_end, cut_next, code, at

    while True:
        if in_str:
            if in_str == 2:
                if p >= n:
                    break
                if b[p] < 0x20:
                    return ret(NOT_JSON, base + p)
                in_str, key = 1, -1
                p += 1
            m = _STR_STOP.search(b, p)
            q = m.start() if m else n
            if key >= 0:
                part = b[p:q]
                key = key + len(part) if _KEY[key : key + len(part)] == part else -1
            p = q
            if p >= n:
                break
            ch = b[p]
            p += 1
            if ch == 0x5C:  # backslash
                in_str = 2
                continue
            if ch < 0x20:
                return ret(NOT_JSON, base + p - 1)
            in_str = 0
            if mode == EVENTS:
                if depth == 0:
                    done = base + p
            elif depth == 1:
                kstate = 1 if key == len(_KEY) else 0
            key = -1
            continue
        m = _TOKEN.match(b, p)
        if m is None or (m.group(1) is None and m.group(2) is None):  # only whitespace left
            break
        tok = m.group(1) or m.group(2)
        pos = m.start(1) if m.group(1) else m.start(2)
        ch = tok[0]
        cls = (
            0
            if m.group(1)
            else 1
            if ch == 0x22
            else 2
            if ch in b"{["
            else 3
            if ch in b"}]"
            else 4
            if ch == 0x2C
            else 5
            if ch == 0x3A
            else 6
        )
        if mode == HEAD and depth == 1 and kstate:
            if kstate == 1:
                kstate = 2 if cls == 5 else 0
                if kstate:
                    p = pos + 1
                    continue
            else:
                return ret(EVENTS_START, base + pos + 1) if ch == 0x5B else ret(NOT_A_LIST, base + pos)
        if mode == EVENTS and depth == 0:
            if cls == 4:
                if not seen:
                    return ret(NOT_JSON, base + pos)
                seen = 0
                cut_end, cut_next = base + pos, base + pos + 1
                p = pos + 1
                if first:
                    return ret(BOUNDARY, -1)
                continue
            if ch == 0x5D:
                if not seen and done >= 0:
                    return ret(NOT_JSON, base + pos)
                return ret(LIST_END, base + pos)
            if cls in (3, 5, 6):
                return ret(NOT_JSON, base + pos)
            seen = 1
        p = m.end()
        if cls == 1:
            in_str = 1
            if mode == HEAD and depth == 1:
                key, kstart = 0, base + pos
        elif cls == 2:
            depth += 1
            if depth > MAX_DEPTH:
                return ret(TOO_DEEP, base + pos)
        elif cls == 3:
            if depth <= 0:
                return ret(NOT_JSON, base + pos)
            depth -= 1
            if depth == 0:
                if mode == HEAD:
                    return ret(NO_KEY, base + pos + 1)
                done = base + pos + 1
        elif cls == 6:
            return ret(NOT_JSON, base + pos)
    return ret(CONSUMED, -1)
