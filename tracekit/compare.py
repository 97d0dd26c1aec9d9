"""Put labelled runs side by side: ``compare`` (N runs, a sweep) and ``diff`` (A vs B, a CI gate).

Every number comes from ``queries/lib/run_metrics.sql`` (one run's metrics, run once per label
with the views over that run's files only, so two runs may hold same-named traces),
``queries/compare.sql`` (the label x metric matrix) and ``queries/diff.sql`` (deltas, moved
kernels, the gate). This module parses ``--fail-if`` conditions and runs those files; the pages,
tables and JSON of the results are :mod:`tracekit.view.compare`'s.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tracekit import noise
from tracekit import report as rep
from tracekit.errors import TraceError
from tracekit.store import connect_runs

Paths = Sequence[str | os.PathLike[str]]
Run = tuple[str, Paths]

GATE_HELP = """\
Gate conditions (--fail-if, repeatable): METRIC OP THRESHOLD [@LEVEL], OP one of > >= < <=.
METRIC is NAME.MEASURE as in the metric column of --json: run.wall_ms, step.wall_ms,
step.gpu_busy_ms, <phase>.ms_per_step, <phase>.gpu_ms_per_step, <phase>.incl_gpu_ms_per_step,
tokens.ms_per_accepted, kernel:<name>.total_ms, ...
THRESHOLD: +5% / -10% = relative change (B-A)/A; 5ms / 200us / 1s / 300ns = absolute change of
a time metric; x1.2 = ratio B/A; a plain number = absolute change in the metric's unit.
@LEVEL (e.g. @95, with +N% or xR thresholds, on step and phase metrics): noise-aware. The change
is the ratio of the per-step medians (warm-up steps dropped, --warmup) and the condition holds
only when its whole bootstrap interval at LEVEL% does (> +5% @95: the lower end is above +5%);
otherwise the gate line says "within noise".
Example: --fail-if "draft.gpu_ms_per_step > +5% @95" --fail-if "kernel:my_gemm.count > 0".
A condition that holds prints one line and exits 1; a malformed one or an unknown metric exits 2."""

_COND = re.compile(r"^\s*(?P<metric>.*\S)\s*(?P<op>>=|<=|>|<)\s*(?P<thr>[^\s@]+)\s*(?:@\s*(?P<level>\S+))?\s*$")
_PCT = re.compile(r"^[+-]?\d+(\.\d*)?%$")
_RATIO = re.compile(r"^x\d+(\.\d*)?$")
_TIME = re.compile(r"^(?P<v>[+-]?\d+(\.\d*)?)(?P<u>ns|us|µs|ms|s)$")
_NUM = re.compile(r"^[+-]?\d+(\.\d*)?$")
_MS_PER = {"ns": 1e-6, "us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1e3}


@dataclass(frozen=True)
class Condition:
    """One parsed ``--fail-if`` condition; ``threshold`` is in the unit ``mode`` compares."""

    condition: str
    metric: str
    op: str
    mode: str  # rel | ratio | abs | abs_time (ms)
    threshold: float
    level: float | None = None  # @95 -> 0.95: noise-aware (bootstrap interval of the ratio of medians)


def parse_condition(text: str) -> Condition:
    """``"draft.ms_per_step > +5%"`` -> Condition; a malformed condition is a TraceError."""
    m = _COND.match(text)
    if not m or "." not in m["metric"] or m["metric"][-1] in "<>=!":
        raise TraceError(
            "--fail-if", f"cannot read {text!r}: expected METRIC OP THRESHOLD, e.g. 'draft.ms_per_step > +5%'"
        )
    thr = m["thr"]
    if _PCT.match(thr):
        mode, value = "rel", float(thr[:-1]) / 100
    elif _RATIO.match(thr):
        mode, value = "ratio", float(thr[1:])
    elif t := _TIME.match(thr):
        mode, value = "abs_time", float(t["v"]) * _MS_PER[t["u"]]
    elif _NUM.match(thr):
        mode, value = "abs", float(thr)
    else:
        raise TraceError(
            "--fail-if", f"cannot read threshold {thr!r} in {text!r}: use +5%, 5ms, 200us, x1.2 or a number"
        )
    level = None
    if m["level"] is not None:
        if not _NUM.match(m["level"].rstrip("%")) or not 50 <= float(m["level"].rstrip("%")) < 100:
            raise TraceError(
                "--fail-if", f"cannot read level @{m['level']} in {text!r}: use a confidence in percent, e.g. @95"
            )
        if mode not in ("rel", "ratio"):
            raise TraceError(
                "--fail-if",
                f"{text!r}: @LEVEL compares the ratio of medians: give a relative (+5%) or ratio (x1.05) threshold",
            )
        level = float(m["level"].rstrip("%")) / 100
    return Condition(text.strip(), m["metric"], m["op"], mode, value, level)


def parse_runs(args: Sequence[str]) -> list[tuple[str, list[str]]]:
    """``--label k=2 a.parquet --label k=3 b.parquet`` -> [(label, paths)]; an unlabelled path is its own run."""
    runs: list[tuple[str, list[str]]] = []
    current: list[str] | None = None
    it = iter(args)
    for tok in it:
        if tok == "--label" or tok.startswith("--label="):
            label = tok.partition("=")[2] if "=" in tok else next(it, None)
            if not label:
                raise TraceError("--label", "needs a value, e.g. --label k=2 run.parquet")
            current = []
            runs.append((label, current))
        elif tok.startswith("-"):
            raise TraceError(tok, "unknown option (see --help)")
        elif current is not None:
            current.append(tok)
        else:
            name = Path(tok).name
            runs.append((name.removesuffix(".parquet").removesuffix(".json.gz"), [tok]))
    for label, paths in runs:
        if not paths:
            raise TraceError(f"--label {label}", "no trace follows the label")
    return runs


def _run_one(index: int, label: str, paths: Paths, params: Mapping[str, Any], timings: dict[str, float] | None) -> Any:
    """One run's ``run_metrics`` and ``run_metrics_step_values`` rows (Arrow), computed in a connection of its own."""
    t0 = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    connect_runs([(label, paths)], con=con)
    con.execute(f"SET VARIABLE label = {rep._sql_literal(label)}")
    con.execute(f"SET VARIABLE label_index = {index}")
    rep.prepare(con, ["lib/run_metrics"], **params)  # and the modules its @requires line names, as report does
    out = (
        con.sql("SELECT * FROM run_metrics").to_arrow_table(),
        con.sql("SELECT * FROM run_metrics_step_values").to_arrow_table(),
    )
    con.close()
    if timings is not None:
        timings[f"run {label}"] = time.perf_counter() - t0
    return out


