"""Coverage-guided fuzzing of the C scanner ``_kscan``, with a differential check against the msgspec path.

Run in a subprocess by ``tests/test_fuzz.py`` (and by hand for longer runs, see BENCHMARKS.md; ``--corpus-out``
keeps the corpus, and ``--replay DIR`` with a ``build.py --gcov`` build measures its line coverage)::

    python tests/fuzz/build.py /tmp/san                      # sanitized build, prints the .so path
    LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0:alloc_dealloc_mismatch=0 \\
      TRACEKIT_KSCAN_SO=/tmp/san/_kscan....so python -m tests.fuzz.kscan_fuzz --seconds 600

Why this way: there is no clang here, so no libFuzzer/atheris instrumentation of C code. gcc's
``-fsanitize-coverage=trace-pc`` feeds ``cov.c``'s edge map instead, and this loop is the fuzzer: mutate an
input from the corpus, run it, keep it if it set a map byte nothing set before. Seeds are runs of events cut
from every real Kineto trace in ../shared/traces/kineto and samples/traces.

On every input: ``_kscan.scan`` and ``kscan.runs`` (the prefix scanner) must not crash (ASan/UBSan abort
the process, which the caller reports) nor raise; the runs must tile the input in order and each supported
run must scan alone to the same columns; and where the scanner accepts the input, its columns must equal the
msgspec + DuckDB path's (``tests.test_kscan._compare_run``, which lists the intended differences). A finding
is written to ``--findings`` and the loop exits 1.
"""

from __future__ import annotations

import argparse
import ctypes
import gzip
import importlib.util
import json
import os
import random
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SO = os.environ.get("TRACEKIT_KSCAN_SO")
if SO:  # the sanitized build replaces the shipped extension before anything imports it
    _spec = importlib.util.spec_from_file_location("tracekit.ingest._kscan", SO)
    assert _spec and _spec.loader
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _mod
    _spec.loader.exec_module(_mod)

from tests.test_kscan import _compare_run  # noqa: E402
from tracekit.ingest import kineto, kscan  # noqa: E402

