"""Run the analyses in ``queries/`` and render them (terminal, JSON, HTML).

Every number comes from a SQL file in ``queries/``: this module only sets the
parameters, executes the files and formats their result sets, so an analysis
is defined exactly once (users can read or rerun the same SQL with
``tracekit sql``). A file is split into sections by ``-- @output NAME`` lines:
statements before the first marker are set-up (temp tables, macros), each
section is one SELECT whose result is returned under ``NAME`` (``file`` for the
section named like the file, ``file.NAME`` for the others). A ``-- @requires a b`` line
names the files whose set-up must run first (``headline`` reads ``steps``' and
``gpu_idle``'s tables); :func:`prepare` is the one place that loads ``_common.sql``, the
query variables and those set-ups, for ``report``, ``sql -f``/``--query``, ``compare``.
"""

from __future__ import annotations

import html
import io
import math
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tracekit.store import connect

from tracekit.resources import queries_dir  # noqa: E402  (wheel: tracekit/_queries; checkout: queries/)
QUERY_DIR = queries_dir()

#: Analyses in report order (each is ``queries/<name>.sql``); ``_common.sql`` is loaded first.
ANALYSES = ("headline", "summary", "kernels", "phase_time", "steps", "launch", "syncs", "gpu_idle", "lm_head", "flops", "tokens", "trust",
            "comm", "collectives")

#: Default of every DuckDB variable the queries read (``getvariable(name)``).
DEFAULTS: dict[str, Any] = {
    # ProfilerStep#N, SGLang step[MODE bs=N ...], vLLM execute_[B_]context_C(T)_generation_G(T) and
    # execute_new_N_cached_M, and ranges named step / decode_step / *_step (queries/_common.sql: _steps).
    "step_pattern": (r"ProfilerStep#\d+|step\[.*\]|step|decode_step|.*_step"
                     r"|execute_(\d+_)?context_\d+\(\d+\)_generation_\d+\(\d+\)|execute_new_\d+_cached_\d+"),
    "top_n": 50,
    "vocab": None,  # int; None = infer from GEMM shapes (the lm_head output says which)
    "lm_head_regex": r"(?i).*lm_head.*",
    "lm_head_kernel_regex": None,
    "host_busy_min_ns": 50_000,  # gpu_idle: launch started this long after the GPU went idle -> host_busy
    "idle_top_n": 20,  # gpu_idle.intervals: longest gaps listed per trace
    "sync_top_n": 50,  # syncs.calls: longest sync calls listed per trace (nsys analyze lists 50)
    "gpu": None,  # flops: GPU name matched against the peak table instead of the trace's (e.g. "H100 SXM")
    "peak_tflops": None,  # flops: one peak TFLOP/s for every dtype, overriding the table
    "peak_tb_s": None,  # flops: peak memory bandwidth in TB/s, overriding the table
    "tf32": False,  # flops: fp32 matmuls ran on TF32 tensor cores (compare with the tf32 peak, not fp32)
    "rank_align": "collective_end",  # collectives: shift each rank's clock so matched collectives end together; "none" = raw
    "tokens_per_step": None,  # flops: tokens one step processes (batch size x tokens per sequence), for GFLOPs per token
    "warmup_steps": 1,  # diff/compare noise statistics: first steps of each trace dropped (_run_metrics.sql run_step_values)
}

_OUTPUT = re.compile(r"^--\s*@output\s+([A-Za-z_][\w]*)\s*$", re.MULTILINE)
_REQUIRES = re.compile(r"^--\s*@requires\s+([\w ]+?)\s*$", re.MULTILINE)


@dataclass
class SqlFile:
    """One parsed query file: set-up statements and named output SELECTs."""

    name: str
    setup: str
    outputs: list[tuple[str, str]] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)


def parse_sql(path: Path) -> SqlFile:
    """Split ``path`` at its ``-- @output NAME`` markers."""
    text = path.read_text()
    parts = _OUTPUT.split(text)
    sf = SqlFile(path.stem, parts[0], requires=[r for m in _REQUIRES.findall(parts[0]) for r in m.split()])
    for i in range(1, len(parts), 2):
        sf.outputs.append((parts[i], parts[i + 1]))
    return sf


