"""Tie every event to its phase and every GPU op to the call that launched it.

Done once at convert time, for all sources, so that queries never need a
range join (a SQL interval join over millions of events does not scale: a
peer's DuckDB version ran out of 175 GB). The work is:

1. a per-thread stack sweep over the ``range`` rows only (few compared with
   all events), giving each range its parent and its path (a root range of a
   thread other than its process's main thread is nested under the main
   thread's path open at its start: step 4's last paragraph);
2. for every CPU-side point (runtime call, cpu_op, ...), the innermost range
   containing its start, found with ``searchsorted`` plus a walk up the parent
   chain that is vectorised over all points (iterations <= nesting depth);
3. for every GPU row, the runtime row with the same ``correlation`` (one
   hash-free sorted join); GPU rows copy that call's phase and launch facts.
   Correlation ids should be unique, but real traces reuse them (HIP/roctracer
   traces, merged or wrapped-around captures). When several runtime rows share
   a GPU row's id, the GPU row takes the latest of them that started at or
   before the GPU row itself (a launch cannot follow its work); if none did
   (clock skew), the earliest. Taking the first row for all of them would tie
   every kernel of the id to one call, phase and thread. Such GPU rows are
   counted (``LinkOutput.ambiguous_launches``; trust.sql flags them too).

4. backward work (issue 24): a CPU-side point with no range open on its own thread, on a thread that is not
   its process's main thread, borrows a phase, and the GPU ops it launched with it (``phase_rule`` says which
   rule gave a row its phase: ``thread`` for the own-thread rule of step 2, else the rule below). Why: the
   autograd engine runs the backward pass on a thread of its own that holds no ranges (or only DDP's
   ``nccl:all_reduce``) while the loop's thread sits in ``backward``-like ranges, so every backward kernel
   had no phase. In order:

   a. the range open on the main thread at the point's start, when it says more than "a step" (its innermost
      range is not a ``ProfilerStep#N``): the user's own word for what the step is doing then -> ``main_thread``;
   b. else the phase of the forward op linked to the innermost linked backward op enclosing the point: a Kineto
      ``fwdbwd`` flow ends on the backward op (bound to the innermost backward op open at the flow's end on its
      thread) and starts on the forward op (its phase is the range open at the flow's start on that thread);
      without a flow, the forward op of the same process with the same ``Sequence number`` (the latest started
      at or before the backward op when several have it) -> ``forward_op``. Backward ops are cpu_ops with a
      sequence number and ``Fwd thread id`` > 0 (or, without that key, a backward name); forward ops the rest;
   c. else the main thread's range (the step itself) -> ``main_thread``; else NULL.

   The main thread of a process (:meth:`RangeTree.main_threads`) is its thread with the most
   ``ProfilerStep#N`` ranges, else the one with the most ranges, ties to the smallest tid. It never borrows:
   its events outside every range stay NULL. Every other thread borrows only where none of its own ranges is
   open, so a thread with ranges keeps them exactly (a thread that holds ranges elsewhere is not excluded:
   DDP's autograd thread holds ``nccl:all_reduce`` ranges and runs all other backward work outside them).
   nsys (:class:`BatchLinker`) has no forward-op links: rules a and c there. Vectorised as steps 2 and 3
   (the backward ops are intervals per thread looked up like ranges; links are sorted joins, :class:`Launches`).

   Ranges of such a thread borrow too, but only a path prefix: a root range (none of its thread's ranges
   open at its start), on a thread that is not its process's main thread, has as its path the main thread's
   path open at its start (whatever it is, the step included) followed by its own name, so DDP's
   ``nccl:all_reduce`` opened during backward is ``ProfilerStep#4/## backward ##/nccl:all_reduce``, and what
   runs inside it (nested ranges, calls, the kernels they launch) inherits that path. Without it those ranges
   were roots, outside every step, and their kernels (28% of GPU op time on HTA's nccl_data) fell in no
   step's phase. ``phase`` stays the range's own name and ``phase_rule`` stays ``thread``: the phase still
   comes from the event's own thread, only its place in the step is borrowed (one more rule value would
   split the same phase over two rows of every per-rule count). No forward-op link for ranges (rule b): a
   path prefix says which ranges were open when the range opened, and only the main thread's open path is
   that (a forward op's path was open long before); rules a and c both give the main thread's open path.
   Same in nsys (one :class:`RangeTree`). The main thread's ranges are never prefixed.

All steps are linear in the number of events apart from sorts.

Step 1 is :class:`RangeTree`, step 3's index :class:`Launches`; :func:`link` runs
them over a whole trace at once (tracekit.ingest.sink.TraceSink), and
:class:`BatchLinker` batch by batch once every range and every runtime call is
known (StreamSink, for nsys: the same rules, checked against :func:`link`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tracekit.ingest.arrays import np_filled, np_values, num_array, str_array

# Integer codes for the kinds the linker cares about (others are OTHER).
RANGE, RUNTIME, GPU, GPU_RANGE, CPU_POINT, SKIP = 1, 2, 3, 4, 5, 0

_KIND_CODE = {
    "range": RANGE,
    "runtime": RUNTIME,
    "kernel": GPU,
    "memcpy": GPU,
    "memset": GPU,
    "gpu_sync": GPU,
    "gpu_range": GPU_RANGE,
    "cpu_op": CPU_POINT,
    "python": CPU_POINT,
    "instant": CPU_POINT,
    "other": CPU_POINT,
}


#: A range whose name starts so is a step marker (torch.profiler's ``ProfilerStep#N``): it says "a step", no more.
STEP_PREFIX = "ProfilerStep#"
_NO_TID = np.iinfo(np.int64).min  # "no main thread" (tids are any int64; Kineto's can be negative)

#: Values of the ``phase_rule`` column by code (-1: NULL, no phase). See the module docstring.
PHASE_RULES = ("thread", "forward_op", "main_thread")
THREAD_RULE, FORWARD_RULE, MAIN_RULE = 0, 1, 2

#: Codes of :attr:`LinkInput.fb_code`, the autograd facts of a row (tracekit.ingest.sink.TraceSink.prepare):
#: a Kineto ``fwdbwd`` flow start (on the forward op) or end (on the backward op), a cpu_op with a
#: ``Sequence number`` that is a forward op, or one that is a backward op.
FB_START, FB_END, FB_FWD_OP, FB_BWD_OP = 1, 2, 3, 4


def kind_codes(kinds: pa.Array) -> np.ndarray:
    """Map a ``kind`` string column to the linker's int8 codes."""
    enc = kinds.dictionary_encode() if not pa.types.is_dictionary(kinds.type) else kinds
    lut = np.array([_KIND_CODE.get(k, SKIP) for k in enc.dictionary.to_pylist()] + [SKIP], dtype=np.int8)
    idx = np_values(enc.indices)
    return lut[idx] if len(lut) > 1 else np.zeros(len(kinds), dtype=np.int8)


