"""Constructed multi-rank Kineto traces with planted communication facts (comm.sql, collectives.sql tests).

Every rank r of N runs the same steps on one GPU (device 0; compute stream 7, NCCL stream 20) with
its own, unsynchronised clock: every timestamp of rank r is shifted by CLOCK_US[r]. Times below are
microseconds on the rank's own clock, B = (step - 1) * 10000:

  ProfilerStep#s  B .. B + 9000 + END_EXTRA(r)
    attn          B+10 .. B+90    cudaLaunchKernel B+20 -> gemm_a on stream 7, B+100 .. A(r)
                                  cudaLaunchKernel B+30 -> overlap_gemm on stream 7, A(r) .. A(r)+200
      tp_allreduce B+40 .. B+60   cudaLaunchKernel B+45 -> ncclKernel_AllReduce on stream 20, A(r) .. E
    sampler       B+4990 .. B+7000 cudaMemcpyAsync B+4995 -> Memcpy HtoD B+5000 .. B+5100 (exposed)
                                  cudaMemcpyAsync B+5990 -> Memcpy HtoD B+6000 .. B+6100
                                  cudaLaunchKernel B+5995 -> sample_kernel B+6050 .. B+6300
  A(r) = B + 100 + 1000 + 10 r (+ 1800 on the slow rank): the rank's arrival at the all-reduce
  E    = B + 100 + max_r(A(r) - B - 100) + 500: every rank's all-reduce ends together, 500 us after
         the last arrival (all-reduce of 1 Mi bf16 elements, group of N)

So per step and rank: comm = E - A(r), overlap (overlap_gemm under it) = 200, exposed = E - A(r) - 200;
memory = 200, overlap 50, exposed 150. The collective's facts are on the kernel's args in step 1 and
on a record_param_comms cpu_op (External id) in step 2; ``seq=False`` leaves out `Seq`, and
``drop`` removes (rank, step) all-reduces from a capture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PID, TID, STREAM, NCCL_STREAM = 100, 1, 7, 20
NELEMS = 1 << 20  # bf16 -> 2 MiB


def clock_us(r: int) -> int:
    """Rank r's clock offset (us): unrelated to the others, as on different hosts."""
    return 1_000_000 * r + 777 * r * r


def end_extra(r: int, n: int, slow: int) -> int:
    """How much later than B+9000 rank r's step range ends (us): the slow rank ends last."""
    return 10 * n + 300 if r == slow else 10 * r


def comp_us(r: int, slow: int) -> int:
    """gemm_a duration of rank r (us): the slow rank computes 1.8 ms longer, so it arrives late."""
    return 1000 + 10 * r + (1800 if r == slow else 0)


def _x(cat: str, name: str, ts: int, dur: int, pid: int = PID, tid: int = TID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def rank_events(r: int, n: int, slow: int, steps: int = 2, seq: bool = True,
                drop: frozenset[tuple[int, int]] = frozenset()) -> list[dict[str, Any]]:
    """The events of rank r (timestamps already on its own clock)."""
    o = clock_us(r)
    last = max(comp_us(q, slow) for q in range(n))
    ev: list[dict[str, Any]] = []
    corr = 1000

    def launch(api: str, ts: int, name: str, start: int, dur: int, stream: int, cat: str = "kernel",
               **kargs: Any) -> None:
        nonlocal corr
        corr += 1
        ev.append(_x("cuda_runtime", api, o + ts, 5, correlation=corr, **{"External id": corr}))
        ev.append(_x(cat, name, o + start, dur, pid=0, tid=stream, device=0, stream=stream, correlation=corr,
                     **{"External id": corr}, **kargs))

    for s in range(1, steps + 1):
        b = (s - 1) * 10000
        a = b + 100 + comp_us(r, slow)
        e = b + 100 + last + 500
        ev.append(_x("user_annotation", f"ProfilerStep#{s}", o + b, 9000 + end_extra(r, n, slow)))
        ev.append(_x("user_annotation", "attn", o + b + 10, 80))
        launch("cudaLaunchKernel", b + 20, "gemm_a", b + 100, a - b - 100, STREAM)
        launch("cudaLaunchKernel", b + 30, "overlap_gemm", a, 200, STREAM)
        ev.append(_x("user_annotation", "tp_allreduce", o + b + 40, 20))
        if (r, s) not in drop:
            meta = {"Collective name": "allreduce", "Process Group Name": "0", "Process Group Description": "tp",
                    "Group size": n, "In msg nelems": NELEMS, "Out msg nelems": NELEMS, "dtype": "BFloat16"}
            if seq:
                meta["Seq"] = s
            name = "ncclKernel_AllReduce_RING_LL_Sum_bf16(ncclDevComm*, unsigned long, ncclWork*)"
            if s == 1:  # torch >= 2.1: the facts are on the kernel itself
                launch("cudaLaunchKernel", b + 45, name, a, e - a, NCCL_STREAM, **meta)
            else:  # older torch: on the record_param_comms cpu_op sharing the External id
                launch("cudaLaunchKernel", b + 45, name, a, e - a, NCCL_STREAM)
                ev.append(_x("cpu_op", "record_param_comms", o + b + 44, 3, **{"External id": corr}, **meta))
        ev.append(_x("user_annotation", "sampler", o + b + 4990, 2010))
        launch("cudaMemcpyAsync", b + 4995, "Memcpy HtoD (Pageable -> Device)", b + 5000, 100, STREAM, cat="gpu_memcpy")
        launch("cudaMemcpyAsync", b + 5990, "Memcpy HtoD (Pageable -> Device)", b + 6000, 100, STREAM, cat="gpu_memcpy")
        launch("cudaLaunchKernel", b + 5995, "sample_kernel", b + 6050, 250, STREAM)
    return ev


def write_ranks(folder: Path, n: int, slow: int, steps: int = 2, seq: bool = True, rank_in_meta: bool = True,
                drop: frozenset[tuple[int, int]] = frozenset()) -> list[Path]:
    """One Kineto JSON per rank, named rank<r>.json; ``rank_in_meta`` writes distributedInfo."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for r in range(n):
        doc: dict[str, Any] = {"schemaVersion": 1, "deviceProperties": [{"id": 0, "name": "Planted GPU"}],
                               "traceEvents": rank_events(r, n, slow, steps, seq, drop)}
        if rank_in_meta:
            doc["distributedInfo"] = {"backend": "nccl", "rank": r, "world_size": n}
        p = folder / f"rank{r}.json"
        p.write_text(json.dumps(doc))
        out.append(p)
    return out
