"""The HTML report: one self-contained page (inline CSS and inline SVG; no network).

First, when a trace ran communication kernels or the set holds several ranks, "Several GPUs": the slow-rank
sentence (collectives.straggler), a per-rank step timeline (collectives.rank_steps) and exposed vs
overlapped communication per phase (comm.by_phase). Per trace: the verdicts, the per-step table and the phase tree, the phase tree as a stacked bar
that does not double count, the median step's timeline, step latency over the run and its
distribution, GPU idle causes per step and the syncs; every other table folded underneath. Text is
left-aligned and elided in the middle with the full name on hover, numbers right-aligned in one
line with their unit; a note column (the reason a value is NULL) is a footnote marker ``[n]`` with
each sentence once under its table, as in the terminal; an empty figure or table is a sentence
saying why. One colour per phase path for the whole page (:func:`tracekit.view.timeline.phase_colours`),
read by the stacked bar, the timeline and their legends. Every name from a trace goes through
:func:`tracekit.safe.html_text`.

The tables, sentences, figures and the timeline read the same :class:`~tracekit.rows.Rows` as the
terminal's view model (DataFrames from the Python API are converted once), so ``report --html`` imports
neither pandas nor matplotlib (issue 25: the page within 1.5x of the terminal report).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracekit.rows import EMPTY, Rows, all_rows, num
from tracekit.safe import html_text
from tracekit.view import plots
from tracekit.view import sections as sec
from tracekit.view import timeline as tl
from tracekit.view.model import Table, elide, fmt_duration, fmt_share, footnote, is_frame, is_note, plural, table

if TYPE_CHECKING:
    import pandas as pd

TEXT_CHARS = 60  # a text cell longer than this is elided in the middle (full text on hover)

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:#1f2328;margin:0 auto;
 padding:1em 2em 3em;max-width:1400px}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.25em;margin:1.6em 0 .4em;border-bottom:1px solid #d0d7de;
 padding-bottom:.2em}h3{font-size:1.05em;margin:1.2em 0 .3em}
p.cap{color:#57606a;font-size:.9em;margin:.2em 0 .8em;max-width:70em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.3em 0 .8em;font-size:13px}
th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;vertical-align:top}
th{border-bottom:2px solid #afb8c1;font-weight:600;text-align:left;white-space:nowrap}
th.num,td.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.text{text-align:left;white-space:nowrap}
td.null{color:#8c959f}
td.frame{white-space:normal;overflow-wrap:anywhere;min-width:16em;max-width:36em}
@media (max-width:900px){th,td{padding:3px 6px}body{padding:1em 1.2em 3em}}
img{max-width:100%;height:auto;display:block}
svg.fig{display:block;max-width:100%;height:auto;font-family:system-ui,sans-serif;font-size:11px;margin:.3em 0}
.tl{display:grid;grid-template-columns:160px minmax(0,1fr);border:1px solid #eaeef2;margin:.3em 0}
.tl svg{display:block;font-family:system-ui,sans-serif;font-size:10px}.tl svg.tl-lanes{font-size:11px}
.tl svg.lbl{overflow:hidden;pointer-events:none}@media (max-width:1000px){.tl svg.lbl.s{display:none}}
.legend{display:flex;flex-wrap:wrap;gap:.2em 1em;font-size:12px;margin:.3em 0}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
ol.fn{font-size:12px;color:#57606a;margin:-.5em 0 .8em;padding-left:2.2em}ol.fn li::marker{content:'[' counter(list-item) '] '}
span.fn{color:#57606a;font-size:.85em}span.nw{white-space:nowrap}
ol.verdicts{margin:.3em 0 .8em;padding-left:1.6em}ol.verdicts li{margin:.15em 0}
.notes li.warn::marker{content:'⚠ '}.notes li{margin:.15em 0}
.empty{color:#57606a;font-style:italic}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}
.grid{display:flex;flex-wrap:wrap;gap:0 2.5em;align-items:flex-start}.grid>div{min-width:0;max-width:100%}
a{color:#0969da}code{background:#f6f8fa;padding:0 .25em;border-radius:3px;font-size:.92em}
.cbar{display:flex;height:24px;max-width:900px;border:1px solid #d0d7de;margin:.3em 0;overflow:hidden}
.cbar div{height:100%;overflow:hidden;white-space:nowrap;font-size:11px;line-height:24px;padding-left:3px}
.cbar-kind{font-size:12px;color:#57606a;margin:.6em 0 0}
"""