@dataclasses.dataclass
class LinkInput:
    """Columns the linker needs, for all rows of one trace, in row order."""

    code: np.ndarray  # int8 kind codes
    pid: np.ndarray  # int64
    tid: np.ndarray  # int64
    ts: np.ndarray  # int64 ns
    dur: np.ndarray  # int64 ns
    corr: np.ndarray  # int64, -1 where NULL
    name_idx: np.ndarray  # int32 index into name_dict per row, -1 = NULL
    name_dict: list[str]  # distinct names
    # The rows with autograd facts (few: fwdbwd flows, cpu_ops with a sequence number), sparse: their row
    # indices, FB_* codes and sequence numbers (-1 on flows). None: the source has none (nsys).
    fb_rows: np.ndarray | None = None  # int64
    fb_code: np.ndarray | None = None  # int8
    fb_seq: np.ndarray | None = None  # int64


@dataclasses.dataclass
class LinkOutput:
    """Per-row results; ``*_idx`` index into the string lists, -1 = NULL."""

    phase_idx: np.ndarray
    path_idx: np.ndarray
    phases: list[str]
    paths: list[str]
    launch_row: np.ndarray  # row of the launching runtime call, -1 = none
    launch_name_idx: np.ndarray  # index into name_dict, -1 = NULL
    name_dict: pa.Array  # the trace's distinct names
    ambiguous_launches: int = 0  # GPU rows whose correlation id matched several runtime rows
    rule_idx: np.ndarray | None = None  # int8 index into PHASE_RULES, -1 = NULL (None: all NULL)

    def __post_init__(self) -> None:
        self._ph = str_array(self.phases)
        self._pp = str_array(self.paths)
        if self.rule_idx is None:
            self.rule_idx = np.full(len(self.phase_idx), -1, dtype=np.int8)

    def columns(self, ts: np.ndarray, dur: np.ndarray, tid: np.ndarray, lo: int, hi: int) -> dict[str, pa.Array]:
        """Arrow arrays of the link columns for rows ``lo:hi``."""
        assert self.rule_idx is not None  # __post_init__ fills it
        return {
            "phase": _take(self._ph, self.phase_idx[lo:hi]),
            "phase_path": _take(self._pp, self.path_idx[lo:hi]),
            "phase_rule": _take(_RULES, self.rule_idx[lo:hi]),
            "launch_name": _take(self.name_dict, self.launch_name_idx[lo:hi]),
            **_launch_facts(ts, dur, tid, self.launch_row[lo:hi]),
        }


_RULES = str_array(list(PHASE_RULES))


