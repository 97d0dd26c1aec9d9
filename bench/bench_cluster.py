"""Per-trace executors at dataset scale: convert + report of N shifted copies of one real trace.

    python bench/bench_cluster.py --copies 64 --executors local,ray,spark [--src TRACE] [--work DIR]

Each copy k of the source (a real Kineto trace, default HTA's trace_diff/control.json.gz: 35 MB of
JSON, 109,123 events) has every timestamp shifted by k x 10 s and distributedInfo.rank = k, so the
copies are distinct traces with the same work. For each executor: driver wall time of `convert -o
FOLDER` and of `report --out`, the start-up of the backend (Ray / Spark session) measured apart, and
per task: wall, CPU seconds and peak RSS (median and max over tasks). Prints one JSON object per
executor; BENCHMARKS.md "Past one machine" quotes them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import statistics
import time
from pathlib import Path

from tracekit import executors

DEFAULT_SRC = Path(__file__).resolve().parents[2] / "shared/traces/kineto/hta/trace_diff/control/control.json.gz"


def make_copies(src: Path, n: int, out: Path) -> list[Path]:
    """``n`` shifted copies of ``src`` in ``out`` (kept between runs: made once)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"rank{k:03d}.json.gz" for k in range(n)]
    if all(p.exists() for p in paths):
        return paths
    doc = json.load(gzip.open(src, "rt"))
    events = doc["traceEvents"]
    ts0 = [e.get("ts") for e in events]
    for k, p in enumerate(paths):
        shift = k * 10_000_000  # us
        for e, t in zip(events, ts0):
            if isinstance(t, (int, float)):
                e["ts"] = t + shift
        doc["distributedInfo"] = dict(doc.get("distributedInfo") or {}, rank=k, world_size=n)
        with gzip.open(p, "wt", compresslevel=1) as f:
            json.dump(doc, f)
    return paths


def _stats(outcomes: list[executors.Outcome]) -> dict[str, float]:
    w = [o.wall_s for o in outcomes]
    c = [o.cpu_s for o in outcomes]
    m = [o.peak_rss_mib for o in outcomes]
    return {"tasks": len(outcomes), "failed": sum(not o.ok for o in outcomes),
            "task_wall_s_median": round(statistics.median(w), 3), "task_wall_s_max": round(max(w), 3),
            "task_cpu_s_median": round(statistics.median(c), 3), "task_cpu_s_sum": round(sum(c), 1),
            "task_peak_rss_mib_median": round(statistics.median(m)), "task_peak_rss_mib_max": round(max(m))}


def run(name: str, inputs: list[Path], work: Path, jobs: int) -> dict[str, object]:
    ex = executors.make(name, jobs=jobs, spark_master="local[2]" if name == "spark" else None)
    t0 = time.perf_counter()
    if name == "ray":
        import ray

        ray.init(num_cpus=jobs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    elif name == "spark":
        ex.session()  # type: ignore[attr-defined]
    startup = time.perf_counter() - t0
    ds, res = work / f"ds_{name}", work / f"res_{name}"
    shutil.rmtree(ds, ignore_errors=True)
    shutil.rmtree(res, ignore_errors=True)
    t0 = time.perf_counter()
    conv = executors.convert_many([str(p) for p in inputs], str(ds), ex)
    t_conv = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = executors.report_many([str(ds)], str(res), ex, threads=1)
    t_rep = time.perf_counter() - t0
    if name == "ray":
        import ray

        ray.shutdown()
    elif name == "spark":
        ex.session().stop()  # type: ignore[attr-defined]
    return {"executor": name, "jobs": jobs, "traces": len(inputs), "startup_s": round(startup, 1),
            "convert_wall_s": round(t_conv, 1), "report_wall_s": round(t_rep, 1),
            "convert": _stats(conv), "report": _stats(rep)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=64)
    ap.add_argument("--executors", default="local,ray,spark")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--work", type=Path, default=Path("/tmp/tracekit-bench-cluster"))
    a = ap.parse_args()
    inputs = make_copies(a.src, a.copies, a.work / "raw")
    raw_mb = sum(p.stat().st_size for p in inputs) / 1e6
    print(json.dumps({"source": str(a.src), "copies": a.copies, "gz_mb_total": round(raw_mb, 1)}), flush=True)
    for name in a.executors.split(","):
        print(json.dumps(run(name, inputs, a.work, a.jobs)), flush=True)


if __name__ == "__main__":
    main()
