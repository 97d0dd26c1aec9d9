"""The page's phase colours, the median step as an inline SVG timeline (CPU threads and GPU streams,
coloured by phase, with launch -> GPU op links and the full name of every box on hover) and the phase
tree as an inline SVG stacked bar.

Why SVG and not a PNG: a kernel name is hundreds of characters; the page shows the box, the
``<title>`` gives the full name on hover, and the file stays self-contained. The rows come from
``queries/timeline.sql`` (``tracekit.report.run(also=("timeline",))``) and ``headline.phase_tree``; this module only draws them.

One colour per phase path for the whole page (:func:`phase_colours`): the stacked bar, the timeline
and their legends read the same map, keyed by the phase path relative to the step as the phase tree
names it. The palette is Tableau's tab20 without its greys and reds (grey is time in no phase, red a
blocking sync): 16 colours, none repeated. Beyond 16 phases the largest 15 (by their largest
exclusive mean CPU or GPU time in the phase tree) keep a colour and the rest share one
'smaller phases' colour; the legend says which.

Widths: the x axis is in percent of the drawing, so the SVG fills the page at any width while its text
stays at its font size (a viewBox scaled to 800 px made it 6 px). A box is labelled with its name only
when it is wide enough; the label is elided to the box at 1,400 px and clipped to it when narrower;
a label that would keep under ~5 characters on a page under 1,000 px is dropped there (a CSS media
query); the full name is always on hover.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from tracekit.rows import Rows, as_rows, missing, num
from tracekit.safe import html_text
from tracekit.view.model import elide, fmt_duration, fmt_share, pick_unit

#: tab20 without its grey and red pairs: the 8 strong hues first, then their light partners.
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#bcbd22",
    "#17becf",
    "#aec7e8",
    "#ffbb78",
    "#98df8a",
    "#c5b0d5",
    "#c49c94",
    "#f7b6d2",
    "#dbdb8d",
    "#9edae5",
)
OTHER_COLOUR = "#c7c7c7"  # step time in no phase: '(other)' (and '(none)' outside every step)
SMALL_COLOUR = "#7f7f7f"  # 'smaller phases': those past the palette
SMALL_LABEL = "smaller phases"
NO_PHASE = frozenset({"(other)", "(none)"})
NO_LAUNCH = "(no launch record)"
RUNTIME_COLOUR, SYNC_COLOUR = "#444444", "#d62728"
MAX_BOXES = 6000  # beyond this the page gets slow; the longest boxes are kept and the rest counted
MAX_LINKS = 120  # more than this hides the boxes under lines; an even sample is drawn
LABEL_W, ROW_H, GPU_H, TOP = 160, 16, 20, 30  # lane-label column (px), row heights, axis band
REF_PLOT_PX = 1200  # plot width the in-box labels are elided for (a 1,400 px page)
CHAR_PX = 6.5  # mean width of a character at font-size 10
MIN_LABEL_PX = 22  # a box narrower than this at REF_PLOT_PX gets no label
WIDE_LABEL_PX = 70  # ... narrower than this: its label is dropped on a page under 1,000 px (half the width)


# ----------------------------------------------------------------------------- colours


def _size(table: Any, cols: Iterable[str]) -> dict[str, float]:
    """phase path -> its largest value over ``cols`` and rows (NULL as 0)."""
    out: dict[str, float] = {}
    rs = as_rows(table)
    if not len(rs) or "phase_path" not in rs:
        return out
    for c in cols:
        if c not in rs:
            continue
        for p, v in zip(rs.col("phase_path"), rs.col(c)):
            out[str(p)] = max(out.get(str(p), 0.0), num(v))
    return out


def phase_colours(results: Mapping[str, Any], max_colours: int = len(PALETTE)) -> dict[str, str]:
    """The page's colour of every phase path (phase tree and timeline rows of every trace).

    The phase tree's phases come first, by size (largest exclusive mean CPU or GPU time), then phases
    only the timeline has, by their summed box time. Past ``max_colours`` phases, the first
    ``max_colours - 1`` keep a colour and the rest get :data:`SMALL_COLOUR`.
    """
    tree = _size(results.get("headline.phase_tree"), ("excl_cpu_ns_mean", "excl_gpu_ns_mean"))
    boxes: dict[str, float] = {}
    for key in ("timeline", "steps.median_step_ops"):
        rs = as_rows(results.get(key))
        if len(rs) and "phase_path" in rs:
            for p, d in zip(rs.col("phase_path"), rs.col("dur_ns")):
                boxes[str(p)] = boxes.get(str(p), 0.0) + num(d)
    order = sorted(tree, key=lambda p: (-tree[p], p)) + sorted(
        (p for p in boxes if p not in tree), key=lambda p: (-boxes[p], p)
    )
    named = [p for p in order if p not in NO_PHASE and p != NO_LAUNCH]
    room = max_colours if len(named) <= max_colours else max_colours - 1
    out = {p: PALETTE[i] if i < room else SMALL_COLOUR for i, p in enumerate(named)}
    out.update({p: OTHER_COLOUR for p in order if p in NO_PHASE})  # last in the legends
    return out


def _ink(fill: str) -> str:
    """Label colour on ``fill``: black on light colours, white on dark ones."""
    if not fill.startswith("#") or len(fill) != 7:
        return "#111"
    r, g, b = (int(fill[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111" if 0.299 * r + 0.587 * g + 0.114 * b > 0.55 else "#fff"


def legend(colour: Mapping[str, str], phases: Iterable[str], extra: Iterable[tuple[str, str]] = ()) -> str:
    """HTML legend of the ``phases`` shown (page order, names escaped, full path on hover); phases
    sharing the 'smaller phases' colour are one entry naming how many; ``extra``: (css background, text)."""
    shown = set(phases)
    items, small = [], []
    for p, c in colour.items():
        if p not in shown:
            continue
        if c == SMALL_COLOUR:
            small.append(p)
            continue
        items.append(
            f"<span class='sw' title='{html_text(p)}'><i style='background:{c}'></i>{html_text(elide(p, 48))}</span>"
        )
    if small:
        names = ", ".join(small)
        items.append(
            f"<span class='sw' title='{html_text(names)}'><i style='background:{SMALL_COLOUR}'></i>"
            f"{SMALL_LABEL} ({len(small)}, one colour: hover for their names)</span>"
        )
    for bg, text in extra:
        items.append(f"<span class='sw'><i style='background:{bg}'></i>{html_text(text)}</span>")
    return "<div class='legend'>" + "".join(items) + "</div>"


# ----------------------------------------------------------------------------- drawing helpers


def _pct(v: float) -> str:
    return f"{v:.3f}%"


def _ticks(span_ns: float) -> tuple[list[float], tuple[str, float]]:
    unit = pick_unit([span_ns])
    raw = span_ns / 6
    mag = 10 ** math.floor(math.log10(max(raw, 1)))
    step = min((m * mag for m in (1, 2, 5, 10) if m * mag >= raw), default=raw)
    return [i * step for i in range(int(span_ns // step) + 1)], unit


def _tick_label(ns: float, unit: tuple[str, float]) -> str:
    v = ns / unit[1]
    return f"{v:.3f}".rstrip("0").rstrip(".") + " " + unit[0]


def _axis(span: float, y_text: float, y0: float, y1: float) -> list[str]:
    """Grid lines and their labels (first label left-aligned, last right-aligned: never cut)."""
    ticks, unit = _ticks(span)
    out = []
    for tk in ticks:
        p = tk / span * 100
        anchor = "start" if p < 3 else ("end" if p > 97 else "middle")
        out.append(
            f"<line x1='{_pct(p)}' y1='{y0:.0f}' x2='{_pct(p)}' y2='{y1:.0f}' stroke='#e4e4e4'/>"
            f"<text x='{_pct(p)}' y='{y_text:.0f}' text-anchor='{anchor}' fill='#555'>{_tick_label(tk, unit)}</text>"
        )
    return out


def _title(tip: str | tuple[str, ...]) -> str:
    """Hover text: each line escaped on its own (a newline inside a name is shown as an escape, the line
    breaks between the parts stay line breaks)."""
    return "\n".join(html_text(t) for t in ((tip,) if isinstance(tip, str) else tip))


def _box(
    x_pct: float,
    w_pct: float,
    y: float,
    h: float,
    fill: str,
    tip: str | tuple[str, ...],
    label: str = "",
    opacity: float = 1.0,
) -> str:
    """A rect with its hover text; a label inside when the box is wide enough (clipped to the box by a
    nested <svg>, elided to its width at the reference width)."""
    w_pct = max(w_pct, 0.05)
    op = f" fill-opacity='{opacity}'" if opacity < 1 else ""
    s = (
        f"<rect x='{_pct(x_pct)}' y='{y:.1f}' width='{_pct(w_pct)}' height='{h:.1f}' fill='{fill}'{op}>"
        f"<title>{_title(tip)}</title></rect>"
    )
    px = w_pct / 100 * REF_PLOT_PX
    if label and px >= MIN_LABEL_PX:
        text = elide(label, max(1, int((px - 4) / CHAR_PX)))
        ink = "#111" if opacity < 1 or fill.startswith("url(") else _ink(fill)
        cls = "lbl" if px >= WIDE_LABEL_PX else "lbl s"  # 's': dropped on a narrow page (html.CSS)
        s += (
            f"<svg x='{_pct(x_pct)}' y='{y:.1f}' width='{_pct(w_pct)}' height='{h:.1f}' class='{cls}'>"
            f"<text x='3' y='{h / 2 + 3.5:.1f}' fill='{ink}'>{html_text(text)}</text></svg>"
        )
    return s


def _frame(lanes_svg: str, plot_svg: str) -> str:
    return f"<div class='tl'>{lanes_svg}{plot_svg}</div>"


# ----------------------------------------------------------------------------- timeline


def _records(rows: Any) -> list[SimpleNamespace]:
    """Each row as an object with one attribute per column (``r.ts_ns``), launch columns added when absent
    (``rows``: Rows, a DataFrame, or such records already)."""
    if isinstance(rows, list):
        return rows
    rs = as_rows(rows)
    base = {"launch": None, "launch_step": None}
    return [SimpleNamespace(**{**base, **dict(zip(rs.columns, r))}) for r in rs.data]


def svg(table: Any, colour: Mapping[str, str], uid: str = "0") -> tuple[str, str]:
    """(inline SVG, caption) for the rows of ONE trace's median step (Rows, or a DataFrame); ``uid`` keeps ids
    apart on a page."""
    recs = _records(table)
    first = vars(recs[0])
    note = ""
    if len(recs) > MAX_BOXES:  # the longest boxes, in row order (ties: the earlier row)
        keep = set(sorted(range(len(recs)), key=lambda i: (-num(recs[i].dur_ns), i))[:MAX_BOXES])
        note = f" {len(recs) - MAX_BOXES:,} shortest boxes of {len(recs):,} not drawn."
        recs = [r for i, r in enumerate(recs) if i in keep]
    s0, s1 = float(first["step_ts_ns"]), float(first["step_ts_ns"]) + float(first["step_wall_ns"])
    t0 = min(min(float(r.ts_ns) for r in recs), s0)  # 0 on the axis = the step range's start (or the first box)
    t1 = max(max(float(r.ts_ns) + max(num(r.dur_ns), 0.0) for r in recs), s1)
    span = max(t1 - t0, 1.0)
    x = lambda t: (float(t) - t0) / span * 100  # noqa: E731

    # lanes: CPU threads (one sub-row per range depth, then one for runtime calls), then GPU streams
    lanes: list[tuple[str, str, int]] = []  # (lane, kind, sub-rows)
    by_lane: dict[Any, list[SimpleNamespace]] = {}
    for r in recs:
        by_lane.setdefault(r.lane, []).append(r)
    for lane, sub in by_lane.items():
        if sub[0].lane_kind == "cpu":
            depths = [int(r.depth) for r in sub if not missing(r.depth)]
            rows = max(depths, default=0) + (1 if any(r.row_kind == "runtime" for r in sub) else 0)
            lanes.append((str(lane), "cpu", max(rows, 1)))
        else:
            lanes.append((str(lane), "gpu", 1))
    y0: dict[str, float] = {}
    y = float(TOP)
    for lane, kind, rows in lanes:
        y0[lane] = y
        y += (rows * ROW_H if kind == "cpu" else GPU_H) + 8
    height = y + 4
    hatch = f"tkh{uid}"
    left = [
        f"<svg class='tl-lanes' width='{LABEL_W}' height='{height:.0f}' xmlns='http://www.w3.org/2000/svg'>"
        f"<text x='4' y='{TOP - 6}' fill='#222'>step range</text>"
    ]
    parts = [
        f"<svg class='timeline' width='100%' height='{height:.0f}' role='img' xmlns='http://www.w3.org/2000/svg'>"
        f"<defs><pattern id='{hatch}' width='6' height='6' patternUnits='userSpaceOnUse' "
        f"patternTransform='rotate(45)'><rect width='6' height='6' fill='#eeeeee'/>"
        f"<line x1='0' y1='0' x2='0' y2='6' stroke='#8c8c8c' stroke-width='2'/></pattern></defs>"
    ]
    parts += _axis(span, 11, 14, height)
    # the step range itself: a bracket above the lanes (GPU work of an async step runs past its end)
    step_tip = (
        f"{first['step_name']} (step {first['step_index']}): {fmt_duration(first['step_wall_ns'], with_unit=True)}"
    )
    parts.append(
        f"<rect x='{_pct(x(s0))}' y='{TOP - 12}' width='{_pct(max(x(s1) - x(s0), 0.05))}' height='6' fill='#444'>"
        f"<title>{html_text(step_tip)}</title></rect>"
    )
    for lane, kind, rows in lanes:
        h = rows * ROW_H if kind == "cpu" else GPU_H
        left.append(
            f"<text x='4' y='{y0[lane] + min(h, ROW_H) - 4:.1f}' fill='#222'><title>{html_text(lane)}</title>"
            f"{html_text(elide(lane, 25))}</text>"
        )
        parts.append(f"<rect x='0' y='{y0[lane]:.1f}' width='100%' height='{h}' fill='#f7f7f7'/>")
    depth_of = {lane: rows for lane, _, rows in lanes}
    unlaunched = 0
    for r in recs:
        lane = str(r.lane)
        dur = fmt_duration(r.dur_ns, with_unit=True)
        opacity = 1.0
        tip: str | tuple[str, ...]
        if r.row_kind == "range":
            yy, hh = y0[lane] + (int(r.depth) - 1) * ROW_H, ROW_H - 1
            fill, tip, label = (
                colour.get(str(r.phase_path), OTHER_COLOUR),
                (str(r.name), str(r.phase_path), dur),
                str(r.name),
            )
        elif r.row_kind == "runtime":
            yy, hh = y0[lane] + (depth_of[lane] - 1) * ROW_H, ROW_H - 1
            fill = SYNC_COLOUR if bool(r.blocking) else RUNTIME_COLOUR
            what = "blocking sync" if bool(r.blocking) else "launch call"
            tip, label = (f"{r.name} ({what})", f"in phase {r.phase_path}", dur), str(r.name)
        else:
            yy, hh = y0[lane], GPU_H
            how = r.launch if isinstance(r.launch, str) else "step"
            if how == "none":
                unlaunched += 1
                fill = f"url(#{hatch})"
                tip = (
                    str(r.name),
                    "no launch record in the trace: launched before the trace window opened "
                    "(or its launch call was not captured)",
                    dur,
                )
            else:
                fill = colour.get(str(r.phase_path), OTHER_COLOUR)
                tip = (str(r.name), f"launched in {r.phase_path}", dur)
                if how == "other_step":
                    opacity = 0.45
                    tip = (str(r.name), f"launched in step {r.launch_step}, {r.phase_path}", dur)
                elif how == "outside_steps":
                    opacity = 0.45
                    tip = (str(r.name), f"launched outside every step, in {r.phase_path}", dur)
            label = str(r.name)
        parts.append(_box(x(r.ts_ns), float(max(r.dur_ns, 0)) / span * 100, yy, hh, fill, tip, label, opacity))
    # links: launch call (on its thread's lane) -> the GPU op's start
    gpu = [r for r in recs if r.row_kind == "gpu_op" and not missing(getattr(r, "launch_ts_ns", None))]
    every = max(1, -(-len(gpu) // MAX_LINKS))
    nlinks = 0
    for j, r in enumerate(gpu):
        src = f"CPU tid {int(r.launch_tid)}" if not missing(r.launch_tid) else None
        if src not in y0 or j % every:
            continue
        sy = y0[src] + depth_of[src] * ROW_H
        parts.append(
            f"<line x1='{_pct(x(r.launch_ts_ns))}' y1='{sy:.1f}' x2='{_pct(x(r.ts_ns))}' y2='{y0[str(r.lane)]:.1f}' "
            "stroke='#888' stroke-width='0.5' stroke-opacity='0.6'/>"
        )
        nlinks += 1
    parts.append("</svg>")
    left.append("</svg>")
    if len(gpu) > nlinks and gpu:
        note += f" {nlinks:,} of {len(gpu):,} launch links drawn (every {every}th)."
    if unlaunched:
        note += (
            f" {unlaunched:,} GPU op{'s' if unlaunched > 1 else ''} of the window {'have' if unlaunched > 1 else 'has'} "
            "no launch record in the trace (hatched grey): launched before the trace window opened."
        )
    cap = (
        f"Step {first['step_index']} of trace {first['trace']} (range '{first['step_name']}', wall "
        f"{fmt_duration(first['step_wall_ns'], with_unit=True)}): the median by wall time of the trace's "
        f"'{first['step_kind']}' steps. CPU lanes: ranges by nesting depth, then launch calls (dark; blocking "
        "syncs red); "
        + (
            "GPU lanes: every GPU op that overlaps the step's window and every op launched in the "
            "step (faded: launched in another step or outside the steps); lines join a launch to its "
            "GPU op"
            if any(r.row_kind == "gpu_op" for r in recs)
            else "no GPU op overlaps the step's window (no GPU activity recorded)"
        )
        + "; hover a box for its name."
        + note
    )
    return _frame("".join(left), "".join(parts)), cap


def _kinds(results: Mapping[str, Any], ops: Rows) -> list[str]:
    """The step kind of each steps.median_step_ops row, looked up in ``steps``."""
    st = as_rows(results.get("steps"))
    if not len(st):
        return ["?"] * len(ops)
    kind = {(t, i): k for t, i, k in zip(st.col("trace"), st.col("step_index"), st.col("step_kind"))}
    return [str(kind.get((t, i), "?")) for t, i in zip(ops.col("trace"), ops.col("step_index"))]


def _rows(results: Mapping[str, Any]) -> list[SimpleNamespace] | None:
    """``timeline``'s rows, else steps.median_step_ops in its shape (report.to_html without timeline.sql)."""
    tl = as_rows(results.get("timeline"))
    if len(tl):
        return _records(tl)
    ops = as_rows(results.get("steps.median_step_ops"))
    if not len(ops):
        return None
    out = []
    for r, kind in zip(_records(ops), _kinds(results, ops)):
        g = str(r.lane).startswith("GPU")
        out.append(
            SimpleNamespace(
                **{
                    **vars(r),
                    "lane_kind": "gpu" if g else "cpu",
                    "row_kind": "gpu_op" if g else "range",
                    "depth": None if g else len(str(r.phase_path).split("/")),
                    "blocking": None,
                    "launch_tid": None,
                    "launch_ts_ns": None,
                    "launch": None,
                    "launch_step": None,
                    "step_kind": kind,
                }
            )
        )
    return out


