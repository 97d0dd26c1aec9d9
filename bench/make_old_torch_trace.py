"""Write a synthetic trace in the layout torch 1.8/1.9's Kineto wrote (issue 24 item 3, issue 25 item 1).

That layout differs from today's in ways a converter must survive, and the one that once made conversion
super-linear (80k events: 3-4 minutes) is the first:

* thread ids are JSON strings: ``"tid": "31383"`` on CPU rows, ``"tid": "stream 7"`` on GPU rows;
* GPU and runtime rows spell the op link ``"external id"`` (lower case; CPU ops keep ``"External id"``);
* the GPUs are listed under ``computeProperties`` (not ``deviceProperties``), with ``multiProcessorCount``;
* categories are the old ``Operator`` / ``Runtime`` / ``Kernel`` / ``Memcpy`` / ``Memset``; flows are
  ``"cat": "async"`` s/f pairs; the profiler's own ``"pid": "Spans"`` / ``"Traces"`` rows are present;
* each event is written indented over several lines, as Kineto's fmt templates wrote them.

The run is a ResNet-style training loop: per step a forward pass on the main thread and a backward pass on
the autograd thread, each op launching one kernel on stream 7, plus a host-to-device copy and a memset.

    python bench/make_old_torch_trace.py --events 80000 --out /tmp/old19.json.gz [--flows int|tts]

``--flows int`` writes the flow events' tids as integers (text elsewhere) and ``--flows tts`` gives every flow
Chrome's ``tts`` field: either way events the C scanner reads and events it leaves to Python alternate, the
layout that took minutes before ``kscan.MAX_RAW_RUNS`` (BENCHMARKS.md, issue 25 item 1).

``write_trace`` is also what ``tests/test_kineto_old_layout.py`` uses to build its N / 4N scaling pair.
"""

from __future__ import annotations

import argparse
import gzip
import io
from pathlib import Path

MAIN_TID, BWD_TID, PID = 31383, 31400, 31383
STREAM = 7
_OPS = ("aten::conv2d", "aten::batch_norm", "aten::relu", "aten::add_", "aten::max_pool2d", "aten::linear")
_KERNELS = ("implicit_convolve_sgemm", "bn_fw_tr_1C11_kernel_NCHW", "vectorized_elementwise_kernel",
            "elementwise_kernel", "max_pool_forward_nchw", "volta_sgemm_128x64_nn")
#: Events written per op (Operator, Runtime, Kernel, flow s, flow f).
PER_OP = 5


def _op(name: str, tid: int, ts: int, dur: int, ext: int) -> str:
    return (f'\n  {{\n    "ph": "X", "cat": "Operator", \n    "name": "{name}", "pid": {PID}, "tid": "{tid}",\n'
            f'    "ts": {ts}, "dur": {dur},\n    "args": {{\n      "Device": {PID}, "External id": {ext},\n'
            f'      "Trace name": "PyTorch Profiler", "Trace iteration": 0\n    }}\n  }},')


def _runtime(name: str, tid: int, ts: int, corr: int, ext: int) -> str:
    return (f'\n  {{\n    "ph": "X", "cat": "Runtime", \n    "name": "{name}", "pid": {PID}, "tid": "{tid}",\n'
            f'    "ts": {ts}, "dur": 4,\n    "args": {{\n      "cbid": 211, "correlation": {corr},\n'
            f'      "external id": {ext}, "external ts": {ts - 1}\n    }}\n  }},')


def _gpu(cat: str, name: str, ts: int, dur: int, corr: int, ext: int) -> str:
    extra = ('\n      "registers per thread": 32,\n      "shared memory": 0,\n      "grid": [64, 1, 1],'
             '\n      "block": [256, 1, 1],\n      "est. achieved occupancy %": 50' if cat == "Kernel"
             else '\n      "bytes": 602112')
    return (f'\n  {{\n    "ph": "X", "cat": "{cat}", \n    "name": "{name}", "pid": 0, "tid": "stream {STREAM}",\n'
            f'    "ts": {ts}, "dur": {dur},\n    "args": {{\n      "queued": 0, "device": 0, "context": 1,\n'
            f'      "stream": {STREAM}, "correlation": {corr}, "external id": {ext},{extra}'
            '\n    }\n  },')


