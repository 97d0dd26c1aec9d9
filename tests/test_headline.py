"""headline.sql and the step rules it rests on, on constructed traces whose truth is worked out by hand.

Times in the traces are Kineto microseconds (integers), so every expected ns value is us * 1000.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest

from tests import planted
from tests.conftest import needs_traces, real_trace
from tracekit import report
from tracekit.view.records import to_json
from tracekit.view.terminal import print_report
from tracekit.view.warnings import warnings_of

PID, TID = 100, 1


def _x(cat: str, name: str, ts: int, dur: int, tid: int = TID, pid: int = PID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _range(name: str, ts: int, dur: int) -> dict[str, Any]:
    return _x("user_annotation", name, ts, dur)


def _launch(ts: int, corr: int, k_ts: int, k_dur: int, name: str = "k", api: str = "cudaLaunchKernel") -> list[dict[str, Any]]:
    """A 10 us launch call at ``ts`` and the kernel it launched (device 0, stream 7)."""
    return [_x("cuda_runtime", api, ts, 10, correlation=corr),
            _x("kernel", name, k_ts, k_dur, pid=0, tid=7, device=0, stream=7, correlation=corr)]


def _run(path: Path, **params: Any) -> dict[str, Any]:
    return report.run([path], analyses=["headline", "steps"], **params)


def _metric(res: dict[str, Any], kind: str, metric: str) -> dict[str, Any]:
    h = res["headline"]
    rows = h[(h["step_kind"] == kind) & (h["metric"] == metric)].to_dict("records")
    assert len(rows) == 1, (kind, metric, h[["step_kind", "metric"]].to_dict("records"))
    return rows[0]


# --------------------------------------------------------------------------- framework step names + async steps

def _framework_events() -> list[dict[str, Any]]:
    """An SGLang prefill whose GPU work outlasts its CPU range 17 times, then decode steps of two batch sizes.

    step[EXTEND bs=15 toks=15360]  0..28900 (CPU span 28.9 ms)
        launch 100 -> kernel A 200..300200; launch 200 -> kernel B 310200..493700
        GPU span 200..493700 = 493.5 ms; busy 300 + 183.5 = 483.5 ms; idle 10 ms; end-to-end 493.7 ms
    step[DECODE bs=32]  500000..501000: launch 500100 -> 500200..500700 (500 us)
    step[DECODE bs=32 forward_id=7]  502000..503000: launch 502100 -> 502300..502500 (200 us)
    step[DECODE bs=16]  504000..504500: launch 504100 -> 504100..504200 (100 us; starts with its launch)
    """
    return [
        _range("step[EXTEND bs=15 toks=15360]", 0, 28900),
        *_launch(100, 1, 200, 300000, "prefill_a"), *_launch(200, 2, 310200, 183500, "prefill_b"),
        _range("step[DECODE bs=32]", 500000, 1000), *_launch(500100, 3, 500200, 500, "decode"),
        _range("step[DECODE bs=32 forward_id=7]", 502000, 1000), *_launch(502100, 4, 502300, 200, "decode"),
        _range("step[DECODE bs=16]", 504000, 500), *_launch(504100, 5, 504100, 100, "decode"),
    ]


@pytest.fixture
def framework(write_trace: Callable[..., Path]) -> dict[str, Any]:
    return _run(write_trace(_framework_events(), name="sglang.json"))


def test_sglang_step_names_parsed_and_batch_sizes_kept_apart(framework: dict[str, Any]) -> None:
    st = framework["steps"]
    assert list(st["step_kind"]) == ["step[EXTEND bs=15]", "step[DECODE bs=32]", "step[DECODE bs=32]", "step[DECODE bs=16]"]
    assert list(st["step_mode"]) == ["EXTEND", "DECODE", "DECODE", "DECODE"]
    assert list(st["batch_size"]) == [15, 32, 32, 16]
    assert st["tokens"].iloc[0] == 15360 and st["tokens"].iloc[1:].isna().all()
    h = framework["headline"]
    assert set(h["step_kind"]) == {"step[EXTEND bs=15]", "step[DECODE bs=32]", "step[DECODE bs=16]"}
    assert _metric(framework, "step[DECODE bs=32]", "CPU span")["steps"] == 2


def test_async_prefill_spans_and_busy_share(framework: dict[str, Any]) -> None:
    pre = framework["steps"].iloc[0]
    assert pre["wall_ns"] == 28_900_000
    assert pre["gpu_span_ns"] == 493_500_000
    assert pre["end_to_end_ns"] == 493_700_000
    assert pre["gpu_busy_ns"] == 483_500_000
    # busy over the step as its user lives it (start to last GPU end), and over the GPU span only
    assert pre["gpu_busy_share_e2e"] == pytest.approx(483.5 / 493.7, abs=1e-12)  # was 483.5 / 28.9 = 16.7 once
    assert pre["gpu_busy_share_span"] == pytest.approx(483.5 / 493.5, abs=1e-12)
    assert (framework["steps"]["gpu_busy_share_e2e"] <= 1).all()
    k = "step[EXTEND bs=15]"
    assert _metric(framework, k, "CPU span")["mean"] == 28_900_000
    assert _metric(framework, k, "GPU span")["mean"] == 493_500_000
    assert _metric(framework, k, "end-to-end span")["mean"] == 493_700_000
    # end to end 0..493.7 ms: 0.2 ms before the trace's first GPU op + the 10 ms gap; busy 483.5 ms
    assert _metric(framework, k, "GPU idle, end to end")["mean"] == 10_200_000
    assert _metric(framework, k, "GPU on other work")["mean"] == 0
    assert _metric(framework, k, "GPU op time (kernels, copies, memsets)")["mean"] == 483_500_000
    # the 10 ms gap: kernel B's launch (200 us) had ended long before the gap began, and 10 ms is far past
    # the ordinary gap between queued kernels (kernel_gap_max_ns, 20 us) -> queued_dependency
    assert _metric(framework, k, "idle: queued_dependency")["mean"] == 10_000_000  # B launched at 200 us, long before the gap; no stream wait
    # the 0.2 ms before the trace's first op: kernel A was launched 100 us into it (> T = 50 us) -> host_busy
    assert _metric(framework, k, "idle: host_busy")["mean"] == 200_000
    v = framework["headline.verdicts"]
    a = v[(v["step_kind"] == k) & v["verdict"].str.startswith("Asynchronous")].iloc[0]
    assert (a["numerator_ns"], a["denominator_ns"]) == (493_700_000, 28_900_000)
    assert "464.80 ms per step after the CPU range closes" in a["verdict"]  # 493.7 - 28.9


def test_decode_kind_stats(framework: dict[str, Any]) -> None:
    k = "step[DECODE bs=32]"
    # GPU spans 500 and 200 us: mean 350, p50 350, p99 = 200 + 0.99 * 300 = 497
    g = _metric(framework, k, "GPU span")
    assert (g["mean"], g["p50"], g["p99"]) == (350_000, 350_000, pytest.approx(497_000))
    # a decode step whose GPU work ends inside its range: end-to-end = CPU span
    assert _metric(framework, k, "end-to-end span")["mean"] == 1_000_000
    assert _metric(framework, k, "launches")["mean"] == 1


def test_vllm_step_names(write_trace: Callable[..., Path]) -> None:
    ev = [
        _range("ProfilerStep#3", 0, 5000),  # vLLM's profiler.step() range encloses its annotation
        _range("execute_context_2(300)_generation_5(5)", 10, 2000), *_launch(100, 1, 200, 100),
        _range("execute_8_context_1(100)_generation_7(7)", 3000, 1000), *_launch(3100, 2, 3200, 100),
        _range("execute_new_0_cached_4", 6000, 1000), *_launch(6100, 3, 6200, 100),
        _range("execute_context_0(0)_generation_5(5)", 8000, 1000),
    ]
    st = _run(write_trace(ev, name="vllm.json"))["steps"]
    assert list(st["step_name"]) == ["execute_context_2(300)_generation_5(5)", "execute_8_context_1(100)_generation_7(7)",
                                     "execute_new_0_cached_4", "execute_context_0(0)_generation_5(5)"]
    assert list(st["step_kind"]) == ["execute_context_2_generation_5", "execute_context_1_generation_7",
                                     "execute_new_0_cached_4", "execute_context_0_generation_5"]
    assert list(st["step_mode"]) == ["MIXED", "MIXED", "GENERATION", "GENERATION"]
    assert list(st["batch_size"]) == [7, 8, 4, 5]
    assert list(st["context_reqs"]) == [2, 1, 0, 0]
    assert list(st["generation_reqs"]) == [5, 7, 4, 5]
    assert list(st["context_tokens"].fillna(-1)) == [300, 100, -1, 0]  # execute_new/cached carries no tokens
    assert list(st["tokens"].fillna(-1)) == [305, 107, -1, 5]


def test_vllm_step_names_as_real_traces_write_them(write_trace: Callable[..., Path]) -> None:
    """Issue 21 item 8: the parentheses of real vLLM-style ranges hold more than a token count.

    execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk55086sqsq32sqsk55086):
        batch 32 (the leading number), 0 context, 32 generation requests -> GENERATION; neither
        part is all digits -> context/generation tokens NULL, tokens NULL
    execute_context_1(888_788544)_generation_0(0):
        no leading number -> batch 1 + 0 = 1; 1 context request -> CONTEXT; (888_788544) is not one
        number (a plain cast would read 888788544) -> context tokens NULL; (0) -> generation tokens 0;
        tokens = NULL + 0 = NULL
    execute_context_2(300)_generation_5(5) beside them still reads 300 + 5 = 305 tokens.
    """
    a = "execute_32_context_0(sq0sk0sqsq0sqsk0)_generation_32(sq32sk55086sqsq32sqsk55086)"
    b = "execute_context_1(888_788544)_generation_0(0)"
    c = "execute_context_2(300)_generation_5(5)"
    ev = [_range(a, 0, 1000), *_launch(100, 1, 200, 100),
          _range(b, 2000, 1000), *_launch(2100, 2, 2200, 100),
          _range(c, 4000, 1000), *_launch(4100, 3, 4200, 100)]
    res = _run(write_trace(ev, name="vllm_real.json"))
    st = res["steps"]
    assert list(st["step_name"]) == [a, b, c]  # matched by the default pattern: no 'candidates' note
    assert list(st["step_kind"]) == ["execute_context_0_generation_32", "execute_context_1_generation_0",
                                     "execute_context_2_generation_5"]
    assert list(st["step_mode"]) == ["GENERATION", "CONTEXT", "MIXED"]
    assert list(st["batch_size"]) == [32, 1, 7]
    assert list(st["context_reqs"]) == [0, 1, 2]
    assert list(st["generation_reqs"]) == [32, 0, 5]
    assert list(st["context_tokens"].fillna(-1)) == [-1, -1, 300]
    assert list(st["generation_tokens"].fillna(-1)) == [-1, 0, 5]
    assert list(st["tokens"].fillna(-1)) == [-1, -1, 305]
    notes = res["headline.notes"]
    assert not notes["message"].str.contains("no step matched").any()


# --------------------------------------------------------------------------- nested phase tree

def _nested_events() -> list[dict[str, Any]]:
    """Two `step`s with nested phases (tracekit.phase style).

    step 0..10000: draft 100..5100 { lm_head 200..1200, sampler 1500..2500 }, verify 6000..9000
        GPU: lm_head launch 300 -> 1000 us; draft launch 3000 -> 500 us; verify launch 6100 -> 2000 us;
             step launch 9500 -> 100 us
    step 20000..30000: draft 20100..25100 { lm_head 20200..21200 }, verify 26000..29000; same GPU ops shifted
    CPU exclusive (step 1 / step 2): draft 3000 / 4000, lm_head 1000 / 1000, sampler 1000 / 0,
        verify 3000 / 3000, (other) 10000 - 5000 - 3000 = 2000 / 2000: each step sums to its 10000
    GPU exclusive per step: draft 500, lm_head 1000, verify 2000, (other) 100 (total 3600)
    """
    ev: list[dict[str, Any]] = []
    for base, corr, with_sampler in ((0, 10, True), (20000, 20, False)):
        ev += [_range("step", base, 10000), _range("draft", base + 100, 5000), _range("lm_head", base + 200, 1000)]
        if with_sampler:
            ev.append(_range("sampler", base + 1500, 1000))
        ev += [_range("verify", base + 6000, 3000),
               *_launch(base + 300, corr, base + 400, 1000, "lm_head_gemm"),
               *_launch(base + 3000, corr + 1, base + 3100, 500, "draft_k"),
               *_launch(base + 6100, corr + 2, base + 6200, 2000, "verify_k"),
               *_launch(base + 9500, corr + 3, base + 9600, 100, "step_k")]
    return ev


@pytest.fixture
def nested(write_trace: Callable[..., Path]) -> dict[str, Any]:
    return _run(write_trace(_nested_events(), name="nested.json"))


def test_phase_tree_exclusive_by_hand(nested: dict[str, Any]) -> None:
    t = nested["headline.phase_tree"]
    assert list(t["phase_path"]) == ["draft", "draft/lm_head", "draft/sampler", "verify", "(other)"]
    assert list(t["depth"]) == [0, 1, 1, 0, 0]
    assert list(t["phase"]) == ["draft", "lm_head", "sampler", "verify", "(other)"]
    assert list(t["row_order"]) == [1, 2, 3, 4, 5]
    us = 1000
    assert list(t["excl_cpu_ns_mean"]) == [3500 * us, 1000 * us, 500 * us, 3000 * us, 2000 * us]
    assert list(t["incl_cpu_ns_mean"]) == [5000 * us, 1000 * us, 500 * us, 3000 * us, 2000 * us]
    d = t.iloc[0]
    assert (d["excl_cpu_ns_p50"], d["excl_cpu_ns_p99"]) == (3500 * us, pytest.approx(3990 * us))  # 3000 + .99 * 1000
    assert list(t["excl_gpu_ns_mean"]) == [500 * us, 1000 * us, 0, 2000 * us, 100 * us]
    assert list(t["incl_gpu_ns_mean"]) == [1500 * us, 1000 * us, 0, 2000 * us, 100 * us]
    assert list(t["excl_cpu_share"]) == pytest.approx([0.35, 0.10, 0.05, 0.30, 0.20], abs=1e-12)
    assert list(t["excl_gpu_share"]) == pytest.approx([500 / 3600, 1000 / 3600, 0, 2000 / 3600, 100 / 3600], abs=1e-12)
    assert abs(t["excl_cpu_share"].sum() - 1) < 1e-9 and abs(t["excl_gpu_share"].sum() - 1) < 1e-9


def test_verdicts_name_their_numbers_and_say_when_syncs_are_unknown(nested: dict[str, Any]) -> None:
    v = nested["headline.verdicts"]
    assert list(v["rank"]) == list(range(1, len(v) + 1)) and 3 <= len(v) <= 6
    cpu = v[v["verdict"].str.startswith("Largest CPU phase")].iloc[0]
    assert "`draft`, 3.50 ms per step (35.0% of the CPU span" in cpu["verdict"]
    assert (cpu["numerator_ns"], cpu["denominator_ns"]) == (7_000_000, 20_000_000)
    sync = v[v["verdict"].str.startswith("Sync stalls unknown")].iloc[0]
    assert "nsys: --trace=cuda" in sync["verdict"] and sync["numerator_ns"] != sync["numerator_ns"]  # NaN: not a zero
    stall = _metric(nested, "step", "sync stall")
    assert stall["mean"] != stall["mean"] and "not zero" in stall["note"]
    launches = v[v["verdict"].str.startswith("Launch calls")].iloc[0]
    # 4 launches of 10 us per step: 40 us of a 10 ms CPU span
    assert "Launch calls take 40.0 us per step (0.4% of the CPU span): 4 kernel launches, mean 10.0 us" == launches["verdict"]
    assert (launches["numerator_ns"], launches["denominator_ns"]) == (80_000, 20_000_000)
    assert v["numerator"].notna().all() and v["denominator"].notna().all()


def test_planted_breakdown(tmp_path: Path) -> None:
    """tests/planted.py: the idle split of each step's end-to-end window worked out gap by gap (see its docstring).

    Step 1, end to end 0..20000 us (the range outlasts its last op, 13530), busy 8705 us, no other work,
    idle 11295 us:
      0..300 (300) host_busy: the window opens at 0, graph_kernel_a's graph launch starts at 200 (> T = 50)
      600..1400 (800) host_busy: long_gemm launched 700 us after the gap began
      3905..3950 (45) launch_bound: sample_kernel's launch at 3920 was in flight
      9450..9510 (60) sync_blocked: post_sample launched 20 us after the 5 ms sync returned
      9610..13230 (3620) host_busy: the host was in `candidate` (CPU-only topk)
      13530..20000 (6470 of the gap to 20130) host_busy: step2_kernel launched at 20100
    Step 2, 20000..21000: busy 200, idle 130 (the same gap, 20000..20130, host_busy) + 670 after the
    trace's last op (after_last_gpu_op). Means over the two steps are half the sums.
    """
    res = _run(planted.write(tmp_path / "planted.json.gz"))
    k = "ProfilerStep#N"
    assert _metric(res, k, "GPU idle, end to end")["mean"] == 12_095_000 / 2
    assert _metric(res, k, "idle: host_busy")["mean"] == (300 + 800 + 3620 + 6470 + 130) * 1000 / 2
    assert _metric(res, k, "idle: launch_bound")["mean"] == 45_000 / 2
    assert _metric(res, k, "idle: sync_blocked")["mean"] == 60_000 / 2
    assert _metric(res, k, "idle: after_last_gpu_op")["mean"] == 670_000 / 2
    assert _metric(res, k, "GPU busy / end to end")["mean"] == pytest.approx((8705 / 20000 + 200 / 1000) / 2)
    assert _metric(res, k, "sync stall")["mean"] == 5_000_000 / 2
    assert _metric(res, k, "graph nodes")["mean"] == 1.5
    # host buckets of step 1 (170 launch, 5000 sync, 30 cudaMemcpyAsync, 14800 the rest) and step 2 (20, 0, 0, 980)
    assert _metric(res, k, "host: launch calls")["mean"] == (170 + 20) * 1000 / 2
    assert _metric(res, k, "host: blocking syncs+copies")["mean"] == 5_000_000 / 2
    assert _metric(res, k, "host: other runtime calls")["mean"] == 30_000 / 2
    assert _metric(res, k, "host: outside runtime calls")["mean"] == (14800 + 980) * 1000 / 2
    v = res["headline.verdicts"]
    idle = v[v["rank"] == 1].iloc[0]
    # 12095 of 21000 us; most host-caused idle (6470 + 130 us) came while the host was outside any phase
    assert idle["verdict"].startswith("GPU idle 57.6% of the step end to end (6.05 ms of 10.50 ms per step): ")
    assert "host_busy (the host was busy elsewhere before launching)" in idle["verdict"]
    assert "the host was outside any annotated phase" in idle["verdict"]
    assert (idle["numerator_ns"], idle["denominator_ns"]) == (12_095_000, 21_000_000)
    sync = v[v["verdict"].str.startswith("Host blocked")].iloc[0]
    # 5000 of 21000 us of CPU span; the 5 ms sync (4460..9460): sample_kernel 4460..9400 and the DtoH copy 9400..9450 ran: 4990 us, 2 ops
    assert sync["verdict"] == ("Host blocked 2.50 ms per step in 0.5 blocking sync calls (23.8% of the CPU span), "
                               "mostly cudaStreamSynchronize in `sampler`; meanwhile the GPU ran 1 op (2.50 ms), "
                               "launched in `sampler`")
    assert sync["numerator_ns"] == 5_000_000


# --------------------------------------------------------------------------- notes

def test_no_step_lists_candidates(write_trace: Callable[..., Path]) -> None:
    ev = [_range("iteration_1", 0, 100), _range("iteration_2", 200, 100), _range("iteration_3", 400, 100),
          _range("setup", 600, 100), _range("inner", 610, 10)]
    res = _run(write_trace(ev, name="nostep.json"))
    n = res["headline.notes"]
    assert len(n) == 1 and n.iloc[0]["severity"] == "warn" and n.iloc[0]["source"] == "steps"
    assert "candidates: iteration_N (3), setup (1):" in n.iloc[0]["message"]  # `inner` is not top level
    # the trace is then one step over its window, 0..700 us (tests/test_whole_trace.py): a CPU-only run has its
    # CPU rows; (other) is the 300 us in no range (setup's 100 us hold inner's 10)
    h = res["headline"]
    assert list(zip(h["step_kind"], h["metric"], h["mean"])) == [
        ("(whole trace)", "CPU span", 700_000), ("(whole trace)", "end-to-end span", 700_000)]
    tree = dict(zip(res["headline.phase_tree"]["phase"], res["headline.phase_tree"]["excl_cpu_ns_mean"]))
    assert tree == {"iteration_1": 100_000, "iteration_2": 100_000, "iteration_3": 100_000, "setup": 90_000,
                    "inner": 10_000, "(other)": 300_000}
    assert any(w["flag"] == "steps" for w in warnings_of(res))


def test_truncated_trace_note_reaches_the_warnings(tmp_path: Path) -> None:
    doc = {"schemaVersion": 1, "traceEvents": [_range("step", 0, 100), *_launch(10, 1, 20, 50)]}
    text = json.dumps(doc)
    cut = text[: text.rindex("{")] + '{"ph": "X", "na'  # the last event is cut mid-way
    p = tmp_path / "cut.json"
    p.write_text(cut)
    res = report.run([p], analyses=["headline"])
    n = res["headline.notes"]
    conv = n[n["source"] == "converter"]
    assert len(conv) >= 1 and conv["message"].str.contains("truncated").any()
    doc_json = to_json(res)
    assert doc_json["warnings"][0]["flag"] == "converter" and "truncated" in doc_json["warnings"][0]["message"]


# --------------------------------------------------------------------------- real traces, computed independently

REAL_STEP_TRACES = ["hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
                    "tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"]


def _ns(v: Any) -> int:
    return int(round(Decimal(v) * 1000))  # exact: this trace's us carry 3 decimals on 16 digits, past a float's


def _independent_steps(path: Path) -> list[dict[str, int]]:
    """Per ProfilerStep, straight from the raw JSON: spans, union-busy, op time, launches.

    Every step of these traces is on one thread, so (as steps.sql documents) events of any thread
    belong to the step their start (a GPU op: its launch call's start) falls in.
    """
    with gzip.open(path, "rt", encoding="utf-8") as f:
        ev = [e for e in json.load(f, parse_float=Decimal)["traceEvents"] if e.get("ph") == "X"]
    steps = sorted((_ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"])) for e in ev
                   if e.get("cat") == "user_annotation" and str(e.get("name", "")).startswith("ProfilerStep#"))
    launch = {e["args"]["correlation"]: _ns(e["ts"]) for e in ev
              if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    # kernel launch calls only (not cudaMemcpyAsync/cudaMemsetAsync, which also carry correlations)
    kernel_launches = [_ns(e["ts"]) for e in ev if e.get("cat") in ("cuda_runtime", "cuda_driver")
                       and e.get("name") in ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx")]
    ops = [(launch[e["args"]["correlation"]], _ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"]), e["args"].get("device"))
           for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
           and e.get("args", {}).get("correlation") in launch]
    out = []
    for s, e in steps:
        mine = [o for o in ops if s <= o[0] < e]
        busy = 0
        for dev in {o[3] for o in mine}:
            cur_s = cur_e = None
            for _, a, b, _d in sorted(o for o in mine if o[3] == dev):
                if cur_e is None or a > cur_e:
                    busy += (cur_e - cur_s) if cur_e is not None else 0
                    cur_s, cur_e = a, b
                else:
                    cur_e = max(cur_e, b)
            busy += cur_e - cur_s
        e2e = max(e, max(o[2] for o in mine)) - s
        out.append({"CPU span": e - s, "GPU span": max(o[2] for o in mine) - min(o[1] for o in mine),
                    "end-to-end span": e2e, "GPU busy (union)": busy, "GPU busy / end to end": busy / e2e,
                    "GPU op time (kernels, copies, memsets)": sum(o[2] - o[1] for o in mine),
                    "launches": sum(1 for t in kernel_launches if s <= t < e)})
    return out


@pytest.mark.parametrize("rel", REAL_STEP_TRACES)
def test_real_trace_headline_matches_raw_json(rel: str) -> None:
    path = real_trace(f"kineto/{rel}")  # ../shared's, else the copy shipped in tests/data/real
    if not path.exists():
        pytest.skip(f"{path} is absent: neither ../shared/traces nor tests/data/real holds it")
    truth = _independent_steps(path)
    res = report.run([path], analyses=["headline"])
    h = res["headline"]
    assert set(h["step_kind"]) == {"ProfilerStep#N"} and h["steps"].iloc[0] == len(truth)
    for metric in truth[0]:
        want = sum(t[metric] for t in truth) / len(truth)
        assert _metric(res, "ProfilerStep#N", metric)["mean"] == pytest.approx(want, rel=1e-12), metric
    t = res["headline.phase_tree"]
    assert abs(t["excl_cpu_share"].sum() - 1) < 1e-9 and abs(t["excl_gpu_share"].sum() - 1) < 1e-9


def test_diff_step_wall_is_end_to_end(write_trace: Callable[..., Path]) -> None:
    """`step.wall_ms` (diff/compare gates) counts an async step's GPU tail: (493.7 + 1 + 1 + 0.5) / 4 ms."""
    from tracekit import compare

    p = write_trace(_framework_events(), name="sglang.json")
    d = compare.diff(p, p)["diff"].set_index("metric")
    assert d.loc["step.wall_ms", "a"] == pytest.approx(496.2 / 4, abs=1e-9)
    # summed busy over summed per-device end-to-end span: (483.5 + 0.5 + 0.2 + 0.1) / (493.7 + 1 + 1 + 0.5)
    assert d.loc["step.gpu_busy_share", "a"] == pytest.approx(484.3 / 496.2, abs=1e-12)


def test_terminal_report_prints_the_truncation_warning_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = {"schemaVersion": 1, "traceEvents": [_range("step", 0, 100), *_launch(10, 1, 20, 50)]}
    text = json.dumps(doc)
    p = tmp_path / "cut.json"
    p.write_text(text[: text.rindex("{")] + '{"ph": "X", "na')
    print_report(report.run([p], analyses=["headline", "summary"]))
    first = capsys.readouterr().out.lstrip().splitlines()[0]
    assert first.startswith("warn: converter:") and "truncated" in first  # tracekit.view.terminal's note line


@needs_traces(real_trace("kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"))
def test_h100_sync_names_the_pre_window_work() -> None:
    """Issue 21 item 4 on the real H100 trace: the 14.1 ms cudaDeviceSynchronize drained GPU ops that were
    launched before the trace window opened. Counted straight from the raw JSON: GPU ops overlapping the
    sync, and those whose correlation no runtime call carries."""
    path = real_trace("kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        ev = [e for e in json.load(f, parse_float=Decimal)["traceEvents"] if e.get("ph") == "X"]
    corr = {e["args"]["correlation"] for e in ev if e.get("cat") in ("cuda_runtime", "cuda_driver")
            and "correlation" in e.get("args", {})}
    sync = max((e for e in ev if e.get("name") == "cudaDeviceSynchronize"), key=lambda e: Decimal(e["dur"]))
    s0, s1 = _ns(sync["ts"]), _ns(sync["ts"]) + _ns(sync["dur"])
    during = [e for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")
              and _ns(e["ts"]) < s1 and _ns(e["ts"]) + _ns(e["dur"]) > s0]
    unlaunched = [e for e in during if e["args"].get("correlation") not in corr]
    res = report.run([path], analyses=["headline", "syncs"])
    c = res["syncs.calls"].iloc[0]
    assert (c["api"], c["dur_ns"]) == ("cudaDeviceSynchronize", s1 - s0)
    assert (c["gpu_ops_during"], c["unlaunched_ops_during"]) == (len(during), len(unlaunched))
    v = res["headline.verdicts"]
    sv = v[v["verdict"].str.startswith("Host blocked")].iloc[0]["verdict"]
    assert f"{len(unlaunched)} of them" in sv and "launched before the trace window opened" in sv
    assert "profiling/profile.py(34): run_torch_profiler" in sv  # the harness's own torch.cuda.synchronize()
    # the first verdict is the step end to end, not the GPU span; and not queued_dependency first
    first = v[v["rank"] == 1].iloc[0]["verdict"]
    assert first.startswith("GPU idle ") and "of the step end to end" in first
    assert ": 3.5% kernel_gap" in first  # 1,164 gaps of 0.7-2.8 us between queued kernels: 1.73 of 49.38 ms
