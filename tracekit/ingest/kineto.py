"""Kineto (torch.profiler) Chrome-trace JSON -> the event schema, streamed.

The file is read in blocks; each block is cut at the last event boundary and
the complete events in it are decoded by msgspec into typed structs in one C
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
fields, wrong types, bad UTF-8) is decoded generically and coerced event by
event; what was coerced is counted in the trace's notes. A file that ends
mid-event (a crashed run) keeps every complete event and says how many bytes
were lost.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Union

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.errors import TraceError
from tracekit.ingest.sink import TraceSink
from tracekit.redact import scrub

BLOCK = 8 << 20
_EXACT_LIMIT = 4.5e12  # microseconds; above this a float64 cannot hold ns digits exactly

Num = Union[int, float, None]
IntStr = Union[int, str, None]


class Ev(msgspec.Struct, forbid_unknown_fields=True):
    """One Chrome-trace event as Kineto writes it (unknown fields -> tolerant path)."""

    ph: str = ""
    cat: Union[str, None] = None
    name: Union[str, None] = None
    pid: IntStr = None
    tid: IntStr = None
    ts: Num = None
    dur: Num = None
    args: msgspec.Raw = msgspec.Raw(b"")
    id: IntStr = None
    bp: Union[str, None] = None
    s: Union[str, None] = None
    tk__extra: Union[dict, None] = None  # filled only by the tolerant path


class EvText(Ev, forbid_unknown_fields=True):
    """Same event with ts/dur kept as JSON text, for exact ns conversion."""

    ts: msgspec.Raw = msgspec.Raw(b"")  # type: ignore[assignment]
    dur: msgspec.Raw = msgspec.Raw(b"")  # type: ignore[assignment]


class Args(msgspec.Struct):
    """The args keys that become typed columns. Others stay only in ``args``."""

    correlation: Union[int, None] = None
    stream: Union[int, None] = None
    device: Union[int, None] = None
    external_id: Union[int, None] = msgspec.field(default=None, name="External id")
    grid: Union[list[int], None] = None
    block: Union[list[int], None] = None
    registers: Union[int, None] = msgspec.field(default=None, name="registers per thread")
    shared: Union[int, None] = msgspec.field(default=None, name="shared memory")
    nbytes: Union[int, None] = msgspec.field(default=None, name="bytes")
    input_dims: msgspec.Raw = msgspec.field(default=msgspec.Raw(b""), name="Input Dims")
    input_type: msgspec.Raw = msgspec.field(default=msgspec.Raw(b""), name="Input type")
    flops: Union[float, None] = None
    graph_id: Union[int, None] = msgspec.field(default=None, name="graph id")


_list_ev = msgspec.json.Decoder(list[Ev])
_list_ev_text = msgspec.json.Decoder(list[EvText])
_args_dec = msgspec.json.Decoder(Args)
_encode = msgspec.json.encode

CAT_KIND = {
    "kernel": "kernel", "Kernel": "kernel",
    "gpu_memcpy": "memcpy", "Memcpy": "memcpy",
    "gpu_memset": "memset", "Memset": "memset",
    "cuda_runtime": "runtime", "cuda_driver": "runtime", "Runtime": "runtime", "hip_runtime": "runtime",
    "cuda_sync": "gpu_sync",
    "user_annotation": "range", "gpu_user_annotation": "gpu_range",
    "cpu_op": "cpu_op", "Operator": "cpu_op",
    "python_function": "python",
    "ac2g": "flow", "async_cpu_to_gpu": "flow", "async_gpu": "flow", "fwdbwd": "flow",
    "cpu_instant_event": "instant",
}
PH_KIND = {"M": "meta", "C": "counter", "s": "flow", "f": "flow", "t": "flow", "i": "instant", "I": "instant", "n": "instant"}
#: Categories whose args hold no typed column: their args are not decoded a second time.
_NO_TYPED_ARGS = {"python_function", "cpu_instant_event", "Trace", None, "fwdbwd", "ac2g"}
_TOP_KEYS = set(Ev.__struct_fields__) - {"tk__extra"}
_SEP = re.compile(rb"\s*,\s*\{")
_START = re.compile(rb'"traceEvents"\s*:\s*\[')
_BIG_FRACTION = re.compile(rb'"(?:ts|dur)"\s*:\s*-?\d{13,}\.')


def _kind(ph: str, cat: str | None) -> str:
    k = PH_KIND.get(ph)
    if k is not None and not (ph in "iIn" and cat in CAT_KIND and CAT_KIND[cat] != "instant"):
        return k
    return CAT_KIND.get(cat or "", "other") if ph not in "iIn" else "instant"


def trace_name(path: str | os.PathLike[str]) -> str:
    """Default trace id: the file name without ``.json``/``.gz``/``.pt.trace``."""
    name = Path(path).name
    for suf in (".gz", ".json", ".trace", ".pt"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name


def _open(path: Path) -> tuple[BinaryIO, BinaryIO]:
    raw = open(path, "rb")
    magic = raw.read(2)
    raw.seek(0)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    return raw, raw


class _Notes:
    """Counts of what had to be coerced, reported once per trace."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def add(self, what: str, n: int = 1) -> None:
        self.counts[what] += n

    def lines(self) -> list[str]:
        return [f"{n} {what}" for what, n in sorted(self.counts.items())]


