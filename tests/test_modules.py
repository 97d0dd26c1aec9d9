"""Module phases (issue 22 items 1 and 4): where no user range below the step covers a launch, the phase is
the module hierarchy around it (queries/lib/modules.sql). Constructed Kineto traces whose truth is worked out by
hand below; Kineto microseconds, every ns value is us * 1000. CPU thread tid 1 (pid 100), GPU device 0 stream 7.

Trace MOD (with_modules=True): step ProfilerStep#1 0..1000; `nn.Module: <Class>_<k>` python rows:

    TinyModel_0                               10..900
      TinyDecoderLayer_0                      20..400
        TinyAttention_0                       30..150   launch 40..50 -> k1 (100 us)
          Linear_0                            60..120   launch 70..80 -> k2 (40)
        TinyMLP_0                            200..350   launch 310..320 -> k4 (10)
          Linear_1                           210..300   launch 220..230 -> k3 (60)
      TinyDecoderLayer_1                     400..700   (starts as layer 0 ends: back to back)
        TinyAttention_1                      400..520   (starts with layer 1: inner)   launch 410..420 -> k5 (100)
          Linear_2                           450..500   launch 460..470 -> k6 (40)
        TinyMLP_1                            550..690
          range my_range (user_annotation)   560..620   launch 570..580 -> k7 (30): the user range wins
          Linear_3                           630..680   launch 640..650 -> k8 (60)
      TinyLMHead_0                           720..850
        Linear_4                             730..840   launch 740..750 -> k9 (200)
    launch 950..960 -> k10 (20): in the step, in no module: (other)

GPU by phase (relative to the step; instance indices dropped, the two layers add up):
  TinyModel/TinyDecoderLayer/TinyAttention          k1 + k5 = 200 us
  TinyModel/TinyDecoderLayer/TinyAttention/Linear   k2 + k6 = 80
  TinyModel/TinyDecoderLayer/TinyMLP                k4 = 10
  TinyModel/TinyDecoderLayer/TinyMLP/Linear         k3 + k8 = 120
  TinyModel/TinyLMHead/Linear                       k9 = 200
  my_range                                          k7 = 30
  (other)                                           k10 = 20          total 660
CPU, exclusive (a module's time less its child modules' and the user ranges directly inside it):
  TinyModel 10..20, 700..720, 850..900 = 80; TinyDecoderLayer (20..30, 150..200, 350..400) + (520..550,
  690..700) = 150; TinyAttention (120 - 60) + (120 - 50) = 130; its Linear 60 + 50 = 110; TinyMLP (150 - 90) +
  (140 - 60 - 50) = 90; its Linear 90 + 50 = 140; TinyLMHead 130 - 110 = 20; its Linear 110; my_range 60;
  (other) 0..10 + 900..1000 = 110.  Sum 1000.
  Inclusive: TinyModel 890 - 60 (my_range) = 830; TinyDecoderLayer 380 + 300 - 60 = 620; TinyMLP 150 + 140 - 60 = 230.
lm_head: TinyLMHead is named like an LM head: method 1_range finds k9 (200 us) in scope ProfilerStep#1/TinyModel,
  whose GPU time is everything but my_range's k7 and the step's own k10: 660 - 30 - 20 = 610 us.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from tests.conftest import load_json, needs_traces, real_trace
from tracekit import report
from tracekit.rows import missing
from tracekit.view.terminal import print_report

PID, TID, US = 100, 1, 1000


def _x(cat: str, name: str, ts: int, dur: int, pid: int = PID, tid: int = TID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


class _Py:
    """python_function rows with Kineto's Python id / parent id args (ids given in creation order)."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, name: str, ts: int, dur: int, parent: int | None) -> tuple[int, dict[str, Any]]:
        self.n += 1
        return self.n, _x("python_function", name, ts, dur, **{"Python id": self.n, "Python parent id": parent,
                                                               "Python thread": 0})


def _launch(ts: int, corr: int, kernel: str, gpu_ts: int, dur: int) -> list[dict[str, Any]]:
    return [_x("cuda_runtime", "cudaLaunchKernel", ts, 10, correlation=corr),
            _x("kernel", kernel, gpu_ts, dur, pid=0, tid=7, device=0, stream=7, correlation=corr)]