#: One colour per kernel category (kernel_categories.csv), the same on every bar and legend of the page.
CATEGORY_COLOURS = {
    "GEMM": "#1f77b4",
    "attention": "#d62728",
    "MoE": "#9467bd",
    "KV-cache write": "#8c564b",
    "norm": "#e377c2",
    "activation": "#ff7f0e",
    "rotary": "#bcbd22",
    "sampling": "#17becf",
    "communication": "#2ca02c",
    "conv": "#393b79",
    "reduction": "#7f7f7f",
    "elementwise": "#aec7e8",
    "memcpy": "#98df8a",
    "memset": "#c5b0d5",
    "other": "#c7c7c7",
}


def table_html(tab: Table) -> str:
    """One view-model table as HTML (or its one-line reason when empty)."""
    if tab.empty is not None:
        return f"<p class='empty'>{html_text(tab.title)}: {html_text(tab.empty)}</p>"
    head = "".join(f"<th class='{'num' if c.numeric else 'text'}'>{html_text(c.header)}</th>" for c in tab.columns)
    notes: list[str] = []  # note sentences, once each, under the table; the cells hold [n] (as the terminal)
    rows = []
    for r in range(tab.shown_rows):
        cells = []
        for j, c in enumerate(tab.columns):
            v = c.cells[r]
            cls = "num" if c.numeric else "text"
            if v == "NULL":
                cls += " null"
            if c.numeric:
                cells.append(f"<td class='{cls}'>{html_text(v)}</td>")
                continue
            if is_note(c):  # a sentence: a footnote marker here, the sentence once under the table
                n = footnote(notes, v)
                cells.append(f"<td class='text'>{f'<span class=fn>[{n}]</span>' if n else ''}</td>")
                continue
            if is_frame(c):  # a Python frame: the full path, wrapped, never cut
                cells.append(f"<td class='{cls} frame'>{html_text(v)}</td>")
                continue
            short = elide(v, TEXT_CHARS)
            pad = f" style='padding-left:{0.4 + 1.2 * tab.indent[r]:.1f}em'" if tab.indent and j == 0 else ""
            full = c.hover[r] if c.hover else v  # a kernel's full name behind its short one
            title = f" title='{html_text(full)}'" if short != full else ""
            cells.append(f"<td class='{cls}'{pad}{title}>{html_text(short)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    left = tab.total_rows - tab.shown_rows
    more = f"<p class='cap'>{plural(left, 'more row')} in --json or tracekit sql</p>" if left > 0 else ""
    fn = ("<ol class='fn'>" + "".join(f"<li>{html_text(n)}</li>" for n in notes) + "</ol>") if notes else ""
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>{fn}{more}"


_DARK = frozenset({"GEMM", "attention", "MoE", "KV-cache write", "conv", "reduction", "communication"})


def category_bars(view: Mapping[str, Rows], trace: str, kinds: Sequence[str]) -> str:
    """A stacked bar per step kind of ``trace``: its GPU op time by kernel category (kernels.categories), each
    segment as wide as its share, the time per step and the top kernel on hover; one legend below."""
    bars, seen, graph = [], [], 0
    for kind in kinds:
        rows = sec.category_rows(view, trace, kind)
        if not rows:
            continue
        steps = num(rows[0].get("steps"))
        per = num(rows[0]["kind_gpu_op_ns"]) / steps if steps else num(rows[0]["kind_gpu_op_ns"])
        segs = []
        for r in rows:
            cat, share = str(r["category"]), num(r["share"])
            if cat not in seen:
                seen.append(cat)
            t = num(r["total_ns"]) / steps if steps else num(r["total_ns"])
            tip = (
                f"{cat}: {fmt_share(share)}, {fmt_duration(t, with_unit=True)}"
                f"{sec.per_unit(kind, int(steps)) if steps else ''}, {plural(int(num(r['ops'])), 'op')}; "
                f"top kernel: {r['top_kernel']}"
            )
            label = html_text(f"{cat} {fmt_share(share)}") if share >= 0.08 else ""
            ink = "#fff" if cat in _DARK else "#1f2328"
            segs.append(
                f"<div style='width:{share * 100:.4f}%;background:{CATEGORY_COLOURS.get(cat, '#c7c7c7')};color:{ink}' "
                f"title='{html_text(tip)}'>{label}</div>"
            )
            graph += int(num(r.get("graph_ops")))
        unit = (sec.per_unit(kind, int(steps)) or " over the trace window") if steps else " in all"
        bars.append(
            f"<p class='cbar-kind'>{html_text(kind)}: {html_text(fmt_duration(per, with_unit=True))}{unit}</p>"
            f"<div class='cbar'>{''.join(segs)}</div>"
        )
    if not bars:
        return ""
    legend = (
        "<div class='legend'>"
        + "".join(
            f"<span><i style='background:{CATEGORY_COLOURS.get(c, '#c7c7c7')}'></i>{html_text(c)}</span>" for c in seen
        )
        + "</div>"
    )
    cap = (
        "Share of each step kind's GPU op time (summed durations of the kernels, memcpys and memsets launched in its "
        "steps; overlapping ops each count in full) by kernel category (queries/kernel_categories.csv); "
        "hover a segment for its time and top kernel."
    )
    if graph:
        cap += f" {graph:,} of these ops ran in CUDA/HIP graph replays: {sec.GRAPH_NOTE}."
    return "".join(bars) + legend + f"<p class='cap'>{html_text(cap)}</p>"


def html_table(df: pd.DataFrame, limit: int = 50, key: str = "") -> str:
    """A DataFrame as a formatted HTML table (used by compare/diff pages too)."""
    return table_html(table(key, df, limit=limit))


def _code(escaped: str) -> str:
    """`name` in a verdict (already escaped) shown as code; a word holding a hyphen (``--trace=cuda``) kept on one line."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", _nobreak(escaped))


def _nobreak(escaped: str) -> str:
    """Words of already escaped text that hold a hyphen, in a span that does not wrap: a browser breaks
    after a hyphen, which cut ``--trace=cuda`` into ``--`` and ``trace=cuda`` (words over 40 characters
    may still wrap, so that they never widen the page)."""
    return re.sub(
        r"[^\s`]*-[^\s`]*",
        lambda m: (
            m.group()
            if len(m.group()) > 40
            # a long one may wrap
            else f"<span class='nw'>{m.group()}</span>"
        ),
        escaped,
    )


def _figure(title: str, plot: plots.Plot) -> str:
    """A figure of :mod:`tracekit.view.plots` (inline SVG, its texts escaped there) under its title, or why not."""
    svg, cap = plot
    if svg is None:
        return f"<h3>{html_text(title)}</h3><p class='empty'>{html_text(cap)}</p>"
    return f"<h3>{html_text(title)}</h3>{svg}<p class='cap'>{html_text(cap)}</p>"


def _rows(view: Mapping[str, Rows], key: str, trace: str) -> Rows:
    rs = view.get(key, EMPTY)
    if not len(rs) or "trace" not in rs:
        return EMPTY
    return rs.where(lambda r: r["trace"] == trace).drop(["trace"])


def _several_gpus(view: Mapping[str, Rows]) -> list[str]:
    """The "Several GPUs" section (only when a trace ran communication kernels or the set holds several ranks): the
    slow-rank sentence, the per-rank step timeline, exposed-communication bars per phase, the per-device lines."""
    comm, ranks = sec.has_comm(view), sec.rank_count(view)
    if not comm and ranks < 2:
        return []
    align = sec.alignment(view)
    out = ["<h2 id='several-gpus'>Several GPUs</h2>"]
    slow = sec.straggler(view)
    if slow:
        out.append(f"<p class='straggler'><b>Slowest rank.</b> {html_text(slow)}</p>")
    if ranks < 2:
        out.append(
            "<p class='empty'>one rank only: no per-rank step timeline and no slowest rank "
            "(give one trace per rank, e.g. a folder of rank*.json.gz)</p>"
        )
    else:
        rs = view.get("collectives.rank_steps", EMPTY)
        sk = view.get("collectives.step_skew", EMPTY)
        out.append(_figure("Per-rank step timeline", plots.rank_timeline(rs, sk, align)))
        out.append(f"<p class='cap'>Clocks: {html_text(sec.ALIGN_TEXT[align])}.</p>")
    bp = view.get("comm.by_phase", EMPTY)
    out.append(_figure("Exposed communication per phase", plots.comm_phase_bars(bp)))
    lines = [(t, ln) for t in sec.traces(view) for ln in sec.comm_lines(view, t)]
    if lines:
        out.append("<ul>" + "".join(f"<li>{html_text(t)}: {html_text(ln)}</li>" for t, ln in lines) + "</ul>")
    return out


def render(
    results: Mapping[str, Any],
    title: str = "tracekit report",
    chrome: Mapping[str, str] | None = None,
    chrome_notes: Sequence[str] = (),
    limit: int = 50,
    view: Mapping[str, Rows] | None = None,
    drawn: tl.Drawn | None = None,
) -> str:
    """The page. ``chrome``: trace -> relative path of its median step exported with export-chrome.

    ``results``: Rows (``report.run(..., rows=True)``, what ``report --html`` passes) or DataFrames (converted
    once here). ``view``: ``all_rows(results)`` when the caller has it already; everything on the page reads it.
    ``drawn``: the colours and timelines already drawn from the same rows (:class:`tracekit.view.timeline.Drawn`:
    ``report --html`` draws them beside the analyses still running)."""
    chrome = chrome or {}
    view = all_rows(results) if view is None else view
    names = sec.traces(view)
    p = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html_text(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{html_text(title)}</h1>"
    ]
    links = ", ".join(f"<a href='#trace-{i}'>{html_text(t)}</a>" for i, t in enumerate(names, 1))
    p.append(f"<p class='cap'>{plural(len(names), 'trace')}: {links}</p>")
    ns = sec.notes(view)
    if ns:
        p.append(
            "<h2>Notes</h2><ul class='notes'>"
            + "".join(
                f"<li class='{html_text(n.severity)}'><b>{html_text(n.severity)}</b> "
                f"{'[' + html_text(n.trace) + '] ' if len(names) > 1 else ''}{html_text(n.source)}: {_nobreak(html_text(n.message))}</li>"
                for n in ns
            )
            + "</ul>"
        )
    for c in chrome_notes:
        p.append(f"<p class='empty'>{html_text(c)}</p>")
    p.extend(_several_gpus(view))
    drawn = drawn or tl.Drawn.of(view)
    colour, timelines = drawn.colour, drawn.timelines  # one colour per phase path for the whole page
    gs = sec.groups(view, full=True, prune="every row is in headline.phase_tree under Every table")
    for i, trace in enumerate(names, 1):
        p.append(f"<h2 id='trace-{i}'>{html_text(trace)}</h2>")
        tg = [g for g in gs if g.trace == trace]
        for g in tg:
            p.append(f"<h3>{html_text(g.step_kind)} · {sec.counted(g.step_kind, g.steps)}</h3>")
            if g.verdicts:
                p.append(
                    "<ol class='verdicts'>" + "".join(f"<li>{_code(html_text(v))}</li>" for v in g.verdicts) + "</ol>"
                )
            p.append("<div class='grid'><div>")
            if g.headline is not None:
                p.append(table_html(g.headline))
            p.append("</div><div>")
            if g.tree is not None:
                gpu = any(c.name.startswith("gpu") for c in g.tree.columns)
                note = sec.TREE_NOTE + (sec.TREE_NOTE_GPU if gpu else " (no GPU op in these steps)")
                note += f"; {g.tree_hidden}" if g.tree_hidden else ""
                p.append(table_html(g.tree) + f"<p class='cap'>{html_text(note)}</p>")
            p.append("</div></div>")
        if not tg:
            p.append(
                "<p class='empty'>no per-step headline (headline.sql gave no rows for this trace: "
                "no step matched the step pattern, see Notes)</p>"
            )
            p.append(table_html(sec.result_table({"summary": _rows(view, "summary", trace)}, "summary")))
        figs = plots.for_trace(view, trace)
        bar, bar_cap = tl.phase_bar(
            plots.phase_bar_data(plots.of_trace(view, "headline.phase_tree", trace)),
            plots.of_trace(view, "headline", trace),
            colour,
        )
        whole = bool(tg) and all(g.step_kind == sec.WHOLE_TRACE for g in tg)
        p.append(
            f"<h3>Where {'the trace' if whole else 'a step'}'s time goes (phase tree, exclusive)</h3>"
            + (f"{bar}<p class='cap'>{html_text(bar_cap)}</p>" if bar else f"<p class='empty'>{html_text(bar_cap)}</p>")
        )
        cbars = category_bars(view, trace, [g.step_kind for g in tg] or ["(outside steps)"])
        if cbars:
            p.append("<h3>GPU op time by kernel category</h3>" + cbars)
        p.append("<h3>Timeline of the median step</h3>")
        if trace in timelines:
            s, cap = timelines[trace]
            link = chrome.get(trace)
            extra = (
                f" Open <a href='{html_text(link)}'>{html_text(link)}</a> in ui.perfetto.dev for every event."
                if link
                else ""
            )
            p.append(s + f"<p class='cap'>{html_text(cap)}{extra}</p>")
        else:
            p.append(
                "<p class='empty'>no step matched the step pattern (set --step-pattern): no median step to draw</p>"
            )
        p.append(_figure("Step latency over the run", figs["latency"]))
        p.append(_figure("GPU idle causes per step", figs["idle"]))
        p.append("<h3>Syncs</h3>" + table_html(table("syncs", _rows(view, "syncs", trace), limit=20, title="syncs")))
    p.append("<h2>Every table</h2><p class='cap'>All outputs of queries/, as in --full; --json has every row.</p>")
    empties = []
    for key in sec.section_keys(view):
        tab = sec.result_table(view, key, limit=limit, many=len(names) > 1)
        if tab.empty is not None:
            empties.append(tab)
            continue
        open_ = " open" if key == "summary" else ""
        p.append(
            f"<details{open_}><summary>{html_text(key)} ({plural(tab.total_rows, 'row')})</summary>{table_html(tab)}</details>"
        )
    if empties:
        p.append(
            "<ul>"
            + "".join(f"<li class='empty'>{html_text(t.key)}: {html_text(t.empty or '')}</li>" for t in empties)
            + "</ul>"
        )
    p.append("</body></html>")
    return "\n".join(p)