def _as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, str):
        try:
            return int(v.strip(), 0)
        except ValueError:
            return None
    return None


def _coerce(d: Any, notes: _Notes) -> Ev | None:
    """Build an Ev from a generically decoded event; None if it is not an object."""
    if not isinstance(d, dict):
        notes.add("non-object entries in traceEvents skipped")
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
            if isinstance(v, (int, float)) and not isinstance(v, bool):
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


class _Columns:
    """Turns a list of decoded events into schema columns."""

    def __init__(self, trace: str, notes: _Notes) -> None:
        self.trace = trace
        self.notes = notes
        self.seq = 0

    def build(self, evs: list[Ev], ts_ns: np.ndarray, end_ns: np.ndarray) -> dict[str, Any]:
        n = len(evs)
        notes = self.notes
        ph = [e.ph for e in evs]
        cat = [e.cat for e in evs]
        name = pa.array([e.name for e in evs], pa.string())
        kind_cache: dict[tuple[str, Any], str] = {}
        kind = []
        for e in evs:
            key = (e.ph, e.cat)
            k = kind_cache.get(key)
            if k is None:
                k = kind_cache[key] = _kind(e.ph, e.cat)
            kind.append(k)
        kind_arr = pa.array(kind, pa.string())
        # ProfilerStep#N written as a cpu_op by older Kineto is still a step range.
        step = pc.and_(pc.equal(kind_arr, "cpu_op"), pc.starts_with(name.fill_null(""), "ProfilerStep#"))
        if pc.any(step).as_py():
            kind_arr = pc.if_else(step, "range", kind_arr)

        extras: list[dict[str, Any] | None] = [None] * n
        pid = self._ints([e.pid for e in evs], "pid", extras)
        tid = self._ints([e.tid for e in evs], "tid", extras)
        ids = [e.id for e in evs]

        dur = end_ns - ts_ns
        neg = dur < 0
        if neg.any():
            notes.add("events with negative duration (dur_ns set to 0, raw value kept as @dur)", int(neg.sum()))
            for i in np.flatnonzero(neg).tolist():
                extras[i] = dict(extras[i] or {}, dur=evs[i].dur if not isinstance(evs[i].dur, msgspec.Raw) else bytes(evs[i].dur).decode())
            dur = np.where(neg, 0, dur)

        # typed args
        cols: dict[str, list[Any]] = {k: [None] * n for k in (
            "correlation", "stream", "device", "external_id", "grid_x", "grid_y", "grid_z", "block_x", "block_y",
            "block_z", "registers", "shared_mem_bytes", "bytes", "input_dims", "input_types", "flops", "graph_id")}
        args_text: list[str | None] = [None] * n
        for i, e in enumerate(evs):
            raw = e.args
            if len(raw):
                txt = bytes(raw).decode("utf-8", "replace")
                args_text[i] = txt
                if e.cat in _NO_TYPED_ARGS:
                    continue
                try:
                    a = _args_dec.decode(raw)
                except (msgspec.ValidationError, msgspec.DecodeError):
                    a = self._tolerant_args(txt)
                if a.correlation is not None:
                    cols["correlation"][i] = a.correlation
                if a.external_id is not None:
                    cols["external_id"][i] = a.external_id
                if a.stream is not None:
                    cols["stream"][i] = a.stream
                if a.device is not None:
                    cols["device"][i] = a.device
                if a.grid:
                    g = (list(a.grid) + [None, None, None])[:3]
                    cols["grid_x"][i], cols["grid_y"][i], cols["grid_z"][i] = g
                if a.block:
                    b = (list(a.block) + [None, None, None])[:3]
                    cols["block_x"][i], cols["block_y"][i], cols["block_z"][i] = b
                if a.registers is not None:
                    cols["registers"][i] = a.registers
                if a.shared is not None:
                    cols["shared_mem_bytes"][i] = a.shared
                if a.nbytes is not None:
                    cols["bytes"][i] = a.nbytes
                if len(a.input_dims):
                    cols["input_dims"][i] = bytes(a.input_dims).decode("utf-8", "replace")
                if len(a.input_type):
                    cols["input_types"][i] = bytes(a.input_type).decode("utf-8", "replace")
                if a.flops is not None:
                    cols["flops"][i] = a.flops
                if a.graph_id is not None:
                    cols["graph_id"][i] = a.graph_id
        # flows: the flow id goes to `correlation`
        corr = cols["correlation"]
        for i, e in enumerate(evs):
            v = ids[i]
            if v is not None:
                if isinstance(v, int) and corr[i] is None:
                    corr[i] = v
                else:
                    extras[i] = dict(extras[i] or {}, id=v)
            if e.bp is not None or e.s is not None or e.tk__extra:
                x = extras[i] or {}
                if e.bp is not None:
                    x["bp"] = e.bp
                if e.s is not None:
                    x["s"] = e.s
                if e.tk__extra:
                    x.update(e.tk__extra)
                extras[i] = x
        for i, x in enumerate(extras):
            if x:
                body = _encode({"@" + k: v for k, v in x.items()}).decode()
                a = args_text[i]
                if a is None:
                    args_text[i] = body
                else:
                    inner = a.strip()[1:].strip()
                    args_text[i] = body[:-1] + ("," + inner if inner != "}" else "}")

        kind_py = kind_arr
        is_copy = pc.equal(kind_py, "memcpy")
        copy_kind = pc.if_else(is_copy, pc.extract_regex(name.fill_null(""), r"(?:Memcpy|memcpy|Copy)\s*(?P<k>[A-Za-z]+to[A-Za-z]+)").field("k"), pa.scalar(None, pa.string()))
        seq = np.arange(self.seq, self.seq + n, dtype=np.int64)
        self.seq += n
        out: dict[str, Any] = {
            "trace": pa.array([self.trace]).take(pa.array(np.zeros(n, np.int32))),
            "source": pa.array(["kineto"]).take(pa.array(np.zeros(n, np.int32))),
            "kind": kind_arr,
            "cat": pa.array(cat, pa.string()),
            "ph": pa.array(ph, pa.string()),
            "name": name,
            "ts_ns": pa.array(ts_ns, pa.int64()),
            "dur_ns": pa.array(dur, pa.int64()),
            "pid": pid,
            "tid": tid,
            "copy_kind": copy_kind,
            "args": pa.array(args_text, pa.string()),
            "seq": pa.array(seq),
        }
        for k, v in cols.items():
            out[k] = v
        return out

    def _ints(self, vals: list[Any], field: str, extras: list[dict[str, Any] | None]) -> pa.Array:
        try:
            return pa.array(vals, pa.int64())
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
            out = []
            for i, v in enumerate(vals):
                iv = _as_int(v)
                if iv is None and v is not None:
                    extras[i] = dict(extras[i] or {}, **{field: v})
                out.append(iv)
            return pa.array(out, pa.int64())

    def _tolerant_args(self, txt: str) -> Args:
        self.notes.add("events with wrong-typed args fields (typed column left NULL, value kept in args)")
        try:
            d = msgspec.json.decode(txt)
        except msgspec.DecodeError:
            return Args()
        if not isinstance(d, dict):
            return Args()
        kw = {}
        for f, key in (("correlation", "correlation"), ("stream", "stream"), ("device", "device"), ("external_id", "External id"),
                       ("registers", "registers per thread"), ("shared", "shared memory"), ("nbytes", "bytes"), ("graph_id", "graph id")):
            v = _as_int(d.get(key))
            if v is not None:
                kw[f] = v
        for f in ("grid", "block"):
            v = d.get(f)
            if isinstance(v, list) and all(isinstance(x, int) for x in v):
                kw[f] = v
        return Args(**kw)


