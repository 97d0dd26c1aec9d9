"""The HTML report's figures (matplotlib, embedded as PNG data URIs): step latency, idle causes, the
several-GPU plots (the phase bar and the timeline are inline SVG: tracekit.view.timeline).

Each function takes the result tables of ONE trace and returns ``(data URI, caption)``, or
``(None, why)`` when there is nothing to draw, so the page says why instead of showing an empty
axis. Numbers are the SQL's; axes never use an offset (``+4.7151e4`` helps nobody). Every text is
drawn literally: :func:`pyplot` turns mathtext off, so a range named ``$x^$`` or ``price$1$2`` is
shown as typed instead of parsed as math (a parse error was a traceback).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from typing import Any

import pandas as pd

from tracekit.view.model import fmt_duration, pick_unit

Plot = tuple[str | None, str]


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (files, no display), imported only when a page is drawn, with
    mathtext off: names from a trace are text, never ``$...$`` math (no figure of tracekit uses math)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def _int_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def png(fig: Any) -> str:
    """``fig`` as a base64 PNG data URI (closed afterwards)."""
    plt = pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _short(s: str, n: int = 40) -> str:
    from tracekit.view.model import elide

    return elide(str(s), n)


def phase_bar_data(tree: pd.DataFrame) -> pd.DataFrame:
    """The stacked bar's segments: per step kind, every phase-tree row's EXCLUSIVE mean CPU time.

    Exclusive times do not double count (a parent's row leaves out its children), so a bar's
    height is the mean step CPU span: the test checks it against steps.sql's mean wall_ns.
    """
    cols = ["trace", "step_kind", "row_order", "phase_path", "excl_cpu_ns_mean"]
    if not len(tree) or not set(cols) <= set(tree.columns):
        return pd.DataFrame(columns=cols)
    return tree[cols].sort_values(["trace", "step_kind", "row_order"]).reset_index(drop=True)


def latency(steps: pd.DataFrame) -> Plot:
    """Step wall time over the run (per step kind) and its distribution."""
    if not len(steps):
        return None, "no step matched the step pattern (set --step-pattern)"
    if len(steps) < 3:
        walls = ", ".join(fmt_duration(v, with_unit=True) for v in steps["wall_ns"])
        return None, (f"{len(steps)} step{'s' if len(steps) > 1 else ''} only (wall {walls}): "
                      "a trend and a distribution need at least 3")
    plt = pyplot()
    unit = pick_unit(steps["wall_ns"].tolist())
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3), gridspec_kw={"width_ratios": [2, 1]})
    for kind, sub in steps.groupby("step_kind", sort=False):
        v = sub["wall_ns"] / unit[1]
        a1.plot(sub["step_index"], v, marker="o" if len(sub) <= 60 else None, ms=3, lw=1, label=_short(kind, 30))
        a2.hist(v, bins=min(40, max(5, len(sub) // 2)), alpha=0.7, label=_short(kind, 30))
    a1.set_xlabel("step index (time order)")
    a1.xaxis.set_major_locator(_int_locator())
    a1.set_ylabel(f"step wall time ({unit[0]})")
    a2.set_xlabel(f"step wall time ({unit[0]})")
    a2.set_ylabel("steps")
    for a in (a1, a2):
        a.ticklabel_format(useOffset=False, style="plain")
        a.spines[["top", "right"]].set_visible(False)
    if steps["step_kind"].nunique() > 1:
        a1.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    return png(fig), f"{len(steps):,} step{'' if len(steps) == 1 else 's'}: wall time of each step in time order, and the distribution"


def idle_by_step(by_step: pd.DataFrame) -> Plot:
    """GPU idle time inside each step, stacked by cause (summed over devices)."""
    if not len(by_step):
        return None, "no GPU idle time inside steps (no GPU ops, or no step matched)"
    plt = pyplot()
    g = by_step.groupby(["step_index", "cause"], as_index=False)["idle_ns"].sum()
    piv = g.pivot_table(index="step_index", columns="cause", values="idle_ns", fill_value=0)
    unit = pick_unit(piv.sum(axis=1).tolist())
    fig, ax = plt.subplots(figsize=(10, 3))
    bottom = pd.Series(0.0, index=piv.index)
    # CPU-side causes warm, GPU-side cool, unknown grey (queries/gpu_idle.sql names them)
    cause_colour = {"launch_bound": "#e15759", "host_busy": "#f28e2b", "sync_blocked": "#b07aa1",
                    "gpu_wait": "#4e79a7", "queued_dependency": "#76b7b2", "no_launch_record": "#bab0ac",
                    "other": "#bab0ac", "before_first_gpu_op": "#d9d9d9", "after_last_gpu_op": "#d9d9d9"}
    for c in piv.columns:
        v = piv[c] / unit[1]
        ax.bar(piv.index, v, bottom=bottom, width=0.85, label=str(c), color=cause_colour.get(str(c)))
        bottom += v
    ax.set_xlabel("step index")
    if len(piv) <= 30:
        ax.set_xticks(list(piv.index))
    else:
        ax.xaxis.set_major_locator(_int_locator())
    ax.set_ylabel(f"GPU idle in step ({unit[0]})")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.spines[["top", "right"]].set_visible(False)
    return png(fig), ("GPU idle time of each step end to end (from its start to its last GPU op's end) by cause "
                      "(headline.idle, summed over devices: the 'GPU idle, end to end' of the per-step table; the "
                      "causes are defined in queries/gpu_idle.sql): launch_bound and host_busy are CPU-side, "
                      "sync_blocked a host sync, gpu_wait / queued_dependency a GPU-side dependency, kernel_gap the "
                      "ordinary gap between queued kernels")


def for_trace(results: Mapping[str, pd.DataFrame], trace: str) -> dict[str, Plot]:
    """Every figure of one trace."""
    def rows(key: str) -> pd.DataFrame:
        df = results.get(key)
        if df is None or not len(df) or "trace" not in df:
            return pd.DataFrame()
        return df[df["trace"] == trace]

    return {"latency": latency(rows("steps")),
            "idle": idle_by_step(rows("headline.idle"))}


MAX_STEP_PANELS = 4  # the per-rank step timeline shows this many steps: the ones whose ends are furthest apart
MAX_PHASE_BARS = 30  # exposed-communication bars: the (trace, device, phase) rows with most exposed time


def rank_timeline(rank_steps: pd.DataFrame, step_skew: pd.DataFrame, align: str) -> Plot:
    """Per-rank step timeline (collectives.rank_steps): one panel per step, a bar per rank from its aligned
    start to its end, offsets from the step's earliest start; dashed lines at the earliest and latest end."""
    if not len(rank_steps) or rank_steps["rank"].nunique() < 2:
        return None, ("no per-rank steps (collectives.rank_steps is empty): the timeline needs one trace per rank "
                      "with steps matching --step-pattern on at least two of them")
    keys = list(dict.fromkeys(rank_steps["step_key"]))
    if len(step_skew) and "skew_ns" in step_skew:
        top = set(step_skew.sort_values(["skew_ns", "step_key"], ascending=[False, True])
                  .head(MAX_STEP_PANELS)["step_key"])
        keys = [k for k in keys if k in top]
    keys = keys[:MAX_STEP_PANELS]
    plt = pyplot()
    unit = pick_unit(rank_steps["end_offset_ns"].tolist())
    ranks = sorted(rank_steps["rank"].unique())
    fig, axes = plt.subplots(1, len(keys), figsize=(min(14, 3.6 * len(keys) + 1.5), 0.8 + 0.28 * len(ranks)),
                             sharey=True, squeeze=False)
    for ax, key in zip(axes[0], keys):
        sub = rank_steps[rank_steps["step_key"] == key]
        for r in sub.itertuples(index=False):
            a, b = r.start_offset_ns / unit[1], r.end_offset_ns / unit[1]
            ax.barh(ranks.index(r.rank), b - a, left=a, height=0.6, color="#4e79a7")
        lo, hi = sub["end_offset_ns"].min() / unit[1], sub["end_offset_ns"].max() / unit[1]
        ax.axvline(lo, color="#59a14f", ls="--", lw=1)
        ax.axvline(hi, color="#e15759", ls="--", lw=1)
        span = hi - 0
        ax.set_xlim(max(0.0, lo - 0.15 * span), hi + 0.05 * span)  # zoomed on the ends: that is where the skew is
        ax.set_title(_short(key, 28), fontsize=9)
        ax.set_xlabel(f"from the step's earliest start ({unit[0]})", fontsize=8)
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        ax.spines[["top", "right"]].set_visible(False)
    axes[0][0].set_yticks(range(len(ranks)), [f"rank {r}" for r in ranks], fontsize=8)
    axes[0][0].invert_yaxis()
    fig.tight_layout()
    how = {"collective_end": "matched collectives end together", "one_clock": "one shared clock"}.get(
        align, "raw timestamps (rank_align none)")
    total = rank_steps["step_key"].nunique()
    shown = f"{len(keys)} of {total:,} step{'' if total == 1 else 's'} (the ones whose ends are furthest apart)"
    return png(fig), (f"each rank's step range, {shown}; clocks: {how}. The x axis starts near the ends "
                      "(bars begin at the step's start); green dashed = the first rank to finish, red = the last")


def comm_phase_bars(by_phase: pd.DataFrame) -> Plot:
    """Exposed vs overlapped communication time (NCCL, DeepEP, custom all-reduce, ...: comm.sql's class) per phase
    of the launching call (comm.by_phase), stacked, per trace and device."""
    d = by_phase[by_phase["comm_ops"].fillna(0) > 0] if len(by_phase) and "comm_ops" in by_phase else by_phase.iloc[0:0]
    if not len(d):
        return None, ("no communication kernel in these traces (NCCL/RCCL, DeepEP, NVSHMEM, custom all-reduce): "
                      "nothing to split into exposed and overlapped")
    d = d.sort_values(["comm_exposed_ns", "trace", "device", "phase_path"], ascending=[False, True, True, True])
    left = len(d) - MAX_PHASE_BARS
    d = d.head(MAX_PHASE_BARS)
    many = d["trace"].nunique() > 1 or d["device"].nunique() > 1
    labels = [(_short(f"{t} · dev {dv} · {p}", 60) if many else _short(str(p), 60))
              for t, dv, p in zip(d["trace"], d["device"], d["phase_path"])]
    plt = pyplot()
    unit = pick_unit((d["comm_exposed_ns"] + d["comm_overlap_ns"]).tolist())
    fig, ax = plt.subplots(figsize=(9, 0.9 + 0.3 * len(d)))
    y = list(range(len(d)))
    ex, ov = d["comm_exposed_ns"] / unit[1], d["comm_overlap_ns"] / unit[1]
    ax.barh(y, ex, color="#e15759", height=0.65, label="exposed (only communicating)")
    ax.barh(y, ov, left=ex, color="#76b7b2", height=0.65, label="overlapped by compute")
    ax.set_yticks(y, labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"communication kernel time over the capture ({unit[0]})")
    ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    more = f"; {left} more rows in comm.by_phase" if left > 0 else ""
    return png(fig), ("communication kernel time per phase of the launching call, summed over the capture (comm.by_phase: "
                      "comm_exposed_ns + comm_overlap_ns = comm_op_ns), exposed first" + more)
