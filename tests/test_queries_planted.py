"""Ground truth: every planted number of tests/planted.py, asserted exactly, in Kineto and nsys form.

Expected values are worked out by hand from the layout table in planted.py (us * 1000 = ns),
not copied from query output. Each analysis is one SQL file run by tracekit.report.run; the
same queries run unchanged on both sources. Where nsys cannot see something (it records no
PyTorch cpu_ops) the test says what the nsys form gives instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted

from tracekit import report
from tracekit.ingest import convert

US = 1000  # ns per us
GPU_TOTAL = (300 + 2000 + 500 + 5 + 5450 + 50 + 100 + 300 + 200) * US  # every GPU op, no overlaps


@pytest.fixture(scope="module", params=["kineto", "nsys"])
def form(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory, form: str) -> Path:
    d = tmp_path_factory.mktemp("planted_" + form)
    src = planted.write(d / "planted.json.gz") if form == "kineto" else planted.write_nsys(d / "planted.sqlite")
    convert(src, d / "planted.parquet")
    return d / "planted.parquet"


@pytest.fixture(scope="module")
def res(pq: Path) -> dict[str, pd.DataFrame]:
    return report.run(pq)


def row(df: pd.DataFrame, **eq: object) -> dict:
    m = pd.Series(True, index=df.index)
    for k, v in eq.items():
        m &= df[k] == v
    assert m.sum() == 1, f"expected one row for {eq}, got {m.sum()}"
    return df[m].iloc[0].to_dict()


def test_kernels(res: dict[str, pd.DataFrame]) -> None:
    k = res["kernels"]
    assert len(k) == 11 and k["count"].sum() == 11
    top = k.iloc[0]
    assert top["name"] == "sample_kernel" and top["total_ns"] == 5450 * US
    assert top["gpu_op_ns_all"] == GPU_TOTAL
    assert top["share"] == pytest.approx(5450 / 8905, abs=1e-12)
    assert top["phase_path"] == "ProfilerStep#1/sampler"
    g = row(k, name="graph_kernel_a")
    assert g["graph_count"] == 1 and g["phase_path"] == "ProfilerStep#1/draft"


def test_phase_time(res: dict[str, pd.DataFrame]) -> None:
    p = res["phase_time"]
    t = row(p, phase_path="ProfilerStep#1/target")
    assert (t["range_instances"], t["cpu_ns"], t["gpu_op_ns"], t["gpu_busy_ns"], t["launches"], t["kernels"]) == \
        (1, 2700 * US, 2505 * US, 2505 * US, 3, 3)
    assert t["share"] == pytest.approx(2505 / 8905, abs=1e-12)
    s = row(p, phase_path="ProfilerStep#1/sampler")
    # sample_kernel 3950..9400 + memcpy 9400..9450 touch; post_sample 9510..9610
    assert (s["gpu_op_ns"], s["gpu_busy_ns"], s["launches"], s["gpu_ops"], s["kernels"]) == (5600 * US, 5600 * US, 3, 3, 2)
    d = row(p, phase_path="ProfilerStep#1/draft")
    assert (d["gpu_op_ns"], d["launches"], d["graph_launches"], d["gpu_ops"]) == (300 * US, 1, 1, 3)
    c = row(p, phase_path="ProfilerStep#1/candidate")
    assert (c["cpu_ns"], c["gpu_op_ns"], c["launches"]) == (3000 * US, 0, 0)
    s1 = row(p, phase_path="ProfilerStep#1")
    assert (s1["gpu_op_ns"], s1["gpu_op_ns_incl"]) == (0, (300 + 2505 + 5600 + 300) * US)
    assert p["share"].sum() == pytest.approx(1.0)


def test_steps(res: dict[str, pd.DataFrame]) -> None:
    s = res["steps"]
    assert list(s["step_name"]) == ["ProfilerStep#1", "ProfilerStep#2"]
    a = s.iloc[0].to_dict()
    assert a["wall_ns"] == 20000 * US
    assert a["cpu_span_ns"] == (13220 - 200) * US  # cudaGraphLaunch start .. verify launch end
    assert a["gpu_span_ns"] == (13530 - 300) * US
    assert a["gpu_busy_ns"] == a["gpu_op_ns"] == 8705 * US
    assert (a["gpu_ops"], a["launches"], a["graph_launches"], a["graph_launch_host_ns"], a["graph_nodes"]) == \
        (10, 6, 1, 50 * US, 3)  # kernel launches only: the cudaMemcpyAsync at 4420 enqueues a copy
    assert (a["sync_calls"], a["sync_stall_ns"]) == (1, 5000 * US)
    # end to end 0..20000 (the step outlasts its last op, 13530): busy 8705; idle = 300 before the first op +
    # 4525 between ops + 6470 after the last (to 20000); no other work
    assert (a["e2e_dev_ns"], a["gpu_busy_ns"], a["gpu_other_ns"], a["gpu_idle_ns"]) == \
        (20000 * US, 8705 * US, 0, 11295 * US)
    assert a["gpu_busy_share_e2e"] == pytest.approx(8705 / 20000) and a["gpu_busy_share_span"] == pytest.approx(8705 / 13230)
    # host on tid 1: graph launch 50 + six kernel launches of 20; the 5000 us sync; the 30 us cudaMemcpyAsync; the rest
    assert (a["host_launch_ns"], a["host_blocking_ns"], a["host_runtime_other_ns"], a["host_outside_runtime_ns"]) == \
        (170 * US, 5000 * US, 30 * US, 14800 * US)
    b = s.iloc[1].to_dict()
    assert (b["wall_ns"], b["cpu_span_ns"], b["gpu_span_ns"], b["gpu_busy_ns"], b["launches"]) == \
        (1000 * US, 20 * US, 200 * US, 200 * US, 1)
    # step 2 (20000..21000): op 20130..20330; idle 130 (gap from 13530, clipped) + 670 after the last op of the trace
    assert (b["e2e_dev_ns"], b["gpu_other_ns"], b["gpu_idle_ns"], b["host_launch_ns"], b["host_outside_runtime_ns"]) == \
        (1000 * US, 0, 800 * US, 20 * US, 980 * US)
    st = res["steps.stats"]
    w = row(st, metric="wall_ns")
    assert (w["steps"], w["mean"], w["p50"], w["min"], w["max"]) == (2, 10500 * US, 10500 * US, 1000 * US, 20000 * US)
    ph = res["steps.phases"]
    sp = row(ph, step_index=1, phase="sampler")
    assert (sp["cpu_ns"], sp["gpu_op_ns"]) == (5990 * US, 5600 * US)
    assert sp["cpu_share"] == pytest.approx(5990 / 20000)
    cand = row(ph, step_index=1, phase="candidate")
    assert (cand["cpu_ns"], cand["gpu_op_ns"]) == (3000 * US, 0)
    ps = row(res["steps.phase_stats"], phase="sampler")
    assert (ps["steps"], ps["steps_with_phase"], ps["mean_cpu_ns"]) == (2, 1, 5990 * US / 2)
    assert ps["cpu_share"] == pytest.approx(5990 / 21000)
    med = res["steps.median_step_ops"]
    assert set(med["step_name"]) == {"ProfilerStep#2"}  # quantile_disc(0.5) of two steps = the shorter


def test_launch(res: dict[str, pd.DataFrame]) -> None:
    ln = res["launch"]
    t = row(ln, phase_path="ProfilerStep#1/target", launch_name="cudaLaunchKernel")
    # queueing: long_gemm 1400-1300, lm_head_gemm 3400-1360 (behind long_gemm), small 3900-1500
    assert (t["launches"], t["host_ns"], t["queue_p50_ns"], t["queue_max_ns"]) == (3, 60 * US, 2040 * US, 2400 * US)
    assert (t["short_ops"], t["short_ops_ns"]) == (1, 5 * US)  # small_kernel 5 us < its 20 us launch
    g = row(ln, launch_name="cudaGraphLaunch")
    assert (g["launches"], g["gpu_ops"], g["host_ns"], g["queue_max_ns"]) == (1, 3, 50 * US, 100 * US)
    assert pd.isna(g["short_share"])  # graph nodes are not compared with the launch cost
    m = row(ln, launch_name="cudaMemcpyAsync")
    assert m["queue_max_ns"] == (9400 - 4420) * US


def test_syncs(res: dict[str, pd.DataFrame], form: str) -> None:
    s = res["syncs"]
    assert len(s) == 1
    r = s.iloc[0].to_dict()
    if form == "kineto":
        assert (r["phase_path"], r["sync_class"], r["api"], r["op_chain"]) == \
            ("ProfilerStep#1/sampler", "implicit", "cudaStreamSynchronize", "aten::item > aten::_local_scalar_dense")
        assert (r["calls"], r["blocked_ns"], r["dtoh_copies"]) == (1, 5000 * US, 1)
    else:  # no aten::item in nsys: the same stall, seen as an explicit sync
        assert (r["phase_path"], r["sync_class"], r["api"], r["op_chain"]) == \
            ("ProfilerStep#1/sampler", "explicit", "cudaStreamSynchronize", "")
        assert (r["calls"], r["blocked_ns"], r["dtoh_copies"]) == (1, 5000 * US, 0)
    c = res["syncs.calls"].iloc[0]
    assert (c["ts_ns"], c["dur_ns"]) == (4460 * US, 5000 * US)
    # during 4460..9460: sample_kernel 4460..9400 (4940) + memcpy 9400..9450 (50)
    assert r["gpu_op_ns_during"] == 4990 * US and r["top_gpu_op_during"] == "sample_kernel"
    assert r["share"] == 1.0


def test_gpu_idle(res: dict[str, pd.DataFrame]) -> None:
    g = res["gpu_idle"].iloc[0].to_dict()
    assert (g["window_ns"], g["busy_ns"], g["idle_ns"]) == (21000 * US, GPU_TOTAL, 21000 * US - GPU_TOTAL)
    assert g["idle_share"] == pytest.approx((21000 - 8905) / 21000, abs=1e-12)
    assert g["gpu_window_ns"] == (20330 - 300) * US
    # gaps: 600..1400 host_busy (draft), 3905..3950 launch_bound, 9450..9510 sync_blocked,
    # 9610..13230 host_busy (candidate), 13530..20130 host_busy; edges 0..300 and 20330..21000
    assert (g["gaps"], g["host_busy_ns"], g["launch_bound_ns"], g["sync_blocked_ns"], g["other_ns"], g["edge_ns"]) == \
        (5, (800 + 3620 + 6600) * US, 45 * US, 60 * US, 0, (300 + 670) * US)
    bp = res["gpu_idle.by_phase"]
    c = row(bp, host_phase="ProfilerStep#1/candidate")
    assert (c["cause"], c["idle_ns"]) == ("host_busy", 3620 * US)
    bs = res["gpu_idle.by_step"]
    # step 1 (0..20000): host_busy 800 + 3620 + (20000 - 13530), edge 0..300, sync 60, launch 45
    assert row(bs, step_index=1, cause="host_busy")["idle_ns"] == (800 + 3620 + 6470) * US
    assert row(bs, step_index=1, cause="before_first_gpu_op")["idle_ns"] == 300 * US
    s2 = row(bs, step_index=2, cause="host_busy")  # 20000..20130 of the 13530..20130 gap
    assert (s2["idle_ns"], s2["wall_ns"], s2["share_of_step"]) == (130 * US, 1000 * US, 0.13)
    iv = res["gpu_idle.intervals"]
    assert iv.iloc[0]["gap_ns"] == 6600 * US and iv.iloc[0]["next_op"] == "step2_kernel"


def test_lm_head_gemm_shape(res: dict[str, pd.DataFrame], pq: Path, form: str) -> None:
    lm = res["lm_head"]
    if form == "nsys":  # no cpu_op shapes in nsys: method 2 says so; method 3 finds the kernel by name
        assert row(lm, method="2_gemm_shape")["status"] == "unavailable"
        r = report.run(pq, analyses=["lm_head"], lm_head_kernel_regex="lm_head_.*")["lm_head"]
        u = r[r["used"]].iloc[0].to_dict()
        assert (u["method"], u["scope"], u["lm_head_gpu_ns"], u["scope_gpu_ns"]) == \
            ("3_kernel_regex", "ProfilerStep#1/target", 500 * US, 2505 * US)
        return
    used = lm[lm["used"]]
    assert len(used) == 1
    u = used.iloc[0].to_dict()
    assert (u["method"], u["scope"], u["lm_head_ops"], u["lm_head_gpu_ns"], u["scope_gpu_ns"]) == \
        ("2_gemm_shape", "ProfilerStep#1/target", 1, 500 * US, 2505 * US)
    assert (u["vocab"], u["vocab_source"]) == (32000, "inferred: largest GEMM output dim")
    assert u["share"] == pytest.approx(500 / 2505)


def test_lm_head_range_and_abstain(pq: Path, form: str) -> None:
    r = report.run(pq, analyses=["lm_head"], lm_head_regex="draft", vocab=32000)
    u = r["lm_head"][r["lm_head"]["used"]].iloc[0].to_dict()
    assert (u["method"], u["scope"], u["lm_head_gpu_ns"], u["scope_gpu_ns"]) == \
        ("1_range", "ProfilerStep#1", 300 * US, 8705 * US)
    a = report.run(pq, analyses=["lm_head"], lm_head_regex="nomatch", vocab=12345)["lm_head"]
    assert not a["used"].any()
    assert list(a["status"]) == ["abstain", "abstain" if form == "kineto" else "unavailable", "unavailable"]
    assert "CUDA graph" in a.iloc[0]["note"] and pd.isna(a.iloc[0]["lm_head_gpu_ns"])


def test_trust(res: dict[str, pd.DataFrame]) -> None:
    t = res["trust"]
    g = row(t, flag="graph_replayed_share")
    assert g["severity"] == "warn" and g["value"] == pytest.approx(300 / 8905)
    assert row(t, flag="kernels_without_launch")["value"] == 0
    assert row(t, flag="clock_resolution")["value"] == 1.0  # integer-us planted trace
    assert row(t, flag="no_gpu_sync_rows")["severity"] == "info"


def test_missing_sync_flag(tmp_path: Path, form: str) -> None:
    if form == "kineto":
        src = planted.write(tmp_path / "nosync.json.gz", with_sync=False)
    else:
        src = planted.write_nsys(tmp_path / "nosync.sqlite", with_sync=False)
    convert(src, tmp_path / "nosync.parquet")
    r = report.run(tmp_path / "nosync.parquet", analyses=["trust", "syncs", "steps", "gpu_idle", "summary"])
    m = row(r["trust"], flag="missing_sync_events")
    fix = "enable_cuda_sync_events" if form == "kineto" else "--trace=cuda"
    assert m["severity"] == "warn" and pd.isna(m["value"]) and fix in m["message"]
    assert len(r["syncs"]) == 0
    # not captured is not zero: NULL wherever a number needs sync events
    assert r["steps"]["sync_stall_ns"].isna().all() and r["steps"]["sync_calls"].isna().all()
    g = r["gpu_idle"].iloc[0]
    assert pd.isna(g["sync_blocked_ns"]) and g["launch_bound_ns"] == (45 + 60) * US  # 9450..9510 now launch bound
    assert pd.isna(r["summary"].iloc[0]["sync_ns"])


def test_no_runtime_rows(tmp_path: Path) -> None:
    """A GPU-only capture: launches are unknown (NULL) and trust says why."""
    import json

    ev = [e for e in planted.events() if e["cat"] != "cuda_runtime"]
    (tmp_path / "gpu_only.json").write_text(json.dumps({"traceEvents": ev}))
    convert(tmp_path / "gpu_only.json", tmp_path / "gpu_only.parquet")
    r = report.run(tmp_path / "gpu_only.parquet", analyses=["trust", "steps", "gpu_idle", "summary"])
    assert row(r["trust"], flag="no_runtime_rows")["severity"] == "warn"
    assert row(r["trust"], flag="kernels_without_launch")["value"] == 1.0
    assert pd.isna(r["summary"].iloc[0]["launches"])
    g = r["gpu_idle"].iloc[0]
    assert g["busy_ns"] == GPU_TOTAL and g["other_ns"] == (800 + 45 + 60 + 3620 + 6600) * US


def test_no_gpu_ops(tmp_path: Path) -> None:
    """A CPU-only capture: every GPU measure of steps.sql is NULL (not captured), never a confident 0."""
    import json

    ev = [e for e in planted.events() if e["cat"] in ("user_annotation", "cpu_op")]
    (tmp_path / "cpu_only.json").write_text(json.dumps({"traceEvents": ev}))
    convert(tmp_path / "cpu_only.json", tmp_path / "cpu_only.parquet")
    r = report.run(tmp_path / "cpu_only.parquet", analyses=["trust", "steps"])
    # no GPU op, no runtime call, no sync record: said once, the three specific flags are info
    assert row(r["trust"], flag="no_gpu_activity")["severity"] == "warn"
    assert {row(r["trust"], flag=f)["severity"] for f in ("no_gpu_ops", "no_runtime_rows", "missing_sync_events")} == {"info"}
    s = r["steps"]
    assert list(s["wall_ns"]) == [20000 * US, 1000 * US]  # the CPU side is still measured (steps in time order)
    for c in ("gpu_op_ns", "gpu_ops", "graph_nodes", "graph_node_ns"):
        assert s[c].isna().all(), c
    st = r["steps.stats"]
    # UNPIVOT drops NULL values: a measure nobody captured has no stats row at all
    assert "wall_ns" in set(st["metric"]) and not {"gpu_op_ns", "gpu_ops", "graph_nodes", "gpu_span_ns"} & set(st["metric"])
    ph = r["steps.phases"]
    assert len(ph) and ph[["gpu_op_ns", "gpu_ops", "launches"]].isna().all().all()
    ps = row(r["steps.phase_stats"], phase="sampler")
    assert ps["mean_cpu_ns"] == 5990 * US / 2 and pd.isna(ps["mean_gpu_op_ns"]) and pd.isna(ps["gpu_share"])