def _module_events(lm_head_class: str = "TinyLMHead") -> list[dict[str, Any]]:
    py = _Py()
    ev = [_x("user_annotation", "ProfilerStep#1", 0, 1000)]
    m, e = py("nn.Module: TinyModel_0", 10, 890, None); ev.append(e)
    l0, e = py("nn.Module: TinyDecoderLayer_0", 20, 380, m); ev.append(e)
    a0, e = py("nn.Module: TinyAttention_0", 30, 120, l0); ev.append(e)
    _, e = py("nn.Module: Linear_0", 60, 60, a0); ev.append(e)
    p0, e = py("nn.Module: TinyMLP_0", 200, 150, l0); ev.append(e)
    _, e = py("nn.Module: Linear_1", 210, 90, p0); ev.append(e)
    l1, e = py("nn.Module: TinyDecoderLayer_1", 400, 300, m); ev.append(e)
    a1, e = py("nn.Module: TinyAttention_1", 400, 120, l1); ev.append(e)
    _, e = py("nn.Module: Linear_2", 450, 50, a1); ev.append(e)
    p1, e = py("nn.Module: TinyMLP_1", 550, 140, l1); ev.append(e)
    _, e = py("nn.Module: Linear_3", 630, 50, p1); ev.append(e)
    h, e = py(f"nn.Module: {lm_head_class}_0", 720, 130, m); ev.append(e)
    _, e = py("nn.Module: Linear_4", 730, 110, h); ev.append(e)
    ev.append(_x("user_annotation", "my_range", 560, 60))
    for ts, corr, dur in ((40, 1, 100), (70, 2, 40), (220, 3, 60), (310, 4, 10), (410, 5, 100), (460, 6, 40),
                          (570, 7, 30), (640, 8, 60), (740, 9, 200), (950, 10, 20)):
        ev += _launch(ts, corr, f"k{corr}", 2000 + 300 * corr, dur)
    return ev


def _tree(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["phase_path"]: r for r in res["headline.phase_tree"].to_dict("records")}


@pytest.fixture
def mod(write_trace: Callable[..., Path]) -> dict[str, Any]:
    return report.run([write_trace(_module_events(), name="mod.json")],
                      analyses=["headline", "steps", "gpu_idle", "syncs", "phase_time", "lm_head"])


def test_phase_tree_by_module_class(mod: dict[str, Any]) -> None:
    t = _tree(mod)
    gpu = {p: r["excl_gpu_ns_mean"] for p, r in t.items()}
    cpu = {p: r["excl_cpu_ns_mean"] for p, r in t.items()}
    want_gpu = {"TinyModel": 0, "TinyModel/TinyDecoderLayer": 0, "TinyModel/TinyDecoderLayer/TinyAttention": 200,
                "TinyModel/TinyDecoderLayer/TinyAttention/Linear": 80, "TinyModel/TinyDecoderLayer/TinyMLP": 10,
                "TinyModel/TinyDecoderLayer/TinyMLP/Linear": 120, "TinyModel/TinyLMHead": 0,
                "TinyModel/TinyLMHead/Linear": 200, "my_range": 30, "(other)": 20}
    want_cpu = {"TinyModel": 80, "TinyModel/TinyDecoderLayer": 150, "TinyModel/TinyDecoderLayer/TinyAttention": 130,
                "TinyModel/TinyDecoderLayer/TinyAttention/Linear": 110, "TinyModel/TinyDecoderLayer/TinyMLP": 90,
                "TinyModel/TinyDecoderLayer/TinyMLP/Linear": 140, "TinyModel/TinyLMHead": 20,
                "TinyModel/TinyLMHead/Linear": 110, "my_range": 60, "(other)": 110}
    assert gpu == {p: v * US for p, v in want_gpu.items()}
    assert cpu == {p: v * US for p, v in want_cpu.items()}
    assert t["TinyModel"]["incl_cpu_ns_mean"] == 830 * US
    assert t["TinyModel/TinyDecoderLayer"]["incl_cpu_ns_mean"] == 620 * US
    assert t["TinyModel/TinyDecoderLayer/TinyMLP"]["incl_cpu_ns_mean"] == 230 * US
    assert t["TinyModel"]["incl_gpu_ns_mean"] == 610 * US
    inst = {p: r["instances_mean"] for p, r in t.items() if p != "(other)"}
    assert inst == {"TinyModel": 1, "TinyModel/TinyDecoderLayer": 2, "TinyModel/TinyDecoderLayer/TinyAttention": 2,
                    "TinyModel/TinyDecoderLayer/TinyAttention/Linear": 2, "TinyModel/TinyDecoderLayer/TinyMLP": 2,
                    "TinyModel/TinyDecoderLayer/TinyMLP/Linear": 2, "TinyModel/TinyLMHead": 1,
                    "TinyModel/TinyLMHead/Linear": 1, "my_range": 1}
    src = {p: (None if missing(r["phase_source"]) else r["phase_source"]) for p, r in t.items()}
    assert src == {**{p: "module" for p in want_gpu if p.startswith("TinyModel")}, "my_range": "range", "(other)": None}
    assert sum(r["excl_cpu_share"] for r in t.values()) == pytest.approx(1.0, abs=1e-12)
    assert sum(r["excl_gpu_share"] for r in t.values()) == pytest.approx(1.0, abs=1e-12)
    # depth-first order: each row's parent comes before it
    order = list(mod["headline.phase_tree"]["phase_path"])
    for i, p in enumerate(order):
        if "/" in p:
            assert order.index(p.rsplit("/", 1)[0]) < i, order


