"""queries/flops.sql: FLOPs, bytes, achieved TFLOP/s and share of peak of matmul/attention ops.

Every expected number is worked out by hand below (or taken from torch's own FLOP count of the
same run), never copied from the query's output.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted
from conftest import REPO, load_json, needs_traces, real_trace

from tracekit import report
from tracekit.cli import cli
from tracekit.ingest import convert

US = 1000
BF16 = "c10::BFloat16"


def _op(name: str, ts: int, dur: int, dims: list[Any], types: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"Input Dims": dims, **extra}
    if types is not None:
        args["Input type"] = types
    return planted._x("cpu_op", name, ts, dur, **args)


def planted_flops_events() -> list[dict[str, Any]]:
    """planted.py plus a `prefill` phase inside ProfilerStep#1 (14200..15800 us, free in planted.py).

    prefill:
      aten::linear 14300..14500 x[2,8,64] W[128,64] b[128] bf16          (skipped: it has a family child)
        aten::addmm 14350..14450 b[128] A[16,64] B[64,128]                FLOPs 2*16*64*128 = 262,144
          cudaLaunchKernel 14360 (corr 60) -> gemm_a 14400..14410          10 us
      aten::scaled_dot_product_attention 14600..14900 q[1,4,8,16] k[1,2,8,16] v[1,2,8,32]  (skipped)
        aten::_scaled_dot_product_flash_attention 14610..14890 (GQA 4 q heads, 2 kv heads)
                                     FLOPs 2*1*4*8*8*(16+32) = 24,576 (torch: q@k^T 8,192 + attn@v 16,384)
          cudaLaunchKernel 14620 (corr 61) -> flash_kernel 14700..14720    20 us
      aten::mm 15000..15100 [4,4096]x[4096,32000] float, trace says flops=1e9 (with_flops wins over
                                     the shape count 1,048,576,000)
          cudaLaunchKernel 15010 (corr 62) -> mm_kernel 15050..15150       100 us
      aten::matmul 15200..15300 [3,5]x[5] float (mv), no launch: FLOPs 2*3*5 = 30, CPU only
    planted's own aten::mm in `target`: [4,4096]x[4096,32000], no Input type: FLOPs 2*4*4096*32000
      = 1,048,576,000, launched lm_head_gemm 3400..3900 (500 us), dtype unknown -> no peak.
    """
    ev = planted.events()
    ev += [
        planted._x("user_annotation", "prefill", 14200, 1600),
        _op("aten::linear", 14300, 200, [[2, 8, 64], [128, 64], [128]], [BF16, BF16, BF16]),
        _op("aten::addmm", 14350, 100, [[128], [16, 64], [64, 128], [], []], [BF16, BF16, BF16, "Scalar", "Scalar"]),
        planted._rt("cudaLaunchKernel", 14360, 10, 60), planted._k("gemm_a", 14400, 10, 60),
        _op("aten::scaled_dot_product_attention", 14600, 300,
            [[1, 4, 8, 16], [1, 2, 8, 16], [1, 2, 8, 32], [], [], [], [], []], [BF16] * 3 + ["", "Scalar", "Scalar", "", "Scalar"]),
        _op("aten::_scaled_dot_product_flash_attention", 14610, 280,
            [[1, 4, 8, 16], [1, 2, 8, 16], [1, 2, 8, 32], [], [], [], []], [BF16] * 3 + ["Scalar", "Scalar", "Scalar", ""]),
        planted._rt("cudaLaunchKernel", 14620, 10, 61), planted._k("flash_kernel", 14700, 20, 61),
        _op("aten::mm", 15000, 100, [[4, 4096], [4096, 32000]], ["float", "float"], flops=1_000_000_000),
        planted._rt("cudaLaunchKernel", 15010, 10, 62), planted._k("mm_kernel", 15050, 100, 62),
        _op("aten::matmul", 15200, 100, [[3, 5], [5]], ["float", "float"]),
    ]
    return ev


@pytest.fixture(scope="module")
def planted_pq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("flops_planted")
    src = d / "planted.json.gz"
    with gzip.open(src, "wt") as f:
        json.dump({"schemaVersion": 1, "traceEvents": planted_flops_events(),
                   "deviceProperties": [{"id": 0, "name": "Planted GPU"}]}, f)
    convert(src, d / "planted.parquet")
    return d / "planted.parquet"


def _null(v: Any) -> bool:
    return v is None or v != v


def _row(df: Any, **eq: Any) -> dict[str, Any]:
    sub = df
    for k, v in eq.items():
        sub = sub[sub[k] == v]
    assert len(sub) == 1, (eq, sub)
    return sub.iloc[0].to_dict()


def test_planted_per_phase(planted_pq: Path) -> None:
    r = report.run(planted_pq, analyses=["flops"], gpu="H100 SXM")
    ph = r["flops"]
    assert set(ph["phase_path"]) == {"ProfilerStep#1/target", "ProfilerStep#1/prefill"}
    t = _row(ph, phase_path="ProfilerStep#1/target")
    assert (t["ops"], t["flops"], t["gpu_ns"], t["timed_ops"], t["flops_source"]) == (1, 1_048_576_000, 500 * US, 1, "shapes")
    assert t["tflops_s"] == pytest.approx(1_048_576_000 / 500_000 / 1e3)  # 2.097152
    assert _null(t["share_of_peak"])  # dtype unknown: no peak
    assert "no peak for dtype unknown" in t["note"]
    assert _null(t["bytes"])  # no Input type: no dtype size
    p = _row(ph, phase_path="ProfilerStep#1/prefill")
    # counted: addmm, _scaled_dot_product_flash_attention, mm (trace flops), matmul (CPU only)
    assert (p["ops"], p["ops_no_flops"], p["timed_ops"], p["gpu_ops"]) == (4, 0, 3, 3)
    assert p["flops"] == 262_144 + 24_576 + 1_000_000_000 + 30
    assert p["flops_source"] == "shapes+trace"
    assert p["gpu_ns"] == (10 + 20 + 100) * US
    timed = 262_144 + 24_576 + 1_000_000_000
    assert p["tflops_s"] == pytest.approx(timed / 130_000 / 1e3)
    # H100 SXM dense peaks: bf16 989.5, fp32 67 TFLOP/s = 989.5e3 / 67e3 FLOP per ns
    ideal_ns = (262_144 + 24_576) / 989.5e3 + 1_000_000_000 / 67e3
    assert p["share_of_peak"] == pytest.approx(ideal_ns / 130_000)
    assert p["peak_tflops"] == pytest.approx(timed / ideal_ns / 1e3)
    # bytes: addmm 2*(128 + 16*64 + 64*128 + 16*128) = 22,784; sdpa 2*(512+256+512 + 1*4*8*32) = 4,608;
    # mm 4*(4*4096 + 4096*32000 + 4*32000) = 524,865,536; matmul 4*(15 + 5 + 3) = 92
    assert p["bytes"] == 22_784 + 4_608 + 524_865_536 + 92
    assert p["tb_s"] == pytest.approx((22_784 + 4_608 + 524_865_536) / 130_000 / 1e3)
    assert p["bw_share"] == pytest.approx((22_784 + 4_608 + 524_865_536) / 130_000 / 1e3 / 3.35)
    assert p["dtypes"] == "bf16,fp32"
    assert p["note"] == "1 op launched no GPU op and is left out of TFLOP/s"


def test_planted_steps_ops_device(planted_pq: Path) -> None:
    r = report.run(planted_pq, analyses=["flops"], gpu="H100 SXM")
    st = r["flops.steps"]
    s1 = _row(st, step_index=1)
    assert s1["flops"] == 1_048_576_000 + 262_144 + 24_576 + 1_000_000_000 + 30
    assert s1["gpu_ns"] == (500 + 10 + 20 + 100) * US
    assert s1["tflops_s_wall"] == pytest.approx(s1["flops"] / 20_000_000 / 1e3)
    assert _null(s1["share_of_peak"])  # NULL: the target mm has no dtype, so no peak
    s2 = _row(st, step_index=2)
    assert s2["ops"] == 0 and _null(s2["flops"])
    ops = r["flops.ops"]
    assert list(ops["name"][:2]) == ["aten::mm", "aten::mm"]  # 1,048,576,000 (target) then 1e9 (trace value)
    a = _row(ops, name="aten::addmm")
    assert (a["calls"], a["flops_per_call"], a["bytes_per_call"], a["gpu_ns"]) == (1, 262_144, 22_784, 10 * US)
    assert a["tflops_s"] == pytest.approx(262_144 / 10_000 / 1e3)
    assert a["share_of_peak"] == pytest.approx(262_144 / 989.5e3 / 10_000)
    assert a["flop_per_byte"] == pytest.approx(262_144 / 22_784)
    assert "aten::linear" not in set(ops["name"]) and "aten::scaled_dot_product_attention" not in set(ops["name"])
    dev = _row(r["flops.device"], trace="planted")
    assert (dev["gpu_name"], dev["name_source"], dev["matched"], dev["bf16_tflops"], dev["peak_tb_s"]) == \
        ("H100 SXM", "--gpu", "H100 SXM", 989.5, 3.35)


def test_planted_gflops_per_token(planted_pq: Path) -> None:
    """--tokens-per-step 4: planted has 2 steps, so the prefill phase's 1,000,286,750 FLOPs (all inside
    ProfilerStep#1) are 1,000,286,750 / (2 * 4) / 1e9 GFLOP per token; step 1 holds those plus the target
    mm's 1,048,576,000 = 2,048,862,750 FLOPs, / 4 tokens / 1e9. Without the flag: NULL, never a guess."""
    r = report.run(planted_pq, analyses=["flops"], gpu="H100 SXM", tokens_per_step=4)
    p = _row(r["flops"], phase_path="ProfilerStep#1/prefill")
    assert p["gflops_per_token"] == pytest.approx(1_000_286_750 / 8 / 1e9)
    s1 = _row(r["flops.steps"], step_index=1)
    assert s1["gflops_per_token"] == pytest.approx(2_048_862_750 / 4 / 1e9)
    r = report.run(planted_pq, analyses=["flops"], gpu="H100 SXM")
    assert r["flops"]["gflops_per_token"].isna().all() and r["flops.steps"]["gflops_per_token"].isna().all()
    res = CliRunner().invoke(cli, ["report", str(planted_pq), "--tokens-per-step", "0"])
    assert res.exit_code == 2 and "--tokens-per-step" in res.output


