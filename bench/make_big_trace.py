"""Build a large Kineto trace by repeating a real trace's events, laid out as torch.profiler writes them.

The events body of a real trace (default: HTA's df_index_resolver, a V100 training
rank, 216k events) is repeated with timestamps shifted past the previous copy and
correlation / External id / flow ids offset, so links stay one-to-one. Two files
come out: the original indented Kineto layout, and the same events compact on one
line (as trace-merging tools write them).

    python bench/make_big_trace.py --mb 500 --out bench/out

Shape-heavy variant (issue 14): the source is a raw trace of ``tracekit capture`` on the CPU, which
records shapes by default (``Input Dims``, ``Input type``, ``Input Strides``, ``Concrete Inputs`` on
every cpu_op, ~415 bytes per event in torch.profiler's layout)::

    tracekit capture --out /tmp/cap -- python samples/spec_decode.py --steps 8
    python bench/make_big_trace.py --src /tmp/cap/raw/<pid>.json --mb 500 --out /tmp/shapes --no-compact
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
from pathlib import Path

import msgspec

from tracekit.ingest import kscan

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_SRC = SHARED / "traces/kineto/hta/df_index_resolver/df_index_resolver.json.gz"
_NUM = re.compile(rb'"(ts|correlation|External id|id)": (\d+)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", type=Path, default=DEFAULT_SRC)
    ap.add_argument("--mb", type=int, default=500, help="target size of the indented file in MB")
    ap.add_argument("--copies", type=int, default=0, help="number of copies (overrides --mb)")
    ap.add_argument("--out", type=Path, default=Path("bench/out"))
    ap.add_argument("--no-compact", action="store_true", help="write only the indented file (big.json)")
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    text = gzip.open(a.src).read() if a.src.suffix == ".gz" else a.src.read_bytes()
    start = text.index(b'"traceEvents": [') + len(b'"traceEvents": [')
    # the event list's own `]`, found by its structure: torch.profiler writes keys after the list
    # ("deviceProperties": [...] in the H100 trace), whose `]` a search for the last `]` took, and the copies
    # landed inside deviceProperties, after the event list (dropped by JSON readers, decoded whole by ours)
    _, _, _, code, end = kscan.split(text[start:], start, None, kscan.EVENTS)
    if code != kscan.LIST_END:
        raise SystemExit(f"{a.src}: no end of the traceEvents list found")
    head, body, tail = text[:start], text[start:end].rstrip().rstrip(b","), text[end:]
    doc = msgspec.json.decode(text)
    evs = doc["traceEvents"]
    span = max(e.get("ts", 0) + e.get("dur", 0) for e in evs if "ts" in e) - min(e["ts"] for e in evs if "ts" in e)
    max_id = max(int(m.group(2)) for m in _NUM.finditer(body) if m.group(1) != b"ts") + 1
    reps = a.copies or max(1, (a.mb << 20) // len(body))
    big = a.out / "big.json"
    compact = a.out / "big_compact.json"
    with open(big, "wb") as f, open(os.devnull if a.no_compact else compact, "wb") as g:
        f.write(head)
        g.write(b'{"schemaVersion":1,"traceEvents":[')
        for r in range(reps):
            dt, did = r * (int(span) + 1000), r * max_id  # integers: fractional µs (CPU captures) stay as written

            def shift(m: re.Match[bytes]) -> bytes:
                v = int(m.group(2)) + (dt if m.group(1) == b"ts" else did)
                return b'"' + m.group(1) + b'": ' + str(v).encode()

            chunk = _NUM.sub(shift, body)
            f.write((b",\n" if r else b"") + chunk)
            if not a.no_compact:
                one = msgspec.json.encode(msgspec.json.decode(b"[" + chunk + b"]"))[1:-1]
                g.write((b"," if r else b"") + one)
        f.write(b"\n" + tail.lstrip())
        g.write(b"]}")
    print(f"{big}: {big.stat().st_size / 1e6:.1f} MB, {reps} copies of {len(evs):,} events = {reps * len(evs):,} events")
    if not a.no_compact:
        print(f"{compact}: {compact.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