def _flow(ph: str, corr: int, pid: int, tid: str, ts: int, flows: str = "text") -> str:
    bp = ', "bp": "e"' if ph == "f" else ""
    t = tid.removeprefix("stream ") if flows == "int" else f'"{tid}"'
    tts = ', "tts": 1' if flows == "tts" else ""
    return (f'\n  {{\n    "ph": "{ph}", "id": {corr}, "pid": {pid}, "tid": {t}, "ts": {ts},\n'
            f'    "cat": "async"{tts}, "name": "launch"{bp}\n  }},')


def write_trace(out: io.TextIOBase, events: int, flows: str = "text") -> int:
    """Write a torch-1.9-layout trace of about ``events`` events to ``out``; returns the number written.

    ``flows``: how flow events write their tid: "text" as the rest, "int", or text plus a ``tts`` field.
    """
    out.write('{\n  "schemaVersion": 1,\n\n  "computeProperties": [\n    {\n      "id": 0, '
              '"name": "GeForce RTX 2080 Ti", "totalGlobalMem": 11554717696,\n      "computeMajor": 7, '
              '"computeMinor": 5,\n      "maxThreadsPerBlock": 1024, "warpSize": 32,\n'
              '      "multiProcessorCount": 68\n    }\n  ],\n\n  "traceEvents": [')
    ops_per_step = 200  # 100 forward (main thread) + 100 backward (autograd thread)
    n, step, corr, ext, t = 0, 0, 1, 1, 1_623_143_089_000_000
    parts: list[str] = []
    per_step = ops_per_step * PER_OP + 5
    for _ in range(max(1, round(events / per_step))):
        step_ts = t
        parts.append(_op(f"ProfilerStep#{step}", MAIN_TID, step_ts, ops_per_step * 20 + 40, ext))
        ext += 1
        corr += 1  # the copy's launch
        parts.append(_runtime("cudaMemcpyAsync", MAIN_TID, t + 2, corr, ext - 1))
        parts.append(_gpu("Memcpy", "Memcpy HtoD (Pageable -> Device)", t + 8, 30, corr, ext - 1))
        corr += 1  # the memset's launch
        parts.append(_runtime("cudaMemsetAsync", MAIN_TID, t + 6, corr, ext - 1))
        parts.append(_gpu("Memset", "Memset (Device)", t + 39, 1, corr, ext - 1))
        n += 5
        t += 10
        for i in range(ops_per_step):
            tid = MAIN_TID if i < ops_per_step // 2 else BWD_TID
            k = i % len(_OPS)
            corr += 1
            parts.append(_op(_OPS[k] if tid == MAIN_TID else _OPS[k] + "_backward", tid, t, 18, ext))
            parts.append(_runtime("cudaLaunchKernel", tid, t + 3, corr, ext))
            parts.append(_flow("s", corr, PID, str(tid), t + 3, flows))
            parts.append(_gpu("Kernel", _KERNELS[k], t + 40, 15, corr, ext))
            parts.append(_flow("f", corr, 0, f"stream {STREAM}", t + 40, flows))
            n += PER_OP
            ext += 1
            t += 20
        t += 30
        step += 1
        out.write("".join(parts))
        parts.clear()
    out.write('\n  {\n    "ph": "X", "cat": "Trace", "ts": 1623143089000000, "dur": ' f"{t - 1_623_143_089_000_000},"
              '\n    "pid": "Spans", "tid": "PyTorch Profiler",\n    "name": "PyTorch Profiler (0)",\n'
              '    "args": {\n      "Op count": 0\n    }\n  },\n  {\n    "name": "process_name", "ph": "M", '
              '"ts": 1623143089000000, "pid": 0, "tid": 0,\n    "args": {\n      "name": "GPU 0"\n    }\n  },\n'
              '  {\n    "name": "thread_name", "ph": "M", "ts": 1623143089000000, "pid": 0, "tid": "stream 7",\n'
              '    "args": {\n      "name": "stream 7"\n    }\n  }\n]}\n')
    return n + 3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=80_000)
    ap.add_argument("--out", type=Path, default=Path("/tmp/old19.json.gz"))
    ap.add_argument("--flows", choices=("text", "int", "tts"), default="text", help="flow events' tids (see above)")
    a = ap.parse_args()
    opener = gzip.open if a.out.suffix == ".gz" else open
    with opener(a.out, "wt") as f:
        n = write_trace(f, a.events, a.flows)
    print(f"{a.out}: {a.out.stat().st_size / 1e6:.2f} MB, {n:,} events")


if __name__ == "__main__":
    main()