def test_planted_unknown_gpu_and_override(planted_pq: Path) -> None:
    r = report.run(planted_pq, analyses=["flops"])
    dev = _row(r["flops.device"], trace="planted")
    assert dev["gpu_name"] == "Planted GPU" and dev["matched"] is None
    assert "not in the peak table" in dev["note"] and "--gpu" in dev["note"]
    p = _row(r["flops"], phase_path="ProfilerStep#1/prefill")
    assert _null(p["share_of_peak"]) and "not in the peak table" in p["note"]
    assert p["tflops_s"] == pytest.approx(1_000_286_720 / 130_000 / 1e3)  # achieved rate needs no peak
    r = report.run(planted_pq, analyses=["flops"], peak_tflops=100.0, peak_tb_s=2.0)
    p = _row(r["flops"], phase_path="ProfilerStep#1/prefill")
    assert p["share_of_peak"] == pytest.approx(1_000_286_720 / 100e3 / 130_000)
    assert p["bw_share"] == pytest.approx(524_892_928 / 130_000 / 1e3 / 2.0)
    t = _row(r["flops"], phase_path="ProfilerStep#1/target")  # one peak for every dtype, unknown included
    assert t["share_of_peak"] == pytest.approx(1_048_576_000 / 100e3 / 500_000)