def collect(
    runs: Sequence[Run],
    con: duckdb.DuckDBPyConnection | None = None,
    timings: dict[str, float] | None = None,
    **params: Any,
) -> duckdb.DuckDBPyConnection:
    """Run ``lib/run_metrics.sql`` once per run; the connection then holds the table ``run_metrics``.

    Runs are computed side by side, each in its own DuckDB connection: many of the per-run
    statements are window functions over one (trace, device) partition, which DuckDB runs on
    one thread, so two runs at once use both cores of a small machine (measured in BENCHMARKS.md).
    """
    labels = [label for label, _ in runs]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise TraceError("--label", f"label {dup[0]!r} given twice: every run needs its own label")
    if not runs:
        raise TraceError("runs", "no run given")
    con = con or duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    rep.set_params(con, params)  # diff.sql reads top_n
    workers = max(1, min(len(runs), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_one, i, label, paths, params, timings) for i, (label, paths) in enumerate(runs)]
        tables = [f.result() for f in futures]
    for j, name in enumerate(("run_metrics", "run_metrics_step_values")):
        for i, t in enumerate(tables):
            con.register(f"_{name}_{i}", t[j])
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS "
            + " UNION ALL BY NAME ".join(f"SELECT * FROM _{name}_{i}" for i in range(len(tables)))
        )
        for i in range(len(tables)):
            con.unregister(f"_{name}_{i}")
    return con


def compare(
    runs: Sequence[Run], con: duckdb.DuckDBPyConnection | None = None, **params: Any
) -> dict[str, pd.DataFrame]:
    """``compare.sql`` over labelled runs: ``compare`` (long), ``compare.sweep``, ``compare.phases``, ``compare.noise``."""
    con = collect(runs, con=con, **params)
    noise.attach(con)
    return rep.run_file(con, "compare")


def diff(
    a: Paths | str,
    b: Paths | str,
    conditions: Sequence[str] = (),
    labels: tuple[str, str] = ("A", "B"),
    con: duckdb.DuckDBPyConnection | None = None,
    timings: dict[str, float] | None = None,
    **params: Any,
) -> dict[str, pd.DataFrame]:
    """``diff.sql`` of run B against baseline A: ``diff``, ``diff.kernels``, ``diff.new_vanished``, ``diff.gate``.

    ``conditions`` are ``--fail-if`` strings; malformed ones or unknown metrics raise TraceError
    (before anything is printed); :func:`fired` lists the ones that hold.
    """
    conds = [parse_condition(c) for c in conditions]
    runs = [
        (labels[0], [a] if isinstance(a, (str, os.PathLike)) else list(a)),
        (labels[1], [b] if isinstance(b, (str, os.PathLike)) else list(b)),
    ]
    con = collect(runs, con=con, timings=timings, **params)
    t0 = time.perf_counter()
    noise.attach(con, levels={noise.LEVEL, *(c.level for c in conds if c.level is not None)})
    if timings is not None:
        timings["noise (bootstrap)"] = time.perf_counter() - t0
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _conditions (seq INTEGER, condition VARCHAR, metric VARCHAR, "
        "op VARCHAR, mode VARCHAR, threshold DOUBLE, level DOUBLE)"
    )
    if conds:
        con.executemany(
            "INSERT INTO _conditions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, c.condition, c.metric, c.op, c.mode, c.threshold, c.level) for i, c in enumerate(conds)],
        )
    out = rep.run_file(con, "diff")  # compare.sql's set-up first: diff.sql's @requires
    if timings is not None:
        timings["compare.sql set-up + diff.sql"] = time.perf_counter() - t0
    bad = out["diff.gate"].dropna(subset=["error"])
    if len(bad):
        raise TraceError("--fail-if", str(bad["reason"].iloc[0]))
    return out


def fired(results: Mapping[str, pd.DataFrame]) -> list[str]:
    """One line per gate condition that holds (from diff.sql's ``gate`` output)."""
    g = results.get("diff.gate")
    if g is None or not len(g):
        return []
    return [str(r) for r in g.loc[g["fired"].fillna(False).astype(bool), "reason"]]