def test_steps_phases_and_phase_time_by_module(mod: dict[str, Any]) -> None:
    ph = {r["phase"]: r for r in mod["steps.phases"].to_dict("records")}
    assert ph["TinyModel/TinyDecoderLayer"]["range_instances"] == 2
    assert ph["TinyModel/TinyDecoderLayer"]["cpu_ns"] == 620 * US
    assert ph["TinyModel/TinyDecoderLayer/TinyAttention"]["gpu_op_ns"] == 200 * US
    assert ph["TinyModel/TinyDecoderLayer/TinyAttention"]["launches"] == 2
    assert ph["my_range"]["phase_source"] == "range" and ph["my_range"]["gpu_op_ns"] == 30 * US
    assert ph["TinyModel/TinyLMHead/Linear"]["phase_source"] == "module"
    assert ph["(other)"]["gpu_op_ns"] == 20 * US and missing(ph["(other)"]["phase_source"])
    pt = {r["phase_path"]: r for r in mod["phase_time"].to_dict("records")}
    r = pt["ProfilerStep#1/TinyModel/TinyDecoderLayer/TinyMLP/Linear"]
    assert (r["range_instances"], r["cpu_ns"], r["gpu_op_ns"], r["launches"], r["phase_source"]) == (
        2, 140 * US, 120 * US, 2, "module")
    assert pt["ProfilerStep#1/TinyModel"]["gpu_op_ns_incl"] == 610 * US
    assert pt["ProfilerStep#1/TinyModel"]["cpu_ns"] == 830 * US
    assert (pt["ProfilerStep#1/my_range"]["gpu_op_ns"], pt["ProfilerStep#1/my_range"]["phase_source"]) == (30 * US, "range")
    assert (pt["ProfilerStep#1"]["gpu_op_ns"], pt["ProfilerStep#1"]["phase_source"]) == (20 * US, "range")
    assert sum(pt[p]["gpu_op_ns"] for p in pt) == 660 * US


def test_lm_head_module_answers_by_range(mod: dict[str, Any]) -> None:
    lm = mod["lm_head"]
    ok = lm[lm["status"] == "ok"].to_dict("records")
    assert len(ok) == 1
    r = ok[0]
    assert (r["method"], r["used"], r["scope"], r["lm_head_ops"], r["lm_head_gpu_ns"], r["scope_gpu_ns"]) == (
        "1_range", True, "ProfilerStep#1/TinyModel", 1, 200 * US, 610 * US)
    assert "`TinyLMHead`" in r["note"]


@pytest.mark.parametrize("cls", ["GPT2LMHeadModel", "TinyBlock"])
def test_a_model_or_block_is_not_an_lm_head(write_trace: Callable[..., Path], cls: str) -> None:
    """`*LMHeadModel` is the whole model, not its head; neither it nor an ordinary module answers lm_head."""
    res = report.run([write_trace(_module_events(cls), name="nohead.json")], analyses=["lm_head"])
    assert not (res["lm_head"]["status"] == "ok").any()
    assert _tree(report.run([write_trace(_module_events(cls), name="nohead2.json")], analyses=["headline"]))[
        f"TinyModel/{cls}/Linear"]["excl_gpu_ns_mean"] == 200 * US