def _to_ns(vals: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Microsecond numbers -> (int64 ns rounded, valid mask). None -> 0 / invalid."""
    n = len(vals)
    arr = pa.array(vals)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool) if arr.null_count else np.ones(n, bool)
    if pa.types.is_integer(arr.type):
        return arr.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * 1000, valid
    if pa.types.is_null(arr.type):
        return np.zeros(n, np.int64), valid
    f = arr.cast(pa.float64()).fill_null(0).to_numpy(zero_copy_only=False)
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
                    out[i] = int((Decimal(t.decode()) * 1000).to_integral_value())  # ROUND_HALF_EVEN
                else:
                    out[i] = int(t) * 1000
                valid[i] = True
            except (InvalidOperation, ValueError):
                pass
    return out, valid


class KinetoReader:
    """Streams one Kineto file into a :class:`TraceSink`."""

    def __init__(self, path: str | os.PathLike[str], progress: Callable[[int], None] | None = None) -> None:
        self.path = Path(path)
        self.progress = progress
        self.notes = _Notes()
        self.meta: dict[str, Any] = {}
        self.lost_bytes = 0

    # -- block reading ---------------------------------------------------------------
    def _blocks(self) -> Iterator[bytes]:
        try:
            f, raw = _open(self.path)
        except OSError as e:
            raise TraceError(self.path, f"cannot open: {e.strerror or e}") from None
        with raw:
            last = 0
            while True:
                try:
                    b = f.read(BLOCK)
                except EOFError:
                    self.notes.add("gzip stream ended early (truncated .gz)")
                    return
                except (OSError, zlib.error) as e:
                    if "gzip" in str(e).lower() or isinstance(e, zlib.error):
                        self.notes.add(f"corrupt gzip data after this point ({e})")
                        return
                    raise TraceError(self.path, f"read error: {e}") from None
                if not b:
                    return
                if self.progress:
                    pos = raw.tell()
                    self.progress(pos - last)
                    last = pos
                yield b

    def run(self, sink: TraceSink) -> None:
        cols = _Columns(sink.trace, self.notes)
        blocks = self._blocks()
        buf = b""
        # 1. find the events array
        m = None
        for b in blocks:
            buf += b
            m = _START.search(buf)
            if m:
                break
            if len(buf) > 64 << 20:
                break
        stripped = buf.lstrip()
        if not stripped:
            raise TraceError(self.path, "empty file")
        if m is None:
            if stripped[:1] == b"[":  # bare array of events (Chrome 'JSON array format')
                head = b""
                buf = stripped[1:]
            else:
                if stripped[:1] != b"{":
                    raise TraceError(self.path, f"not JSON (starts with {stripped[:20]!r})")
                raise TraceError(self.path, "JSON without `traceEvents`: not a Kineto/Chrome trace")
        else:
            head = buf[: m.start()]
            buf = buf[m.end():]
            try:
                hd = msgspec.json.decode(head + b'"traceEvents": []}')
            except (msgspec.DecodeError, UnicodeDecodeError):
                raise TraceError(self.path, "not JSON: the part before `traceEvents` does not parse") from None
            self.meta.update(hd)
        # 2. events, block by block
        eof = False
        while True:
            cut = self._last_boundary(buf)
            if cut is not None:
                end, nxt = cut
                self._emit(buf[:end], sink, cols)
                buf = buf[nxt:]
            if eof:
                break
            try:
                b = next(blocks)
                buf += b
            except StopIteration:
                eof = True
        # 3. the last event(s) and the tail of the document
        self._finish_tail(buf, sink, cols)

    @staticmethod
    def _last_boundary(buf: bytes) -> tuple[int, int] | None:
        """(end of last complete-looking event, start of the next one) or None."""
        pos = len(buf)
        for _ in range(10000):
            pos = buf.rfind(b"}", 0, pos)
            if pos < 0:
                return None
            m = _SEP.match(buf, pos + 1)
            if m:
                return pos + 1, m.end() - 1
        return None

    def _decode(self, body: bytes) -> tuple[list[Ev], np.ndarray, np.ndarray] | None:
        """Decode ``[body]``; None if it is not valid JSON."""
        data = b"[" + body + b"]"
        try:
            evs: list[Ev] = _list_ev.decode(data)
            exact = not _BIG_FRACTION.search(data)
        except (msgspec.ValidationError, UnicodeDecodeError):
            evs = self._tolerant(data)
            exact = False
        except msgspec.DecodeError:
            return None
        if exact:
            ts, tv = _to_ns([e.ts for e in evs])
            du, dv = _to_ns([e.dur for e in evs])
        else:
            try:
                te = _list_ev_text.decode(data) if evs and not any(e.tk__extra for e in evs[:1]) else None
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
                te = None
            if te is not None and len(te) == len(evs):
                ts, tv = _text_to_ns([e.ts for e in te])
                du, dv = _text_to_ns([e.dur for e in te])
            else:
                ts, tv = _text_to_ns([msgspec.Raw(_encode(e.ts)) if e.ts is not None else msgspec.Raw(b"") for e in evs])
                du, dv = _text_to_ns([msgspec.Raw(_encode(e.dur)) if e.dur is not None else msgspec.Raw(b"") for e in evs])
        missing_ts = ~tv
        if missing_ts.any():
            self.notes.add("events without a numeric `ts` (ts_ns set to 0)", int(missing_ts.sum()))
        return evs, ts, ts + np.where(dv, du, 0)

    def _tolerant(self, data: bytes) -> list[Ev]:
        try:
            raw = msgspec.json.decode(data)
        except UnicodeDecodeError:
            self.notes.add("blocks with invalid UTF-8 (bad bytes replaced by U+FFFD)")
            raw = msgspec.json.decode(data.decode("utf-8", "replace").encode())
        out = []
        for d in raw:
            e = _coerce(d, self.notes)
            if e is not None:
                out.append(e)
        return out

    def _emit(self, body: bytes, sink: TraceSink, cols: _Columns) -> None:
        got = self._decode(body)
        if got is None:
            # A false boundary (inside a string) or damage: decode piece by piece.
            self._emit_pieces(body, sink, cols, final=False)
            return
        evs, ts, end = got
        if evs:
            sink.add(cols.build(evs, ts, end))

    def _emit_pieces(self, body: bytes, sink: TraceSink, cols: _Columns, final: bool) -> int:
        """Decode event by event along every boundary candidate; returns bytes not decoded."""
        start = 0
        good: list[bytes] = []
        pieces = [m.start() for m in _SEP.finditer(body)]
        for p in pieces + [len(body)]:
            end = p
            if body[start:end].strip() and self._decode(body[start:end]) is not None:
                good.append(body[start:end])
                nxt = _SEP.match(body, p)
                start = nxt.end() - 1 if nxt else len(body)
        if good:
            got = self._decode(b",".join(good))
            if got is not None and got[0]:
                sink.add(cols.build(*got))
        rest = body[start:].strip()
        if rest and not final:
            raise TraceError(self.path, f"not valid JSON inside traceEvents near: {rest[:60]!r}")
        return len(rest)

    def _finish_tail(self, buf: bytes, sink: TraceSink, cols: _Columns) -> None:
        doc = b'{"traceEvents":[' + buf
        try:
            tail = msgspec.json.decode(doc)
        except (msgspec.DecodeError, UnicodeDecodeError):
            tail = None
        if isinstance(tail, dict):
            body_end = self._events_end(buf)
            if body_end is not None:
                self._emit(buf[:body_end], sink, cols)
            for k, v in tail.items():
                if k != "traceEvents":
                    self.meta[k] = v
            return
        # Truncated: salvage the longest prefix of complete events.
        pos = len(buf)
        for _ in range(100000):
            pos = buf.rfind(b"}", 0, pos)
            if pos < 0:
                break
            if self._decode(buf[: pos + 1]) is not None:
                self._emit(buf[: pos + 1], sink, cols)
                rest = buf[pos + 1 :].strip()
                self.lost_bytes = len(rest)
                break
        else:
            pos = -1
        if pos < 0:
            self.lost_bytes = len(buf.strip())
        if self.lost_bytes or not buf.rstrip().endswith(b"}"):
            self.notes.add(f"truncated file: {self.lost_bytes} bytes after the last complete event were lost")
            if self.lost_bytes == 0:
                self.notes.counts[f"truncated file: {self.lost_bytes} bytes after the last complete event were lost"] = 1

    @staticmethod
    def _events_end(buf: bytes) -> int | None:
        """Where the last event ends in ``buf`` (the rest is ``]`` and the document's tail)."""
        pos = len(buf)
        while True:
            close = buf.rfind(b"]", 0, pos)
            if close < 0:
                return None
            before = buf[:close].rstrip()
            if not before:
                return 0
            if before.endswith(b"}"):
                try:
                    msgspec.json.decode(b"[" + before + b"]")
                    return len(before)
                except (msgspec.DecodeError, UnicodeDecodeError):
                    pass
            pos = close

    def trace_meta(self) -> dict[str, Any]:
        """Trace-level facts for the Parquet metadata (secrets scrubbed)."""
        m = self.meta
        dist = m.get("distributedInfo") if isinstance(m.get("distributedInfo"), dict) else {}
        known = {"schemaVersion", "deviceProperties", "distributedInfo", "baseTimeNanoseconds", "traceEvents"}
        return {
            "source_file": str(self.path),
            "profiler_version": m.get("schemaVersion"),
            "base_time_ns": m.get("baseTimeNanoseconds"),
            "devices": scrub(m.get("deviceProperties") or []),
            "rank": dist.get("rank"),
            "world_size": dist.get("world_size"),
            "notes": self.notes.lines(),
            "extra": scrub({k: v for k, v in m.items() if k not in known}),
        }


def convert_kineto(path: str | os.PathLike[str], out: str | os.PathLike[str], trace: str | None = None,
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Convert one Kineto JSON(.gz) file to ``out`` (Parquet). Returns the trace metadata written."""
    reader = KinetoReader(path, progress)
    name = trace or trace_name(path)
    with TraceSink(out, name, "kineto") as sink:
        reader.run(sink)
        if sink.rows == 0:
            if reader.lost_bytes:
                raise TraceError(path, f"truncated before the first complete event ({reader.lost_bytes} bytes unusable)")
            raise TraceError(path, "no events in `traceEvents`")
        meta = reader.trace_meta()
        sink.finish(meta)
    return dict(meta, trace=name, events=sink.rows)