def _launch_facts(ts: np.ndarray, dur: np.ndarray, tid: np.ndarray, src: np.ndarray) -> dict[str, pa.Array]:
    """launch_ts_ns / launch_dur_ns / launch_tid: the launching call's row ``src`` of the three columns (-1: NULL)."""
    none = src < 0
    safe = np.where(none, 0, src)
    return {
        k: num_array(v[safe] if len(v) else safe, none, pa.int64())
        for k, v in (("launch_ts_ns", ts), ("launch_dur_ns", dur), ("launch_tid", tid))
    }


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx] as a dictionary array (int32 indices into ``values``), NULL where idx < 0.

    A dictionary, not strings: the Parquet writer writes it as it is (tracekit.ingest.sink.DICT_OUT), without
    building or hashing a string per row; sink._compact_dicts cuts a long one down to what each row group uses.
    """
    return pa.DictionaryArray.from_arrays(num_array(idx, idx < 0, pa.int32()), values if len(values) else str_array([]))


def _thread_groups(pid: np.ndarray, tid: np.ndarray, rows: np.ndarray) -> dict[tuple[int, int], np.ndarray]:
    """Rows grouped by (pid, tid), each group in row order.

    The pair is packed into one int64 (pid in the high half, tid's low 32 bits
    in the low half): one 1-D sort instead of a slow row-wise ``unique(axis=0)``.
    """
    if len(rows) == 0:
        return {}
    key = (pid[rows] << 32) ^ (tid[rows] & 0xFFFFFFFF)
    order = np.argsort(key, kind="stable")
    ks = key[order]
    cuts = np.flatnonzero(np.diff(ks)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(ks)]])
    out: dict[tuple[int, int], np.ndarray] = {}
    for a, b in zip(starts.tolist(), ends.tolist()):
        r = rows[order[a:b]]
        out[(int(pid[r[0]]), int(tid[r[0]]))] = r
    return out


_QUERY_CHUNK = 1 << 18  # queries per vectorised pass: bounds the temporaries (~10 arrays of this size)


def _sparse(ends: np.ndarray) -> list[np.ndarray]:
    """Sparse table of block maxima of ``ends`` (level k: max over the 2**k elements ending at i)."""
    tables = [ends]
    size = 1
    while size * 2 <= len(ends):
        prev = tables[-1]
        cur = prev.copy()
        cur[size:] = np.maximum(prev[size:], prev[:-size])  # max over the 2*size elements ending at i
        tables.append(cur)
        size *= 2
    return tables


def _rightmost_open(tables: list[np.ndarray], pos: np.ndarray, t: np.ndarray) -> np.ndarray:
    """For each query q: the largest i <= pos[q] with ends[i] > t[q], else -1 (``tables = _sparse(ends)``).

    Binary lifting over the sparse table of block maxima of ``ends``: log2(m)
    vectorised steps for all queries at once, instead of a Python stack walk.
    """
    if len(pos) > _QUERY_CHUNK:
        return np.concatenate(
            [
                _rightmost_open(tables, pos[i : i + _QUERY_CHUNK], t[i : i + _QUERY_CHUNK])
                for i in range(0, len(pos), _QUERY_CHUNK)
            ]
        )
    pos = pos.astype(np.int64, copy=True)
    for k in range(len(tables) - 1, -1, -1):
        blk = 1 << k
        inside = pos - blk + 1 >= 0
        closed = inside & (tables[k][np.where(inside, pos, 0)] <= t)  # the whole block ended by t: skip it
        pos = np.where(closed, pos - blk, pos)
    return pos


def _open_at(ends: np.ndarray, parent: np.ndarray, pos: np.ndarray, t: np.ndarray) -> np.ndarray:
    """:func:`_rightmost_open` for point queries, walking up the parent chain instead of a sparse table.

    For each query: the largest i <= pos[q] with ends[i] > t[q] (-1: none), where ``parent`` is that rule
    applied at each range's own start. Exact for any intervals, nested or not: every range between
    parent[i] and i ended by starts[i] <= t, so when i has ended by t the answer is at or before parent[i].
    Steps: the nesting depth at most, for all queries at once; memory O(ranges), where the sparse table a
    :class:`RangeTree` would have to keep for its lookups is O(ranges log ranges) (184 MB on a 1.15 M-range trace).
    """
    if len(pos) > _QUERY_CHUNK:  # bounds the temporaries, as _rightmost_open does
        return np.concatenate(
            [
                _open_at(ends, parent, pos[i : i + _QUERY_CHUNK], t[i : i + _QUERY_CHUNK])
                for i in range(0, len(pos), _QUERY_CHUNK)
            ]
        )
    pos = pos.astype(np.int64, copy=True)
    todo = np.flatnonzero(pos >= 0)
    while len(todo):
        p = pos[todo]
        closed = ends[p] <= t[todo]
        todo = todo[closed]
        pos[todo] = parent[p[closed]]
        todo = todo[pos[todo] >= 0]
    return pos


def _unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` for non-negative keys; by a presence table when the keys are
    few compared with the values (path keys: parent path x name, a few thousand), else by sorting."""
    top = int(keys.max()) + 1 if len(keys) else 0
    if top > 4 * len(keys) + 4096:
        return np.unique(keys, return_inverse=True)
    present = np.zeros(top, dtype=bool)
    present[keys] = True
    uniq = np.flatnonzero(present)
    rank = np.cumsum(present, dtype=np.int64) - 1
    return uniq, rank[keys]


def _thread_key(pid: np.ndarray, tid: np.ndarray) -> np.ndarray:
    """(pid, tid) packed into one int64, as :func:`_thread_groups` packs it."""
    return (pid << 32) ^ (tid & 0xFFFFFFFF)


def _lookup(
    threads: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    pid: np.ndarray,
    tid: np.ndarray,
    ts: np.ndarray,
    rows: np.ndarray,
) -> np.ndarray:
    """For points ``rows`` of the columns: the payload of the latest-starting interval of their thread open at
    their start (-1: none). ``threads``: per packed (pid, tid), starts and ends in start order (longer first on
    ties), each interval's parent by the same rule at its own start, and its payload."""
    out = np.full(len(rows), -1, dtype=np.int32)
    if not threads or not len(rows):
        return out
    pos = np.empty(len(ts), dtype=np.int64)  # each point's place in ``out``
    pos[rows] = np.arange(len(rows))
    for _, pts in _thread_groups(pid, tid, rows).items():
        th = threads.get(int(_thread_key(pid[pts[:1]], tid[pts[:1]])[0]))
        if th is None:
            continue
        starts, ends, parent, payload = th
        t = ts[pts]
        hit_range = _open_at(ends, parent, np.searchsorted(starts, t, side="right") - 1, t)
        hit = hit_range >= 0
        out[pos[pts[hit]]] = payload[hit_range[hit]]
    return out


