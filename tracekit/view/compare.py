"""``tracekit compare`` / ``diff`` pages, terminal tables and JSON: the presentation of :mod:`tracekit.compare`'s results.

Why apart from tracekit.compare: that module runs the runs' SQL (the engine); this one only lays out its
DataFrames (tests/test_layers.py: the engine never imports the view). matplotlib loads only when a page is drawn.
"""

from __future__ import annotations

import base64
import html
import io
import sys
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from tracekit.compare import fired
from tracekit.view.html import html_table
from tracekit.view.model import table
from tracekit.view.records import frame_records
from tracekit.view.terminal import join_lines, table_lines, terminal_width


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files, no display), imported only when a compare/diff page is drawn,
    with mathtext off: names from a trace are text, never ``$...$`` math (the report page draws SVG itself:
    tracekit.view.plots)."""
    import matplotlib  # deferred: heavy, and only a compare/diff page draws

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt  # after use("Agg"): the backend is chosen before pyplot loads

    return plt


def png(fig: Any) -> str:
    """``fig`` as a base64 PNG data URI (closed afterwards)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


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
    w = terminal_width(width)
    blocks = []
    for key, df in results.items():
        if key in ("compare", "diff.gate", "compare.step_values"):
            continue
        if key == "compare.phases":
            blocks.append(
                table_lines(
                    table(key, phase_table(results), limit=limit, title="per-step ms by phase (compare.phases)"), w
                )
            )
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
    from matplotlib.ticker import NullFormatter  # deferred: matplotlib loads only when a page is drawn

    plt = pyplot()

    nz = results.get("compare.noise", pd.DataFrame())
    title = "Ratio of per-step medians to the baseline (95% bootstrap interval)"
    if not len(nz) or nz["ci_lo"].isna().all():
        return title, None, "no run has enough steps after the warm-up for an interval"
    top = list(
        dict.fromkeys(
            [
                "step.wall_ms",
                "step.gpu_busy_ms",
                *nz.loc[nz["metric"].str.endswith(".ms_per_step")]
                .groupby("metric")["ratio"]
                .apply(lambda r: float(np.nanmax(np.abs(np.log(r.to_numpy(dtype=float))))) if r.notna().any() else 0.0)
                .sort_values(ascending=False)
                .index[:4],
            ]
        )
    )
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
    return (
        title,
        png(fig),
        (
            "each run against the first; bars: 95% interval; where a bar crosses 1 the change is "
            "within step-to-step noise"
        ),
    )


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
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        (
            "<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right;max-width:40em;overflow-wrap:anywhere}"
            "img{max-width:100%}</style></head><body>"
        ),
        f"<h1>{html.escape(title)}</h1>",
    ]
    lines = fired(results)
    if lines:
        parts.append("<h2>Gate fired</h2><ul>" + "".join(f"<li>{html.escape(x)}</li>" for x in lines) + "</ul>")
    plots = (
        [_plot, _noise_plot, _dist_plot] if "compare.phases" in results else [_diff_plot] if "diff" in results else []
    )
    for plot in plots:
        ptitle, uri, note = plot(results)
        parts.append(f"<h2>{html.escape(ptitle)}</h2><p>{html.escape(note)}</p>")
        parts.append(
            f"<img class='plot' alt='{html.escape(ptitle)}' src='{uri}'>" if uri else "<p><em>no data</em></p>"
        )
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
        doc[key.partition(".")[2] or key] = frame_records(df)
    doc["fired"] = fired(results)
    return doc
