"""Put labelled runs side by side: ``compare`` (N runs, a sweep) and ``diff`` (A vs B, a CI gate).

Every number comes from ``queries/lib/run_metrics.sql`` (one run's metrics, run once per label
with the views over that run's files only, so two runs may hold same-named traces),
``queries/compare.sql`` (the label x metric matrix) and ``queries/diff.sql`` (deltas, moved
kernels, the gate). This module parses ``--fail-if`` conditions, runs those files and renders.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from tracekit import noise
from tracekit import report as rep
from tracekit.errors import TraceError
from tracekit.store import connect_runs
from tracekit.view.html import html_table

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



def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files, no display), imported only when a compare/diff page is drawn,
    with mathtext off: names from a trace are text, never ``$...$`` math (the report page draws SVG itself:
    tracekit.view.plots)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def png(fig: Any) -> str:
    """``fig`` as a base64 PNG data URI (closed afterwards)."""
    import base64
    import io

    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

def parse_condition(text: str) -> Condition:
    """``"draft.ms_per_step > +5%"`` -> Condition; a malformed condition is a TraceError."""
    m = _COND.match(text)
    if not m or "." not in m["metric"] or m["metric"][-1] in "<>=!":
        raise TraceError("--fail-if", f"cannot read {text!r}: expected METRIC OP THRESHOLD, e.g. 'draft.ms_per_step > +5%'")
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
        raise TraceError("--fail-if", f"cannot read threshold {thr!r} in {text!r}: use +5%, 5ms, 200us, x1.2 or a number")
    level = None
    if m["level"] is not None:
        if not _NUM.match(m["level"].rstrip("%")) or not 50 <= float(m["level"].rstrip("%")) < 100:
            raise TraceError("--fail-if", f"cannot read level @{m['level']} in {text!r}: use a confidence in percent, e.g. @95")
        if mode not in ("rel", "ratio"):
            raise TraceError("--fail-if", f"{text!r}: @LEVEL compares the ratio of medians: give a relative (+5%) or ratio (x1.05) threshold")
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
    out = (con.sql("SELECT * FROM run_metrics").to_arrow_table(), con.sql("SELECT * FROM run_metrics_step_values").to_arrow_table())
    con.close()
    if timings is not None:
        timings[f"run {label}"] = time.perf_counter() - t0
    return out


def collect(runs: Sequence[Run], con: duckdb.DuckDBPyConnection | None = None,
            timings: dict[str, float] | None = None, **params: Any) -> duckdb.DuckDBPyConnection:
    """Run ``lib/run_metrics.sql`` once per run; the connection then holds the table ``run_metrics``.

    Runs are computed side by side, each in its own DuckDB connection: many of the per-run
    statements are window functions over one (trace, device) partition, which DuckDB runs on
    one thread, so two runs at once use both cores of a small machine (measured in BENCHMARKS.md).
    """
    from concurrent.futures import ThreadPoolExecutor

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
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                    + " UNION ALL BY NAME ".join(f"SELECT * FROM _{name}_{i}" for i in range(len(tables))))
        for i in range(len(tables)):
            con.unregister(f"_{name}_{i}")
    return con


def compare(runs: Sequence[Run], con: duckdb.DuckDBPyConnection | None = None, **params: Any) -> dict[str, pd.DataFrame]:
    """``compare.sql`` over labelled runs: ``compare`` (long), ``compare.sweep``, ``compare.phases``, ``compare.noise``."""
    con = collect(runs, con=con, **params)
    noise.attach(con)
    return rep.run_file(con, "compare")


def diff(a: Paths | str, b: Paths | str, conditions: Sequence[str] = (), labels: tuple[str, str] = ("A", "B"),
         con: duckdb.DuckDBPyConnection | None = None, timings: dict[str, float] | None = None,
         **params: Any) -> dict[str, pd.DataFrame]:
    """``diff.sql`` of run B against baseline A: ``diff``, ``diff.kernels``, ``diff.new_vanished``, ``diff.gate``.

    ``conditions`` are ``--fail-if`` strings; malformed ones or unknown metrics raise TraceError
    (before anything is printed); :func:`fired` lists the ones that hold.
    """
    conds = [parse_condition(c) for c in conditions]
    runs = [(labels[0], [a] if isinstance(a, (str, os.PathLike)) else list(a)),
            (labels[1], [b] if isinstance(b, (str, os.PathLike)) else list(b))]
    con = collect(runs, con=con, timings=timings, **params)
    t0 = time.perf_counter()
    noise.attach(con, levels={noise.LEVEL, *(c.level for c in conds if c.level is not None)})
    if timings is not None:
        timings["noise (bootstrap)"] = time.perf_counter() - t0
    con.execute("CREATE OR REPLACE TEMP TABLE _conditions (seq INTEGER, condition VARCHAR, metric VARCHAR, "
                "op VARCHAR, mode VARCHAR, threshold DOUBLE, level DOUBLE)")
    if conds:
        con.executemany("INSERT INTO _conditions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(i, c.condition, c.metric, c.op, c.mode, c.threshold, c.level) for i, c in enumerate(conds)])
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


# ----------------------------------------------------------------------------- rendering

def phase_table(results: Mapping[str, pd.DataFrame], measure: str = "ms_per_step") -> pd.DataFrame:
    """``compare.phases`` as phases x labels (display only: the numbers are compare.sql's)."""
    ph = results.get("compare.phases", pd.DataFrame())
    if not len(ph):
        return pd.DataFrame()
    order = list(dict.fromkeys(ph.sort_values("label_index")["label"]))
    wide = ph.pivot_table(index="phase", columns="label", values=measure, aggfunc="first", sort=False, dropna=False)
    return wide.reindex(columns=order).reset_index().rename_axis(columns=None)


def print_results(results: Mapping[str, pd.DataFrame], limit: int = 40, width: int | None = None) -> None:
    """Terminal tables at the terminal's width (80 when piped; see tracekit.view.terminal). The long
    ``compare`` table is left to --json."""
    import sys

    from tracekit.view.model import table
    from tracekit.view.terminal import join_lines, table_lines, terminal_width

    w = terminal_width(width)
    blocks = []
    for key, df in results.items():
        if key in ("compare", "diff.gate", "compare.step_values"):
            continue
        if key == "compare.phases":
            blocks.append(table_lines(table(key, phase_table(results), limit=limit,
                                            title="per-step ms by phase (compare.phases)"), w))
            continue
        if key == "diff":  # metric already says scope.name.measure; --json has numerator / denominator
            df = df.drop(columns=["scope", "name", "measure", "numerator", "denominator"])
        blocks.append(table_lines(table(key, df, limit=limit), w))
    sys.stdout.write("\n".join(join_lines(blocks)) + "\n")


def _diff_plot(results: Mapping[str, pd.DataFrame]) -> tuple[str, str | None, str]:
    plt = pyplot()

    d = results["diff"]
    d = d[d["measure"] == "ms_per_step"].head(15)
    title = "Per-step ms by phase, A vs B"
    if not len(d):
        return title, None, "no phase inside steps in A or B"
    fig, ax = plt.subplots(figsize=(9, 0.8 + 0.35 * len(d)))
    y = range(len(d))
    ax.barh([i - 0.2 for i in y], d["a"], height=0.4, label="A")
    ax.barh([i + 0.2 for i in y], d["b"], height=0.4, label="B")
    ax.set_yticks(list(y), [str(n)[-50:] for n in d["name"]])
    ax.invert_yaxis()
    ax.set_xlabel("ms per step (CPU range time)")
    ax.legend()
    return title, png(fig), "ms_per_step of the 15 largest phases"


def _plot(results: Mapping[str, pd.DataFrame]) -> tuple[str, str | None, str]:
    plt = pyplot()

    ph = results.get("compare.phases", pd.DataFrame())
    sw = results.get("compare.sweep", pd.DataFrame())
    title = "Per-step ms by phase across runs"
    if not len(ph):
        return title, None, "no phase inside steps in any run"
    labels = list(sw["label"]) if len(sw) else list(dict.fromkeys(ph["label"]))
    fig, ax = plt.subplots(figsize=(9, 4))
    for phase, sub in ph.groupby("phase", sort=False):
        sub = sub.set_index("label").reindex(labels)
        ax.plot(range(len(labels)), sub["ms_per_step"], marker="o", label=str(phase)[-50:])
    if len(sw):
        ax.plot(range(len(labels)), sw["step_wall_ms"], marker="s", color="black", linestyle="--", label="step wall")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("ms per step (CPU range time)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return title, png(fig), "ms_per_step of the 12 largest phases and the step wall time, per run"


def _noise_plot(results: Mapping[str, pd.DataFrame]) -> tuple[str, str | None, str]:
    """Per label: ratio of per-step medians to the baseline with its 95% interval (compare.noise)."""
    from matplotlib.ticker import NullFormatter

    plt = pyplot()

    nz = results.get("compare.noise", pd.DataFrame())
    title = "Ratio of per-step medians to the baseline (95% bootstrap interval)"
    if not len(nz) or nz["ci_lo"].isna().all():
        return title, None, "no run has enough steps after the warm-up for an interval"
    top = list(dict.fromkeys(["step.wall_ms", "step.gpu_busy_ms", *nz.loc[nz["metric"].str.endswith(".ms_per_step")]
                              .groupby("metric")["ratio"].apply(lambda r: float(np.nanmax(np.abs(np.log(r.to_numpy(dtype=float))))) if r.notna().any() else 0.0)
                              .sort_values(ascending=False).index[:4]]))
    top = [m for m in top if m in set(nz["metric"])]
    labels = list(dict.fromkeys(nz.sort_values("label_index")["label"]))
    fig, ax = plt.subplots(figsize=(9, 4))
    for j, m in enumerate(top):
        sub = nz[nz["metric"] == m].set_index("label").reindex(labels)
        x = [i + (j - len(top) / 2) * 0.08 for i in range(len(labels))]
        err = [(sub["ratio"] - sub["ci_lo"]).clip(lower=0), (sub["ci_hi"] - sub["ratio"]).clip(lower=0)]
        ax.errorbar(x, sub["ratio"], yerr=err, fmt="o", capsize=3, label=str(m)[-50:])
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yscale("log")  # ratios: x2 and /2 are the same distance from 1
    lo, hi = ax.get_ylim()  # plain ratios on the axis (1.5, 2), not matplotlib's 2x10^0
    ticks = [t for t in (0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 4, 5, 10) if lo <= t <= hi]
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xticks(range(len(labels)), labels)
    ax.set_ylabel("median / baseline median (log scale)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return title, png(fig), ("each run against the first; bars: 95% interval; where a bar crosses 1 the change is "
                                   "within step-to-step noise")


def _dist_plot(results: Mapping[str, pd.DataFrame]) -> tuple[str, str | None, str]:
    """Per label: the distribution of step wall times after the warm-up (compare.step_values)."""
    plt = pyplot()

    sv = results.get("compare.step_values", pd.DataFrame())
    title = "Step wall time per run (distribution after the warm-up)"
    if not len(sv):
        return title, None, "no step after the warm-up in any run"
    labels = list(dict.fromkeys(sv.sort_values("label_index")["label"]))
    data = [sv.loc[sv["label"] == lb, "wall_ms"].to_numpy(dtype=float) for lb in labels]
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.boxplot(data, showmeans=True)
    for i, d in enumerate(data, start=1):
        ax.scatter(np.full(len(d), i) + np.linspace(-0.12, 0.12, len(d)) if len(d) > 1 else [i], d, s=6, alpha=0.5)
    ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.set_ylabel("step wall ms")
    return title, png(fig), "box: quartiles and median, triangle: mean, dots: every step"


def to_html(results: Mapping[str, pd.DataFrame], title: str) -> str:
    """A self-contained page: the per-phase plot (compare) and every table, names escaped."""
    import html

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             ("<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:12px}"
              "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;max-width:40em;overflow-wrap:anywhere}"
              "img{max-width:100%}</style></head><body>"),
             f"<h1>{html.escape(title)}</h1>"]
    lines = fired(results)
    if lines:
        parts.append("<h2>Gate fired</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    plots = [_plot, _noise_plot, _dist_plot] if "compare.phases" in results else [_diff_plot] if "diff" in results else []
    for plot in plots:
        ptitle, uri, note = plot(results)
        parts.append(f"<h2>{html.escape(ptitle)}</h2><p>{html.escape(note)}</p>")
        parts.append(f"<img class='plot' alt='{html.escape(ptitle)}' src='{uri}'>" if uri else "<p><em>no data</em></p>")
    for key, df in results.items():
        if key in ("compare", "compare.step_values"):
            continue
        shown = phase_table(results) if key == "compare.phases" else df
        parts.append(f"<h2>{html.escape(key)}</h2>" + html_table(shown, limit=200))
    parts.append("</body></html>")
    return "\n".join(parts)


def to_json(results: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """``{output name without the file prefix: records}`` plus ``fired`` (the gate lines that hold)."""
    doc: dict[str, Any] = {}
    for key, df in results.items():
        doc[key.partition(".")[2] or key] = rep.frame_records(df)
    doc["fired"] = fired(results)
    return doc
