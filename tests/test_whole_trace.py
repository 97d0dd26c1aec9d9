"""A trace where no range matches the step pattern is one step per process: its window (lib/step_instances).

Constructed traces whose truth is worked out by hand (Kineto microseconds: every ns value is us * 1000), the
real `nsys stats` golden of power_iteration (its cudaapisum holds the whole trace's sync and launch calls), and
the raw SQLite of a two-process nsys report read without tracekit.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.conftest import NSYS_GOLDEN, needs_traces, real_trace
from tracekit import report
from tracekit.ingest import convert
from tracekit.rows import Rows
from tracekit.view import sections as sec
from tracekit.view.terminal import print_report


def _x(cat: str, name: str, ts: int, dur: int, pid: int, tid: int, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _launch(pid: int, tid: int, ts: int, corr: int, k_ts: int, k_dur: int, device: int = 0) -> list[dict[str, Any]]:
    """A 10 us cudaLaunchKernel at ``ts`` on (pid, tid) and its kernel on ``device``, stream 7."""
    return [_x("cuda_runtime", "cudaLaunchKernel", ts, 10, pid, tid, correlation=corr),
            _x("kernel", f"k{corr}", k_ts, k_dur, device, 7, device=device, stream=7, correlation=corr)]


def _one_process() -> list[dict[str, Any]]:
    """No step range. Process 100, thread 1 (the only thread with runtime calls):

    forward      0..1000 (range)      launch 100 -> kernel 200..500 (300 us), launch 600 -> kernel 700..800 (100 us)
    cudaStreamSynchronize 1000..2000  (1000 us, in no range)
    post         2000..2500 (range, no GPU work)
    thread 2: one cpu_op 50..60 (more events would not matter: thread 1 has the runtime calls)

    Window 0..2500 us. GPU busy 400 us, idle 2100 us (84%). Launch calls 20 us (0.8% of the window), sync
    1 call, 1000 us (40.0%). CPU tree on thread 1: forward 1000 us, post 500 us, (other) 1000 us; GPU: all
    400 us launched in forward.
    """
    return [
        _x("user_annotation", "forward", 0, 1000, 100, 1),
        *_launch(100, 1, 100, 1, 200, 300), *_launch(100, 1, 600, 2, 700, 100),
        _x("cuda_runtime", "cudaStreamSynchronize", 1000, 1000, 100, 1),
        _x("user_annotation", "post", 2000, 500, 100, 1),
        _x("cpu_op", "aten::empty", 50, 10, 100, 2),
    ]


def _two_processes() -> list[dict[str, Any]]:
    """No step range; two processes, each launching on its own GPU:

    process 100, thread 1: launch 100 -> kernel 200..300 on GPU 0; cudaStreamSynchronize 400..700 (300 us)
    process 200, thread 2: launches 100, 120, 140 -> kernels 200..300, 300..400, 400..500 on GPU 1;
                           cudaStreamSynchronize 600..700 (100 us)
    Window 100..700 us (600 us). Per process: sync (300 + 100) / 2 = 200 us in 1 call, 33.3% of the window;
    launch calls (10 + 30) / 2 = 20 us, 2 launches (1 and 3).
    """
    return [
        *_launch(100, 1, 100, 1, 200, 100, device=0),
        _x("cuda_runtime", "cudaStreamSynchronize", 400, 300, 100, 1),
        *_launch(200, 2, 100, 2, 200, 100, device=1), *_launch(200, 2, 120, 3, 300, 100, device=1),
        *_launch(200, 2, 140, 4, 400, 100, device=1),
        _x("cuda_runtime", "cudaStreamSynchronize", 600, 100, 200, 2),
    ]


def _metric(res: dict[str, Any], metric: str) -> dict[str, Any]:
    h = res["headline"]
    rows = h[h["metric"] == metric].to_dict("records")
    assert len(rows) == 1, metric
    return rows[0]


@pytest.fixture
def one(write_trace: Callable[..., Path]) -> dict[str, Any]:
    return report.run([write_trace(_one_process(), name="one.json")], analyses=["headline", "steps", "comm"])


def test_a_trace_without_steps_is_one_step_over_its_window(one: dict[str, Any]) -> None:
    st = one["steps"]
    assert st[["step_kind", "step_name", "tid", "wall_ns"]].to_dict("records") == [
        {"step_kind": "(whole trace)", "step_name": "(whole trace)", "tid": 1, "wall_ns": 2_500_000}]
    assert _metric(one, "GPU busy (union)")["mean"] == 400_000
    assert _metric(one, "GPU idle, end to end")["mean"] == 2_100_000
    assert _metric(one, "launches")["mean"] == 2
    assert _metric(one, "sync stall")["mean"] == 1_000_000
    assert _metric(one, "host: launch calls")["mean"] == 20_000


def test_its_verdicts_speak_of_the_trace_window(one: dict[str, Any]) -> None:
    v = list(one["headline.verdicts"]["verdict"])
    assert v[0].startswith("GPU idle 84.0% of the trace window (2.10 ms of 2.50 ms): ")
    assert "GPU busy 16.0% with ops launched in the trace" in v[0]
    assert v[1].startswith("Host blocked 1.00 ms in 1 blocking sync call (40.0% of the trace window), mostly "
                           "cudaStreamSynchronize outside any annotated phase")
    assert "Launch calls take 20.0 us (0.8% of the trace window): 2 kernel launches, mean 10.0 us" in v
    assert "Largest GPU phase: `forward`, 400.0 us (100.0% of GPU op time)" in v
    assert ("Largest CPU phase: `forward`, 1.00 ms (40.0% of the trace window, exclusive of its children; "
            "40.0% is outside any annotated phase)") in v
    assert not any("per step" in x for x in v)


def test_its_phase_tree_holds_the_ranges_of_its_thread(one: dict[str, Any]) -> None:
    t = one["headline.phase_tree"]
    got = {r["phase"]: (r["excl_cpu_ns_mean"], r["excl_gpu_ns_mean"]) for r in t.to_dict("records")}
    assert got == {"forward": (1_000_000, 400_000), "post": (500_000, 0), "(other)": (1_000_000, 0)}


def test_the_note_still_names_the_candidates(one: dict[str, Any]) -> None:
    notes = list(one["headline.notes"]["message"])
    assert any(n.startswith("no step matched the step pattern; candidates: forward (1), post (1): the numbers are "
                            "over the whole trace") for n in notes), notes


def test_per_step_only_figures_stay_per_step(one: dict[str, Any]) -> None:
    """comm counts a whole trace in all (no step to divide by) and there is no median step to draw."""
    assert one["steps.median_step_ops"].empty
    assert list(one["comm"]["steps"]) == [0]


def test_several_processes_are_one_step_each(write_trace: Callable[..., Path]) -> None:
    res = report.run([write_trace(_two_processes(), name="two.json")], analyses=["headline", "steps"])
    st = res["steps"]
    assert st[["step_index", "tid", "wall_ns", "sync_stall_ns", "launches", "gpu_op_ns"]].to_dict("records") == [
        {"step_index": 1, "tid": 1, "wall_ns": 600_000, "sync_stall_ns": 300_000, "launches": 1, "gpu_op_ns": 100_000},
        {"step_index": 2, "tid": 2, "wall_ns": 600_000, "sync_stall_ns": 100_000, "launches": 3, "gpu_op_ns": 300_000}]
    v = list(res["headline.verdicts"]["verdict"])
    assert any(x.startswith("Host blocked 200.0 us per process in 1 blocking sync call (33.3% of the trace window)")
               for x in v), v
    assert any(x.startswith("Launch calls take 20.0 us per process (3.3% of the trace window): 2 kernel launches")
               for x in v), v


def test_the_terminal_names_processes_not_steps(write_trace: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    res = report.run([write_trace(_two_processes(), name="two.json")], rows=True)
    print_report(res, width=100)
    out = capsys.readouterr().out
    assert "== two · (whole trace) · 2 processes ==" in out
    assert "over the trace window (2 processes; no step matched --step-pattern)" in out
    assert "per step" not in out.split("phase tree")[0]


POWER = real_trace("nsys/sqlite/nsightful/power_iteration__baseline.sqlite")
POWER_GOLDEN = NSYS_GOLDEN / "nsightful__power_iteration__baseline" / "stats_cudaapisum.csv"
POWER_NVTX = NSYS_GOLDEN / "nsightful__power_iteration__baseline" / "stats_nvtxsum.csv"


@needs_traces(POWER, POWER_GOLDEN, POWER_NVTX)
def test_power_iteration_whole_trace_matches_nsys_stats(tmp_path: Path) -> None:
    """The real `nsys stats` (cuda_api_sum) of the whole report: the one process's sync and launch calls; its
    nvtx_sum: the `Step N to M` ranges inside the one `Loop` range, the first step candidate."""
    api = {r["Name"]: r for r in csv.DictReader(POWER_GOLDEN.open())}
    launches = sum(int(api[n]["Num Calls"]) for n in ("cudaLaunchKernel", "cuLaunchKernel"))
    launch_ns = sum(int(api[n]["Total Time (ns)"]) for n in ("cudaLaunchKernel", "cuLaunchKernel"))
    out = tmp_path / "p.parquet"
    convert(POWER, out)
    res = report.run([out], analyses=["steps", "headline"])
    st = res["steps"].to_dict("records")
    assert len(st) == 1 and st[0]["step_kind"] == "(whole trace)"
    assert st[0]["sync_calls"] == int(api["cudaStreamSynchronize"]["Num Calls"])
    assert st[0]["sync_stall_ns"] == int(api["cudaStreamSynchronize"]["Total Time (ns)"])
    assert (st[0]["launches"], st[0]["launch_host_ns"]) == (launches, launch_ns)
    nvtx = list(csv.DictReader(POWER_NVTX.open()))
    loops = sum(int(r["Instances"]) for r in nvtx if r["Range"] == "Loop")
    steps = sum(int(r["Instances"]) for r in nvtx if r["Range"].startswith("Step ") and " to " in r["Range"])
    assert loops == 1
    (note,) = [m for m in res["headline.notes"]["message"] if m.startswith("no step matched")]
    assert f"candidates: Step N to N ({steps}), " in note


MFU = real_trace("nsys/sqlite/nsys-ai/mfu_2gpu_before.sqlite")


@needs_traces(MFU)
def test_two_processes_in_one_nsys_report_match_the_raw_sqlite(tmp_path: Path) -> None:
    """Per process: the thread with the most runtime calls, and its cudaStreamSynchronize time, read from the
    export's own tables (globalTid = pid << 24 | tid)."""
    db = sqlite3.connect(MFU)
    rows = db.execute(
        "SELECT (r.globalTid >> 24) & 16777215 AS pid, r.globalTid & 16777215 AS tid, count(*) AS n, "
        "sum(CASE WHEN s.value LIKE 'cudaStreamSynchronize%' THEN r.end - r.start ELSE 0 END) AS sync_ns "
        "FROM CUPTI_ACTIVITY_KIND_RUNTIME r JOIN StringIds s ON s.id = r.nameId GROUP BY 1, 2").fetchall()
    db.close()
    top = {}
    for pid, tid, n, sync_ns in rows:
        if pid not in top or n > top[pid][1]:
            top[pid] = (tid, n, sync_ns)
    out = tmp_path / "m.parquet"
    convert(MFU, out)
    res = report.run([out], analyses=["steps", "comm"])
    st = res["steps"].sort_values("tid")
    assert list(st["step_kind"].unique()) == ["(whole trace)"]
    assert sorted((int(r["tid"]), int(r["sync_stall_ns"])) for r in st.to_dict("records")) == sorted(
        (tid, sync_ns) for tid, _, sync_ns in top.values())
    assert res["comm"]["comm_exposed_ns_per_step"].isna().all()  # no real step: exposed communication is in all