def sections(results: Mapping[str, Any], colour: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(trace, svg + legend html, caption) per trace of ``timeline`` (else of steps.median_step_ops);
    ``results``: Rows or DataFrames; ``colour``: the page's :func:`phase_colours` (computed from ``results`` when None)."""
    tl = _rows(results)
    if tl is None:
        return []
    colour = colour if colour is not None else phase_colours(results)
    by_trace: dict[Any, list[SimpleNamespace]] = {}
    for r in tl:
        if not missing(r.trace):
            by_trace.setdefault(r.trace, []).append(r)
    out = []
    for i, (trace, sub) in enumerate(by_trace.items()):
        s, cap = svg(sub, colour, uid=str(i))
        shown = {str(r.phase_path) for r in sub if r.row_kind != "runtime"}
        runtime = any(r.row_kind == "runtime" for r in sub)
        extra = [(RUNTIME_COLOUR, "launch call"), (SYNC_COLOUR, "blocking sync")] if runtime else []
        if any(r.row_kind == "gpu_op" and r.launch == "none" for r in sub):
            extra.append(
                ("repeating-linear-gradient(45deg,#8c8c8c 0 2px,#eeeeee 2px 5px)", "GPU op with no launch record")
            )
        out.append((str(trace), s + legend(colour, shown, extra), cap))
    return out


@dataclass(frozen=True)
class Drawn:
    """The page's colour of every phase path and its timeline figure per trace (trace -> (svg + legend, caption)).

    Why a value of its own: both read only ``headline.phase_tree`` and the timeline's rows, so ``report --html``
    draws them as soon as those exist, on a worker beside the analyses still running (the timeline's SVG was
    ~0.1 s of the ~0.13 s the page took after the analyses on a 216k-event trace, issue 25 item 3)."""

    colour: dict[str, str]
    timelines: dict[str, tuple[str, str]]

    @classmethod
    def of(cls, results: Mapping[str, Any]) -> Drawn:
        """Both, from ``results`` (Rows or DataFrames; what :func:`phase_colours` and :func:`sections` read)."""
        colour = phase_colours(results)
        return cls(colour, {t: (s, cap) for t, s, cap in sections(results, colour)})


# ----------------------------------------------------------------------------- the phase tree as a bar


def phase_bar(data: Any, headline: Any, colour: Mapping[str, str]) -> tuple[str | None, str]:
    """(inline SVG + legend, caption): per step kind a horizontal bar of the exclusive mean CPU time of every
    phase-tree row (plots.phase_bar_data), stacked in tree order, with a tick at the mean CPU span; or
    (None, why). ``data``, ``headline``: Rows or DataFrames."""
    recs = _records(data)
    if not recs:
        return None, "no phase tree (no step matched the step pattern, or headline.sql did not run)"
    kinds = list(dict.fromkeys(str(r.step_kind) for r in recs))
    spans: dict[str, float] = {}
    hl = as_rows(headline)
    if len(hl) and {"step_kind", "metric", "mean"} <= set(hl.columns):
        for k, m, v in zip(hl.col("step_kind"), hl.col("metric"), hl.col("mean")):
            if m == "CPU span" and not missing(v):
                spans[str(k)] = float(v)
    totals = {k: sum(num(r.excl_cpu_ns_mean) for r in recs if str(r.step_kind) == k) for k in kinds}
    full = max([1.0, *totals.values(), *spans.values()])
    bar_h, gap = 22, 12
    height = 8 + len(kinds) * (bar_h + gap) + 18
    left = [f"<svg class='tl-lanes' width='{LABEL_W}' height='{height}' xmlns='http://www.w3.org/2000/svg'>"]
    parts = [f"<svg class='phasebar' width='100%' height='{height}' role='img' xmlns='http://www.w3.org/2000/svg'>"]
    parts += _axis(full, height - 4, 4, height - 16)
    for i, k in enumerate(kinds):
        y = 8 + i * (bar_h + gap)
        left.append(
            f"<text x='4' y='{y + bar_h / 2 + 4:.0f}' fill='#222'><title>{html_text(k)}</title>"
            f"{html_text(elide(k, 25))}</text>"
        )
        xx = 0.0
        for r in (r for r in recs if str(r.step_kind) == k):
            v = num(r.excl_cpu_ns_mean)
            if v <= 0:
                continue
            p = str(r.phase_path)
            share = f" ({fmt_share(v / totals[k])} of the bar)" if totals[k] else ""
            tip = f"{p}: {fmt_duration(v, with_unit=True)} exclusive CPU time per step{share}"
            parts.append(_box(xx, v / full * 100, y, bar_h, colour.get(p, OTHER_COLOUR), tip, p))
            xx += v / full * 100
        if k in spans:
            sx = spans[k] / full * 100
            parts.append(
                f"<line x1='{_pct(sx)}' y1='{y - 4}' x2='{_pct(sx)}' y2='{y + bar_h + 4}' stroke='#000' "
                f"stroke-width='2'><title>mean CPU span {html_text(fmt_duration(spans[k], with_unit=True))}</title></line>"
            )
    parts.append("</svg>")
    left.append("</svg>")
    shown = {str(r.phase_path) for r in recs}
    cap = (
        "exclusive CPU time of each phase in the mean step, stacked in phase-tree order: parents without their "
        "children, '(other)' = step time in no phase; the black tick is the mean CPU span (steps' wall time); "
        "hover a segment for its phase and time"
    )
    return _frame("".join(left), "".join(parts)) + legend(colour, shown), cap
