"""A small Kineto trace with planted facts, shared by the query and report tests.

Times below are in microseconds as Kineto writes them (integers, so every value converts
to an exact ns = us * 1000). Layout on CPU thread tid=1 (pid 100), one GPU (device 0,
stream 7); every expected number in the tests is worked out by hand from this table.

  ProfilerStep#1  0..20000
    draft      100..1100    cudaGraphLaunch 200+50 (corr 10) -> graph_kernel_a/b/c 300..400..500..600
    target     1200..3900   cudaLaunchKernel 1300+20 (20) -> long_gemm 1400..3400 (the long kernel)
                            aten::mm 1350..1450 dims [[4,4096],[4096,32000]]:
                              cudaLaunchKernel 1360+20 (21) -> lm_head_gemm 3400..3900 (queued)
                            cudaLaunchKernel 1500+20 (22) -> small_kernel 3900..3905 (5 us < 20 us launch)
    sampler    3910..9900   cudaLaunchKernel 3920+20 (29) -> sample_kernel 3950..9400
                            aten::item 4400..9470 > aten::_local_scalar_dense 4410..9465:
                              cudaMemcpyAsync 4420+30 (30) -> Memcpy DtoH 9400..9450
                              cudaStreamSynchronize 4460+5000  (the 5 ms .item() stall)
                            cudaLaunchKernel 9480+20 (31) -> post_sample 9510..9610
    candidate  10000..13000 CPU-only work (aten::topk cpu_op), no launch
    verify     13100..14100 cudaLaunchKernel 13200+20 (40) -> verify_kernel 13230..13530
  ProfilerStep#2  20000..21000  cudaLaunchKernel 20100+20 (50) -> step2_kernel 20130..20330
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

PID, TID, GPU_PID, STREAM = 100, 1, 0, 7


def _x(cat: str, name: str, ts: int, dur: int, pid: int = PID, tid: int = TID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _rt(name: str, ts: int, dur: int, corr: int) -> dict[str, Any]:
    return _x("cuda_runtime", name, ts, dur, correlation=corr)


def _k(name: str, ts: int, dur: int, corr: int, cat: str = "kernel") -> dict[str, Any]:
    return _x(cat, name, ts, dur, pid=GPU_PID, tid=STREAM, device=0, stream=STREAM, correlation=corr)


def events(with_sync: bool = True) -> list[dict[str, Any]]:
    """The planted events; ``with_sync=False`` drops the cudaStreamSynchronize call."""
    ev = [
        _x("user_annotation", "ProfilerStep#1", 0, 20000),
        _x("user_annotation", "draft", 100, 1000),
        _rt("cudaGraphLaunch", 200, 50, 10),
        _k("graph_kernel_a", 300, 100, 10), _k("graph_kernel_b", 400, 100, 10), _k("graph_kernel_c", 500, 100, 10),
        _x("user_annotation", "target", 1200, 2700),
        _rt("cudaLaunchKernel", 1300, 20, 20), _k("long_gemm", 1400, 2000, 20),
        _x("cpu_op", "aten::mm", 1350, 100, **{"Input Dims": [[4, 4096], [4096, 32000]]}),
        _rt("cudaLaunchKernel", 1360, 20, 21), _k("lm_head_gemm", 3400, 500, 21),
        _rt("cudaLaunchKernel", 1500, 20, 22), _k("small_kernel", 3900, 5, 22),
        _x("user_annotation", "sampler", 3910, 5990),
        _rt("cudaLaunchKernel", 3920, 20, 29), _k("sample_kernel", 3950, 5450, 29),
        _x("cpu_op", "aten::item", 4400, 5070),
        _x("cpu_op", "aten::_local_scalar_dense", 4410, 5055),
        _rt("cudaMemcpyAsync", 4420, 30, 30), _k("Memcpy DtoH (Device -> Pinned)", 9400, 50, 30, cat="gpu_memcpy"),
        _rt("cudaLaunchKernel", 9480, 20, 31), _k("post_sample", 9510, 100, 31),
        _x("user_annotation", "candidate", 10000, 3000),
        _x("cpu_op", "aten::topk", 10100, 2800),
        _x("user_annotation", "verify", 13100, 1000),
        _rt("cudaLaunchKernel", 13200, 20, 40), _k("verify_kernel", 13230, 300, 40),
        _x("user_annotation", "ProfilerStep#2", 20000, 1000),
        _rt("cudaLaunchKernel", 20100, 20, 50), _k("step2_kernel", 20130, 200, 50),
    ]
    if with_sync:
        ev.append(_rt("cudaStreamSynchronize", 4460, 5000, 32))
    return ev


def write_kineto(path: Path, trace_events: list[dict[str, Any]]) -> Path:
    """``trace_events`` as a gzipped Kineto JSON file on the planted GPU (the constructed traces' one writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"schemaVersion": 1, "traceEvents": trace_events, "deviceProperties": [{"id": 0, "name": "Planted GPU"}]}
    with gzip.open(path, "wt") as f:
        json.dump(doc, f)
    return path


def write(path: Path, with_sync: bool = True) -> Path:
    """Write the planted trace as a gzipped Kineto JSON file."""
    return write_kineto(path, events(with_sync))


def write_nsys(path: Path, with_sync: bool = True) -> Path:
    """The same planted trace as an nsys SQLite export (ns = us * 1000).

    nsys records no PyTorch cpu_ops, so the aten::mm / aten::item rows have no counterpart:
    the .item() stall shows as an explicit cudaStreamSynchronize and lm_head method 2 is unavailable.
    """
    import sqlite3

    vm = 1 << 48
    gtid = vm | (PID << 24) | TID
    gpid = vm | (PID << 24)
    strings: dict[str, int] = {}

    def sid(s: str) -> int:
        return strings.setdefault(s, len(strings) + 1)

    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
            shortName INTEGER, gridX INTEGER, gridY INTEGER, gridZ INTEGER, blockX INTEGER, blockY INTEGER,
            blockZ INTEGER, registersPerThread INTEGER, staticSharedMemory INTEGER, dynamicSharedMemory INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_MEMCPY (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, bytes INTEGER,
            copyKind INTEGER, srcKind INTEGER, dstKind INTEGER);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, text TEXT,
            globalTid INTEGER, textId INTEGER, domainId INTEGER);
    """)
    api_version = {"cudaGraphLaunch": "_v10000", "cudaLaunchKernel": "_v7000"}
    for e in events(with_sync):
        ts, end = e["ts"] * 1000, (e["ts"] + e["dur"]) * 1000
        a = e["args"]
        if e["cat"] == "user_annotation":
            con.execute("INSERT INTO NVTX_EVENTS VALUES (?,?,59,?,?,NULL,0)", (ts, end, e["name"], gtid))
        elif e["cat"] == "cuda_runtime":
            name = e["name"] + api_version.get(e["name"], "_v3020")
            con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,0,?,?,?,0)",
                        (ts, end, gtid, a["correlation"], sid(name)))
        elif e["cat"] == "kernel":
            con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?,?,0,1,?,?,?,?,?,1,1,1,128,1,1,32,0,0)",
                        (ts, end, STREAM, a["correlation"], gpid, sid(e["name"]), sid(e["name"])))
        elif e["cat"] == "gpu_memcpy":
            con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_MEMCPY VALUES (?,?,0,1,?,?,?,4,2,2,1)",
                        (ts, end, STREAM, a["correlation"], gpid))
        # cpu_op rows: nsys has no PyTorch operators
    con.executemany("INSERT INTO StringIds VALUES (?, ?)", [(i, s) for s, i in strings.items()])
    con.commit()
    con.close()
    return path
