"""The first answer from a raw Kineto trace: ``tracekit report RAW --json`` against Holistic Trace Analysis.

Issue 25 compares what a user waits for, as whole processes: tracekit converting a raw trace it has
never seen (a fresh copy each round, so the conversion cache never answers) and running its
analyses, against HTA parsing the same file and computing its temporal, kernel, idle-time and
communication/computation breakdowns in one process. Rounds alternate the two tools so that load
changes hit both; each run's wall time, CPU time and peak RSS come from ``/usr/bin/time``.

HTA lives in its own interpreter (``--hta-python``, e.g. a venv with ``pip install .[bench]`` or
``pip install holistictraceanalysis``); tracekit runs from ``--tree`` (default: this checkout) with
``--python``.

    python bench/bench_vs_hta.py TRACE.json.gz [TRACE2 ...] --rounds 5 --hta-python /tmp/htaenv/bin/python

``--floor PARQUET`` also times, in the same rounds (first tree), what bounds tracekit's side from below: ``convert``
alone (the copy to Parquet, as a whole process) and ``report PARQUET --json`` on an already converted tiny trace
(e.g. nsys-ai's ``mock``, 536 events: the report's fixed cost, its ~200 DuckDB statements planned and run on
almost no rows). Their sum less one interpreter start-up and import (``python -c "import duckdb"``, also timed)
is a floor for ``report RAW``; set beside HTA's time it says which ratios this design can reach (issue 25 item 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# What HTA computes for its first answer: parse, then the four breakdowns a user asks for first.
HTA_SCRIPT = r"""
import sys, warnings, logging
warnings.filterwarnings("ignore")
logging.disable(logging.CRITICAL)
from hta.trace_analysis import TraceAnalysis
a = TraceAnalysis(trace_dir=sys.argv[1])
# Each breakdown runs even when another raised: HTA 0.5.0 asserts in get_temporal_breakdown on some real
# traces (non_compute_time >= 0) and raises in get_comm_comp_overlap without communication; the time
# spent up to the error still counts, and the failures are reported on stderr.
for name in ("get_temporal_breakdown", "get_gpu_kernel_breakdown", "get_idle_time_breakdown",
             "get_comm_comp_overlap"):
    try:
        getattr(a, name)(visualize=False)
    except Exception as e:
        print(f"HTA {name}: {type(e).__name__}", file=sys.stderr)
"""


def timed(cmd: list[str], env: dict[str, str] | None = None, notes: set[str] | None = None) -> tuple[float, float, int]:
    """Run ``cmd`` under /usr/bin/time: (wall s, user+sys CPU s, peak RSS MB). Fails loudly on a non-zero exit;
    stderr lines starting with ``HTA `` (a breakdown that raised) are added to ``notes``."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        full = ["/usr/bin/time", "-o", tf.name, "-f", "%e %U %S %M", *cmd]
        r = subprocess.run(full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True)
        if r.returncode != 0:
            raise SystemExit(f"{cmd[:3]} failed ({r.returncode}): {r.stderr[-400:]}")
        wall, user, sys_, rss = tf.read().split()[-4:]
    if notes is not None:
        notes.update(ln for ln in r.stderr.splitlines() if ln.startswith("HTA "))
    return float(wall), float(user) + float(sys_), int(rss) // 1024


def fresh_copy(trace: Path, root: Path) -> Path:
    """A copy of ``trace`` in a new folder (HTA reads a folder; tracekit must not find a cached conversion)."""
    d = Path(tempfile.mkdtemp(dir=root))
    dst = d / trace.name
    shutil.copyfile(trace, dst)
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("traces", type=Path, nargs="+")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--hta-python", required=True, help="an interpreter with holistictraceanalysis installed")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs tracekit")
    ap.add_argument("--tree", type=Path, action="append",
                    help="tracekit source tree (PYTHONPATH; default this checkout); repeat to time several, interleaved")
    ap.add_argument("--floor", type=Path, help="a converted tiny trace: also time convert alone and its report")
    a = ap.parse_args()
    trees = a.tree or [ROOT]
    envs = {f"tk{i}" if len(trees) > 1 else "tracekit": dict(os.environ, PYTHONPATH=str(t.resolve()))
            for i, t in enumerate(trees)}
    load = os.getloadavg()[0]
    print(f"load average at start {load:.1f}; {a.rounds} rounds; tracekit trees "
          + ", ".join(f"{k}={t}" for k, t in zip(envs, trees)))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        for env in envs.values():
            env["XDG_CACHE_HOME"] = str(scratch / "xdg")  # a cache outside the copies is never hit either
        hta_py = scratch / "hta_first_answer.py"
        hta_py.write_text(HTA_SCRIPT)
        for trace in a.traces:
            res: dict[str, list[tuple[float, float, int]]] = {**{k: [] for k in envs}, "hta": []}
            if a.floor:
                res |= {"convert": [], "floor": [], "import": []}
            notes: set[str] = set()
            for _ in range(a.rounds):
                for k, env in envs.items():
                    tk_copy = fresh_copy(trace, scratch)
                    res[k].append(timed([a.python, "-m", "tracekit", "report", str(tk_copy), "--json"], env))
                if a.floor:
                    env0 = next(iter(envs.values()))
                    tk_copy = fresh_copy(trace, scratch)
                    res["convert"].append(
                        timed([a.python, "-m", "tracekit", "convert", str(tk_copy), "-o", str(tk_copy) + ".pq"], env0))
                    res["floor"].append(timed([a.python, "-m", "tracekit", "report", str(a.floor), "--json"], env0))
                    res["import"].append(timed([a.python, "-c", "import duckdb"], env0))
                hta_copy = fresh_copy(trace, scratch)
                res["hta"].append(timed([a.hta_python, str(hta_py), str(hta_copy.parent)], notes=notes))
            mb = trace.stat().st_size / 1e6
            print(f"\n{trace.name} ({mb:.1f} MB on disk)")
            print(f"{'tool':10} {'wall min':>9} {'median':>8} {'max':>8} {'CPU med':>8} {'RSS MB':>7}")
            for tool, rows in res.items():
                walls = [r[0] for r in rows]
                print(f"{tool:10} {min(walls):9.2f} {statistics.median(walls):8.2f} {max(walls):8.2f} "
                      f"{statistics.median(r[1] for r in rows):8.2f} {max(r[2] for r in rows):7d}")
            for k in envs:
                ratios = [h[0] / t[0] for t, h in zip(res[k], res["hta"])]
                print(f"HTA / {k} wall per round: " + ", ".join(f"{r:.2f}" for r in ratios)
                      + f" (median {statistics.median(ratios):.2f}x)")
            if a.floor:
                med = {k: statistics.median(r[0] for r in res[k]) for k in ("convert", "floor", "import", "hta")}
                bound = med["convert"] + med["floor"] - med["import"]
                print(f"floor of report RAW: convert {med['convert']:.2f} + tiny report {med['floor']:.2f} - import "
                      f"{med['import']:.2f} = {bound:.2f} s (medians): at most {med['hta'] / bound:.2f}x HTA's "
                      f"{med['hta']:.2f} s; 3x needs {med['hta'] / 3:.2f} s, 10x {med['hta'] / 10:.2f} s")
            for n in sorted(notes):
                print(f"  {n} raised (its time up to the error counts)")
    print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
