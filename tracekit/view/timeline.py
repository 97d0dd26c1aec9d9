"""The median step as an inline SVG timeline: CPU threads and GPU streams, coloured by phase, with
launch -> GPU op links and the full name of every box on hover.

Why SVG and not a PNG: a kernel name is hundreds of characters; the page shows the box, the
``<title>`` gives the full name on hover, and the file stays self-contained. The rows come from
``queries/timeline.sql`` (:func:`query`); this module only draws them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import duckdb
import pandas as pd

from tracekit.safe import html_text
from tracekit.view.model import fmt_duration, pick_unit

#: Colour of a phase: 12 distinct hues (Tableau), by order of first appearance; '(self)' is grey.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#86bcb6", "#d37295", "#a0cbe8")
SELF_COLOUR = "#bab0ac"
MAX_BOXES = 6000  # beyond this the page gets slow; the longest boxes are kept and the rest counted
MAX_LINKS = 120  # more than this hides the boxes under lines; an even sample is drawn
W, LABEL_W, ROW_H, GPU_H = 1200, 150, 13, 18


def query(con: duckdb.DuckDBPyConnection) -> dict[str, pd.DataFrame]:
    """Run ``queries/timeline.sql`` on a connection where ``tracekit.report.run`` ran steps.sql
    (its temp tables are there: ``done`` keeps the ``@requires steps`` set-up from running twice)."""
    from tracekit.report import run_file

    return run_file(con, "timeline", done={"steps"})


def colours(phases: list[str]) -> dict[str, str]:
    """A colour per phase path, stable in order of appearance ('(self)' grey)."""
    out: dict[str, str] = {}
    i = 0
    for p in phases:
        if p in out:
            continue
        if p in ("(self)", "(none)", "(other)"):
            out[p] = SELF_COLOUR
        else:
            out[p] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _ticks(span_ns: float) -> tuple[list[float], tuple[str, float]]:
    unit = pick_unit([span_ns])
    raw = span_ns / 6
    mag = 10 ** len(str(int(max(raw, 1)))) / 10
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    return [i * step for i in range(int(span_ns // step) + 1)], unit


def _tick_label(ns: float, unit: tuple[str, float]) -> str:
    v = ns / unit[1]
    return f"{v:.3f}".rstrip("0").rstrip(".") + " " + unit[0]


def svg(df: pd.DataFrame, colour: Mapping[str, str]) -> tuple[str, str]:
    """(inline SVG, caption) for the rows of ONE trace's median step."""
    first = df.iloc[0]
    note = ""
    if len(df) > MAX_BOXES:
        keep = df.sort_values("dur_ns", ascending=False).head(MAX_BOXES).sort_index()
        note = f" {len(df) - MAX_BOXES:,} shortest boxes of {len(df):,} not drawn."
        df = keep
    s0, s1 = float(first["step_ts_ns"]), float(first["step_ts_ns"]) + float(first["step_wall_ns"])
    t0 = min(float(df["ts_ns"].min()), s0)  # 0 on the axis = the step range's start
    t1 = max(float((df["ts_ns"] + df["dur_ns"].clip(lower=0)).max()), s1)
    span = max(t1 - t0, 1.0)
    plot_w = W - LABEL_W - 10
    x = lambda t: LABEL_W + (float(t) - t0) / span * plot_w  # noqa: E731

    # lanes: CPU threads (one sub-row per range depth, then one for runtime calls), then GPU streams
    lanes: list[tuple[str, str, int]] = []  # (lane, kind, sub-rows)
    for lane, sub in df.groupby("lane", sort=False):
        if sub["lane_kind"].iloc[0] == "cpu":
            depth = int(sub["depth"].max()) if sub["depth"].notna().any() else 0
            rows = depth + (1 if (sub["row_kind"] == "runtime").any() else 0)
            lanes.append((str(lane), "cpu", max(rows, 1)))
        else:
            lanes.append((str(lane), "gpu", 1))
    y0: dict[str, float] = {}
    y = 30.0
    for lane, kind, rows in lanes:
        y0[lane] = y
        y += (rows * ROW_H if kind == "cpu" else GPU_H) + 8
    height = y + 4
    parts = [f"<svg class='timeline' viewBox='0 0 {W} {height:.0f}' width='100%' role='img' "
             f"xmlns='http://www.w3.org/2000/svg' font-family='sans-serif' font-size='10'>"]
    ticks, unit = _ticks(span)
    for tk in ticks:
        xx = LABEL_W + tk / span * plot_w
        parts.append(f"<line x1='{xx:.1f}' y1='14' x2='{xx:.1f}' y2='{height:.0f}' stroke='#e4e4e4'/>"
                     f"<text x='{xx:.1f}' y='11' text-anchor='middle' fill='#555'>{_tick_label(tk, unit)}</text>")
    # the step range itself: a bracket above the lanes (GPU work of an async step runs past its end)
    step_tip = f"{first['step_name']} (step {first['step_index']}): {fmt_duration(first['step_wall_ns'], with_unit=True)}"
    parts.append(f"<text x='4' y='24' fill='#222'>step range</text>"
                 f"<rect x='{x(s0):.2f}' y='18' width='{max(x(s1) - x(s0), 0.6):.2f}' height='6' fill='#444'>"
                 f"<title>{html_text(step_tip)}</title></rect>")
    for lane, kind, rows in lanes:
        h = rows * ROW_H if kind == "cpu" else GPU_H
        parts.append(f"<text x='4' y='{y0[lane] + min(h, 14) - 3:.1f}' fill='#222'>{html_text(lane)}</text>"
                     f"<rect x='{LABEL_W}' y='{y0[lane]:.1f}' width='{plot_w}' height='{h}' fill='#f7f7f7'/>")
    depth_of = {lane: rows for lane, _, rows in lanes}
    for r in df.itertuples(index=False):
        lane = str(r.lane)
        if r.row_kind == "range":
            yy, hh = y0[lane] + (int(r.depth) - 1) * ROW_H, ROW_H - 1
        elif r.row_kind == "runtime":
            yy, hh = y0[lane] + (depth_of[lane] - 1) * ROW_H, ROW_H - 1
        else:
            yy, hh = y0[lane], GPU_H
        fill = "#d62728" if r.row_kind == "runtime" and bool(r.blocking) else (
            "#555" if r.row_kind == "runtime" else colour.get(str(r.phase_path), SELF_COLOUR))
        w = max((float(max(r.dur_ns, 0))) / span * plot_w, 0.6)
        tip = f"{r.name}\n{r.phase_path}\n{fmt_duration(r.dur_ns, with_unit=True)}"
        parts.append(f"<rect x='{x(r.ts_ns):.2f}' y='{yy:.1f}' width='{w:.2f}' height='{hh}' fill='{fill}'>"
                     f"<title>{html_text(tip)}</title></rect>")
    # links: launch call (on its thread's lane) -> the GPU op's start
    gpu = df[(df["row_kind"] == "gpu_op") & df["launch_ts_ns"].notna()]
    every = max(1, -(-len(gpu) // MAX_LINKS))
    nlinks = 0
    for j, r in enumerate(gpu.itertuples(index=False)):
        src = f"CPU tid {int(r.launch_tid)}" if pd.notna(r.launch_tid) else None
        if src not in y0 or j % every:
            continue
        sy = y0[src] + depth_of[src] * ROW_H
        parts.append(f"<line x1='{x(r.launch_ts_ns):.2f}' y1='{sy:.1f}' x2='{x(r.ts_ns):.2f}' y2='{y0[str(r.lane)]:.1f}' "
                     "stroke='#888' stroke-width='0.5' stroke-opacity='0.6'/>")
        nlinks += 1
    parts.append("</svg>")
    if len(gpu) > nlinks and len(gpu):
        note += f" {nlinks:,} of {len(gpu):,} launch links drawn (every {every}th)."
    cap = (f"Step {first['step_index']} of trace {first['trace']} (range '{first['step_name']}', wall "
           f"{fmt_duration(first['step_wall_ns'], with_unit=True)}): the median by wall time of the trace's "
           f"'{first['step_kind']}' steps. CPU lanes: ranges by nesting depth, then launch calls (dark; blocking "
           "syncs red); lines join a launch to its GPU op; hover a box for its name." + note)
    return "".join(parts), cap


def legend(colour: Mapping[str, str]) -> str:
    """HTML legend (wraps with the page; names escaped, full path on hover)."""
    items = []
    for p, c in colour.items():
        items.append(f"<span class='sw' title='{html_text(p)}'><i style='background:{c}'></i>{html_text(p)}</span>")
    return "<div class='legend'>" + "".join(items) + "</div>"


def _kinds(results: Mapping[str, Any], ops: pd.DataFrame) -> list[str]:
    """The step kind of each steps.median_step_ops row, looked up in ``steps``."""
    st = results.get("steps")
    if st is None or not len(st):
        return ["?"] * len(ops)
    kind = {(t, i): k for t, i, k in zip(st["trace"], st["step_index"], st["step_kind"])}
    return [str(kind.get((t, i), "?")) for t, i in zip(ops["trace"], ops["step_index"])]


def sections(results: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(trace, svg + legend html, caption) per trace of ``timeline`` (else of steps.median_step_ops)."""
    tl = results.get("timeline")
    if tl is None or not len(tl):
        ops = results.get("steps.median_step_ops")
        if ops is None or not len(ops):
            return []
        gpu = [str(lane).startswith("GPU") for lane in ops["lane"]]
        tl = ops.assign(lane_kind=["gpu" if g else "cpu" for g in gpu],
                        row_kind=["gpu_op" if g else "range" for g in gpu],
                        depth=[None if g else len(str(p).split("/")) for p, g in zip(ops["phase_path"], gpu)],
                        blocking=None, launch_tid=None, launch_ts_ns=None, step_kind=_kinds(results, ops))
    out = []
    for trace, sub in tl.groupby("trace", sort=False):
        sub = sub.reset_index(drop=True)
        phases = list(dict.fromkeys(sub.sort_values("ts_ns")["phase_path"].astype(str)))
        col = colours(phases)
        s, cap = svg(sub, col)
        out.append((str(trace), s + legend(col), cap))
    return out
