"""Show that two code trees give the same ``tracekit report`` output, byte for byte, on every input.

Usage: python bench/check_report_same.py OLD_TREE NEW_TREE [INPUT ...] [--modes json,term,full,html] [--raw]

For each input (default: every ``/tmp/conv/*.parquet`` and every ``samples/traces/*/parquet`` folder)
and each mode, runs ``python -m tracekit report`` once with ``PYTHONPATH=OLD_TREE`` and once with
``PYTHONPATH=NEW_TREE`` (fresh processes, each in its own empty working folder so the relative output
names the commands print are the same) and compares:

- ``json``: stdout of ``report --json``;
- ``term``: stdout of ``report`` (the per-step headline, ``--width 120``);
- ``full``: stdout of ``report --full --width 160`` (every table);
- ``html``: ``report --html r.html``: its stdout, the page's bytes, and the median step export
  (``r.median_step*.json.gz``) decompressed (the gzip header and the compressor's choices are not the
  export's content: only the JSON inside is compared), plus the list of files written;
- ``htmljson``: ``report --json --html r.html``: the JSON printed from the HTML path's DataFrames, and the page.

``--raw``: the inputs are raw traces (Kineto JSON, nsys SQLite): each run copies the input into its working folder
and reports the copy, so each tree converts it with its own converter (``report RAW``, the conversion cache
beside the copy, not compared): a change to the converter is checked through every report it feeds.

Nothing on the page depends on the clock (no date is written; matplotlib's PNGs carry no time stamp
in their metadata as tracekit saves them): a difference is a difference. When one shows, the
script runs the OLD tree a second time, to tell a change from run-to-run noise (multi-threaded
float sums), and says which. Exit status 1 when some input differs from OLD in a way OLD does not
differ from itself.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODES = {"json": ["--json"], "term": ["--width", "120"], "full": ["--full", "--width", "160"],
         "html": ["--html", "r.html"], "htmljson": ["--json", "--html", "r.html"]}


def inputs() -> list[str]:
    """The default inputs: converted shared traces, then the sample trace sets (one folder each)."""
    return sorted(glob.glob("/tmp/conv/*.parquet")) + sorted(
        str(p) for p in (ROOT / "samples" / "traces").glob("*/parquet") if p.is_dir())


def run(tree: str, trace: str, mode: str, raw: bool = False) -> dict[str, bytes]:
    """One report process of ``tree``: what it printed and (html) the files it wrote (``raw``: on a copy of
    ``trace`` in its working folder, converted by ``tree``)."""
    env = {**os.environ, "PYTHONPATH": tree}
    with tempfile.TemporaryDirectory(prefix="tk_same_") as cwd:
        skip = set()
        if raw:
            skip = {Path(trace).name, Path(trace).name + ".tracekit.parquet"}
            shutil.copy(trace, cwd)
            trace = Path(trace).name
        p = subprocess.run([sys.executable, "-m", "tracekit", "report", trace, *MODES[mode]], cwd=cwd, env=env,
                           capture_output=True)
        out = {"rc": str(p.returncode).encode(), "stdout": p.stdout, "stderr": p.stderr}
        for f in sorted(Path(cwd).iterdir()):
            if f.name in skip:
                continue
            data = f.read_bytes()
            out[f"file {f.name}"] = gzip.decompress(data) if f.name.endswith(".gz") else data
        return out


def diff(a: dict[str, bytes], b: dict[str, bytes]) -> list[str]:
    """Names of the parts that differ."""
    return [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("inputs", nargs="*")
    ap.add_argument("--modes", default="json,term,full,html,htmljson")
    ap.add_argument("--raw", action="store_true", help="raw traces: each tree converts its own copy")
    a = ap.parse_args()
    modes = a.modes.split(",")
    bad = 0
    items = [str(Path(t).resolve()) for t in a.inputs] or inputs()
    for trace in items:
        res = []
        for mode in modes:
            old, new = run(a.old, trace, mode, a.raw), run(a.new, trace, mode, a.raw)
            d = diff(old, new)
            if old["rc"] != b"0":
                bad += 1
                res.append(f"{mode} exit {old['rc'].decode()}: {old['stderr'].decode(errors='replace').strip()[-200:]}")
            elif not d:
                res.append(f"{mode} same ({len(old['stdout']) + sum(len(v) for k, v in old.items() if k.startswith('file'))} B)")
                continue
            noise = diff(old, run(a.old, trace, mode, a.raw))
            if set(d) <= set(noise):
                res.append(f"{mode} DIFFERS in {d}, but OLD differs from itself there too ({noise})")
            else:
                bad += 1
                res.append(f"{mode} DIFFERS in {d}")
        name = Path(trace).name if trace.endswith(".parquet") or a.raw else Path(trace).parent.name
        print(f"{name}: " + "; ".join(res), flush=True)
    print(f"{len(items)} inputs x {len(modes)} modes: {'all identical' if not bad else f'{bad} differ'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
