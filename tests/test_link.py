"""The linker against a brute-force statement of its rule, on random ranges (nested, crossing, equal, empty)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pyarrow as pa

from tracekit.ingest.link import (CPU_POINT, GPU, GPU_RANGE, PHASE_RULES, RANGE, RUNTIME, BatchLinker, LinkInput,
                                  RangeTree, link)

_range = st.tuples(st.integers(1, 2), st.integers(0, 50), st.integers(0, 30), st.integers(0, 3))  # tid, start, dur, name
_point = st.tuples(st.integers(1, 2), st.integers(0, 90))


def _order_key(r: tuple[int, int, int, int, int]) -> tuple[int, int, int]:
    row, tid, s, d, _ = r
    return (s, -(s + d), row)  # start asc, longer first, then row order


def _brute(ranges: list[tuple[int, int, int, int, int]], tid: int, t: int, before: tuple | None = None) -> tuple | None:
    """Latest range (in sort order) of thread ``tid`` open at ``t`` (and before ``before`` in sort order)."""
    cands = [r for r in ranges if r[1] == tid and r[2] <= t < r[2] + r[3]
             and (before is None or _order_key(r) < _order_key(before))]
    return max(cands, key=_order_key) if cands else None


def _path(ranges: list, r: tuple, main: int | None = None) -> str:
    """r's path: its parents by _brute at their own starts; a root off the ``main`` thread after the path of the
    main thread's range open at the root's start."""
    parts = []
    root = r
    while r is not None:
        parts.append(f"n{r[4]}")
        root, r = r, _brute(ranges, r[1], r[2], before=r)
    own = "/".join(reversed(parts))
    m = _brute(ranges, main, root[2]) if main is not None and root[1] != main else None
    return f"{_path(ranges, m, main)}/{own}" if m else own


@settings(max_examples=200, deadline=None)
@given(st.lists(_range, max_size=12), st.lists(_point, max_size=10))
def test_phase_rule(rng: list, pts: list) -> None:
    ranges = [(i, tid, s, d, nm) for i, (tid, s, d, nm) in enumerate(rng)]
    points = [(len(ranges) + j, tid, t) for j, (tid, t) in enumerate(pts)]
    n = len(ranges) + len(points)
    code = np.array([RANGE] * len(ranges) + [RUNTIME] * len(points), dtype=np.int8)
    tid = np.array([r[1] for r in ranges] + [p[1] for p in points], dtype=np.int64)
    ts = np.array([r[2] for r in ranges] + [p[2] for p in points], dtype=np.int64)
    dur = np.array([r[3] for r in ranges] + [0] * len(points), dtype=np.int64)
    name_idx = np.array([r[4] for r in ranges] + [-1] * len(points), dtype=np.int32)
    out = link(LinkInput(code, np.zeros(n, np.int64), tid, ts, dur, np.full(n, -1, np.int64), name_idx,
                         [f"n{i}" for i in range(4)]))
    got_path = [out.paths[i] if i >= 0 else None for i in out.path_idx]
    got_phase = [out.phases[i] if i >= 0 else None for i in out.phase_idx]
    got_rule = [PHASE_RULES[i] if i >= 0 else None for i in out.rule_idx]
    # The main thread: the one with the most ranges (no ProfilerStep names here), ties to the smaller tid.
    counts = {t_: sum(r[1] == t_ for r in ranges) for t_ in (1, 2)}
    main = max((counts[t_], -t_) for t_ in (1, 2) if counts[t_])[1] * -1 if ranges else None
    for row, t_id, t in points:
        r, rule = _brute(ranges, t_id, t), "thread"
        if r is None and main is not None and t_id != main:  # no range open: borrow the main thread's
            r, rule = _brute(ranges, main, t), "main_thread"
        assert got_path[row] == (_path(ranges, r, main) if r else None)
        assert got_phase[row] == (f"n{r[4]}" if r else None)
        assert got_rule[row] == (rule if r else None)
    for r in ranges:
        assert got_path[r[0]] == _path(ranges, r, main)


def test_gpu_rows_follow_their_launch() -> None:
    # range [0, 10) on tid 1; launch at 5 (corr 7); two kernels with corr 7 on the GPU "thread"
    code = np.array([RANGE, RUNTIME, GPU, GPU, GPU], dtype=np.int8)
    out = link(LinkInput(code, np.zeros(5, np.int64), np.array([1, 1, 7, 7, 7]), np.array([0, 5, 20, 30, 40]),
                         np.array([10, 1, 5, 5, 5]), np.array([-1, 7, 7, 7, 8]), np.array([0, 1, 2, 2, 2], np.int32),
                         ["decode", "cudaGraphLaunch", "k"]))
    assert out.launch_row.tolist() == [-1, -1, 1, 1, -1]
    assert [out.paths[i] if i >= 0 else None for i in out.path_idx] == ["decode", "decode", "decode", "decode", None]


def test_duplicate_correlation_takes_latest_launch_before_the_op() -> None:
    # Three launches share correlation 5 (rows 1, 2, 3 at t=10, 50, 90 on thread 1, inside ranges a/b/c);
    # kernels with id 5 at t=20, 60, 95, 100 and one at t=5 (before every launch: clock skew).
    # Rule: the latest launch of the id with start <= kernel start, else the earliest launch.
    #   t=20 -> row 1 (10), t=60 -> row 2 (50), t=95 and t=100 -> row 3 (90), t=5 -> row 1 (earliest).
    # Correlation 9 has one launch (row 4, t=200) and one kernel at t=150 (before it): still linked, not ambiguous.
    code = np.array([RANGE, RANGE, RANGE, RUNTIME, RUNTIME, RUNTIME, RUNTIME, GPU, GPU, GPU, GPU, GPU, GPU],
                    dtype=np.int8)
    tid = np.array([1, 1, 1, 1, 1, 1, 1, 7, 7, 7, 7, 7, 7])
    ts = np.array([0, 40, 80, 10, 50, 90, 200, 20, 60, 95, 100, 5, 150])
    dur = np.array([40, 40, 40, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1])
    corr = np.array([-1, -1, -1, 5, 5, 5, 9, 5, 5, 5, 5, 5, 9])
    names = np.array([0, 1, 2, 3, 3, 3, 3, -1, -1, -1, -1, -1, -1], np.int32)
    out = link(LinkInput(code, np.zeros(13, np.int64), tid, ts, dur, corr, names, ["a", "b", "c", "hipLaunchKernel"]))
    assert out.launch_row.tolist()[7:] == [3, 4, 5, 5, 3, 6]
    assert [out.paths[i] for i in out.path_idx[7:12]] == ["a", "b", "c", "c", "a"]
    assert out.ambiguous_launches == 5  # the five GPU rows of id 5; id 9 has one launch


_launch = st.tuples(st.integers(0, 3), st.integers(0, 40))  # correlation, start
_op = st.tuples(st.integers(0, 4), st.integers(0, 40))


@settings(max_examples=300, deadline=None)
@given(st.lists(_launch, max_size=10), st.lists(_op, max_size=10), st.randoms(use_true_random=False))
def test_launch_rule_with_reused_ids(launches: list, ops: list, rnd: object) -> None:
    # Rows in a shuffled order, so that row order and time order differ.
    rows = [("rt", c, t) for c, t in launches] + [("gpu", c, t) for c, t in ops]
    rnd.shuffle(rows)  # type: ignore[attr-defined]
    n = len(rows)
    code = np.array([RUNTIME if k == "rt" else GPU for k, _, _ in rows], dtype=np.int8)
    out = link(LinkInput(code, np.zeros(n, np.int64), np.zeros(n, np.int64), np.array([t for *_, t in rows], np.int64),
                         np.ones(n, np.int64), np.array([c for _, c, _ in rows], np.int64), np.full(n, -1, np.int32), []))
    ambiguous = 0
    for i, (k, c, t) in enumerate(rows):
        if k != "gpu":
            continue
        cands = [(tt, j) for j, (kk, cc, tt) in enumerate(rows) if kk == "rt" and cc == c]
        if len(cands) > 1:
            ambiguous += 1
        before = [x for x in cands if x[0] <= t]
        # latest start <= op (row order on ties: the last row), else the earliest start (first row on ties)
        want = max(before, key=lambda x: (x[0], x[1]))[1] if before else (min(cands)[1] if cands else -1)
        assert out.launch_row[i] == want, (rows, i)
    assert out.ambiguous_launches == ambiguous


_row = st.one_of(
    st.tuples(st.just("range"), st.integers(1, 2), st.integers(0, 50), st.integers(-1, 30), st.integers(-1, 3)),
    st.tuples(st.just("rt"), st.integers(1, 2), st.integers(0, 90), st.integers(-1, 4), st.integers(3, 4)),
    st.tuples(st.just("cpu"), st.integers(1, 2), st.integers(0, 90), st.just(-1), st.just(-1)),
    st.tuples(st.just("gpu"), st.integers(7, 8), st.integers(0, 90), st.integers(-1, 5), st.just(-1)),
    st.tuples(st.just("grange"), st.integers(7, 8), st.integers(0, 90), st.just(-1), st.integers(-1, 3)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_row, max_size=24), st.lists(st.integers(1, 6), min_size=1, max_size=8))
def test_batch_linker_equals_link(rows: list, cuts: list) -> None:
    """BatchLinker (ranges known first, then batches in output order) gives every row link()'s columns.

    Output order as tracekit.ingest.nsys writes it: runtime calls, GPU rows, then the ranges (and other rows)
    in their place; the batch boundaries are arbitrary. A range's dur of -1 is a NULL end (open range), a
    correlation of -1 none, a name of -1 NULL.
    """
    order = {"rt": 0, "gpu": 1}
    rows = sorted(rows, key=lambda r: order.get(r[0], 2))  # stable: ranges keep their relative order
    codes = {"range": RANGE, "rt": RUNTIME, "cpu": CPU_POINT, "gpu": GPU, "grange": GPU_RANGE}
    n = len(rows)
    code = np.array([codes[r[0]] for r in rows], dtype=np.int8)
    pid = np.zeros(n, np.int64)
    tid = np.array([r[1] for r in rows], np.int64)
    ts = np.array([r[2] for r in rows], np.int64)
    dur = np.array([r[3] if r[0] == "range" else 1 for r in rows], np.int64)
    corr = np.array([r[3] if r[0] in ("rt", "gpu") else -1 for r in rows], np.int64)
    names = ["a", "b", "c", "cudaLaunchKernel", "cudaMemcpyAsync"]
    name_idx = np.array([r[4] for r in rows], np.int32)
    whole = link(LinkInput(code, pid, tid, ts, dur, corr, name_idx, names))
    want = whole.columns(ts, dur, tid, 0, n)

    ranges = np.flatnonzero(code == RANGE)
    bl = BatchLinker(RangeTree(pid[ranges], tid[ranges], ts[ranges], dur[ranges], name_idx[ranges], names))
    name = pa.array([names[i] if i >= 0 else None for i in name_idx], pa.string())
    got: dict[str, list] = {k: [] for k in want}
    lo, i = 0, 0
    while lo < n:
        hi = min(n, lo + cuts[i % len(cuts)])
        i += 1
        cols = bl.columns(code[lo:hi], pid[lo:hi], tid[lo:hi], ts[lo:hi], dur[lo:hi], corr[lo:hi], name[lo:hi])
        for k, v in cols.items():
            got[k] += v.to_pylist()
        lo = hi
    for k, v in want.items():
        assert got[k] == v.to_pylist(), (k, rows)
    assert bl.ambiguous_launches == whole.ambiguous_launches