def _spans(
    pid: np.ndarray, tid: np.ndarray, ts: np.ndarray, dur: np.ndarray, payload: np.ndarray
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Intervals with a payload each, per thread in :func:`_lookup`'s layout (as :class:`RangeTree` keeps its ranges)."""
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
    for (p_, t_), rows in _thread_groups(pid, tid, np.arange(len(ts), dtype=np.int32)).items():
        starts = ts[rows]
        ends = starts + np.maximum(dur[rows], 0)
        order = np.lexsort((-ends, starts))
        starts, ends = starts[order], ends[order]
        parent = _rightmost_open(_sparse(ends), np.arange(len(rows)) - 1, starts).astype(np.int32)
        key = int(_thread_key(np.array([p_]), np.array([t_]))[0])
        out[key] = (starts, ends, parent, payload[rows[order]].astype(np.int32))
    return out


class RangeTree:
    """The ranges of one trace, nested per thread: each range's path, and the range open at any CPU point.

    Built once from every ``range`` row of the trace; :meth:`lookup` then answers for any batch of points,
    so a reader that delivers all ranges first can link the rest of the trace batch by batch
    (tracekit.ingest.nsys). The phase of a CPU event is the latest-starting range of its thread that is
    still open at the event's start (for properly nested ranges: the innermost enclosing one); a range's
    parent is found by the same rule at its own start.
    """

    def __init__(
        self,
        pid: np.ndarray,
        tid: np.ndarray,
        ts: np.ndarray,
        dur: np.ndarray,
        name_idx: np.ndarray,
        name_dict: list[str],
    ) -> None:
        """The range rows' columns, in row order (``name_idx`` into ``name_dict``, -1 = NULL)."""
        m_all = len(ts)
        self.range_path = np.full(m_all, -1, dtype=np.int32)  # path id of each input range, in input order
        self.paths: list[str] = []
        self._path_name: list[int] = []  # name index of each path's last element
        self._name_dict = name_dict
        # per thread: starts and ends in start order, each range's parent there, and its path id
        self._threads: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._n_names = max(len(name_dict), 1)
        self._path_of_key: dict[int, int] = {}
        is_step = np.array([nm.startswith(STEP_PREFIX) for nm in name_dict], dtype=bool)
        best: dict[int, tuple[int, int, int]] = {}  # pid -> (steps, ranges, -tid) of its best thread so far
        self._main: dict[int, int] = {}
        groups = _thread_groups(pid, tid, np.arange(m_all, dtype=np.int32))
        for (p_, t_), rows in groups.items():
            ni = name_idx[rows]
            score = (int(np.count_nonzero(is_step[ni[ni >= 0]])) if len(is_step) else 0, len(rows), -t_)
            if p_ not in best or score > best[p_]:
                best[p_], self._main[p_] = score, t_
        # Main threads first: the root ranges of every other thread take their path prefix from them.
        for p_, t_ in sorted(groups, key=lambda k: self._main.get(k[0]) != k[1]):
            self._add_thread(groups[(p_, t_)], pid, tid, ts, dur, name_idx)

    def _add_thread(
        self, rows: np.ndarray, pid: np.ndarray, tid: np.ndarray, ts: np.ndarray, dur: np.ndarray, name_idx: np.ndarray
    ) -> None:
        """Nest one thread's ranges (``rows`` into the columns) and give each its path (module docstring,
        step 1; a root range of a thread that is not its process's main thread is prefixed by the main thread's
        path open at its start, which therefore must have been added before)."""
        n_names = self._n_names
        # Sort by start, longer first on ties, so a parent precedes its children.
        starts = ts[rows]
        ends = starts + np.maximum(dur[rows], 0)
        order = np.lexsort((-ends, starts))
        rows, starts, ends = rows[order], starts[order], ends[order]
        m = len(rows)
        if not m:
            return
        parent = _rightmost_open(_sparse(ends), np.arange(m) - 1, starts)  # the table is O(m log m): not kept
        prefix = self._root_prefix(int(pid[rows[0]]), int(tid[rows[0]]), starts, parent)
        names = name_idx[rows].astype(np.int64)
        names = np.where(names >= 0, names, n_names)  # NULL name -> a sentinel id
        # Paths level by level: a path id per distinct (parent path, name) pair; a root's parent path is its prefix.
        r_path = np.full(m, -1, dtype=np.int64)
        level = parent < 0
        while level.any():
            sel = np.flatnonzero(level)
            ppath = np.where(parent[sel] >= 0, r_path[np.maximum(parent[sel], 0)], prefix[sel])
            keys = (ppath + 1) * (n_names + 1) + names[sel]
            uniq, inv = _unique(keys)
            ids = np.empty(len(uniq), dtype=np.int64)
            for u, kk in enumerate(uniq.tolist()):
                pid_ = self._path_of_key.get(kk)
                if pid_ is None:
                    pp, ni = divmod(kk, n_names + 1)
                    nm = self._name_dict[ni] if ni < len(self._name_dict) else ""
                    pid_ = self._path_of_key[kk] = len(self.paths)
                    self.paths.append(nm if pp == 0 else self.paths[pp - 1] + "/" + nm)
                    self._path_name.append(ni)
                ids[u] = pid_
            r_path[sel] = ids[inv.reshape(-1)]
            done = np.zeros(m, dtype=bool)
            done[sel] = True
            level = (parent >= 0) & done[np.maximum(parent, 0)] & (r_path < 0)
        self.range_path[rows] = r_path
        key = int(_thread_key(pid[rows[:1]], tid[rows[:1]])[0])
        self._threads[key] = (starts, ends, parent.astype(np.int32), r_path.astype(np.int32))

    def _root_prefix(self, p_: int, t_: int, starts: np.ndarray, parent: np.ndarray) -> np.ndarray:
        """Per range of thread (p_, t_) in start order: the path its root ranges are nested under (-1: none).

        The main thread's path open at the root's start (its innermost range, the step or finer; module
        docstring, step 4's last paragraph); -1 for non-roots, on the main thread itself, and where the main
        thread has nothing open. Why: DDP's autograd thread opens ``nccl:all_reduce`` while the loop's thread is
        in ``backward``; as a root it sat outside every step, and its kernels in no step's phase."""
        out = np.full(len(starts), -1, dtype=np.int64)
        main = self._main.get(p_)
        if main is None or main == t_:
            return out
        th = self._threads.get(int(_thread_key(np.array([p_]), np.array([main]))[0]))
        roots = np.flatnonzero(parent < 0)
        if th is None or not len(roots):
            return out
        m_starts, m_ends, m_parent, m_path = th
        t = starts[roots]
        hit = _open_at(m_ends, m_parent, np.searchsorted(m_starts, t, side="right") - 1, t)
        out[roots] = np.where(hit >= 0, m_path[np.maximum(hit, 0)], -1)
        return out

    def lookup(self, pid: np.ndarray, tid: np.ndarray, ts: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Path id of the range open at the start of each point ``rows`` of the columns, on its thread (-1: none).

        Rows are given as indices, not as the points' own columns: no copy of three columns of every point
        (Kineto traces are mostly points: 50 MB at peak on a 1.25 M-event trace).
        """
        return _lookup(self._threads, pid, tid, ts, rows)

    def main_lookup(
        self, pid: np.ndarray, tid: np.ndarray, ts: np.ndarray, rows: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """For points ``rows``: the path id of the range open on their process's main thread at their start
        (-1: none, or the point is on that main thread), and whether each point may borrow at all (it is not
        on its process's main thread). See :meth:`main_threads` for which thread is the main one."""
        p, t = pid[rows], tid[rows]
        main = np.full(len(rows), _NO_TID, dtype=np.int64)
        for proc, mt in self.main_threads().items():
            main[p == proc] = mt
        may = (main == _NO_TID) | (t != main)
        ask = np.flatnonzero(may & (main != _NO_TID))
        out = np.full(len(rows), -1, dtype=np.int32)
        if len(ask):
            out[ask] = _lookup(self._threads, p[ask], main[ask], ts[rows[ask]], np.arange(len(ask)))
        return out, may

    def main_threads(self) -> dict[int, int]:
        """The main thread of each process that holds ranges: the thread with the most ``ProfilerStep#N`` ranges
        (torch.profiler's step marker, recorded on the thread that calls ``prof.step()``, the training/serving
        loop), else the thread with the most ranges; ties go to the smallest tid. Deterministic and cheap (one
        count per thread), and it is the thread whose ranges say what the step is doing at any moment."""
        return self._main

    def is_step_path(self) -> np.ndarray:
        """Per path id: whether its innermost range is a step marker (``ProfilerStep#N``), i.e. says no more
        than "this is a step"."""
        return np.array(
            [0 <= ni < len(self._name_dict) and self._name_dict[ni].startswith(STEP_PREFIX) for ni in self._path_name],
            dtype=bool,
        )

    def phases(self) -> tuple[list[str], np.ndarray]:
        """The distinct phase names, and each path's phase id (a path's phase is its last element)."""
        phases: list[str] = []
        phase_id: dict[str, int] = {}
        for ni in self._path_name:
            nm = self._name_dict[ni] if ni < len(self._name_dict) else ""
            if nm not in phase_id:
                phase_id[nm] = len(phases)
                phases.append(nm)
        path_phase = np.array(
            [phase_id[self._name_dict[ni] if ni < len(self._name_dict) else ""] for ni in self._path_name],
            dtype=np.int32,
        )
        return phases, path_phase


def link(inp: LinkInput) -> LinkOutput:
    """Compute phase, phase_path, phase_rule and launch links for one trace (all rows at once; see the module
    docstring for the rules)."""
    n = len(inp.code)
    phase_idx = np.full(n, -1, dtype=np.int32)
    path_idx = np.full(n, -1, dtype=np.int32)
    rule_idx = np.full(n, -1, dtype=np.int8)

    range_rows = np.flatnonzero(inp.code == RANGE).astype(np.int32)
    tree = RangeTree(
        inp.pid[range_rows],
        inp.tid[range_rows],
        inp.ts[range_rows],
        inp.dur[range_rows],
        inp.name_idx[range_rows],
        inp.name_dict,
    )
    path_idx[range_rows] = tree.range_path
    point_rows = np.flatnonzero((inp.code == RUNTIME) | (inp.code == CPU_POINT)).astype(np.int32)
    own = tree.lookup(inp.pid, inp.tid, inp.ts, point_rows)
    path_idx[point_rows] = own
    borrowed, b_rule = _borrow(inp, tree, path_idx, point_rows, own)
    path_idx[point_rows] = np.where(own >= 0, own, borrowed)
    rule_idx[point_rows] = np.where(own >= 0, THREAD_RULE, b_rule)
    rule_idx[range_rows] = np.where(tree.range_path >= 0, THREAD_RULE, -1)

    # phase = the last element of the path: map each path to the id of its last name.
    paths = tree.paths
    phases, path_phase = tree.phases()
    phase_id = {p: i for i, p in enumerate(phases)}

    def intern(table: dict[str, int], values: list[str], s: str) -> int:
        i = table.get(s)
        if i is None:
            i = table[s] = len(values)
            values.append(s)
        return i

    has_path = path_idx >= 0
    if len(path_phase):
        phase_idx[has_path] = path_phase[path_idx[has_path]]
    path_id = {p: i for i, p in enumerate(paths)}

    # gpu_range rows: their own name is their phase.
    for r in np.flatnonzero(inp.code == GPU_RANGE).tolist():
        ni = int(inp.name_idx[r])
        name = inp.name_dict[ni] if ni >= 0 else ""
        phase_idx[r] = intern(phase_id, phases, name)
        path_idx[r] = intern(path_id, paths, name)
        rule_idx[r] = THREAD_RULE

    # GPU rows -> launching runtime call by correlation (see _launch_rows for duplicated ids).
    launch_row, ambiguous = _launch_rows(inp)
    dst = np.flatnonzero(launch_row >= 0)
    src = launch_row[dst]
    phase_idx[dst] = phase_idx[src]
    path_idx[dst] = path_idx[src]
    rule_idx[dst] = rule_idx[src]
    # launch_name: the launching row's name, taken through the shared name dictionary.
    has = launch_row >= 0
    lidx = np.where(has, inp.name_idx[np.where(has, launch_row, 0)] if n else launch_row, -1)
    lidx = np.where(lidx >= 0, lidx, -1).astype(np.int32)
    return LinkOutput(
        phase_idx, path_idx, phases, paths, launch_row, lidx, str_array(inp.name_dict), ambiguous, rule_idx
    )


def _borrow(
    inp: LinkInput, tree: RangeTree, own_path: np.ndarray, rows: np.ndarray, own: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per point ``rows`` (``own``: its own thread's path, -1 none): the path it borrows and the rule that gave
    it (-1: none), by the module docstring's order. Points with a path of their own are answered -1 here."""
    path = np.full(len(rows), -1, dtype=np.int32)
    rule = np.full(len(rows), -1, dtype=np.int8)
    need = np.flatnonzero(own < 0)
    if not len(need):
        return path, rule
    main, may = tree.main_lookup(inp.pid, inp.tid, inp.ts, rows[need])
    need, main = need[may], main[may]  # the main thread never borrows
    fwd = _forward_paths(inp, tree, own_path, rows[need])
    step = tree.is_step_path()
    user = main >= 0  # the main thread is in a range that says more than "a step": it wins
    if len(step):
        user &= ~step[np.maximum(main, 0)]
    use_fwd = ~user & (fwd >= 0)
    path[need] = np.where(use_fwd, fwd, main)
    rule[need] = np.where(use_fwd, FORWARD_RULE, np.where(main >= 0, MAIN_RULE, -1))
    return path, rule


def _forward_paths(inp: LinkInput, tree: RangeTree, own_path: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per point ``q``: the own-thread path of the forward op linked to the innermost linked backward op
    enclosing it (-1: none). A backward op is linked by a ``fwdbwd`` flow that ends on it (its start is at
    the backward op's start; the forward path is the range open at the flow's start on its own thread, which
    is the forward op's start), else by its ``Sequence number``: the forward op of its process with that
    number, the latest that started at or before it when several have it (Launches' rule)."""
    out = np.full(len(q), -1, dtype=np.int32)
    if inp.fb_rows is None or inp.fb_code is None or inp.fb_seq is None or not len(q) or not len(inp.fb_rows):
        return out
    r, c, sq = inp.fb_rows, inp.fb_code, inp.fb_seq
    bwd, fwd = r[c == FB_BWD_OP], r[c == FB_FWD_OP]
    if not len(bwd):
        return out
    bpath = np.full(len(bwd), -1, dtype=np.int32)
    if len(fwd):  # by (process, sequence number)
        _, p_rank = np.unique(np.concatenate([inp.pid[fwd], inp.pid[bwd]]), return_inverse=True)
        seqs = np.concatenate([sq[c == FB_FWD_OP], sq[c == FB_BWD_OP]])
        key = p_rank.astype(np.int64) * (int(seqs.max()) + 1) + seqs  # seq < 2**40 in any real trace: no overflow
        pick, _ = Launches(key[: len(fwd)], inp.ts[fwd]).find(key[len(fwd) :], inp.ts[bwd])
        ok = pick >= 0
        bpath[ok] = own_path[fwd[pick[ok]]]
    starts, ends = r[c == FB_START], r[c == FB_END]
    if len(starts) and len(ends):  # by fwdbwd flow: wins over the sequence number
        s_path = tree.lookup(inp.pid, inp.tid, inp.ts, starts)
        pick, _ = Launches(inp.corr[starts], inp.ts[starts]).find(inp.corr[ends], inp.ts[ends])
        ops = _spans(inp.pid[bwd], inp.tid[bwd], inp.ts[bwd], inp.dur[bwd], np.arange(len(bwd)))
        op = _lookup(ops, inp.pid, inp.tid, inp.ts, ends)  # the innermost backward op open at the flow's end
        ok = (op >= 0) & (pick >= 0)
        bpath[op[ok]] = s_path[pick[ok]]
    linked = np.flatnonzero(bpath >= 0)
    if not len(linked):
        return out
    b = bwd[linked]
    return _lookup(_spans(inp.pid[b], inp.tid[b], inp.ts[b], inp.dur[b], bpath[linked]), inp.pid, inp.tid, inp.ts, q)


def _launch_rows(inp: LinkInput) -> tuple[np.ndarray, int]:
    """Per row, the runtime row that launched it (-1 = none), and how many GPU rows had a choice."""
    n = len(inp.code)
    launch_row = np.full(n, -1, dtype=np.int32)
    rt = np.flatnonzero((inp.code == RUNTIME) & (inp.corr >= 0))
    gpu = np.flatnonzero((inp.code == GPU) & (inp.corr >= 0))
    if not len(rt) or not len(gpu):
        return launch_row, 0
    pick, n_amb = Launches(inp.corr[rt], inp.ts[rt]).find(inp.corr[gpu], inp.ts[gpu])
    found = pick >= 0
    launch_row[gpu[found]] = rt[pick[found]]
    return launch_row, n_amb


class Launches:
    """The runtime calls of one trace by correlation id, to find the call that launched each GPU op.

    Rule: among the runtime calls with the GPU op's correlation id, the latest whose start is
    <= the op's start; when none started by then, the earliest. With unique ids this is
    the one match, found by one stable sort and a binary search (as before ids could repeat);
    only ids that repeat pay for the second, time-ordered search. Built once from every runtime
    call; :meth:`find` then answers for any batch of GPU ops (all at once, or batch by batch).
    """

    def __init__(self, corr: np.ndarray, ts: np.ndarray) -> None:
        """``corr`` (>= 0) and ``ts`` of the runtime calls, in row order."""
        o = np.argsort(corr, kind="stable")
        self._rt_s = o  # runtime call index of each sorted position
        self._c_s = corr[o]
        self._ts_s = ts[o]
        self._rep: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _repeats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(id block of each sorted call, sorted positions of the calls whose id repeats by (block, start), their starts)."""
        if self._rep is None:
            c_s = self._c_s
            new_blk = np.concatenate([[True], c_s[1:] != c_s[:-1]])
            blk = np.cumsum(new_blk) - 1  # id block of each sorted runtime row
            starts = np.flatnonzero(new_blk)
            size = np.diff(np.append(starts, len(c_s)))[blk]
            pos = np.flatnonzero(size > 1)  # sorted positions of runtime rows whose id repeats
            pos = pos[np.lexsort((self._ts_s[pos], blk[pos]))]  # by (id block, start); stable: row order on ties
            self._rep = (blk, pos, self._ts_s[pos])
        return self._rep

    def find(self, g_corr: np.ndarray, g_ts: np.ndarray) -> tuple[np.ndarray, int]:
        """Per GPU op (``g_corr`` >= 0), the index of its launching call (-1: none), and how many had a choice."""
        pick_out = np.full(len(g_corr), -1, dtype=np.int64)
        c_s = self._c_s
        if not len(c_s) or not len(g_corr):
            return pick_out, 0
        lo = np.searchsorted(c_s, g_corr, side="left")
        last = len(c_s) - 1
        found = c_s[np.minimum(lo, last)] == g_corr
        g_at = np.flatnonzero(found)
        lo, g_corr, g_ts = lo[found], g_corr[found], g_ts[found]
        pick = lo.copy()
        amb = c_s[np.minimum(lo + 1, last)] == g_corr
        amb &= lo < last  # the id has a second launch
        n_amb = int(np.count_nonzero(amb))
        if n_amb:
            blk, pos, ts_pos = self._repeats()
            la, ga_ts = lo[amb], g_ts[amb]
            times = np.sort(np.concatenate([ts_pos, ga_ts]))  # ranks by searchsorted; repeats are harmless
            m = np.int64(len(times) + 1)
            key = blk[pos].astype(np.int64) * m + np.searchsorted(times, ts_pos)
            q = blk[la].astype(np.int64) * m + np.searchsorted(times, ga_ts)
            first = np.searchsorted(key, blk[la].astype(np.int64) * m, side="left")  # the id's earliest launch
            at = np.searchsorted(key, q, side="right") - 1  # its latest launch that started <= the op
            pick[amb] = pos[np.where(at >= first, at, first)]
        pick_out[g_at] = self._rt_s[pick]
        return pick_out, n_amb


class BatchLinker:
    """Links a trace batch by batch, for a reader that can deliver every range before the rest.

    The rules are :func:`link`'s; only the order differs. Built from the trace's :class:`RangeTree`, it then
    takes the batches in output order: range rows must come in the order the tree was built from, and
    every runtime call before the first GPU op (the launching call of an op is looked up among all of them).
    tracekit.ingest.nsys reads NVTX_EVENTS (all the ranges) first and CUPTI_ACTIVITY_KIND_RUNTIME before
    the GPU tables, so it can write each batch as soon as it is read instead of after the last one.
    """

    def __init__(self, tree: RangeTree) -> None:
        self.tree = tree
        phases, self._path_phase = tree.phases()
        self._phases = str_array(phases)
        self._paths = str_array(tree.paths)
        self._range_at = 0  # range rows linked so far (their paths: tree.range_path in this order)
        self._rt: dict[str, list[Any]] = {k: [] for k in ("corr", "ts", "dur", "tid", "name", "path", "rule")}
        self._launches: tuple[Launches, np.ndarray, dict[str, Any]] | None = None
        self.ambiguous_launches = 0

    def _launch_index(self) -> tuple[Launches, np.ndarray, dict[str, Any]]:
        if self._launches is None:
            rt: dict[str, Any] = {
                k: (pa.concat_arrays(v) if k == "name" else np.concatenate(v))
                if v
                else (pa.nulls(0, pa.string()) if k == "name" else np.zeros(0, np.int8 if k == "rule" else np.int64))
                for k, v in self._rt.items()
            }
            enc = rt["name"].dictionary_encode()  # launch_name: indices into the distinct names of the calls
            rt["name_dict"], rt["name_idx"] = enc.dictionary, np_filled(enc.indices, -1, np.int32)
            keyed = np.flatnonzero(rt["corr"] >= 0)
            self._launches = (Launches(rt["corr"][keyed], rt["ts"][keyed]), keyed, rt)
            self._rt = {}
        return self._launches

    def columns(
        self,
        code: np.ndarray,
        pid: np.ndarray,
        tid: np.ndarray,
        ts: np.ndarray,
        dur: np.ndarray,
        corr: np.ndarray,
        name: pa.Array,
    ) -> dict[str, pa.Array]:
        """The link columns of the next batch (its linker columns as :class:`LinkInput` holds them, and its names)."""
        n = len(code)
        path = np.full(n, -1, dtype=np.int32)
        ranges = np.flatnonzero(code == RANGE)
        if len(ranges):
            k = len(ranges)
            if self._range_at + k > len(self.tree.range_path):
                raise RuntimeError("BatchLinker: more range rows than the RangeTree was built from")
            path[ranges] = self.tree.range_path[self._range_at : self._range_at + k]
            self._range_at += k
        rule = np.full(n, -1, dtype=np.int8)
        rule[ranges] = np.where(path[ranges] >= 0, THREAD_RULE, -1)
        points = np.flatnonzero((code == RUNTIME) | (code == CPU_POINT))
        if len(points):
            own = self.tree.lookup(pid, tid, ts, points)
            main = np.full(len(points), -1, dtype=np.int32)  # no forward ops here: the main thread's range
            need = np.flatnonzero(own < 0)  # only points outside their own thread's ranges borrow (as _borrow)
            if len(need):
                found, may = self.tree.main_lookup(pid, tid, ts, points[need])
                main[need] = np.where(may, found, -1)
            path[points] = np.where(own >= 0, own, main)
            rule[points] = np.where(own >= 0, THREAD_RULE, np.where(main >= 0, MAIN_RULE, -1))
        rt = np.flatnonzero(code == RUNTIME)
        if len(rt):
            if self._launches is not None:
                raise RuntimeError("BatchLinker: a runtime call after the first GPU op")
            for col, v in (("corr", corr), ("ts", ts), ("dur", dur), ("tid", tid), ("path", path), ("rule", rule)):
                self._rt[col].append(v[rt])
            self._rt["name"].append(name.take(num_array(rt.astype(np.int64))))
        src = np.full(n, -1, dtype=np.int64)  # each row's launching call: index into the runtime calls
        empty = np.zeros(0, np.int64)
        r: dict[str, Any] = {"ts": empty, "dur": empty, "tid": empty}
        launch_name = _take(str_array([]), src)
        gpu = np.flatnonzero((code == GPU) & (corr >= 0))
        if len(gpu):
            launches, keyed, r = self._launch_index()
            pick, amb = launches.find(corr[gpu], ts[gpu])
            self.ambiguous_launches += amb
            ok = pick >= 0
            gpu = gpu[ok]
            src[gpu] = keyed[pick[ok]]
            path[gpu] = r["path"][src[gpu]]
            rule[gpu] = r["rule"][src[gpu]]
            if len(r["name_idx"]):
                launch_name = _take(r["name_dict"], np.where(src >= 0, r["name_idx"][np.maximum(src, 0)], -1))
        has = path >= 0
        phase_idx = np.full(n, -1, dtype=np.int32)
        if len(self._path_phase):
            phase_idx[has] = self._path_phase[path[has]]
        phase, phase_path = _take(self._phases, phase_idx), _take(self._paths, path)
        grange = code == GPU_RANGE
        if grange.any():  # gpu_range rows: their own name is their phase (and path)
            own = pc.fill_null(name, "")
            mask = num_array(grange)
            phase, phase_path = (
                pc.if_else(mask, own, a.cast(pa.string())).dictionary_encode() for a in (phase, phase_path)
            )
            rule[grange] = THREAD_RULE
        return {
            "phase": phase,
            "phase_path": phase_path,
            "phase_rule": _take(_RULES, rule),
            "launch_name": launch_name,
            **_launch_facts(r["ts"], r["dur"], r["tid"], src),
        }