def test_terminal_names_module_rows_with_their_instances(mod: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    print_report(mod, width=80)
    out = capsys.readouterr().out
    assert "  TinyDecoderLayer ×2 " in out
    assert "    TinyAttention ×2 " in out
    assert "\nmy_range " in out  # a range keeps its name, count or not
    assert "TinyLMHead ×" not in out and "  TinyLMHead " in out


def test_without_python_rows_nothing_changes(write_trace: Callable[..., Path]) -> None:
    """The same trace without its python rows: every launch outside my_range is the step's own ('(other)')."""
    ev = [e for e in _module_events() if e["cat"] != "python_function"]
    t = _tree(report.run([write_trace(ev, name="plain.json")], analyses=["headline"]))
    assert {p: r["excl_gpu_ns_mean"] for p, r in t.items()} == {"my_range": 30 * US, "(other)": 630 * US}
    assert t["my_range"]["phase_source"] == "range" and t["my_range"]["instances_mean"] == 1


# --------------------------------------------------------------------------- frames, without module rows

MODEL = "/srv/app/tiny_model.py(50): forward"
LAYER = "/srv/app/tiny_model.py(30): forward"
ATTN = "/srv/app/tiny_model.py(10): forward"
LIN = "/usr/lib/python3/site-packages/torch/nn/modules/linear.py(125): forward"
CALL = "/usr/lib/python3/site-packages/torch/nn/modules/module.py(1736): _call_impl"


def _frame_events() -> list[dict[str, Any]]:
    """with_stack=True only: forward frames nest like the modules; _call_impl frames around them are not forwards.

    step 0..1000
      MODEL 10..900
        CALL 19..401 > LAYER 20..400 > ATTN 30..150 (launch 40 -> k1 100 us) > LIN 60..120 (launch 70 -> k2 40)
        CALL 401..701 > LAYER 402..700 > ATTN 402..520 (launch 410 -> k5 100)
                                       launch 600 -> k7 30 (in LAYER)
      launch 950 -> k10 20 (in no frame)
    By hand: tiny_model.forward:50/tiny_model.forward:30/tiny_model.forward:10 = 200 us, 2 instances;
    .../linear.forward:125 = 40, 1; tiny_model.forward:50/tiny_model.forward:30 = 30; (other) = 20.
    CPU exclusive of tiny_model.forward:50: 10..20, 400..402, 700..900 = 212 us (the _call_impl frames are no
    phase: their time stays in the enclosing forward).
    """
    py = _Py()
    ev = [_x("user_annotation", "ProfilerStep#1", 0, 1000)]
    m, e = py(MODEL, 10, 890, None); ev.append(e)
    c0, e = py(CALL, 19, 382, m); ev.append(e)
    l0, e = py(LAYER, 20, 380, c0); ev.append(e)
    a0, e = py(ATTN, 30, 120, l0); ev.append(e)
    _, e = py(LIN, 60, 60, a0); ev.append(e)
    c1, e = py(CALL, 401, 300, m); ev.append(e)
    l1, e = py(LAYER, 402, 298, c1); ev.append(e)
    _, e = py(ATTN, 402, 118, l1); ev.append(e)
    for ts, corr, dur in ((40, 1, 100), (70, 2, 40), (410, 5, 100), (600, 7, 30), (950, 10, 20)):
        ev += _launch(ts, corr, f"k{corr}", 2000 + 300 * corr, dur)
    return ev


def test_forward_frames_give_the_phases_without_module_rows(write_trace: Callable[..., Path]) -> None:
    t = _tree(report.run([write_trace(_frame_events(), name="frames.json")], analyses=["headline"]))
    m, la, at = "tiny_model.forward:50", "tiny_model.forward:30", "tiny_model.forward:10"
    gpu = {p: r["excl_gpu_ns_mean"] for p, r in t.items()}
    assert gpu == {m: 0, f"{m}/{la}": 30 * US, f"{m}/{la}/{at}": 200 * US, f"{m}/{la}/{at}/linear.forward:125": 40 * US,
                   "(other)": 20 * US}
    assert t[f"{m}/{la}/{at}"]["instances_mean"] == 2 and t[f"{m}/{la}"]["instances_mean"] == 2
    assert t[m]["excl_cpu_ns_mean"] == 212 * US
    assert {r["phase_source"] for p, r in t.items() if p != "(other)"} == {"frame"}


def test_module_rows_win_over_frames(write_trace: Callable[..., Path]) -> None:
    """A trace with both: the module rows give the phases, the frames none (one source per trace)."""
    ev = _module_events() + [e for e in _frame_events() if e["cat"] == "python_function"]
    t = _tree(report.run([write_trace(ev, name="both.json")], analyses=["headline"]))
    assert not any("forward:" in p for p in t)
    assert t["TinyModel/TinyDecoderLayer/TinyAttention"]["excl_gpu_ns_mean"] == 200 * US


# --------------------------------------------------------------------------- item 4: lm_head without modules

def _bert_events(with_modules: bool) -> list[dict[str, Any]]:
    """A BERT MLM head: aten::linear [[1,8,768],[30522,768],[30522]] (vocabulary 30,522) 100..200 launching k1
    (50 us), and an encoder GEMM aten::linear [[1,8,768],[768,768],[768]] 20..60 launching k0 (30 us), both in
    step 0..300. With modules: BertEncoder_0 10..90, BertLMPredictionHead_0 95..250 around them."""
    ev = [_x("user_annotation", "ProfilerStep#1", 0, 300),
          _x("cpu_op", "aten::linear", 20, 40, **{"Input Dims": [[1, 8, 768], [768, 768], [768]]}),
          _x("cpu_op", "aten::linear", 100, 100, **{"Input Dims": [[1, 8, 768], [30522, 768], [30522]]})]
    ev += _launch(30, 1, "k0", 1000, 30) + _launch(110, 2, "k1", 1100, 50)
    if with_modules:
        py = _Py()
        ev += [py("nn.Module: BertEncoder_0", 10, 80, None)[1], py("nn.Module: BertLMPredictionHead_0", 95, 155, None)[1]]
    return ev


def test_bert_lm_head_by_gemm_shape_without_modules(write_trace: Callable[..., Path]) -> None:
    lm = report.run([write_trace(_bert_events(False), name="bert.json")], analyses=["lm_head"])["lm_head"]
    ok = lm[lm["used"]].to_dict("records")
    assert [(r["method"], r["vocab"], r["vocab_source"], r["lm_head_gpu_ns"], r["scope"], r["scope_gpu_ns"]) for r in ok] == [
        ("2_gemm_shape", 30522, "inferred: largest GEMM output dim", 50 * US, "ProfilerStep#1", 80 * US)]


def test_bert_lm_head_module_by_range_and_shape(write_trace: Callable[..., Path]) -> None:
    """With modules the head's module answers first (1_range, scope the step); the shape method agrees, now
    scoped to the module phase."""
    lm = report.run([write_trace(_bert_events(True), name="bertm.json")], analyses=["lm_head"])["lm_head"]
    ok = {r["method"]: r for r in lm[lm["status"] == "ok"].to_dict("records")}
    assert set(ok) == {"1_range", "2_gemm_shape"}
    assert (ok["1_range"]["used"], ok["1_range"]["scope"], ok["1_range"]["lm_head_gpu_ns"], ok["1_range"]["scope_gpu_ns"]) == (
        True, "ProfilerStep#1", 50 * US, 80 * US)
    assert (ok["2_gemm_shape"]["scope"], ok["2_gemm_shape"]["lm_head_gpu_ns"], ok["2_gemm_shape"]["scope_gpu_ns"]) == (
        "ProfilerStep#1/BertLMPredictionHead", 50 * US, 50 * US)


def test_graph_replay_inside_a_module_is_no_lm_head_guess(write_trace: Callable[..., Path]) -> None:
    """A cudaGraphLaunch 100..110 inside nn.Module TinyModel_0 (50..200) replays k1..k3 (no shapes, no graphmap):
    the module phase is TinyModel for all three, no method may name an LM head kernel, and 1_range abstains."""
    py = _Py()
    ev = [_x("user_annotation", "ProfilerStep#1", 0, 300), py("nn.Module: TinyModel_0", 50, 150, None)[1],
          _x("cuda_runtime", "cudaGraphLaunch", 100, 10, correlation=5)]
    ev += [_x("kernel", f"k{i}", 1000 + 100 * i, 40, pid=0, tid=7, device=0, stream=7, correlation=5) for i in (1, 2, 3)]
    res = report.run([write_trace(ev, name="graph.json")], analyses=["headline", "steps", "gpu_idle", "syncs", "lm_head"])
    lm = res["lm_head"]
    assert not (lm["status"] == "ok").any()
    r1 = lm[lm["method"] == "1_range"].iloc[0]
    assert (r1["status"], r1["severity"]) == ("abstain", "warn")
    assert "3 GPU ops were replayed by CUDA graph launches" in r1["note"]
    assert {p: r["excl_gpu_ns_mean"] for p, r in _tree(res).items()} == {"TinyModel": 120 * US, "(other)": 0}


# --------------------------------------------------------------------------- the H100 trace in ../shared

H100 = real_trace("kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")


@needs_traces(H100)
def test_h100_phase_tree_by_module_class(tmp_path: Path) -> None:
    """Qwen1.5-0.5B with with_modules=True and one ProfilerStep, no other range. Truth from the raw JSON, read
    with the standard library: a GPU op belongs to a module when the cuda_runtime call with its correlation
    starts and ends inside one of the module's `nn.Module: <Class>_<k>` python events on that thread (runtime and
    driver calls: one cutlass kernel is launched by cuLaunchKernel)."""
    from tracekit.ingest import convert

    convert(H100, tmp_path / "h100.parquet")
    res = report.run(tmp_path / "h100.parquet", analyses=["headline", "steps", "gpu_idle", "syncs"])
    t = _tree(res)
    raw = load_json(H100)["traceEvents"]
    step = next(e for e in raw if e.get("name", "").startswith("ProfilerStep#"))
    mods = [e for e in raw if e.get("cat") == "python_function" and e["name"].startswith("nn.Module: ")]
    calls = {e["args"]["correlation"]: e for e in raw
             if e.get("cat") in ("cuda_runtime", "cuda_driver") and "correlation" in e.get("args", {})}
    ops = [e for e in raw if e.get("cat") in ("kernel", "gpu_memset", "gpu_memcpy")]

    def in_step(o: dict[str, Any]) -> bool:
        c = calls.get(o["args"].get("correlation"))
        return c is not None and c["tid"] == step["tid"] and step["ts"] <= c["ts"] < step["ts"] + step["dur"]

    def gpu_us_inside(prefix: str) -> float:
        ms = [m for m in mods if m["name"].startswith(prefix)]
        return sum(o["dur"] for o in ops if in_step(o) and any(
            m["tid"] == calls[o["args"]["correlation"]]["tid"] and m["ts"] <= calls[o["args"]["correlation"]]["ts"]
            and calls[o["args"]["correlation"]]["ts"] + calls[o["args"]["correlation"]]["dur"] <= m["ts"] + m["dur"]
            for m in ms))

    step_us = sum(o["dur"] for o in ops if in_step(o))
    assert gpu_us_inside("nn.Module: Qwen2Model_") == pytest.approx(step_us)  # 100% of the step's kernel time
    assert t["(other)"]["excl_gpu_share"] <= 0.02
    assert t["Qwen2Model"]["incl_gpu_ns_mean"] == pytest.approx(step_us * 1000, abs=len(ops))
    for path, prefix in (("Qwen2Model/Qwen2DecoderLayer", "nn.Module: Qwen2DecoderLayer_"),
                         ("Qwen2Model/Qwen2DecoderLayer/Qwen2MLP", "nn.Module: Qwen2MLP_"),
                         ("Qwen2Model/Qwen2DecoderLayer/Qwen2Attention", "nn.Module: Qwen2Attention_")):
        assert t[path]["incl_gpu_ns_mean"] == pytest.approx(gpu_us_inside(prefix) * 1000, abs=len(ops)), path
        assert t[path]["instances_mean"] == sum(m["name"].startswith(prefix) for m in mods) == 24
        assert t[path]["phase_source"] == "module"
    assert t["Qwen2Model/Qwen2DecoderLayer/Qwen2RMSNorm"]["instances_mean"] == 48


def test_a_module_around_the_step_is_no_phase_of_it(write_trace: Callable[..., Path]) -> None:
    """nn.Module Outer_0 0..1000 encloses the step range `step` 100..900; Inner_0 200..300 is inside the step.
    launch 210 -> k1 (50 us): `Inner` (not `Outer/Inner`: the module path starts inside the step's range);
    launch 500 -> k2 (30 us): in the step, in no module that started inside it: (other).
    CPU: Inner 100 us; (other) 800 - 100 = 700."""
    py = _Py()
    o, e1 = py("nn.Module: Outer_0", 0, 1000, None)
    ev = [e1, _x("user_annotation", "step", 100, 800), py("nn.Module: Inner_0", 200, 100, o)[1]]
    ev += _launch(210, 1, "k1", 2000, 50) + _launch(500, 2, "k2", 2100, 30)
    t = _tree(report.run([write_trace(ev, name="outer.json")], analyses=["headline"]))
    assert {p: (r["excl_gpu_ns_mean"], r["excl_cpu_ns_mean"]) for p, r in t.items()} == {
        "Inner": (50 * US, 100 * US), "(other)": (30 * US, 700 * US)}