MAX_LEN = 6000
SEED_BYTES = 4 << 20
_SEP = re.compile(rb"\}\s*,\s*\{")
TOKENS = [b'"ph"', b'"cat"', b'"name"', b'"pid"', b'"tid"', b'"ts"', b'"dur"', b'"args"', b'"id"', b'"bp"', b'"s"',
          b'"correlation"', b'"stream"', b'"device"', b'"External id"', b'"grid"', b'"block"', b'"flops"',
          b'"registers per thread"', b'"shared memory"', b'"bytes"', b'"Input Dims"', b'"Input type"', b'"graph id"',
          b'"kernel"', b'"gpu_memcpy"', b'"cuda_runtime"', b'"Memcpy HtoD"', b'"ProfilerStep#3"', b'"X"', b'"M"',
          b"null", b"true", b"false", b"NaN", b"Infinity", b"-Infinity", b"-0", b"0", b"1e5", b"1.5E-3",
          b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808", b"9223372036854775.807",
          b"9223372036854775.808", b"18446744073709551616", b"1.0005", b"-1.0015", b"2147483648", b"-2147483649",
          b'"0x7fffffffffffffff"', b'"0x8000000000000000"', b'"-0x5"', b'"0X1f"', b'"12"', b'" 1"', b'"1.5"',
          rb'"\ud800"', rb'"\udc00x"', rb'"\ud83d\ude00"', rb'"\u0000"', rb'"a\"b"', rb'"\\"', b'"\xff"',
          b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf4\x90\x80\x80"', b"[1,2,3]", b"[[1],[2]]", b"{}", b"[]", b"{",
          b"}", b"[", b"]", b",", b":", b'"', b"\\", b" ", b"\t", b"\n", b"\x00", b"1" * 40,
          # strings holding what looks like an event boundary, and deep nesting (issue 23: items 3 and 10)
          b'"},{"', b'"b},{c"', rb'"\"},{\""', b'"}, {"', b"},{", b'"}]"', b'"traceEvents"', b"[" * 300,
          b"]" * 300, b'{"a":' * 200, b"}" * 200, b"[" * 600 + b"]" * 600]


def seeds(limit_per_file: int, rng: random.Random) -> list[bytes]:
    """Runs of 1..8 consecutive events cut at event boundaries from every real trace."""
    files = sorted((REPO.parent / "shared" / "traces" / "kineto").rglob("*.json.gz"))
    files += sorted((REPO / "samples" / "traces").rglob("*.json*"))
    out = []
    for f in files:
        with (gzip.open if f.read_bytes()[:2] == b"\x1f\x8b" else open)(f, "rb") as fh:
            data = fh.read(SEED_BYTES)  # the start of each trace: decompressing all of it costs seconds under ASan
        m = kineto._START.search(data)
        if not m:
            continue
        body = data[m.end():]  # cut at event boundaries below; a seed that takes in the document's tail is fine too
        cuts = [0] + [x.start() + 1 for x in _SEP.finditer(body)] + [len(body)]
        for _ in range(limit_per_file):
            i = rng.randrange(len(cuts) - 1)
            j = min(len(cuts) - 1, i + rng.randint(1, 8))
            s = body[cuts[i]:cuts[j]].strip().strip(b",").strip()
            if s and len(s) <= MAX_LEN:
                out.append(s)
    return out + hostile_seeds()


def hostile_seeds() -> list[bytes]:
    """Events whose strings hold `},{` (and its escaped and spaced forms), and nesting near and past the limit."""
    ev = b'{"ph": "X", "cat": "cpu_op", "name": %s, "pid": 1, "tid": 2, "ts": 1.5, "dur": 2, "args": %s}'
    names = [b'"b},{c"', rb'"x\"},{\"y"', b'"}, {\"a\": 1}, {"', b'"' + b'\\"},{' * 300 + b'"',
             b'"[{\'role\': \'user\'}, {\'role\': \'assistant\'}]"', b'"}]}"']
    out = [ev % (n, b'{"k": "},{"}') + b", " + ev % (b'"op"', b"{}") for n in names]
    for d in (10, 200, 480, 520, 1000):
        out.append(ev % (b'"deep"', b'{"x": ' + b"[" * d + b"]" * d + b"}"))
        out.append(ev % (b'"deep"', b'{"x": ' + b'{"a": ' * d + b"1" + b"}" * d + b"}"))
    return out


def mutate(data: bytes, corpus: list[bytes], rng: random.Random) -> bytes:
    """One to four random edits: bytes, tokens, numbers, splices, truncation."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a bit
            p = rng.randrange(len(b))
            b[p] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a token
            b[pos:pos] = rng.choice(TOKENS)
        elif op == 2 and b:  # replace a span with a token
            e = min(len(b), pos + rng.randint(1, 12))
            b[pos:e] = rng.choice(TOKENS)
        elif op == 3 and b:  # delete a span
            del b[pos:pos + rng.randint(1, 16)]
        elif op == 4:  # replace a number
            nums = [m.span() for m in re.finditer(rb"-?[0-9][0-9.eE+-]*", b)]
            if nums:
                s, e = rng.choice(nums)
                b[s:e] = rng.choice([t for t in TOKENS if t[:1].isdigit() or t[:1] == b"-"] + [str(rng.getrandbits(70)).encode()])
        elif op == 5 and corpus:  # splice another input in
            o = rng.choice(corpus)
            s = rng.randrange(len(o) + 1)
            b[pos:] = o[s:s + rng.randint(1, 400)] + b[pos:pos + rng.randint(0, 400)]
        elif op == 6 and b:  # truncate
            del b[rng.randrange(len(b)):]
        elif op == 7 and b:  # duplicate a span
            e = min(len(b), pos + rng.randint(1, 64))
            b[pos:pos] = b[pos:e]
        elif op == 8 and b:  # a random byte
            b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b[:MAX_LEN])


class Finding(Exception):
    """A check failed on ``data``."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data[:200])
        self.data = data


class Target:
    """Runs one input through the scanner and the checks; raises on a mismatch.

    The differential check builds the msgspec path's columns with one DuckDB query, which costs far more
    than the scan (most of all under ASan), so accepted inputs are compared in batches of :data:`BATCH`
    (events are independent rows: the batch's columns are the inputs' columns one after another); a failing
    batch is compared again input by input to name the input.
    """

    BATCH = 256

    def __init__(self) -> None:
        self.reader = kineto.KinetoReader("fuzz.json")
        self.cols = kineto._Columns("t", self.reader.notes)
        self.accepted = 0
        self.compared = 0
        self.pending: list[tuple[bytes, dict]] = []

    def flush(self) -> None:
        """Differential check of the pending accepted inputs."""
        import pyarrow as pa

        batch, self.pending = self.pending, []
        if not batch:
            return
        got = {k: pa.concat_arrays([g[k] for _, g in batch]) for k in batch[0][1]}
        try:
            _compare_run(b",".join(d for d, _ in batch), got, self.reader, self.cols)
        except Exception:  # noqa: BLE001
            for d, g in batch:
                try:
                    _compare_run(d, g, self.reader, self.cols)
                except Exception as e:  # noqa: BLE001
                    raise Finding(d) from e
            raise Finding(b",".join(d for d, _ in batch)) from None
        self.compared += len(batch)

    def split(self, data: bytes) -> None:
        """The structure splitter (``_kscan.split``) on ``data`` in two chunks, both modes: no crash, the same
        answers as the pure-Python twin, and on a valid JSON list body its boundaries are the elements."""
        cut = len(data) // 3
        for mode in (kscan.EVENTS, kscan.HEAD):
            res = []
            for impl in (kscan._kscan.split, lambda c, *a: kscan._py_split(bytes(c), *a)):
                st, got = None, []
                for base, chunk in ((0, data[:cut]), (cut, data[cut:])):
                    st, ce, cn, code, at = impl(chunk, base, st, mode, 0)
                    got.append((ce, cn, code, at))
                    if code:
                        break
                res.append((got, st))
            assert res[0] == res[1], ("C and Python splitters differ", mode, res)
        try:
            want = json.loads(b"[" + data + b"]")
        except (ValueError, RecursionError):
            return
        parts, st, pos = [], None, 0
        while pos < len(data):
            st, end, nxt, code, _ = kscan._kscan.split(data[pos:], pos, st, kscan.EVENTS, 1)
            if code == kscan.TOO_DEEP:
                return
            assert code in (kscan.BOUNDARY, kscan.CONSUMED), ("valid JSON split as damaged", code)
            if code != kscan.BOUNDARY:
                parts.append(data[pos:])
                break
            parts.append(data[pos:end])
            pos = nxt
        assert [json.loads(x) for x in parts if x.strip()] == want, "boundaries are not the elements"

    def __call__(self, data: bytes) -> None:
        self.split(data)
        raw = kscan._kscan.scan(data)
        spans = kscan.runs(data)
        last = 0
        for a, b, cols in spans:
            assert last <= a < b <= len(data), ("runs out of order", spans)
            last = b
            if cols is not None:
                alone = kscan.scan_block(data[a:b])
                assert alone is not None, ("a supported run does not scan alone", a, b)
                for k in cols:
                    assert cols[k].equals(alone[k]), ("run columns differ when scanned alone", k)
        if raw is None:
            return
        self.accepted += 1
        got = kscan._columns(raw)
        if not len(got["ph"]):
            return
        # the scanner accepted it: it is JSON, and the msgspec path must read the same columns
        json.loads(b"[" + data + b"]")
        self.pending.append((data, got))
        if len(self.pending) >= self.BATCH:
            self.flush()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds-per-file", type=int, default=25)
    ap.add_argument("--findings", type=Path, default=Path("kscan-findings"))
    ap.add_argument("--stats", type=Path, help="write the run's numbers as JSON here")
    ap.add_argument("--current", type=Path, help="file holding the input being run (left behind by a crash)")
    ap.add_argument("--corpus-out", type=Path, help="write the final corpus here (one file per input)")
    ap.add_argument("--replay", type=Path, help="run the inputs in this folder once each (no mutation), then stop")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    lib = ctypes.CDLL(kscan._kscan.__file__) if SO else None
    try:
        cmap = np.frombuffer((ctypes.c_ubyte * (1 << 16)).in_dll(lib, "kfuzz_map"), np.uint8) if lib else None
    except ValueError:  # a build without cov.c (the gcov build of build.py --gcov)
        lib = cmap = None
    seen = np.zeros(1 << 16, bool)
    cur = os.open(a.current, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644) if a.current else None
    target = Target()
    corpus = seeds(a.seeds_per_file, rng) if a.replay is None else [p.read_bytes() for p in sorted(a.replay.iterdir())]
    n_seeds = len(corpus)
    if a.replay is not None:
        a.seconds = float("inf")
    queue = list(corpus)
    execs = 0
    start = time.monotonic()
    stop = start + a.seconds
    while True:
        done = time.monotonic() >= stop or (a.replay is not None and not queue)
        data = b"" if done else queue.pop() if queue else mutate(rng.choice(corpus), corpus, rng)
        if cur is not None:
            os.ftruncate(cur, 0)
            os.pwrite(cur, data, 0)
        if lib is not None:
            lib.kfuzz_reset()
        try:
            if done:
                target.flush()  # the last accepted inputs' differential check
                break
            target(data)
        except Exception as e:  # noqa: BLE001  (any exception is a finding; the input is kept)
            bad = e.data if isinstance(e, Finding) else data
            a.findings.mkdir(parents=True, exist_ok=True)
            (a.findings / f"finding-{execs}.json").write_bytes(bad)
            print(f"FINDING after {execs} execs: {bad[:300]!r}\n{traceback.format_exc()}", file=sys.stderr)
            return 1
        execs += 1
        if cmap is not None:
            hit = cmap != 0
            new = hit & ~seen
            if new.any():
                seen |= hit
                if execs > n_seeds:
                    corpus.append(data)
    if a.corpus_out:
        a.corpus_out.mkdir(parents=True, exist_ok=True)
        for i, d in enumerate(corpus):
            (a.corpus_out / f"{i:06d}.json").write_bytes(d)
    stats = {"execs": execs, "seconds": round(time.monotonic() - start, 1), "seeds": n_seeds,
             "corpus": len(corpus), "edges": int(seen.sum()), "accepted": target.accepted,
             "compared": target.compared, "findings": 0, "sanitized": cmap is not None}
    print(json.dumps(stats))
    if a.stats:
        a.stats.write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
