"""Tie every event to its phase and every GPU op to the call that launched it.

Done once at convert time, for all sources, so that queries never need a
range join (a SQL interval join over millions of events does not scale: a
peer's DuckDB version ran out of 175 GB). The work is:

1. a per-thread stack sweep over the ``range`` rows only (few compared with
   all events), giving each range its parent and its path;
2. for every CPU-side point (runtime call, cpu_op, ...), the innermost range
   containing its start, found with ``searchsorted`` plus a walk up the parent
   chain that is vectorised over all points (iterations <= nesting depth);
3. for every GPU row, the runtime row with the same ``correlation`` (one
   hash-free sorted join); GPU rows copy that call's phase and launch facts.

All steps are linear in the number of events apart from sorts.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa

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


def kind_codes(kinds: pa.Array) -> np.ndarray:
    """Map a ``kind`` string column to the linker's int8 codes."""
    enc = kinds.dictionary_encode() if not pa.types.is_dictionary(kinds.type) else kinds
    lut = np.array([_KIND_CODE.get(k, SKIP) for k in enc.dictionary.to_pylist()] + [SKIP], dtype=np.int8)
    idx = enc.indices.to_numpy(zero_copy_only=False)
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

    def columns(self, ts: np.ndarray, dur: np.ndarray, tid: np.ndarray, lo: int, hi: int) -> dict[str, pa.Array]:
        """Arrow arrays of the link columns for rows ``lo:hi``."""
        ph = pa.array(self.phases, pa.string())
        pp = pa.array(self.paths, pa.string())
        pi = self.phase_idx[lo:hi]
        qi = self.path_idx[lo:hi]
        lr = self.launch_row[lo:hi]
        has = lr >= 0
        safe = np.where(has, lr, 0)
        mask = ~has
        return {
            "phase": _take(ph, pi),
            "phase_path": _take(pp, qi),
            "launch_name": _take(self.name_dict, self.launch_name_idx[lo:hi]),
            "launch_ts_ns": pa.array(ts[safe] if len(ts) else safe, pa.int64(), mask=mask),
            "launch_dur_ns": pa.array(dur[safe] if len(dur) else safe, pa.int64(), mask=mask),
            "launch_tid": pa.array(tid[safe] if len(tid) else safe, pa.int64(), mask=mask),
        }


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """values[idx] as a string array, NULL where idx < 0."""
    if len(values) == 0:
        return pa.nulls(len(idx), pa.string())
    return values.take(pa.array(idx, pa.int32(), mask=idx < 0))


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


def link(inp: LinkInput) -> LinkOutput:
    """Compute phase, phase_path and launch links for one trace."""
    n = len(inp.code)
    phase_idx = np.full(n, -1, dtype=np.int32)
    path_idx = np.full(n, -1, dtype=np.int32)
    phases: list[str] = []
    paths: list[str] = []
    phase_id: dict[str, int] = {}
    path_id: dict[str, int] = {}

    def intern(table: dict[str, int], values: list[str], s: str) -> int:
        i = table.get(s)
        if i is None:
            i = table[s] = len(values)
            values.append(s)
        return i

    range_rows = np.flatnonzero(inp.code == RANGE)
    point_rows = np.flatnonzero((inp.code == RUNTIME) | (inp.code == CPU_POINT))
    point_groups = _thread_groups(inp.pid, inp.tid, point_rows)
    for key, rows in _thread_groups(inp.pid, inp.tid, range_rows).items():
        # Sort by start, longer first on ties, so a parent precedes its children.
        starts = inp.ts[rows]
        ends = starts + np.maximum(inp.dur[rows], 0)
        order = np.lexsort((-ends, starts))
        rows, starts, ends = rows[order], starts[order], ends[order]
        m = len(rows)
        parent = np.full(m, -1, dtype=np.int64)
        r_phase = np.empty(m, dtype=np.int32)
        r_path = np.empty(m, dtype=np.int32)
        stack: list[int] = []
        path_of: list[str] = []
        ends_l = ends.tolist()
        starts_l = starts.tolist()
        for j in range(m):
            s = starts_l[j]
            while stack and ends_l[stack[-1]] <= s:
                stack.pop()
            ni = int(inp.name_idx[rows[j]])
            name = inp.name_dict[ni] if ni >= 0 else ""
            if stack:
                parent[j] = stack[-1]
                p = path_of[stack[-1]] + "/" + name
            else:
                p = name
            path_of.append(p)
            r_phase[j] = intern(phase_id, phases, name)
            r_path[j] = intern(path_id, paths, p)
            stack.append(j)
        phase_idx[rows] = r_phase
        path_idx[rows] = r_path

        pts = point_groups.get(key)
        if pts is None or m == 0:
            continue
        t = inp.ts[pts]
        cand = np.searchsorted(starts, t, side="right") - 1
        # Walk up while the candidate range ended at or before the point.
        active = cand >= 0
        while True:
            bad = active & (ends[np.maximum(cand, 0)] <= t)
            if not bad.any():
                break
            cand = np.where(bad, parent[np.maximum(cand, 0)], cand)
            active = cand >= 0
        hit = cand >= 0
        phase_idx[pts[hit]] = r_phase[cand[hit]]
        path_idx[pts[hit]] = r_path[cand[hit]]

    # gpu_range rows: their own name is their phase.
    for r in np.flatnonzero(inp.code == GPU_RANGE).tolist():
        ni = int(inp.name_idx[r])
        name = inp.name_dict[ni] if ni >= 0 else ""
        phase_idx[r] = intern(phase_id, phases, name)
        path_idx[r] = intern(path_id, paths, name)

    # GPU rows -> launching runtime call by correlation (first runtime row wins).
    launch_row = np.full(n, -1, dtype=np.int64)
    rt = np.flatnonzero((inp.code == RUNTIME) & (inp.corr >= 0))
    gpu = np.flatnonzero((inp.code == GPU) & (inp.corr >= 0))
    if len(rt) and len(gpu):
        rc = inp.corr[rt]
        o = np.argsort(rc, kind="stable")
        rc_sorted, rt_sorted = rc[o], rt[o]
        pos = np.searchsorted(rc_sorted, inp.corr[gpu], side="left")
        pos_c = np.minimum(pos, len(rc_sorted) - 1)
        ok = rc_sorted[pos_c] == inp.corr[gpu]
        src = rt_sorted[pos_c[ok]]
        dst = gpu[ok]
        launch_row[dst] = src
        phase_idx[dst] = phase_idx[src]
        path_idx[dst] = path_idx[src]
    # launch_name: the launching row's name, taken through the shared name dictionary.
    has = launch_row >= 0
    lidx = np.where(has, inp.name_idx[np.where(has, launch_row, 0)] if n else launch_row, -1)
    lidx = np.where(lidx >= 0, lidx, -1).astype(np.int32)
    return LinkOutput(phase_idx, path_idx, phases, paths, launch_row, lidx, pa.array(inp.name_dict, pa.string()))