def _sql_literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def set_params(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Any]:
    """Set every query variable (defaults overridden by ``params``); returns the values used."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown report parameter(s): {', '.join(sorted(unknown))}")
    used = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    for k, v in used.items():
        lit = _sql_literal(v)
        if k == "vocab":  # typed even when NULL, so comparisons with dims bind as BIGINT
            lit = f"CAST({lit} AS BIGINT)"
        elif v is None:
            lit = "CAST(NULL AS VARCHAR)"
        con.execute(f"SET VARIABLE {k} = {lit}")
    return used


def _exec_script(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if sql.strip() and re.sub(r"--[^\n]*", "", sql).strip():
        con.execute(sql)


def list_queries(private: bool = False) -> list[str]:
    """The shipped query files by name, report analyses first in report order (helpers ``_*`` only if ``private``)."""
    names = sorted(p.stem for p in QUERY_DIR.glob("*.sql") if private or not p.stem.startswith("_"))
    return [n for n in ANALYSES if n in names] + [n for n in names if n not in ANALYSES]


#: Query files that need more than a trace (labelled runs, a slice, a reference): the verb that runs each.
VERB_OF = {"compare": "compare", "diff": "diff", "export_chrome": "export-chrome", "graph_map": "graphmap",
           "across_traces": "aggregate"}


def describe(name: str) -> str:
    """The first sentence of ``queries/<name>.sql``'s header comment (its first paragraph), without ``name:``."""
    lines = []
    for line in (QUERY_DIR / f"{name}.sql").read_text().splitlines():
        text = re.sub(r"^--\s?", "", line).strip() if line.startswith("--") else ""
        if not text or text.startswith("@"):
            break
        lines.append(text)
    return re.sub(r"^" + re.escape(name) + r"\s*:\s*", "", " ".join(lines))


def setup_file(con: duckdb.DuckDBPyConnection, name: str, done: set[str]) -> SqlFile:
    """Run the set-up of ``queries/<name>.sql`` (its ``@requires`` first) unless ``done`` has it."""
    sf = parse_sql(QUERY_DIR / f"{name}.sql")
    if name not in done:
        for req in sf.requires:
            setup_file(con, req, done)
        _exec_script(con, sf.setup)
        done.add(name)
    return sf


def prepare(con: duckdb.DuckDBPyConnection, requires: Iterable[str] = (), **params: Any) -> set[str]:
    """Make ``con`` (views already registered) ready for any query file: the variables at their defaults
    (overridden by ``params``), ``_common.sql``, then the set-up of each file in ``requires``.

    Returns the set of files whose set-up ran; pass it on to :func:`run_file` so none runs twice.
    """
    set_params(con, params)
    _exec_script(con, (QUERY_DIR / "_common.sql").read_text())
    done: set[str] = set()
    for name in requires:
        setup_file(con, name, done)
    return done


def run_sql(con: duckdb.DuckDBPyConnection, sf: SqlFile, done: set[str], arrow: bool = False) -> dict[str, Any]:
    """Execute a parsed file (a shipped analysis or the user's): its ``@requires``, set-up, then outputs.

    ``arrow``: Arrow tables instead of DataFrames (they keep the SQL types of empty results, which result
    tables written as Parquet need: tracekit.executors)."""
    for req in sf.requires:
        setup_file(con, req, done)
    if sf.name not in done:
        _exec_script(con, sf.setup)
        done.add(sf.name)
    def fetch(sql: str) -> Any:
        return con.sql(sql).to_arrow_table() if arrow else con.execute(sql).df()

    return {(sf.name if o == sf.name else f"{sf.name}.{o}"): fetch(sql) for o, sql in sf.outputs}


