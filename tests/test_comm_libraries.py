"""Communication is every library's, not only NCCL's (issue 24 item 2): comm.sql's class is the `communication`
rows of queries/kernel_categories.csv, one row per library (`library` column), and a device without communication
has NULL shares with a reason, never 0%.

The constructed trace (microseconds; device 0, compute on stream 7, communication on stream 16, one step
ProfilerStep#1 = [0, 1000)) and its truth worked out by hand:
  compute   gemm [100, 300), silu [500, 600), add [800, 850), cdpsk::ep CUB scan [960, 980) (a compute kernel
            whose namespace ends in `dpsk::ep`: it must not count as DeepEP)
  comm      DeepEP get_dispatch_layout [150, 180) and internode::dispatch [200, 400); NCCL all-reduce [550, 700);
            vLLM cross_device_reduce_1stage [900, 950)
  comm union |M| = 30 + 200 + 150 + 50 = 430; under compute |M n C| = 30 ([150, 180) in the gemm) + 100
  ([200, 300)) + 50 ([550, 600)) = 180; exposed 430 - 180 = 250; GPU window 100..980 = 880;
  overlap share 180 / 430, exposed share 250 / 880; libraries by time: DeepEP 230, NCCL 150, vLLM 50.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from tracekit import report
from tracekit.view.terminal import report_lines

US = 1000
COMPUTE, COMM = 7, 16
DEEPEP_LAYOUT = "void dpsk::ep::cuda::get_dispatch_layout<256, 32, 8>(long const*, int*, int*, int*, bool*, int, int, int, int)"
DEEPEP_DISPATCH = "void dpsk::ep::internode::dispatch<false, 4, false, 4>(int4*, float*, long*, float*, int, int)"
NCCL = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage<4096ul>)"
VLLM_AR = ("void vllm::cross_device_reduce_1stage<__nv_bfloat16, 8>(vllm::RankData*, vllm::RankSignals, vllm::Signal*, "
           "__nv_bfloat16*, int, int)")
CUB_DECOY = "void cdpsk::ep::CUB_200200_900_NS::DeviceScanByKeyKernel<int>(int*, int*, int)"
COMPUTE_OPS = [("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
                100, 200),
               ("void at::native::vectorized_elementwise_kernel<4, at::native::silu_kernel>(int)", 500, 100),
               ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>(int)", 800, 50),
               (CUB_DECOY, 960, 20)]
COMM_OPS = [(DEEPEP_LAYOUT, 150, 30), (DEEPEP_DISPATCH, 200, 200), (NCCL, 550, 150), (VLLM_AR, 900, 50)]


def _kernel(name: str, ts: int, dur: int, stream: int, corr: int) -> dict[str, Any]:
    return {"ph": "X", "cat": "kernel", "name": name, "pid": 0, "tid": stream, "ts": ts, "dur": dur,
            "args": {"device": 0, "stream": stream, "correlation": corr}}


def _write(path: Path, comm: bool) -> Path:
    ev: list[dict[str, Any]] = [{"ph": "X", "cat": "user_annotation", "name": "ProfilerStep#1", "pid": 1, "tid": 1,
                                 "ts": 0, "dur": 1000, "args": {}}]
    ops = [(n, t, d, COMPUTE) for n, t, d in COMPUTE_OPS] + ([(n, t, d, COMM) for n, t, d in COMM_OPS] if comm else [])
    ev += [_kernel(n, t, d, s, 100 + i) for i, (n, t, d, s) in enumerate(ops)]
    path.write_text(json.dumps({"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "Planted GPU"}],
                                "traceEvents": ev}))
    return path


@pytest.fixture(scope="module")
def with_comm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return report.run(_write(tmp_path_factory.mktemp("cl") / "ep.json", comm=True), rows=True)


@pytest.fixture(scope="module")
def without_comm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return report.run(_write(tmp_path_factory.mktemp("cl") / "nocomm.json", comm=False), rows=True)


def test_every_library_counts_as_communication(with_comm: dict[str, Any]) -> None:
    rows = with_comm["comm"].records()
    assert len(rows) == 1
    r = rows[0]
    assert r["gpu"] == "GPU 0" and r["comm_ops"] == 4
    assert (r["comm_ns"], r["comm_overlap_ns"], r["comm_exposed_ns"]) == (430 * US, 180 * US, 250 * US)
    assert r["gpu_window_ns"] == 880 * US
    assert r["comm_overlap_share"] == pytest.approx(180 / 430)
    assert r["comm_exposed_share"] == pytest.approx(250 / 880)
    assert r["comm_exposed_ns_per_step"] == 250 * US
    assert r["comm_libraries"] == "DeepEP, NCCL/RCCL/HCCL, custom all-reduce (vLLM/SGLang/AITER)"
    st = with_comm["comm.by_step"].records()
    assert [(s["comm_ns"], s["comm_overlap_ns"], s["comm_exposed_ns"]) for s in st] == [(430 * US, 180 * US, 250 * US)]
    assert st[0]["comm_exposed_share"] == pytest.approx(250 / 1000)


def test_dpsk_ep_suffix_of_another_namespace_is_not_deepep(with_comm: dict[str, Any]) -> None:
    """`cdpsk::ep::CUB_...` holds `dpsk::ep::` as a substring; DeepEP's row is anchored at the function's namespace."""
    cats = {r["name"]: r["category"] for r in with_comm["kernels"].records()}
    assert cats[CUB_DECOY] == "reduction"
    assert {cats[n] for n, _, _ in COMM_OPS} == {"communication"}


def test_comm_line_names_the_gpu_and_the_libraries(with_comm: dict[str, Any]) -> None:
    text = " ".join(ln.strip() for ln in report_lines(with_comm, width=80))
    assert "GPU 0: exposed communication" in text and "device 0:" not in text
    # 180 / 430 = 41.86% -> 41.9%
    assert "41.9% of communication time (DeepEP, NCCL/RCCL/HCCL, custom all-reduce (vLLM/SGLang/AITER)) overlapped" in text


def test_no_communication_gives_null_shares_and_a_reason(without_comm: dict[str, Any]) -> None:
    r = without_comm["comm"].records()[0]
    assert r["comm_ops"] == 0 and r["comm_ns"] == 0
    for k in ("comm_overlap_share", "comm_exposed_share"):
        assert r[k] is None or (isinstance(r[k], float) and math.isnan(r[k])), (k, r[k])
    assert r["note"].startswith("no communication kernel (NCCL/RCCL, DeepEP, NVSHMEM, custom all-reduce")
    assert "comm_overlap_share and comm_exposed_share are undefined" in r["note"]
    s = without_comm["comm.by_step"].records()[0]
    assert s["comm_exposed_share"] is None or math.isnan(s["comm_exposed_share"])
    lines = report_lines(without_comm, width=80, sections=["comm"])
    head = next(i for i, ln in enumerate(lines) if "comm_exposed_share" in ln.split())
    end = lines[head].index("comm_exposed_share") + len("comm_exposed_share")  # numbers are right-aligned
    assert lines[head + 2][:end].split()[-1] == "NULL"  # the header, its rule, then the device's row
    assert "no communication kernel (NCCL/RCCL, DeepEP, NVSHMEM, custom all-reduce" in " ".join(ln.strip() for ln in lines)
    assert not any("exposed communication" in ln for ln in report_lines(without_comm, width=80))
