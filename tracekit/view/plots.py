"""The HTML report's figures as inline SVG written here: step latency, idle causes, the several-GPU plots
(the phase bar and the timeline are inline SVG too: tracekit.view.timeline).

Why not matplotlib PNGs: ``report --html`` spent 0.45-0.55 s importing matplotlib and 0.35-0.5 s importing
pandas for four small figures, about as long as the whole terminal report (issue 25: the page within 1.5x
of the terminal). SVG text is text: hover shows every bar's exact value, the page stays self-contained,
and nothing is parsed as math (a range named ``$x^$`` was a mathtext traceback under matplotlib).

Each function takes the result tables of ONE trace (:class:`~tracekit.rows.Rows`, or DataFrames from
the Python API, converted once) and returns ``(svg, caption)``, or ``(None, why)`` when there is nothing
to draw, so the page says why instead of showing an empty axis. Numbers are the SQL's; tick labels are
plain numbers in the axis's unit (never an offset like ``+4.7151e4``). Every text from a trace goes
through :func:`tracekit.safe.html_text`. Colours are matplotlib's default cycle (tab10) and the cause
colours the PNGs had.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tracekit.rows import EMPTY, Rows, as_rows, missing, num
from tracekit.safe import html_text
from tracekit.view.model import elide, fmt_duration, pick_unit, plural

Plot = tuple[str | None, str]

#: matplotlib's default colour cycle (tab10): a step kind's colour, as in the PNGs.
CYCLE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: CPU-side causes warm, GPU-side cool, unknown grey (queries/gpu_idle.sql names them).
CAUSE_COLOUR = {
    "launch_bound": "#e15759",
    "host_busy": "#f28e2b",
    "sync_blocked": "#b07aa1",
    "gpu_wait": "#4e79a7",
    "queued_dependency": "#76b7b2",
    "gpu_sync_record": "#9c755f",
    "kernel_gap": "#1f77b4",
    "no_launch_record": "#bab0ac",
    "other": "#bab0ac",
    "before_first_gpu_op": "#d9d9d9",
    "after_last_gpu_op": "#d9d9d9",
}
EXPOSED_COLOUR, OVERLAP_COLOUR = "#e15759", "#76b7b2"
FIRST_END_COLOUR, LAST_END_COLOUR, RANK_BAR_COLOUR = "#59a14f", "#e15759", "#4e79a7"
INK, MUTED, SPINE, GRID = "#1f2328", "#57606a", "#57606a", "#eaeef2"  # the page's text colours (html.CSS)
CHAR_PX = 6.2  # mean width of a character at the figures' 11 px font
MAX_STEP_PANELS = 4  # the per-rank step timeline shows this many steps: the ones whose ends are furthest apart
MAX_PHASE_BARS = 30  # exposed-communication bars: the (trace, device, phase) rows with most exposed time


# ----------------------------------------------------------------------------- SVG primitives


def _n(v: float) -> str:
    """A coordinate: one decimal, no '-0.0'."""
    s = f"{v:.1f}"
    return "0.0" if s == "-0.0" else s


def _short(s: object, n: int = 40) -> str:
    return elide(str(s), n)


def text(
    x: float,
    y: float,
    s: str,
    anchor: str = "start",
    fill: str = INK,
    size: int | None = None,
    tip: str | None = None,
    rotate: bool = False,
    weight: str = "",
) -> str:
    """A <text> of untrusted ``s`` (escaped) with optional hover text ``tip`` (escaped)."""
    attrs = f" text-anchor='{anchor}'" if anchor != "start" else ""
    attrs += f" font-size='{size}'" if size else ""
    attrs += f" font-weight='{weight}'" if weight else ""
    attrs += f" transform='rotate(-90 {_n(x)} {_n(y)})'" if rotate else ""
    title = f"<title>{html_text(tip)}</title>" if tip else ""
    return f"<text x='{_n(x)}' y='{_n(y)}' fill='{fill}'{attrs}>{title}{html_text(s)}</text>"


def rect(x: float, y: float, w: float, h: float, fill: str, tip: str = "", opacity: float = 1.0) -> str:
    """A filled box with its hover text (escaped); at least 1 px wide so a small value stays visible."""
    op = f" fill-opacity='{opacity}'" if opacity < 1 else ""
    title = f"<title>{html_text(tip)}</title>" if tip else ""
    return (
        f"<rect x='{_n(x)}' y='{_n(y)}' width='{_n(max(w, 1.0))}' height='{_n(max(h, 0.0))}' "
        f"fill='{fill}'{op}>{title}</rect>"
    )


def line(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    stroke: str = SPINE,
    width: float = 1.0,
    dash: bool = False,
    tip: str = "",
) -> str:
    d = " stroke-dasharray='4 3'" if dash else ""
    title = f"<title>{html_text(tip)}</title>" if tip else ""
    return (
        f"<line x1='{_n(x1)}' y1='{_n(y1)}' x2='{_n(x2)}' y2='{_n(y2)}' stroke='{stroke}' "
        f"stroke-width='{width}'{d}>{title}</line>"
    )


def figure(width: float, height: float, body: Iterable[str], label: str) -> str:
    """The root <svg class='fig'>: drawn at ``width`` px, scaled down with the page (viewBox), ``label`` for readers."""
    return (
        f"<svg class='fig' viewBox='0 0 {width:.0f} {height:.0f}' width='{width:.0f}' height='{height:.0f}' "
        f"role='img' aria-label='{html_text(label)}' xmlns='http://www.w3.org/2000/svg'>" + "".join(body) + "</svg>"
    )


def legend(
    items: Sequence[tuple[str, str]], x: float, y: float, across: bool = False, max_chars: int = 30
) -> list[str]:
    """Swatch + text per (colour, name) from (x, y): one per line, or in one row when ``across``."""
    out = []
    for colour, name in items:
        short = _short(name, max_chars)
        out.append(
            rect(x, y - 8, 10, 10, colour) + text(x + 14, y + 1, short, size=10, tip=name if short != name else None)
        )
        if across:
            x += 14 + len(short) * CHAR_PX * 10 / 11 + 16
        else:
            y += 15
    return out


# ----------------------------------------------------------------------------- axes and ticks


def nice_step(span: float, target: int = 5) -> float:
    """A tick step of 1, 2, 2.5 or 5 times a power of ten giving about ``target`` ticks over ``span``."""
    raw = max(span, 1e-12) / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))


def ticks(lo: float, hi: float, target: int = 5, integer: bool = False) -> list[float]:
    """Round tick values inside [lo, hi] (integers only when ``integer``: step indices, counts)."""
    step = nice_step(hi - lo, target)
    if integer:
        step = float(max(1, math.ceil(step)))
    first = math.ceil(lo / step - 1e-9)
    out, k = [], first
    while k * step <= hi + step * 1e-9:
        out.append(k * step)
        k += 1
    return out


def tick_label(v: float, values: Sequence[float]) -> str:
    """``v`` with as many decimals as the tick step needs (2.5 -> one), thousands separated, never '-0'."""
    step = min((abs(b - a) for a, b in itertools.pairwise(values)), default=1.0) or 1.0
    d = next((d for d in range(7) if abs(round(step, d) - step) <= step * 1e-6), 6)
    s = f"{v:,.{d}f}"
    return s[1:] if s.startswith("-") and float(s.replace(",", "")) == 0 else s


@dataclass(frozen=True)
class Axes:
    """A plot area in px (``x``, ``y`` = its top left) and the data range it shows."""

    x: float
    y: float
    w: float
    h: float
    xlo: float
    xhi: float
    ylo: float
    yhi: float

    def px(self, v: float) -> float:
        return self.x + (v - self.xlo) / ((self.xhi - self.xlo) or 1.0) * self.w

    def py(self, v: float) -> float:
        return self.y + self.h - (v - self.ylo) / ((self.yhi - self.ylo) or 1.0) * self.h

    def cx(self, v: float) -> float:
        """``px`` clamped to the area (a bar that starts left of a zoomed axis starts at its edge)."""
        return min(max(self.px(v), self.x), self.x + self.w)


def x_axis(
    ax: Axes, label: str, values: Sequence[float] | None = None, names: Sequence[str] | None = None, grid: bool = False
) -> list[str]:
    """Bottom spine, ticks at ``values`` (round ones over the range when None) and the axis label."""
    values = ticks(ax.xlo, ax.xhi, 6) if values is None else values
    base = ax.y + ax.h
    out = [line(ax.x, base, ax.x + ax.w, base)]
    for i, v in enumerate(values):
        x = ax.px(v)
        if grid:
            out.append(line(x, ax.y, x, base, GRID))
        out.append(line(x, base, x, base + 4))
        out.append(text(x, base + 15, names[i] if names else tick_label(v, values), "middle", MUTED, 10))
    out.append(text(ax.x + ax.w / 2, base + 31, label, "middle"))
    return out


def y_axis(ax: Axes, label: str, values: Sequence[float] | None = None, grid: bool = True) -> list[str]:
    """Left spine, ticks with light grid lines, and the rotated axis label."""
    values = ticks(ax.ylo, ax.yhi) if values is None else values
    out = [line(ax.x, ax.y, ax.x, ax.y + ax.h)]
    widest = 0
    for v in values:
        y = ax.py(v)
        s = tick_label(v, values)
        widest = max(widest, len(s))
        if grid:
            out.append(line(ax.x, y, ax.x + ax.w, y, GRID))
        out.append(line(ax.x - 4, y, ax.x, y))
        out.append(text(ax.x - 6, y + 3.5, s, "end", MUTED, 10))
    lx = ax.x - 14 - widest * CHAR_PX * 10 / 11
    out.append(text(lx, ax.y + ax.h / 2, label, "middle", rotate=True))
    return out


def _pad(lo: float, hi: float, frac: float = 0.05) -> tuple[float, float]:
    """[lo, hi] widened by ``frac`` of its span each side (matplotlib's margins); a point gets +-0.5."""
    if hi <= lo:
        return lo - 0.5, hi + 0.5
    m = (hi - lo) * frac
    return lo - m, hi + m


# ----------------------------------------------------------------------------- figures of one trace


def phase_bar_data(tree: Any) -> Rows:
    """The stacked bar's segments: per step kind, every phase-tree row's EXCLUSIVE mean CPU time.

    Exclusive times do not double count (a parent's row leaves out its children), so a bar's
    height is the mean step CPU span: the test checks it against steps.sql's mean wall_ns.
    """
    cols = ["trace", "step_kind", "row_order", "phase_path", "excl_cpu_ns_mean"]
    rs = as_rows(tree)
    if not len(rs) or not set(cols) <= set(rs.columns):
        return Rows(tuple(cols), ("VARCHAR",) * 5, ())
    rs = rs.select(cols)
    return Rows(
        rs.columns, rs.types, tuple(sorted(rs.data, key=lambda r: (str(r[0]), str(r[1]), num(r[2])))), rs.declared
    )


def _by_kind(steps: Rows) -> dict[str, list[tuple[float, float]]]:
    """step kind -> [(step_index, wall_ns)] in row order (steps.sql's time order); NULL walls left out."""
    out: dict[str, list[tuple[float, float]]] = {}
    for k, i, w in zip(steps.col("step_kind"), steps.col("step_index"), steps.col("wall_ns")):
        if not missing(w) and not missing(i):
            out.setdefault(str(k), []).append((float(i), float(w)))
    return out


def _histogram(values: Sequence[float]) -> list[tuple[float, float, int]]:
    """(left edge, right edge, count) of ``values`` in min(40, max(5, n // 2)) equal bins over their range
    (the last bin holds its right edge; a single value gets the bin [v - 0.5, v + 0.5], as numpy's)."""
    n = min(40, max(5, len(values) // 2))
    lo, hi = min(values), max(values)
    if hi == lo:
        lo, hi = lo - 0.5, hi + 0.5
    w = (hi - lo) / n
    counts = [0] * n
    for v in values:
        counts[min(n - 1, int((v - lo) / w))] += 1
    return [(lo + i * w, lo + (i + 1) * w, c) for i, c in enumerate(counts)]


def latency(steps: Any) -> Plot:
    """Step wall time over the run (a line per step kind) and its distribution (a histogram per kind)."""
    st = as_rows(steps)
    if not len(st):
        return None, "no step matched the step pattern (set --step-pattern)"
    if len(st) < 3:
        walls = ", ".join(fmt_duration(v, with_unit=True) for v in st.col("wall_ns"))
        return None, (
            f"{len(st)} step{'s' if len(st) > 1 else ''} only (wall {walls}): "
            "a trend and a distribution need at least 3"
        )
    kinds = _by_kind(st)
    if not kinds:
        return None, "no step has a wall time (every wall_ns is NULL)"
    unit = pick_unit([w for pts in kinds.values() for _, w in pts])
    colour = {k: CYCLE[i % len(CYCLE)] for i, k in enumerate(kinds)}
    top = 30 if len(kinds) > 1 else 12
    ilo, ihi = _pad(min(i for p in kinds.values() for i, _ in p), max(i for p in kinds.values() for i, _ in p))
    vlo, vhi = _pad(
        min(w for p in kinds.values() for _, w in p) / unit[1], max(w for p in kinds.values() for _, w in p) / unit[1]
    )
    a1 = Axes(70, top, 480, 190, ilo, ihi, vlo, vhi)
    body = y_axis(a1, f"step wall time ({unit[0]})") + x_axis(
        a1, "step index (time order)", ticks(ilo, ihi, 8, integer=True)
    )
    hists = {k: _histogram([w / unit[1] for _, w in pts]) for k, pts in kinds.items()}
    hlo, hhi = _pad(min(b[0][0] for b in hists.values()), max(b[-1][1] for b in hists.values()))
    cmax = max(c for b in hists.values() for _, _, c in b)
    a2 = Axes(650, top, 230, 190, hlo, hhi, 0, cmax * 1.05)
    body += y_axis(a2, "steps", ticks(0, cmax * 1.05, 5, integer=True)) + x_axis(a2, f"step wall time ({unit[0]})")
    for k, pts in kinds.items():
        c = colour[k]
        xy = " ".join(f"{_n(a1.px(i))},{_n(a1.py(w / unit[1]))}" for i, w in pts)
        body.append(f"<polyline points='{xy}' fill='none' stroke='{c}' stroke-width='1.2'/>")
        for i, w in pts:  # a dot per step when there are few; the hover holds the value either way
            r = 2.5 if len(pts) <= 60 else 1.2
            body.append(
                f"<circle cx='{_n(a1.px(i))}' cy='{_n(a1.py(w / unit[1]))}' r='{r}' fill='{c}'>"
                f"<title>{html_text(f'{k} · step {i:.0f}: {fmt_duration(w, with_unit=True)}')}</title></circle>"
            )
        for lo, hi, n in hists[k]:
            if n:
                tip = (
                    f"{k}: {n} step{'' if n == 1 else 's'} of {tick_label(lo, [lo, hi])}–{tick_label(hi, [lo, hi])} "
                    f"{unit[0]}"
                )
                bar = rect(a2.px(lo), a2.py(n), a2.px(hi) - a2.px(lo), a2.py(0) - a2.py(n), c, tip, 0.7)
                body.append(bar.replace("<rect ", "<rect stroke='#fff' stroke-width='0.8' ", 1))  # bins apart
    if len(kinds) > 1:
        body += legend([(colour[k], k) for k in kinds], a1.x, 12, across=True)
    cap = f"{plural(len(st), 'step')}: wall time of each step in time order, and the distribution"
    return figure(900, top + 190 + 40, body, "Step latency over the run"), cap


def _idle_table(by_step: Rows) -> tuple[list[Any], list[str], dict[tuple[Any, str], float]]:
    """(step indices ascending, causes by name, (step, cause) -> idle ns summed over devices)."""
    sums: dict[tuple[Any, str], float] = {}
    for i, c, v in zip(by_step.col("step_index"), by_step.col("cause"), by_step.col("idle_ns")):
        if missing(i) or missing(c):
            continue
        sums[(i, str(c))] = sums.get((i, str(c)), 0.0) + num(v)
    return sorted({i for i, _ in sums}), sorted({c for _, c in sums}), sums


def cause_colours(causes: Sequence[str]) -> dict[str, str]:
    """Each cause's colour: :data:`CAUSE_COLOUR`, else the next of :data:`CYCLE` that no known cause has (a cause
    added to the SQL later must not look like kernel_gap)."""
    spare = [c for c in CYCLE if c not in CAUSE_COLOUR.values()]
    unknown = [c for c in causes if c not in CAUSE_COLOUR]
    return {c: CAUSE_COLOUR.get(c) or spare[unknown.index(c) % len(spare)] for c in causes}


def idle_by_step(by_step: Any) -> Plot:
    """GPU idle time inside each step, stacked by cause (summed over devices; causes in name order, bottom up)."""
    rs = as_rows(by_step)
    if not len(rs):
        return None, "no GPU idle time inside steps (no GPU ops, or no step matched)"
    steps, causes, sums = _idle_table(rs)
    if not steps:
        return None, "no GPU idle time inside steps (no GPU ops, or no step matched)"
    totals = {i: sum(sums.get((i, c), 0.0) for c in causes) for i in steps}
    unit = pick_unit(list(totals.values()))
    ymax = max(max(totals.values()) / unit[1], 1e-12)
    lo, hi = float(min(steps)), float(max(steps))
    ax = Axes(70, 12, 650, 190, lo - 0.6, hi + 0.6, 0, ymax * 1.05)
    marks = [float(i) for i in steps] if len(steps) <= 30 else ticks(lo, hi, 10, integer=True)
    body = y_axis(ax, f"GPU idle in step ({unit[0]})") + x_axis(ax, "step index", marks)
    colour = cause_colours(causes)
    w = max(ax.px(0.85) - ax.px(0), 1.0)
    for i in steps:
        base = 0.0
        for c in causes:
            v = sums.get((i, c), 0.0)
            if v <= 0:
                continue
            y0, y1 = ax.py(base / unit[1]), ax.py((base + v) / unit[1])
            tip = (
                f"step {i}: {c} {fmt_duration(v, with_unit=True)} of {fmt_duration(totals[i], with_unit=True)} GPU idle"
            )
            body.append(rect(ax.px(float(i)) - w / 2, y1, w, y0 - y1, colour[c], tip))
            base += v
    body += legend([(colour[c], c) for c in reversed(causes)], ax.x + ax.w + 20, ax.y + 8)  # top down as stacked
    return figure(900, 12 + 190 + 40, body, "GPU idle causes per step"), (
        "GPU idle time of each step end to end (from its start to its last GPU op's end) by cause "
        "(headline.idle, summed over devices: the 'GPU idle, end to end' of the per-step table; the "
        "causes are defined in queries/gpu_idle.sql): launch_bound and host_busy are CPU-side, "
        "sync_blocked a host sync, gpu_wait / queued_dependency a GPU-side dependency, kernel_gap the "
        "ordinary gap between queued kernels"
    )


def of_trace(results: Mapping[str, Any], key: str, trace: str) -> Rows:
    """The rows of result ``key`` for ``trace`` (the empty table when there are none)."""
    rs = as_rows(results.get(key))
    if not len(rs) or "trace" not in rs:
        return EMPTY
    return rs.where(lambda r: r["trace"] == trace)


def for_trace(results: Mapping[str, Any], trace: str) -> dict[str, Plot]:
    """Every figure of one trace (``results``: Rows or DataFrames)."""
    return {
        "latency": latency(of_trace(results, "steps", trace)),
        "idle": idle_by_step(of_trace(results, "headline.idle", trace)),
    }


# ----------------------------------------------------------------------------- several GPUs


def _panel_keys(rank_steps: Rows, step_skew: Rows) -> list[Any]:
    """The steps to draw: the :data:`MAX_STEP_PANELS` whose ends are furthest apart, in rank_steps' order."""
    keys = list(dict.fromkeys(rank_steps.col("step_key")))
    if len(step_skew) and "skew_ns" in step_skew and "step_key" in step_skew:
        order = sorted(
            zip(step_skew.col("skew_ns"), step_skew.col("step_key")),
            key=lambda r: (missing(r[0]), -num(r[0]), str(r[1])),
        )
        top = {k for _, k in order[:MAX_STEP_PANELS]}
        keys = [k for k in keys if k in top]
    return keys[:MAX_STEP_PANELS]


def rank_timeline(rank_steps: Any, step_skew: Any, align: str) -> Plot:
    """Per-rank step timeline (collectives.rank_steps): one panel per step, a bar per rank from its aligned
    start to its end, offsets from the step's earliest start; dashed lines at the earliest and latest end."""
    rs, sk = as_rows(rank_steps), as_rows(step_skew)
    ranks = sorted({r for r in rs.col("rank") if not missing(r)}) if len(rs) and "rank" in rs else []
    if len(ranks) < 2:
        return None, (
            "no per-rank steps (collectives.rank_steps is empty): the timeline needs one trace per rank "
            "with steps matching --step-pattern on at least two of them"
        )
    keys = _panel_keys(rs, sk)
    recs = rs.records()
    unit = pick_unit([r["end_offset_ns"] for r in recs])
    row_h, label_w, panel_w, gap = 22, 64, 290, 36
    width = label_w + len(keys) * (panel_w + gap)
    height = 26 + row_h * len(ranks) + 40
    body: list[str] = []
    for j, r in enumerate(ranks):
        body.append(text(label_w - 8, 26 + (j + 0.5) * row_h + 4, f"rank {r}", "end", size=10))
    for n, key in enumerate(keys):
        sub = [r for r in recs if r["step_key"] == key and not missing(r["end_offset_ns"]) and not missing(r["rank"])]
        if not sub:
            continue
        ends = [float(r["end_offset_ns"]) / unit[1] for r in sub]
        lo, hi = min(ends), max(ends)
        span = hi or 1.0
        ax = Axes(
            label_w + n * (panel_w + gap),
            26,
            panel_w,
            row_h * len(ranks),
            max(0.0, lo - 0.15 * span),
            hi + 0.05 * span,
            0,
            1,
        )  # zoomed on the ends: that is where the skew is
        body.append(text(ax.x + ax.w / 2, 14, _short(key, 28), "middle", tip=str(key)))
        body += x_axis(ax, f"from the step's earliest start ({unit[0]})", ticks(ax.xlo, ax.xhi, 4), grid=True)
        body.append(line(ax.x, ax.y, ax.x, ax.y + ax.h))
        for r in sub:
            a, b = num(r["start_offset_ns"]) / unit[1], float(r["end_offset_ns"]) / unit[1]
            y = ax.y + (ranks.index(r["rank"]) + 0.2) * row_h
            tip = (
                f"rank {r['rank']} · {key}: from {fmt_duration(r['start_offset_ns'], unit)} to "
                f"{fmt_duration(r['end_offset_ns'], unit)} {unit[0]} after the step's earliest start"
            )
            body.append(rect(ax.cx(a), y, ax.cx(b) - ax.cx(a), 0.6 * row_h, RANK_BAR_COLOUR, tip))
        for v, c, what in ((lo, FIRST_END_COLOUR, "first rank done"), (hi, LAST_END_COLOUR, "last rank done")):
            body.append(
                line(
                    ax.px(v),
                    ax.y - 2,
                    ax.px(v),
                    ax.y + ax.h,
                    c,
                    1.2,
                    dash=True,
                    tip=f"{what}: {fmt_duration(v * unit[1], unit, with_unit=True)}",
                )
            )
    how = {"collective_end": "matched collectives end together", "one_clock": "one shared clock"}.get(
        align, "raw timestamps (rank_align none)"
    )
    total = len(dict.fromkeys(rs.col("step_key")))
    shown = f"{len(keys)} of {plural(total, 'step')} (the ones whose ends are furthest apart)"
    return figure(width, height, body, "Per-rank step timeline"), (
        f"each rank's step range, {shown}; clocks: {how}. The x axis starts near the ends "
        "(bars begin at the step's start); green dashed = the first rank to finish, red = the last"
    )


def _comm_rows(by_phase: Rows) -> list[dict[str, Any]]:
    """comm.by_phase rows with communication ops, most exposed first (then trace, device, phase)."""
    if not len(by_phase) or "comm_ops" not in by_phase:
        return []
    recs = [r for r in by_phase.records() if num(r["comm_ops"]) > 0]
    return sorted(
        recs,
        key=lambda r: (
            missing(r["comm_exposed_ns"]),
            -num(r["comm_exposed_ns"]),
            str(r["trace"]),
            missing(r["device"]),
            num(r["device"]),
            str(r["phase_path"]),
        ),
    )


def comm_phase_bars(by_phase: Any) -> Plot:
    """Exposed vs overlapped communication time (NCCL, DeepEP, custom all-reduce, ...: comm.sql's class) per phase
    of the launching call (comm.by_phase), stacked, per trace and device."""
    d = _comm_rows(as_rows(by_phase))
    if not d:
        return None, (
            "no communication kernel in these traces (NCCL/RCCL, DeepEP, NVSHMEM, custom all-reduce): "
            "nothing to split into exposed and overlapped"
        )
    left = len(d) - MAX_PHASE_BARS
    d = d[:MAX_PHASE_BARS]
    many = len({r["trace"] for r in d}) > 1 or len({r["device"] for r in d}) > 1
    full = [(f"{r['trace']} · dev {r['device']} · {r['phase_path']}" if many else str(r["phase_path"])) for r in d]
    labels = [_short(f, 60) for f in full]
    unit = pick_unit([num(r["comm_exposed_ns"]) + num(r["comm_overlap_ns"]) for r in d])
    ex = [num(r["comm_exposed_ns"]) / unit[1] for r in d]
    ov = [num(r["comm_overlap_ns"]) / unit[1] for r in d]
    row_h, label_w = 22, 12 + max(len(s) for s in labels) * CHAR_PX * 10 / 11
    ax = Axes(label_w, 28, 480, row_h * len(d), 0, max(max(a + b for a, b in zip(ex, ov)), 1e-12) * 1.05, 0, 1)
    body = x_axis(ax, f"communication kernel time over the capture ({unit[0]})", grid=True)
    body.append(line(ax.x, ax.y, ax.x, ax.y + ax.h))
    for j, (r, f, s) in enumerate(zip(d, full, labels)):
        y = ax.y + (j + 0.175) * row_h
        body.append(text(ax.x - 6, ax.y + (j + 0.5) * row_h + 3.5, s, "end", size=10, tip=f if s != f else None))
        e, o = num(r["comm_exposed_ns"]), num(r["comm_overlap_ns"])
        both = f"{f}: exposed {fmt_duration(e, with_unit=True)}, overlapped {fmt_duration(o, with_unit=True)}"
        if e > 0:
            body.append(rect(ax.px(0), y, ax.px(ex[j]) - ax.px(0), 0.65 * row_h, EXPOSED_COLOUR, both))
        if o > 0:
            body.append(rect(ax.px(ex[j]), y, ax.px(ex[j] + ov[j]) - ax.px(ex[j]), 0.65 * row_h, OVERLAP_COLOUR, both))
    body += legend(
        [(EXPOSED_COLOUR, "exposed (only communicating)"), (OVERLAP_COLOUR, "overlapped by compute")],
        ax.x,
        12,
        across=True,
    )
    more = f"; {left} more rows in comm.by_phase" if left > 0 else ""
    return figure(ax.x + ax.w + 30, ax.y + ax.h + 40, body, "Exposed communication per phase"), (
        "communication kernel time per phase of the launching call, summed over the capture (comm.by_phase: "
        "comm_exposed_ns + comm_overlap_ns = comm_op_ns), exposed first" + more
    )
