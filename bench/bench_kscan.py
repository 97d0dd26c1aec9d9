"""Throughput of the C Kineto block scanner (``tracekit.ingest.kscan.scan_block``) alone, in MB/s of JSON.

The events body of the file is cut into blocks the way KinetoReader cuts it
(about ``kineto.BLOCK`` bytes, at an event boundary); blocks the scanner does
not support (it returns None: e.g. the profiler's own trailing events with
string pids) are reported and left out of the timing. Then every block is
scanned once per repeat, on 1 thread and on 2 threads (a ThreadPoolExecutor;
the scan releases the GIL). ``--raw`` times the C call alone, without building
pyarrow arrays and kind/copy_kind.

Usage: python bench/bench_kscan.py [--repeat 5] [--raw] [FILE]   (default FILE: /tmp/dfi.json,
made with ``zcat ../shared/traces/kineto/hta/df_index_resolver/df_index_resolver.json.gz > /tmp/dfi.json``)
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tracekit.ingest import kscan
from tracekit.ingest.kineto import _START, BLOCK, KinetoReader


def blocks_of(data: bytes, size: int = BLOCK) -> list[bytes]:
    """The traceEvents body cut into blocks at event boundaries, as KinetoReader does."""
    m = _START.search(data)
    if m is None:
        raise SystemExit("no traceEvents in the file")
    body = data[m.end():]
    end = KinetoReader._events_end(body)
    body = body[:end]
    out = []
    while len(body) > size:
        cut = KinetoReader._last_boundary(body[:size])
        if cut is None:
            break
        out.append(body[:cut[0]])
        body = body[cut[1]:]
    out.append(body)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default="/tmp/dfi.json")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--raw", action="store_true", help="time the C call alone")
    ap.add_argument("--block", type=int, default=BLOCK)
    a = ap.parse_args()
    if not kscan.AVAILABLE:
        raise SystemExit("tracekit.ingest._kscan is not built (pip install -e .)")
    p = Path(a.file)
    data = gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes()
    blocks = blocks_of(data, a.block)
    fn = kscan._kscan.scan if a.raw else kscan.scan_block
    ok = [b for b in blocks if fn(b) is not None]
    total = sum(map(len, ok))
    print(f"{p.name}: {len(data) / 1e6:.1f} MB, {len(blocks)} blocks, {len(ok)} scanned "
          f"({total / 1e6:.1f} MB), {len(blocks) - len(ok)} unsupported (fall back)")
    print(f"nproc {os.cpu_count()}; timing {'_kscan.scan' if a.raw else 'scan_block'}; best of {a.repeat}")
    for threads in (1, 2):
        best = float("inf")
        with ThreadPoolExecutor(threads) as ex:
            for _ in range(a.repeat):
                t = time.perf_counter()
                for r in ex.map(fn, ok):
                    assert r is not None
                best = min(best, time.perf_counter() - t)
        print(f"  {threads} thread{'s' if threads > 1 else ' '}: {total / best / 1e6:7.1f} MB/s  ({best * 1e3:.0f} ms)")
    if not a.raw:
        # every block, the one with the profiler's string-pid events too, through scan_runs (the runs it
        # leaves to the generic path are not decoded here)
        every = sum(map(len, blocks))
        left = sum(b - a_ for blk in blocks for a_, b, c in kscan.runs(blk) if c is None)
        for threads in (1, 2):
            best = float("inf")
            with ThreadPoolExecutor(threads) as ex:
                for _ in range(a.repeat):
                    t = time.perf_counter()
                    list(ex.map(kscan.scan_runs, blocks))
                    best = min(best, time.perf_counter() - t)
            print(f"  scan_runs, all {len(blocks)} blocks ({left} bytes left to the generic path), {threads} thread"
                  f"{'s' if threads > 1 else ' '}: {every / best / 1e6:7.1f} MB/s")


if __name__ == "__main__":
    main()