def run(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
        analyses: Iterable[str] | None = None,
        timings: dict[str, float] | None = None,
        con: duckdb.DuckDBPyConnection | None = None,
        arrow: bool = False,
        **params: Any) -> dict[str, pd.DataFrame]:
    """Run the analyses over converted traces; returns ``{output name: DataFrame}``.

    ``params`` override :data:`DEFAULTS` (``step_pattern``, ``vocab``, ``lm_head_regex``, ...).
    ``timings`` (if given) receives wall seconds per file, ``_common`` included.
    """
    names = tuple(analyses or ANALYSES)
    unknown = [a for a in names if a not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; known: {', '.join(ANALYSES)}")
    con = connect(paths, con=con)
    con.execute("SET enable_progress_bar = false")  # DuckDB's bar would interleave with the tables
    out: dict[str, pd.DataFrame] = {}
    t0 = time.perf_counter()
    done = prepare(con, **params)
    if timings is not None:
        timings["_common"] = time.perf_counter() - t0
    for name in names:
        t0 = time.perf_counter()
        out.update(run_file(con, name, done=done, arrow=arrow))
        if timings is not None:
            timings[name] = time.perf_counter() - t0
    return out


def run_file(con: duckdb.DuckDBPyConnection, name: str, setup: bool = True,
             done: set[str] | None = None, arrow: bool = False) -> dict[str, pd.DataFrame]:
    """Execute ``queries/<name>.sql`` on ``con``: its set-up (unless ``setup`` is False, or ``done`` has
    it), the set-up of its ``@requires``, then every output.

    Keys: ``name`` for the output named like the file, ``name.OUTPUT`` for the others. The views and
    variables the file reads must be in place (:func:`prepare` does that).
    """
    done = set() if done is None else done
    if not setup:
        done.add(name)
    return run_sql(con, parse_sql(QUERY_DIR / f"{name}.sql"), done, arrow=arrow)


def warnings_of(results: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """The report's warnings: the converter's notes and unmatched steps (``headline.notes``), trust
    flags of severity ``warn`` and analyses that abstained.

    These rows are themselves outputs of ``headline.sql``, ``trust.sql`` and ``lm_head.sql``; this only
    collects them, converter notes first (a truncated trace explains every number after it).
    """
    warns: list[dict[str, Any]] = []
    notes = results.get("headline.notes")
    if notes is not None and len(notes):
        for r in notes[notes["severity"] == "warn"].to_dict("records"):
            warns.append({"trace": r["trace"], "analysis": "headline", "flag": r["source"], "message": r["message"]})
    tr = results.get("trust")
    if tr is not None and len(tr):
        for r in tr[tr["severity"] == "warn"].to_dict("records"):
            warns.append({"trace": r["trace"], "analysis": "trust", "flag": r["flag"], "message": r["message"]})
    lm = results.get("lm_head")
    if lm is not None and len(lm):
        used = set(lm.loc[lm["used"].astype(bool), "trace"])
        warn = lm["severity"] == "warn" if "severity" in lm else lm["status"].isin(["abstain"])  # lm_head.sql: one per trace
        for r in lm[warn & ~lm["trace"].isin(used)].to_dict("records"):
            warns.append({"trace": r["trace"], "analysis": "lm_head", "flag": r["method"], "message": r["note"]})
    return warns


def _jsonable(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and (math.isnan(v) or math.isinf(v)):
        return None
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        try:
            return _jsonable(v.item())
        except (ValueError, AttributeError):
            pass
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


def frame_records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-safe records (NaN/NA -> null, numpy scalars -> Python)."""
    return [{k: _jsonable(v) for k, v in row.items()} for row in df.astype(object).to_dict("records")]


def to_json(results: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """One top-level key per analysis (``{table: records}``) plus ``summary`` and ``warnings``."""
    doc: dict[str, Any] = {}
    for key, df in results.items():
        analysis, _, sub = key.partition(".")
        doc.setdefault(analysis, {})[sub or analysis] = frame_records(df)
    doc["warnings"] = warnings_of(results)
    return doc


def print_report(results: Mapping[str, pd.DataFrame], limit: int = 25) -> None:
    """The warnings, then terminal tables (rich), one per output."""
    import sys

    from rich.console import Console

    from tracekit.render import print_frame
    from tracekit.safe import term

    console = Console(markup=False, highlight=False, width=None if sys.stdout.isatty() else 220)
    for w in warnings_of(results):  # first: a truncated trace explains every number below it
        console.print(term(f"warning [{w['trace']}] {w['analysis']}/{w['flag']}: {w['message']}"))
    for key, df in results.items():
        if key == "steps.median_step_ops":
            continue  # plot input, not a table for reading
        view = df.copy()
        if "trace" in view and view["trace"].nunique() <= 1:
            view = view.drop(columns="trace")  # one trace: the column only adds width
        for c in view.columns:  # kernel names run to hundreds of characters
            if not pd.api.types.is_numeric_dtype(view[c]):
                view[c] = view[c].map(lambda v: v[:57] + "..." if isinstance(v, str) and len(v) > 60 else v)
        print_frame(view, title=key, limit=limit, console=console)


# ----------------------------------------------------------------------------- HTML

def _png(fig: Any) -> str:
    import base64

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _plots(results: Mapping[str, pd.DataFrame]) -> list[tuple[str, str | None, str]]:
    """(title, data-URI or None, note) for each plot of the HTML report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots: list[tuple[str, str | None, str]] = []
    ops = results.get("steps.median_step_ops", pd.DataFrame())
    if len(ops):  # one row set per trace (steps.sql): the timeline shows the first trace's median step
        ops = ops[ops["trace"] == ops["trace"].min()]
    steps = results.get("steps", pd.DataFrame())
    # 1. timeline of the median step, one row per stream, coloured by phase
    if len(ops):
        fig, ax = plt.subplots(figsize=(11, 0.6 + 0.45 * ops["lane"].nunique()))
        phases = list(dict.fromkeys(ops["phase_path"]))
        cmap = plt.get_cmap("tab20")
        colour = {p: cmap(i % 20) for i, p in enumerate(phases)}
        lanes = list(dict.fromkeys(ops.sort_values("lane")["lane"]))
        t0 = ops["step_ts_ns"].iloc[0]
        for i, lane in enumerate(lanes):
            sub = ops[ops["lane"] == lane]
            ax.broken_barh([((r.ts_ns - t0) / 1e3, max(r.dur_ns / 1e3, 0.01)) for r in sub.itertuples()],
                           (i - 0.4, 0.8), facecolors=[colour[p] for p in sub["phase_path"]])
        ax.set_yticks(range(len(lanes)), [str(lane) for lane in lanes])
        ax.set_xlabel("µs since step start")
        handles = [matplotlib.patches.Patch(color=colour[p], label=p[-60:]) for p in phases[:20]]
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        step = ops["step_name"].iloc[0]
        plots.append(("Timeline of the median step by stream, coloured by phase", _png(fig),
                      f"step {step} of trace {ops['trace'].iloc[0]}; CPU rows are ranges on the launching thread"))
    else:
        plots.append(("Timeline of the median step", None, "no step matched the step pattern"))
    # 2. per-phase stacked bars per step
    sp = results.get("steps.phases", pd.DataFrame())
    if len(sp):
        first = sp["trace"].iloc[0]
        sp1 = sp[sp["trace"] == first]
        piv = sp1.pivot_table(index="step_index", columns="phase", values="cpu_ns", aggfunc="sum", fill_value=0) / 1e3
        piv = piv[piv.sum().sort_values(ascending=False).index[:15]]
        fig, ax = plt.subplots(figsize=(11, 4))
        piv.plot(kind="bar", stacked=True, ax=ax, width=0.85, legend=True, colormap="tab20")
        ax.set_xlabel("step"); ax.set_ylabel("CPU time in phase (µs)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
        if len(piv) > 40:
            ax.set_xticks([])
        plots.append(("Per-phase CPU time per step (stacked)", _png(fig), f"trace {first}; top 15 phases"))
    else:
        plots.append(("Per-phase time per step", None, "no step or no phase inside steps"))
    # 3. idle time by cause
    ic = results.get("gpu_idle.causes", pd.DataFrame())
    if len(ic):
        g = ic.groupby(["trace", "cause"], as_index=False)["idle_ns"].sum()
        piv = g.pivot_table(index="trace", columns="cause", values="idle_ns", fill_value=0) / 1e6
        fig, ax = plt.subplots(figsize=(9, 1.2 + 0.5 * len(piv)))
        piv.plot(kind="barh", stacked=True, ax=ax)
        ax.set_xlabel("GPU idle time (ms) inside the trace window")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1))
        plots.append(("GPU idle time by cause", _png(fig), "union of all streams per device, summed over devices"))
    else:
        plots.append(("GPU idle time by cause", None, "no GPU ops"))
    # 4. per-step latency distribution
    if len(steps):
        fig, ax = plt.subplots(figsize=(9, 3.5))
        for (trace, kind), sub in steps.groupby(["trace", "step_kind"]):
            ax.hist(sub["wall_ns"] / 1e3, bins=min(50, max(5, len(sub))), alpha=0.6, label=f"{trace}: {kind}"[-60:])
        ax.set_xlabel("step wall time (µs)"); ax.set_ylabel("steps")
        ax.legend(fontsize=7)
        plots.append(("Per-step latency distribution", _png(fig), f"{len(steps)} steps"))
    else:
        plots.append(("Per-step latency distribution", None, "no step matched the step pattern"))
    return plots


def _html_table(df: pd.DataFrame, limit: int = 50) -> str:
    from tracekit.render import _fmt

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for row in df.head(limit).itertuples(index=False):
        rows.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    more = f"<p>({len(df) - limit} more rows in --json)</p>" if len(df) > limit else ""
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>{more}"


def to_html(results: Mapping[str, pd.DataFrame], title: str = "tracekit report") -> str:
    """A self-contained HTML page: the four plots (PNG, base64-embedded) and every table, names escaped."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             ("<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:12px}"
              "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;max-width:40em;overflow-wrap:anywhere}"
              "img{max-width:100%}</style></head><body>"),
             f"<h1>{html.escape(title)}</h1>"]
    warns = warnings_of(results)
    if warns:
        parts.append("<h2>Warnings</h2><ul>" + "".join(
            f"<li>[{html.escape(str(w['trace']))}] {html.escape(str(w['flag']))}: {html.escape(str(w['message']))}</li>"
            for w in warns) + "</ul>")
    for ptitle, uri, note in _plots(results):
        parts.append(f"<h2>{html.escape(ptitle)}</h2><p>{html.escape(note)}</p>")
        parts.append(f"<img class='plot' alt='{html.escape(ptitle)}' src='{uri}'>" if uri else "<p><em>no data</em></p>")
    for key, df in results.items():
        if key == "steps.median_step_ops":
            continue
        parts.append(f"<h2>{html.escape(key)}</h2>" + _html_table(df))
    parts.append("</body></html>")
    return "\n".join(parts)