def test_cli_flags(planted_pq: Path) -> None:
    out = CliRunner().invoke(cli, ["report", str(planted_pq), "--json", "--gpu", "A100-SXM4-80GB"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert doc["flops"]["device"][0]["matched"] == "A100 80GB SXM"
    assert doc["flops"]["device"][0]["peak_tb_s"] == 2.039
    bad = CliRunner().invoke(cli, ["report", str(planted_pq), "--peak-tflops", "0"])
    assert bad.exit_code == 2 and bad.output.strip() == "tracekit: error: --peak-tflops: must be a positive number, got 0.0"


def test_no_cpu_ops_abstains(tmp_path: Path) -> None:
    """nsys form of planted.py: no cpu_op rows, so one row of NULLs with a note, never 0."""
    src = planted.write_nsys(tmp_path / "p.sqlite")
    convert(src, tmp_path / "p.parquet")
    ph = report.run(tmp_path / "p.parquet", analyses=["flops"])["flops"]
    assert len(ph) == 1 and ph["flops"].isna().all() and ph["tflops_s"].isna().all()
    assert "no matmul/attention cpu_op" in ph["note"][0]


def test_gpu_name_matching() -> None:
    """The documented table-order rule on the names real traces carry."""
    con = duckdb.connect()
    sql = (REPO / "queries" / "flops.sql").read_text().split("-- dtype class")[0]
    con.execute(sql)
    want = {"NVIDIA H100 80GB HBM3": "H100 SXM", "NVIDIA H100 PCIe": "H100 PCIe", "NVIDIA H100 NVL": "H100 NVL",
            "NVIDIA H200": "H200 SXM", "NVIDIA A100-SXM4-40GB": "A100 40GB SXM", "NVIDIA A100 80GB PCIe": "A100 80GB PCIe",
            "NVIDIA A100-PCIE-40GB": "A100 40GB PCIe", "NVIDIA L40S": "L40S", "NVIDIA L4": "L4", "NVIDIA A10": "A10",
            "AMD Instinct MI300X": "MI300X", "NVIDIA GH200 480GB": None, "NVIDIA B200": "B200",
            "Tesla V100-SXM2-32GB": "V100 SXM2", "Tesla V100-PCIE-16GB": "V100 PCIe"}
    for name, gpu in want.items():
        got = con.execute("SELECT gpu FROM _fl_peaks WHERE regexp_matches(?, name_regex) ORDER BY ord LIMIT 1", [name]).fetchone()
        assert (got[0] if got else None) == gpu, name


# ----------------------------------------------------------------------------- torch's own count

def test_agrees_with_torch_flop_counts(tmp_path: Path) -> None:
    """A CPU program profiled with shapes: per-op FLOPs equal torch's counts of the same run.

    FlopCounterMode runs inside the profiler, so each op it counts is recorded twice, nested
    (its __torch_dispatch__ re-dispatches): the leaf-most rule must count each once.
    """
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    torch.manual_seed(0)
    lin = torch.nn.Linear(64, 48)
    x, a, b = torch.randn(3, 5, 64), torch.randn(7, 32), torch.randn(32, 9)
    ba, bb, bc = torch.randn(4, 5, 6), torch.randn(4, 6, 3), torch.randn(4, 5, 3)
    q, k, v8, v16 = torch.randn(2, 4, 6, 16), torch.randn(2, 4, 10, 16), torch.randn(2, 4, 10, 8), torch.randn(2, 4, 10, 16)
    fc = FlopCounterMode(display=False)
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True, with_flops=True) as prof:
        with fc:
            lin(x)                                                    # linear -> addmm
            a @ b                                                     # matmul -> mm
            torch.bmm(ba, bb)
            torch.baddbmm(bc, ba, bb)
            torch.matmul(torch.randn(2, 3, 4, 5), torch.randn(5, 6))  # matmul -> mm [24,5]x[5,6]
            torch.nn.functional.scaled_dot_product_attention(q, k, v8)   # math path -> bmm x2
            torch.nn.functional.scaled_dot_product_attention(q, k, v16)  # _scaled_dot_product_flash_attention_for_cpu
            torch.addmm(torch.randn(9), a, b)
    path = tmp_path / "cpu.json"
    prof.export_chrome_trace(str(path))
    convert(path, tmp_path / "cpu.parquet")
    con = duckdb.connect()
    r = report.run(tmp_path / "cpu.parquet", analyses=["flops"], con=con)
    ops = con.execute("SELECT name, input_dims, flops, flops_source FROM flops_ops ORDER BY ts_ns").fetchall()
    assert {s for *_, s in ops} == {"shapes"}  # the JSON of torch 2.13 carries no flops
    assert con.execute("SELECT count(flops) FROM events").fetchone() == (0,)
    # 1. totals per op name == FlopCounterMode's (aten.addmm etc.), each recorded op counted once
    counts = {str(op).split(".")[-1]: n for op, n in fc.get_flop_counts()["Global"].items()}
    ours: dict[str, float] = {}
    for name, _, fl, _ in ops:
        ours[name.removeprefix("aten::")] = ours.get(name.removeprefix("aten::"), 0) + fl
    sdpa_cpu = ours.pop("_scaled_dot_product_flash_attention_for_cpu")
    assert ours == counts and counts == {"addmm": 96_192, "mm": 5_472, "bmm": 23_760, "baddbmm": 720}
    # 2. the CPU flash kernel is not registered in FlopCounterMode: torch's own formula on its shapes
    assert sdpa_cpu == sdpa_flop_count((2, 4, 6, 16), (2, 4, 10, 16), (2, 4, 10, 16)) == 2 * 8 * 6 * 10 * 32
    # 3. per op instance == the profiler's own with_flops value for the same op and shapes
    theirs: dict[tuple[str, str], set[int]] = {}
    for e in prof.events():
        if e.name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
            theirs.setdefault((e.name, json.dumps(e.input_shapes, separators=(",", ":"))), set()).add(e.flops)
    checked = 0
    for name, dims, fl, _ in ops:
        if name in ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm"):
            assert theirs[(name, dims)] == {fl}, (name, dims)
            checked += 1
    assert checked == 8  # addmm x2, mm x2, bmm x3 (1 + 2 from the math SDPA), baddbmm x1
    # CPU-only run: FLOPs, but no TFLOP/s, and the note says why
    ph = r["flops"]
    assert ph["tflops_s"].isna().all() and ph["note"].str.contains("CPU-only run").all()


# ----------------------------------------------------------------------------- real traces

SAMPLE = REPO / "samples" / "traces" / "spec_decode_stack_flops" / "parquet"


def test_sample_captured_with_flops() -> None:
    """`tracekit capture --with-flops` on torch 2.13: the flops column is empty, shapes give the FLOPs."""
    con = duckdb.connect()
    r = report.run(SAMPLE, analyses=["flops"], con=con)
    assert con.execute("SELECT count(flops) FROM events").fetchone() == (0,)
    ops = r["flops.ops"]
    lm = _row(ops, name="aten::mm", input_dims="[[1,64],[64,32000]]")  # draft lm_head (samples/traces/README.md)
    assert lm["flops_per_call"] == 2 * 1 * 64 * 32000 and lm["dtype"] == "fp32"
    assert lm["bytes_per_call"] == 4 * (64 + 64 * 32000 + 32000)
    assert set(r["flops"]["flops_source"]) == {"shapes"}
    assert r["flops"]["tflops_s"].isna().all()
    assert "names no GPU" in r["flops.device"]["note"][0]


H100 = real_trace("kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz")
MI250 = real_trace("kineto/hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz")


@needs_traces(H100)
def test_h100_tracelens(tmp_path: Path) -> None:
    convert(H100, tmp_path / "h100.parquet")
    r = report.run(tmp_path / "h100.parquet", analyses=["flops"])
    dev = r["flops.device"].iloc[0]
    assert (dev["gpu_name"], dev["matched"]) == ("NVIDIA H100 80GB HBM3", "H100 SXM")
    ph = r["flops"]
    # module phases (with_modules=True, queries/lib/modules.sql): the only range is the step, so each op takes the
    # module classes around it; most FLOPs in the MLP's Linear modules (the up/gate/down projections)
    mlp = "ProfilerStep#6/Qwen2Model/Qwen2DecoderLayer/Qwen2MLP/Linear"
    assert list(ph["phase_path"]) == [mlp, "ProfilerStep#6/Qwen2Model/Qwen2DecoderLayer/Qwen2Attention/Linear",
                                      "ProfilerStep#6/Qwen2Model/Qwen2DecoderLayer/Qwen2Attention",
                                      "ProfilerStep#6/Qwen2Model/Qwen2RotaryEmbedding"]
    assert set(ph["phase_source"]) == {"module"}
    p = ph.iloc[0]
    assert 1 < p["tflops_s"] < 989.5 and 0 < p["share_of_peak"] < 1
    # Largest GEMM: the MLP up/gate projection, aten::mm [8944,1024] x [1024,2816] bf16
    # (batch 16 x 559 tokens = 8944 rows, hidden 1024, intermediate 2816):
    # 2 * 8944 * 1024 * 2816 = 17,888 * 2,883,584 = 51,581,550,592 FLOPs per call, 2 calls x 24 layers.
    top = r["flops.ops"].iloc[0]
    assert (top["name"], top["input_dims"], top["dtype"]) == ("aten::mm", "[[8944,1024],[1024,2816]]", "bf16")
    assert top["flops_per_call"] == 51_581_550_592 and top["calls"] == 48
    # Its GPU time, found independently in the raw JSON: the kernels whose External id is one of these mm
    # ops' (48 cuBLAS GEMMs), plus the cuBLAS workspace memsets whose cudaMemsetAsync ran inside the ops.
    raw = load_json(H100)["traceEvents"]
    mms = [e for e in raw if e.get("cat") == "cpu_op" and e["name"] == "aten::mm"
           and e["args"].get("Input Dims") == [[8944, 1024], [1024, 2816]]]
    ids = {e["args"]["External id"] for e in mms}
    kernel_us = sum(e["dur"] for e in raw if e.get("cat") == "kernel" and e["args"].get("External id") in ids)
    corr = {e["args"]["correlation"] for e in raw if e.get("cat") == "cuda_runtime" and e["name"] == "cudaMemsetAsync"
            and any(m["tid"] == e["tid"] and m["ts"] <= e["ts"] < m["ts"] + m["dur"] for m in mms)}
    memset_us = sum(e["dur"] for e in raw if e.get("cat") == "gpu_memset" and e["args"].get("correlation") in corr)
    assert len(ids) == 48 and len(corr) == 48
    # each of those GEMMs lies inside an `nn.Module: Qwen2MLP_<k>` python event of its thread: the module path
    mlps = [e for e in raw if e.get("cat") == "python_function" and e["name"].startswith("nn.Module: Qwen2MLP_")]
    assert all(any(m["tid"] == e["tid"] and m["ts"] <= e["ts"] and e["ts"] + e["dur"] <= m["ts"] + m["dur"] for m in mlps)
               for e in mms)
    assert top["phase_path"] == mlp
    assert top["gpu_ns"] == pytest.approx((kernel_us + memset_us) * 1000, abs=96)  # us with 3 decimals -> ns
    tflops = 48 * 51_581_550_592 / ((kernel_us + memset_us) * 1e-6) / 1e12
    assert top["tflops_s"] == pytest.approx(tflops, rel=1e-6)
    assert 300 < tflops < 989.5  # plausible: a large bf16 GEMM on an H100 SXM runs at a good part of the dense peak
    assert top["share_of_peak"] == pytest.approx(tflops / 989.5, rel=1e-6)


@needs_traces(MI250)
def test_amd_generic_name_matched_by_cu_count(tmp_path: Path) -> None:
    """HTA's MI250 trace names its GPUs "AMD Radeon Graphics" with numSms 104: one MI250 GCD."""
    convert(MI250, tmp_path / "mi.parquet")
    r = report.run(tmp_path / "mi.parquet", analyses=["flops"])
    dev = r["flops.device"].iloc[0]
    assert (dev["gpu_name"], dev["matched"], dev["fp32_tflops"]) == ("AMD Radeon Graphics", "MI250 (1 GCD)", 45.25)
    mm = _row(r["flops.ops"], name="aten::mm")
    assert (mm["input_dims"], mm["flops_per_call"]) == ("[[128,5],[5,128]]", 2 * 128 * 5 * 128)
    # the raw JSON: deviceProperties ids 0..3, every kernel/memcpy has args.device 2 (listed): joins find it
    from tracekit.store import connect
    con = connect(tmp_path / "mi.parquet")
    assert con.execute("SELECT device, id_source FROM trace_devices ORDER BY device").fetchall() == [(i, "metadata") for i in range(4)]
    assert con.execute("SELECT DISTINCT k.device, d.name FROM kernels k JOIN trace_devices d USING (trace, device)").fetchall() \
        == [(2, "AMD Radeon Graphics")]


# ---------------------------------------------------------------- ROCm device ids and names

def _rocm_trace(tmp_path: Path, devices: list[dict[str, Any]], op_device: int, name: str = "rocm") -> Path:
    """A ROCm-style eager trace: one bf16 aten::mm [64,4096]x[4096,4096] (FLOPs 2*64*4096*4096 =
    2,147,483,648) launched by hipExtModuleLaunchKernel, its kernel (100 us) on GPU row pid/device
    ``op_device`` (roctracer's HSA agent id)."""
    ev = [
        planted._x("user_annotation", "ProfilerStep#1", 0, 1000),
        _op("aten::mm", 100, 200, [[64, 4096], [4096, 4096]], [BF16, BF16]),
        planted._x("cuda_runtime", "hipExtModuleLaunchKernel", 110, 10, correlation=7, kernel="Cijk_gemm"),
        dict(planted._k("Cijk_gemm", 300, 100, 7), pid=op_device,
             args={"device": op_device, "stream": 0, "correlation": 7, "kind": "Dispatch Kernel"}),
    ]
    src = tmp_path / f"{name}.json"
    src.write_text(json.dumps({"schemaVersion": 1, "deviceProperties": devices, "traceEvents": ev}))
    return src


MI300X_EMPTY = [{"id": i, "name": "", "gcnArchName": "gfx942:sramecc+:xnack-", "numSms": 304,
                 "totalGlobalMem": 205_822_885_888} for i in range(8)]


def test_rocm_agent_device_id_and_empty_name_find_the_mi300x_peak(tmp_path: Path) -> None:
    """deviceProperties list HIP devices 0..7 with empty names (gfx942, 304 CUs, 191.7 GiB); the kernel
    carries device 9 (HSA agent id: 2 CPU agents first). trace_devices gets a row for 9 named like the
    listed GPUs (all one model), the peak lookup finds MI300X: bf16 1,307.4 TFLOP/s."""
    src = _rocm_trace(tmp_path, MI300X_EMPTY, 9)
    con = __import__("tracekit.store", fromlist=["connect"]).connect(src)
    rows = con.execute("SELECT device, name, id_source FROM trace_devices ORDER BY device").fetchall()
    assert rows == [(i, "AMD Instinct MI300X (gfx942)", "metadata") for i in range(8)] + [(9, "AMD Instinct MI300X (gfx942)", "gpu_op")]
    assert con.execute("SELECT DISTINCT device FROM kernels").fetchall() == [(9,)]
    r = report.run(src, analyses=["flops"])
    dev = r["flops.device"].iloc[0]
    assert (dev.gpu_name, dev.matched, dev.bf16_tflops, dev.peak_tb_s) == ("AMD Instinct MI300X (gfx942)", "MI300X", 1307.4, 5.3)
    assert _null(dev.note)
    f = r["flops"].iloc[0]
    assert (f.flops, f.gpu_ns) == (2 * 64 * 4096 * 4096, 100 * US)
    assert f.share_of_peak == pytest.approx(2 * 64 * 4096 * 4096 / 1307.4e3 / 100_000)
    assert _null(f.note)


def test_rocm_names_from_the_arch_and_memory(tmp_path: Path) -> None:
    """gfx942 with 256 GiB is an MI325X (6.0 TB/s); the listed name wins when it is specific."""
    mi325 = [dict(d, totalGlobalMem=274_877_906_944) for d in MI300X_EMPTY]
    dev = report.run(_rocm_trace(tmp_path, mi325, 2, "mi325"), analyses=["flops"])["flops.device"].iloc[0]
    assert (dev.gpu_name, dev.matched, dev.peak_tb_s) == ("AMD Instinct MI325X (gfx942)", "MI325X", 6.0)
    named = [{"id": i, "name": "AMD Instinct MI300X", "numSms": 304} for i in range(8)]
    dev = report.run(_rocm_trace(tmp_path, named, 2, "named"), analyses=["flops"])["flops.device"].iloc[0]
    assert (dev.gpu_name, dev.matched) == ("AMD Instinct MI300X", "MI300X")


def test_unknown_gpu_note_is_said_once(tmp_path: Path) -> None:
    """gfx950 (MI350X/MI355X) has no row in the peak table: the FLOPs note names it once, not once
    for the TFLOP/s peak and again for the bandwidth."""
    mi355 = [{"id": 0, "name": "", "gcnArchName": "gfx950", "numSms": 256}]
    r = report.run(_rocm_trace(tmp_path, mi355, 0, "mi355"), analyses=["flops"])
    note = r["flops"].iloc[0].note
    assert note.count('GPU "AMD Instinct MI350X/MI355X (gfx950)" is not in the peak table') == 1
    assert _null(r["flops"].iloc[0].share_of_peak) and _null(r["flops"].iloc[0].bw_share)


def test_mixed_models_leave_an_unlisted_device_unnamed(tmp_path: Path) -> None:
    """Two different listed models and an op on unlisted id 5: which one it is cannot be told, so no name."""
    mixed = [{"id": 0, "name": "AMD Instinct MI300X", "numSms": 304}, {"id": 1, "name": "AMD Instinct MI250X", "numSms": 110}]
    con = __import__("tracekit.store", fromlist=["connect"]).connect(_rocm_trace(tmp_path, mixed, 5, "mixed"))
    assert con.execute("SELECT device, name, id_source FROM trace_devices WHERE device = 5").fetchall() == [(5, None, "gpu_op")]


@pytest.mark.parametrize("kernel_us, peak, share", [
    # 2*1024^3 = 2,147,483,648 FLOPs in 50 us = 42.9 TFLOP/s: above the A100's fp32 peak (19.5), so it ran on
    # TF32 tensor cores: ideal 2,147,483,648 / 156e3 = 13,765.92 ns at the tf32 peak, over 50,000 ns
    (50, 156.0, 2_147_483_648 / 156e3 / 50_000),
    # the same in 200 us = 10.7 TFLOP/s: possible on the fp32 units, compared with the fp32 peak
    (200, 19.5, 2_147_483_648 / 19.5e3 / 200_000),
])
def test_fp32_faster_than_the_fp32_peak_is_compared_with_tf32(write_trace: Any, kernel_us: int, peak: float, share: float) -> None:
    ev = [_op("aten::mm", 100, 300, [[1024, 1024], [1024, 1024]], ["float", "float"]),
          planted._rt("cudaLaunchKernel", 110, 10, 7),
          planted._k("sgemm_kernel", 200, kernel_us, 7)]
    p = write_trace(ev, name=f"tf32_{kernel_us}.json", deviceProperties=[{"id": 0, "name": "NVIDIA A100-SXM4-80GB"}])
    r = report.run([p], analyses=["flops"])
    row = r["flops"].iloc[0]
    assert row["flops"] == 2_147_483_648 and row["peak_tflops"] == pytest.approx(peak)
    assert row["share_of_peak"] == pytest.approx(share, rel=1e-9) and row["share_of_peak"] < 1
    assert ("TF32 tensor cores" in (row["note"] or "")) == (peak == 156.0)
    forced = report.run([p], analyses=["flops"], tf32=True)["flops"].iloc[0]  # --tf32: the tf32 peak, no note
    assert forced["peak_tflops"] == pytest.approx(156.0) and "TF32 tensor cores" not in (forced["note"] or "")
