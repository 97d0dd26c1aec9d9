"""Parquet codec A/B for `tracekit convert`: zstd-1 against LZ4, runs alternated so machine noise hits both.

    python bench/bench_codec.py /tmp/bench/big.json --pairs 5

Each run is a fresh child process running the CLI's convert (start-up included); the codec is
switched by overriding ``tracekit.ingest.sink.PARQUET_OPTIONS`` in the child. Prints best and
median seconds and the output size per codec.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CHILD = """
import sys
import tracekit.ingest.sink as s
s.PARQUET_OPTIONS.update({opts})
from tracekit.cli import cli
sys.argv = ["tracekit", "convert", {src!r}, "-o", {out!r}]
try:
    cli()
except SystemExit as e:
    if e.code:
        raise
"""
CODECS = {"zstd-1": "compression='zstd', compression_level=1", "lz4": "compression='lz4', compression_level=None"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("--pairs", type=int, default=5)
    a = ap.parse_args()
    times: dict[str, list[float]] = {c: [] for c in CODECS}
    sizes: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="tk-codec-") as tmp:
        for _ in range(a.pairs):
            for codec, opts in CODECS.items():
                out = os.path.join(tmp, f"{codec}.parquet")
                code = CHILD.format(opts="dict(" + opts + ")", src=a.src, out=out)
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
                times[codec].append(time.perf_counter() - t)
                sizes[codec] = os.path.getsize(out)
    for codec, v in times.items():
        v.sort()
        print(f"{codec:7s} best {v[0]:.2f} s  median {v[len(v) // 2]:.2f} s  file {sizes[codec] / 1e6:.1f} MB  "
              f"runs {', '.join(f'{x:.2f}' for x in v)}")


if __name__ == "__main__":
    main()
