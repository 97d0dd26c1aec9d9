"""Backward work has its phase (issue 24 item 1): events on a thread with no open range borrow one.

The rule (tracekit.ingest.link, docs/schema.md `phase` / `phase_rule`), for a CPU event with no range open on
its own thread, on a thread that is not its process's main thread (the one with the ProfilerStep#N ranges),
and for the GPU ops it launched:
  1. the range open on the main thread at its start, when that range is not the step itself -> `main_thread`;
  2. else the own-thread phase of the forward op linked to the innermost linked backward op enclosing it
     (fwdbwd flow, else same Sequence number) -> `forward_op`;
  3. else the main thread's range (the step) -> `main_thread`; else NULL.
A range that is a root of a thread other than the main one (none of its thread's ranges open at its start) is
nested under the main thread's path open at its start; what runs inside it inherits that path, with rule `thread`.
A constructed trace whose every answer is worked out by hand below, and three real traces whose kernel
counts per (rule, phase path) come from an independent walk of the raw JSON.
"""

from __future__ import annotations

import collections
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import real_trace
from tracekit.ingest import convert
from tracekit.store import connect

PID = 100


def X(cat: str, name: str, ts: float, dur: float, tid: int, pid: int = PID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def op(name: str, ts: float, dur: float, tid: int, seq: int | None = None, fwd_tid: int | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"External id": 1}
    if seq is not None:
        args["Sequence number"] = seq
    if fwd_tid is not None:
        args["Fwd thread id"] = fwd_tid
    return X("cpu_op", name, ts, dur, tid, **args)


def flow(ph: str, fid: int, ts: float, tid: int) -> dict[str, Any]:
    e = {"ph": ph, "id": fid, "pid": PID, "tid": tid, "ts": ts, "cat": "fwdbwd", "name": "fwdbwd"}
    if ph == "f":
        e["bp"] = "e"
    return e


def launch(ts: float, corr: int, tid: int) -> dict[str, Any]:
    return X("cuda_runtime", "cudaLaunchKernel", ts, 3, tid, correlation=corr)


def kernel(ts: float, corr: int, name: str) -> dict[str, Any]:
    return X("kernel", name, ts + 4, 2, 7, pid=0, correlation=corr, stream=7, device=0)


MAIN, AUTOGRAD, LOADER = 1, 2, 3
EVENTS = [
    # main thread: ProfilerStep#1 [0, 1000) > fwd [10, 400) > attn [100, 200); ProfilerStep#1 > bwd [500, 700)
    X("user_annotation", "ProfilerStep#1", 0, 1000, MAIN),
    X("user_annotation", "fwd", 10, 390, MAIN),
    X("user_annotation", "attn", 100, 100, MAIN),
    X("user_annotation", "bwd", 500, 200, MAIN),
    # forward ops (Fwd thread id 0), flow starts on them
    op("aten::mm", 20, 30, MAIN, seq=11, fwd_tid=0), flow("s", 1, 20, MAIN),
    op("aten::relu", 60, 5, MAIN, seq=12, fwd_tid=0), flow("s", 2, 60, MAIN),
    op("aten::mul", 70, 5, MAIN, seq=15, fwd_tid=0), flow("s", 6, 70, MAIN),
    op("aten::bmm", 110, 20, MAIN, seq=13),  # torch < 1.10 layout: no Fwd thread id; a forward name
    launch(25, 100, MAIN), kernel(25, 100, "k0"),
    # autograd thread: no ranges at all
    op("autograd::engine::evaluate_function: MmBackward0", 708, 45, AUTOGRAD, seq=11, fwd_tid=1),
    op("MmBackward0", 710, 40, AUTOGRAD, seq=11, fwd_tid=1), flow("f", 1, 710, AUTOGRAD),
    launch(720, 101, AUTOGRAD), kernel(720, 101, "k1"),
    op("ReluBackward0", 550, 40, AUTOGRAD, seq=12, fwd_tid=1), flow("f", 2, 550, AUTOGRAD),
    launch(560, 102, AUTOGRAD), kernel(560, 102, "k2"),
    op("BmmBackward0", 760, 30, AUTOGRAD, seq=13),  # no flow, no Fwd thread id: backward by its name, seq 13
    launch(770, 103, AUTOGRAD), kernel(770, 103, "k3"),
    op("AddBackward0", 800, 30, AUTOGRAD, seq=99, fwd_tid=1),  # no flow, no forward op with seq 99
    launch(810, 105, AUTOGRAD), kernel(810, 105, "k5"),
    op("MulBackward0", 1100, 30, AUTOGRAD, seq=13, fwd_tid=1), flow("f", 6, 1100, AUTOGRAD),  # flow beats seq
    launch(1110, 106, AUTOGRAD), kernel(1110, 106, "k6"),
    op("AddBackward0", 1200, 30, AUTOGRAD, seq=98, fwd_tid=1),
    launch(1210, 107, AUTOGRAD), kernel(1210, 107, "k7"),
    # ranges of the autograd thread (roots there: nothing of its own is open when they open)
    X("user_annotation", "allreduce", 600, 40, AUTOGRAD),  # main thread in bwd [500, 700)
    launch(610, 111, AUTOGRAD), kernel(610, 111, "k11"),
    X("user_annotation", "inner", 620, 10, AUTOGRAD),  # nested in allreduce: not a root
    launch(622, 112, AUTOGRAD), kernel(622, 112, "k12"),
    op("MulBackward0", 840, 60, AUTOGRAD, seq=15, fwd_tid=1),  # linked by seq 15 to aten::mul at 70, in fwd
    launch(845, 114, AUTOGRAD), kernel(845, 114, "k14"),
    X("user_annotation", "allreduce", 850, 40, AUTOGRAD),  # main thread only in ProfilerStep#1; inside MulBackward0
    launch(860, 113, AUTOGRAD), kernel(860, 113, "k13"),
    X("user_annotation", "late", 1250, 30, AUTOGRAD),  # main thread: nothing open (the step ended at 1000)
    launch(1260, 115, AUTOGRAD), kernel(1260, 115, "k15"),
    # a loader thread with a range of its own
    X("user_annotation", "loader", 600, 50, LOADER),
    launch(610, 108, LOADER), kernel(610, 108, "k8"),
    launch(660, 109, LOADER), kernel(660, 109, "k9"),
    # the main thread outside every range
    launch(1300, 110, MAIN), kernel(1300, 110, "k10"),
]

# Worked by hand from the rule in the module docstring.
EXPECTED = {  # kernel -> (phase, phase_path, phase_rule)
    # launched on the main thread inside fwd: its own range
    "k0": ("fwd", "ProfilerStep#1/fwd", "thread"),
    # t=720: main thread only in ProfilerStep#1 (a step: says nothing) -> MmBackward0 [710, 750) is the innermost
    # linked backward op; flow 1 starts at t=20 on the main thread, inside fwd
    "k1": ("fwd", "ProfilerStep#1/fwd", "forward_op"),
    # t=560: main thread inside bwd [500, 700), a user range: it wins over ReluBackward0's link to fwd
    "k2": ("bwd", "ProfilerStep#1/bwd", "main_thread"),
    # t=770: BmmBackward0 has no flow; seq 13 -> aten::bmm at t=110, inside attn
    "k3": ("attn", "ProfilerStep#1/fwd/attn", "forward_op"),
    # t=810: AddBackward0 (seq 99) links to nothing -> the main thread's range at 810: the step itself
    "k5": ("ProfilerStep#1", "ProfilerStep#1", "main_thread"),
    # t=1110: MulBackward0's seq 13 would say attn, its flow 6 says aten::mul at t=70 (in fwd, not attn): flow wins
    "k6": ("fwd", "ProfilerStep#1/fwd", "forward_op"),
    # t=1210: no link, and nothing open on the main thread (the step ended at 1000)
    "k7": (None, None, None),
    # the loader thread's own range, a root there opened at 600 while the main thread is in bwd: nested under it
    "k8": ("loader", "ProfilerStep#1/bwd/loader", "thread"),
    # t=660: the loader thread's range has ended; not the main thread -> main thread inside bwd
    "k9": ("bwd", "ProfilerStep#1/bwd", "main_thread"),
    # the main thread never borrows
    "k10": (None, None, None),
    # t=610: own range allreduce [600, 640), a root opened at 600 while the main thread is in ProfilerStep#1/bwd
    "k11": ("allreduce", "ProfilerStep#1/bwd/allreduce", "thread"),
    # t=622: own range inner [620, 630), inside allreduce: inherits its prefixed path
    "k12": ("inner", "ProfilerStep#1/bwd/allreduce/inner", "thread"),
    # t=860: own range allreduce [850, 890), a root opened at 850 while the main thread is only in the step: the
    # step is the prefix; MulBackward0's forward link (fwd) is not used for ranges
    "k13": ("allreduce", "ProfilerStep#1/allreduce", "thread"),
    # t=845: inside MulBackward0 [840, 900) but before the range: main thread only in the step -> seq 15 -> aten::mul
    # at 70, in fwd
    "k14": ("fwd", "ProfilerStep#1/fwd", "forward_op"),
    # t=1260: own range late [1250, 1280); nothing open on the main thread at 1250: no prefix
    "k15": ("late", "late", "thread"),
}

# Range rows (name, tid, ts us) -> (phase, phase_path, phase_rule), by hand: the main thread's as they nest; every
# other thread's roots prefixed by the main thread's path open at their start, their children under them.
EXPECTED_RANGES = {
    ("ProfilerStep#1", MAIN, 0): ("ProfilerStep#1", "ProfilerStep#1", "thread"),
    ("fwd", MAIN, 10): ("fwd", "ProfilerStep#1/fwd", "thread"),
    ("attn", MAIN, 100): ("attn", "ProfilerStep#1/fwd/attn", "thread"),
    ("bwd", MAIN, 500): ("bwd", "ProfilerStep#1/bwd", "thread"),
    ("allreduce", AUTOGRAD, 600): ("allreduce", "ProfilerStep#1/bwd/allreduce", "thread"),
    ("loader", LOADER, 600): ("loader", "ProfilerStep#1/bwd/loader", "thread"),
    ("inner", AUTOGRAD, 620): ("inner", "ProfilerStep#1/bwd/allreduce/inner", "thread"),
    ("allreduce", AUTOGRAD, 850): ("allreduce", "ProfilerStep#1/allreduce", "thread"),
    ("late", AUTOGRAD, 1250): ("late", "late", "thread"),
}


def test_constructed_backward_phases(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    out = tmp_path / "t.parquet"
    convert(write_trace(EVENTS), out)
    con = connect(out)
    rows = con.execute("SELECT name, phase, phase_path, phase_rule FROM events WHERE kind = 'kernel'").fetchall()
    assert {r[0]: r[1:] for r in rows} == EXPECTED
    # the launching calls carry the same answer, and the backward cpu_ops theirs (MmBackward0's wrapper at 708
    # has seq 11, no flow: aten::mm by the sequence number, in fwd)
    rt = con.execute("SELECT correlation, phase_path, phase_rule FROM runtime ORDER BY correlation").fetchall()
    want_rt = {100: "k0", 101: "k1", 102: "k2", 103: "k3", 105: "k5", 106: "k6", 107: "k7", 108: "k8", 109: "k9",
               110: "k10", 111: "k11", 112: "k12", 113: "k13", 114: "k14", 115: "k15"}
    assert rt == [(c, EXPECTED[k][1], EXPECTED[k][2]) for c, k in want_rt.items()]
    ops = con.execute("SELECT name, ts_ns, phase_path, phase_rule FROM events WHERE kind = 'cpu_op' AND tid = 2 "
                      "ORDER BY ts_ns").fetchall()
    assert ops == [
        ("ReluBackward0", 550_000, "ProfilerStep#1/bwd", "main_thread"),
        ("autograd::engine::evaluate_function: MmBackward0", 708_000, "ProfilerStep#1/fwd", "forward_op"),
        ("MmBackward0", 710_000, "ProfilerStep#1/fwd", "forward_op"),
        ("BmmBackward0", 760_000, "ProfilerStep#1/fwd/attn", "forward_op"),
        ("AddBackward0", 800_000, "ProfilerStep#1", "main_thread"),
        ("MulBackward0", 840_000, "ProfilerStep#1/fwd", "forward_op"),
        ("MulBackward0", 1_100_000, "ProfilerStep#1/fwd", "forward_op"),
        ("AddBackward0", 1_200_000, None, None),
    ]
    # range rows: their own phase and rule, other threads' roots under the main thread's path; flow rows: no phase
    rng = con.execute("SELECT name, tid, ts_ns, phase, phase_path, phase_rule FROM events WHERE kind = 'range'").fetchall()
    assert {(r[0], r[1], r[2] // 1000): r[3:] for r in rng} == EXPECTED_RANGES and len(rng) == len(EXPECTED_RANGES)
    assert con.execute("SELECT count(*) FROM events WHERE kind = 'flow' AND phase IS NOT NULL").fetchone() == (0,)


def test_no_ranges_at_all(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    """A trace without ranges: no main thread, forward ops without phase -> every phase NULL, rule NULL."""
    events = [e for e in EVENTS if e.get("cat") != "user_annotation"]
    out = tmp_path / "t.parquet"
    convert(write_trace(events), out)
    got = connect(out).execute("SELECT count(*), count(phase), count(phase_rule) FROM events").fetchone()
    assert got == (len(events), 0, 0)


# ---------------------------------------------------------------------------------------------------------
# Real traces: an independent statement of the rule over the raw JSON (plain Python, brute force).


def _ns(v: Any) -> int:
    return int((Decimal(str(v)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _innermost(ivs: list[tuple[int, int, Any]], t: int) -> tuple[int, int, Any] | None:
    """The interval open at t (start <= t < end) that starts last (longer first on equal starts)."""
    best = None
    for iv in ivs:
        if iv[0] <= t < iv[1] and (best is None or (iv[0], -iv[1]) > (best[0], -best[1])):
            best = iv
    return best


def expected_kernel_phases(path: Path) -> collections.Counter[tuple[str | None, str | None]]:
    """Kernels per (phase_rule, phase_path) by the rule, from the raw JSON (decimal timestamps, exact ns)."""
    import gzip
    import json

    with gzip.open(path, "rt") as f:
        ev = json.load(f, parse_float=Decimal)["traceEvents"]
    ranges: dict[tuple[Any, Any], list[tuple[int, int, str]]] = collections.defaultdict(list)
    for e in ev:
        name = e.get("name", "")
        if e.get("ph") == "X" and (e.get("cat") == "user_annotation"
                                  or (e.get("cat") in ("cpu_op", "Operator") and name.startswith("ProfilerStep#"))):
            s = _ns(e["ts"])
            ranges[(e["pid"], e["tid"])].append((s, s + _ns(e.get("dur", 0)), name))

    main: dict[Any, Any] = {}
    for pid in {p for p, _ in ranges}:
        ths = [(sum(nm.startswith("ProfilerStep#") for *_, nm in ranges[(p, t)]), len(ranges[(p, t)]), -t, t)
               for p, t in ranges if p == pid]
        main[pid] = max(ths)[3]

    def path_at(th: tuple[Any, Any], t: int) -> str | None:
        """The ranges open on th at t, outermost first; off the main thread, after the main thread's path open
        at the outermost one's start."""
        open_ = sorted(((s, -en, nm) for s, en, nm in ranges.get(th, []) if s <= t < en))
        if not open_:
            return None
        own = "/".join(nm for *_, nm in open_)
        pre = path_at((th[0], main[th[0]]), open_[0][0]) if main[th[0]] != th[1] else None
        return f"{pre}/{own}" if pre else own
    ops = [e for e in ev if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    at_ts = {(e["pid"], e["tid"], _ns(e["ts"])): e for e in ops}  # fwdbwd flows start/end exactly on their op
    fwd_by_seq = {}
    for e in ops:
        a = e.get("args", {})
        if "Sequence number" in a and int(a.get("Fwd thread id", 0)) == 0:
            fwd_by_seq[(e["pid"], int(a["Sequence number"]))] = e
    starts = {e["id"]: e for e in ev if e.get("cat") == "fwdbwd" and e.get("ph") == "s"}
    linked: dict[tuple[Any, Any], list[tuple[int, int, str | None]]] = collections.defaultdict(list)
    for e in ops:
        a = e.get("args", {})
        if "Sequence number" not in a or int(a.get("Fwd thread id", 0)) == 0:
            continue
        f_op = fwd_by_seq.get((e["pid"], int(a["Sequence number"])))
        s = _ns(e["ts"])
        fp = path_at((f_op["pid"], f_op["tid"]), _ns(f_op["ts"])) if f_op else None
        linked[(e["pid"], e["tid"])].append((s, s + _ns(e["dur"]), fp))
    for e in ev:  # a flow end overrides its op's link
        if e.get("cat") == "fwdbwd" and e.get("ph") == "f" and e["id"] in starts:
            st = starts[e["id"]]
            fop = at_ts[(st["pid"], st["tid"], _ns(st["ts"]))]
            bop = at_ts[(e["pid"], e["tid"], _ns(e["ts"]))]
            th = (bop["pid"], bop["tid"])
            s = _ns(bop["ts"])
            linked[th] = [iv for iv in linked[th] if (iv[0], iv[1]) != (s, s + _ns(bop["dur"]))]
            linked[th].append((s, s + _ns(bop["dur"]), path_at((fop["pid"], fop["tid"]), _ns(fop["ts"]))))

    def phase_of(e: dict[str, Any]) -> tuple[str | None, str | None]:
        th, t = (e["pid"], e["tid"]), _ns(e["ts"])
        own = path_at(th, t)
        if own is not None:
            return "thread", own
        if main.get(e["pid"]) == e["tid"]:
            return None, None
        m = path_at((e["pid"], main[e["pid"]]), t) if e["pid"] in main else None
        if m is not None and not m.split("/")[-1].startswith("ProfilerStep#"):
            return "main_thread", m
        b = _innermost([iv for iv in linked.get(th, []) if iv[2] is not None], t)
        if b is not None:
            return "forward_op", b[2]
        return ("main_thread", m) if m is not None else (None, None)

    rt = {int(e["args"]["correlation"]): e for e in ev
          if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    got: collections.Counter[tuple[str | None, str | None]] = collections.Counter()
    for e in ev:
        if e.get("cat") == "kernel":
            r = rt.get(int(e["args"].get("correlation", -1)))
            got[phase_of(r) if r is not None else (None, None)] += 1
    return got


# Kernels per (phase_rule, phase_path), printed by expected_kernel_phases over the raw JSON (tracekit not involved).
# nccl_data: 1,761 backward kernels launched by the autograd thread while the main thread sat in `## backward ##`
# (none before this rule: 75.2% of GPU time was in `(other)`); the 15 `nccl:all_reduce` kernels keep that thread's
# own range, a root there opened while the main thread is in `## backward ##`: nested under it, 5 per step (they
# were the root path `nccl:all_reduce`, 28% of GPU op time in `(other)`, before roots took the main thread's path). amd_trace: the main thread has only the step and Optimizer.step: 5 kernels take their forward op's
# phase (the step: its forward ops sit directly in ProfilerStep#1), 2 launched outside any backward op the step.
REAL: dict[str, dict[tuple[str | None, str | None], int]] = {
    'hta/nccl_parser_config/nccl_data.json.gz': {
        ('main_thread', 'ProfilerStep#4/## backward ##'): 587,
        ('main_thread', 'ProfilerStep#5/## backward ##'): 587,
        ('main_thread', 'ProfilerStep#6/## backward ##'): 587,
        ('thread', 'ProfilerStep#4/## backward ##'): 6,
        ('thread', 'ProfilerStep#4/## backward ##/nccl:all_reduce'): 5,
        ('thread', 'ProfilerStep#4/## forward ##/DistributedDataParallel.forward'): 291,
        ('thread', 'ProfilerStep#4/## forward ##/DistributedDataParallel.forward/nccl:broadcast'): 2,
        ('thread', 'ProfilerStep#4/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#5/## backward ##'): 6,
        ('thread', 'ProfilerStep#5/## backward ##/nccl:all_reduce'): 5,
        ('thread', 'ProfilerStep#5/## forward ##/DistributedDataParallel.forward'): 291,
        ('thread', 'ProfilerStep#5/## forward ##/DistributedDataParallel.forward/nccl:broadcast'): 2,
        ('thread', 'ProfilerStep#5/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#6/## backward ##'): 6,
        ('thread', 'ProfilerStep#6/## backward ##/nccl:all_reduce'): 5,
        ('thread', 'ProfilerStep#6/## forward ##/DistributedDataParallel.forward'): 291,
        ('thread', 'ProfilerStep#6/## forward ##/DistributedDataParallel.forward/nccl:broadcast'): 2,
        ('thread', 'ProfilerStep#6/## optimizer ##/Optimizer.step#SGD.step'): 9,
    },
    'hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz': {
        ('main_thread', 'ProfilerStep#101/## backward ##'): 556,
        ('main_thread', 'ProfilerStep#102/## backward ##'): 556,
        ('main_thread', 'ProfilerStep#103/## backward ##'): 556,
        ('main_thread', 'ProfilerStep#104/## backward ##'): 556,
        ('main_thread', 'ProfilerStep#105/## backward ##'): 556,
        ('thread', 'ProfilerStep#101/## backward ##'): 6,
        ('thread', 'ProfilerStep#101/## forward ##/DistributedDataParallel.forward'): 299,
        ('thread', 'ProfilerStep#101/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#102/## backward ##'): 6,
        ('thread', 'ProfilerStep#102/## forward ##/DistributedDataParallel.forward'): 299,
        ('thread', 'ProfilerStep#102/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#103/## backward ##'): 6,
        ('thread', 'ProfilerStep#103/## forward ##/DistributedDataParallel.forward'): 299,
        ('thread', 'ProfilerStep#103/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#104/## backward ##'): 6,
        ('thread', 'ProfilerStep#104/## forward ##/DistributedDataParallel.forward'): 299,
        ('thread', 'ProfilerStep#104/## optimizer ##/Optimizer.step#SGD.step'): 9,
        ('thread', 'ProfilerStep#105/## backward ##'): 6,
        ('thread', 'ProfilerStep#105/## forward ##/DistributedDataParallel.forward'): 299,
        ('thread', 'ProfilerStep#105/## optimizer ##/Optimizer.step#SGD.step'): 9,
    },
    'hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz': {
        ('forward_op', 'ProfilerStep#1'): 5,
        ('main_thread', 'ProfilerStep#1'): 2,
        ('thread', 'ProfilerStep#1'): 6,
        ('thread', 'ProfilerStep#1/Optimizer.step#SGD.step'): 1,
    },
}


@pytest.mark.parametrize("rel", list(REAL))
def test_real_traces_backward_phases(rel: str, tmp_path: Path) -> None:
    src = real_trace(f"kineto/{rel}")  # ../shared, else the copy shipped in tests/data/real (not all are)
    if not src.exists():
        pytest.skip(f"{rel}: needs ../shared (not among the traces shipped in tests/data/real)")
    want = expected_kernel_phases(src)
    assert dict(want) == REAL[rel]
    out = tmp_path / "t.parquet"
    convert(src, out)
    got = connect(out).execute("SELECT phase_rule, phase_path, count(*) FROM events WHERE kind = 'kernel' "
                               "AND cat = 'kernel' GROUP BY ALL").fetchall()
    assert {(r, p): n for r, p, n in got} == dict(want)
