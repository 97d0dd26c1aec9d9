"""Time queries/graph_map.sql on a synthetic ROCm-style capture as SGLang makes it (issue 11, item 4).

Reference: WINDOWS capture windows (one per batch size) of a 1,566-kernel decode graph (36 layers x
43 kernels + 18 head kernels, so every name repeats per layer and shifts by a layer align too), each
launched by name (hipLaunchKernel with args.kernel, no GPU rows) plus one trailing launch: 1,567
launches for 1,566 nodes, as in the issue. Replay: 12 hipGraphLaunch calls of 3 sequences (the full
graph, the graph without its last kernel, without its first). Every replayed op must be matched.

    python bench/bench_graphmap.py --windows 36 --out /tmp/gm_bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

from tracekit.graphmap import graph_map
from tracekit.ingest import convert


def _x(cat: str, name: str, ts: int, dur: int, pid: int = 100, tid: int = 1, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def build(out: Path, windows: int) -> tuple[Path, Path, int]:
    names = [f"layer_k{j}" for _ in range(36) for j in range(43)] + [f"head_k{j}" for j in range(18)]
    ev, corr = [], 1
    for w in range(windows):
        t0 = w * 10 * (len(names) + 10)
        ev += [_x("user_annotation", f"capture_bs{w}", t0, 10 * (len(names) + 5)),
               _x("cuda_runtime", "hipStreamBeginCapture", t0 + 1, 1, correlation=corr)]
        for i, n in enumerate(names + ["tail_k"]):
            ev.append(_x("cuda_runtime", "hipLaunchKernel", t0 + 5 + 10 * i, 2, correlation=corr + 1 + i, kernel=n))
        corr += len(names) + 3
        ev.append(_x("cuda_runtime", "hipStreamEndCapture", t0 + 10 * (len(names) + 2), 1, correlation=corr - 1))
    ref = out / "cap.json"
    ref.write_text(json.dumps({"schemaVersion": 1, "traceEvents": ev}))
    rep_ev, replayed = [], 0
    for i in range(12):
        seq = names if i % 3 == 0 else names[:-1] if i % 3 == 1 else names[1:]
        t0 = 10_000_000 + i * 100_000
        rep_ev += [_x("user_annotation", f"ProfilerStep#{i}", t0, 90_000),
                   _x("cuda_runtime", "hipGraphLaunch", t0 + 10, 10, correlation=50 + i)]
        rep_ev += [_x("kernel", n, t0 + 100 + 20 * k, 10, pid=0, tid=7, device=0, stream=7, correlation=50 + i)
                   for k, n in enumerate(seq)]
        replayed += len(seq)
    rep = out / "rep.json"
    rep.write_text(json.dumps({"schemaVersion": 1, "traceEvents": rep_ev}))
    convert(ref, out / "cap.parquet")
    convert(rep, out / "rep.parquet")
    return out / "rep.parquet", out / "cap.parquet", replayed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=36)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/gm_bench"))
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    rep, cap, replayed = build(a.out, a.windows)
    runs = []
    for _ in range(a.repeat):
        t = time.perf_counter()
        res = graph_map(rep, cap)
        runs.append(time.perf_counter() - t)
    s = res["graph_map.summary"].iloc[0]
    assert (int(s.replayed), int(s.matched)) == (replayed, replayed), s
    print(f"windows={a.windows} launches/window={1567} replayed={replayed} matched={int(s.matched)} "
          f"graph_map s: median {statistics.median(runs):.3f} (runs {', '.join(f'{r:.3f}' for r in runs)})")


if __name__ == "__main__":
    main()