def test_the_view_and_the_sql_name_the_whole_trace_alike() -> None:
    con = duckdb.connect()
    text = (report.QUERY_DIR / "lib" / "step_instances.sql").read_text()
    (made,) = [st.query for st in con.extract_statements(text) if "MACRO step_instances_whole_name()" in st.query]
    con.execute(made)
    assert con.execute("SELECT step_instances_whole_name()").fetchone() == (sec.WHOLE_TRACE,)
    assert (sec.counted(sec.WHOLE_TRACE, 2), sec.per_unit(sec.WHOLE_TRACE, 2), sec.per_unit(sec.WHOLE_TRACE, 1)) == (
        "2 processes", " per process", "")
    assert (sec.counted("ProfilerStep#N", 1), sec.per_unit("ProfilerStep#N", 1)) == ("1 step", " per step")


def test_a_long_tree_keeps_its_large_rows_and_their_parents() -> None:
    """35 rows: a (0.5%) > b (0.5%) > c (20%); 30 small top-level rows (0.1% each, under the 1% floor); d (2% GPU
    only); (other)."""
    cols = ("phase", "depth", "excl_cpu_share", "excl_gpu_share")
    data = [("a", 0, 0.005, 0.0), ("b", 1, 0.005, 0.0), ("c", 2, 0.2, 0.0)]
    data += [(f"s{i}", 0, 0.001, 0.0) for i in range(30)]
    data += [("d", 0, 0.0, 0.02), ("(other)", 0, 0.3, None)]
    tree = Rows(cols, ("VARCHAR", "INTEGER", "DOUBLE", "DOUBLE"), tuple(data))
    kept, hidden = sec._pruned(tree)
    assert [r[0] for r in kept.data] == ["a", "b", "c", "d", "(other)"]
    assert hidden == 30
    short = Rows(cols, tree.types, tuple(data[:5]))
    assert sec._pruned(short) == (short, 0)
    # 40 top-level rows of 2.0%, 2.1%, ...: the 29 largest and (other) make the 30 rows, in tree order
    wide = [(f"r{i}", 0, 0.02 + i / 1000, 0.0) for i in range(40)] + [("(other)", 0, 0.1, 0.0)]
    kept, hidden = sec._pruned(Rows(cols, tree.types, tuple(wide)))
    assert [r[0] for r in kept.data] == [f"r{i}" for i in range(11, 40)] + ["(other)"] and hidden == 11
