"""Kineto JSON -> Parquet: throughput and peak memory, side by side with json.load and HTA's loader.

Each contender runs in its own child process so its peak RSS is its own
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read after it exits).

    python bench/make_big_trace.py --mb 500 --out bench/out
    python bench/bench_kineto.py bench/out/big.json bench/out/big_compact.json [--hta] [--repeat 5]

With ``--repeat``, seconds and MB/s are the best run (median in brackets); peak RSS is the largest.

``--hta`` needs holistictraceanalysis installed (bench environment only:
``pip install holistictraceanalysis``); it is skipped with a note otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CHILD = {
    "tracekit convert": "import sys; from tracekit.cli import main; sys.argv = ['tracekit', 'convert', '-q', {src!r}, '-o', {dst!r}]; main()",
    "json.load": "import json; json.load(open({src!r}, 'rb'))",
    "HTA load": (
        "import logging, tempfile, shutil, os; logging.disable(logging.WARNING)\n"
        "from hta.common.trace import Trace\n"
        "d = tempfile.mkdtemp(); os.symlink(os.path.abspath({src!r}), os.path.join(d, 'rank-0.json'))\n"
        "t = Trace(trace_dir=d); t.parse_traces(); shutil.rmtree(d)"
    ),
}


def peak_child(label: str, src: Path, dst: Path) -> tuple[float, float]:
    """Run in a grandchild so RUSAGE_CHILDREN is fresh for each measurement."""
    code = (
        "import resource, subprocess, sys, time, json\n"
        f"t0 = time.perf_counter(); subprocess.run([sys.executable, '-c', {CHILD[label].format(src=str(src), dst=str(dst))!r}], check=True)\n"
        "print(json.dumps([time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return tuple(json.loads(out.strip().splitlines()[-1]))  # type: ignore[return-value]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--hta", action="store_true", help="also time HTA's trace load")
    ap.add_argument("--skip-json", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="runs per contender: best and median are reported "
                    "(the machine is shared; single runs vary by 15%%)")
    a = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}")
    print("| file | MB | contender | seconds | MB/s | peak RSS MB | RSS / file size |")
    print("|---|---:|---|---:|---:|---:|---:|")
    for src in a.files:
        mb = src.stat().st_size / 1e6
        dst = src.with_suffix(".parquet")
        labels = ["tracekit convert"] + ([] if a.skip_json else ["json.load"]) + (["HTA load"] if a.hta else [])
        for label in labels:
            runs = []
            try:
                for _ in range(a.repeat):
                    runs.append(peak_child(label, src, dst))
            except subprocess.CalledProcessError as e:
                print(f"| {src.name} | {mb:.0f} | {label} | failed ({e.returncode}) | | | |")
                continue
            times = sorted(t for t, _ in runs)
            dt, rss = times[0], max(r for _, r in runs)
            med = f" (median {statistics.median(times):.2f} of {len(times)})" if len(times) > 1 else ""
            print(f"| {src.name} | {mb:.0f} | {label} | {dt:.2f}{med} | {mb / dt:.1f} | {rss:.0f} | {rss / mb:.2f} |",
                  flush=True)
        if dst.exists():
            import duckdb

            con = duckdb.connect()
            t0 = time.perf_counter()
            con.execute(f"SELECT kind, count(*) FROM read_parquet('{dst}') GROUP BY kind").fetchall()
            print(f"| {src.name} | {mb:.0f} | sql: grouped count by kind | {time.perf_counter() - t0:.3f} | | | |")
            dst.unlink()


if __name__ == "__main__":
    main()
