"""The HTML page as issue 21 item 7 (and item 4's timeline sentence, issue 23 item 9) asks for it: one colour per
phase path on the whole page, a palette that does not repeat, footnotes under the per-step table, one GPU
numbering (the one `tracekit info` prints), every GPU op of the median step's window on the timeline, and
names drawn literally and escaped in the SVG figures (issue 25: no matplotlib).

Expected values are worked out from the constructed traces below (times in us, as Kineto writes them) or
from the demo's phase tree as the README shows it, never read back from the page's own code.
"""

from __future__ import annotations

import html
import json
import re
import sys
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted
import view_fixture
from conftest import KINETO_DIR, REPO, needs_shared

from tracekit import report
from tracekit.cli import cli
from tracekit.view import plots
from tracekit.view import timeline as tl
from tracekit.view.html import render

DEMO = REPO / "samples" / "traces" / "spec_decode_k4" / "parquet"
MI250 = KINETO_DIR / "hta" / "amd_trace" / "mi250_minitoy_train_ROCm6_2_kineto.json.gz"


def _svg(page: str, cls: str) -> list[str]:
    """Every <svg class='cls'> ... </svg> of the page (nested label <svg>s closed inside are skipped)."""
    out = []
    for m in re.finditer(rf"<svg class='{cls}'", page):
        depth, i = 0, m.start()
        for t in re.finditer(r"<svg\b|</svg>", page[m.start():]):
            depth += 1 if t.group() != "</svg>" else -1
            if depth == 0:
                i = m.start() + t.end()
                break
        out.append(page[m.start():i])
    return out


def _fills(svg: str, title_re: str) -> dict[str, set[str]]:
    """phase -> the fills of the rects whose <title> matches ``title_re`` (group 1: the phase)."""
    out: dict[str, set[str]] = {}
    for fill, title in re.findall(r"<rect [^>]*fill='([^']+)'[^>]*><title>([^<]*)</title>", svg):
        m = re.match(title_re, html.unescape(title), re.S)
        if m:
            out.setdefault(m.group(1), set()).add(fill)
    return out


def _report_html(src: Path, out: Path, *args: str) -> str:
    r = CliRunner().invoke(cli, ["report", str(src), "--html", str(out), *args])
    assert r.exit_code == 0, r.output
    return out.read_text()


# ----------------------------------------------------------------------------- one colour per phase

def test_demo_bar_and_timeline_give_each_phase_one_colour(tmp_path: Path) -> None:
    """The README demo: before, 'verify' was blue in the stacked bar and red in the timeline."""
    page = _report_html(DEMO, tmp_path / "demo.html")
    bar = _fills(_svg(page, "phasebar")[0], r"(.*): [0-9.,]+ [mun]?s exclusive CPU time")
    line = _fills(_svg(page, "timeline")[0], r"[^\n]*\n([^\n]*)\n[^\n]*$")  # ranges: name, phase, duration
    # the demo's phases (README: the phase tree of spec_decode_k4), each on both figures
    phases = {"draft", "draft/lm_head", "draft/sampler", "verify", "verify/lm_head", "verify/sampler", "candidate"}
    assert phases <= set(bar) and phases == set(line)
    for p in phases:
        assert len(bar[p]) == 1 and bar[p] == line[p], (p, bar[p], line[p])
    colours = [next(iter(bar[p])) for p in phases]
    assert len(set(colours)) == len(phases)  # no two phases share a colour
    assert tl.OTHER_COLOUR not in colours and tl.SYNC_COLOUR not in colours
    # the legends say the same
    for p in phases:
        sw = re.findall(rf"<span class='sw' title='{re.escape(html.escape(p, quote=True))}'><i style='background:(#[0-9a-f]+)'>", page)
        assert sw and set(sw) == bar[p], p


def test_figures_drawn_beside_the_analyses_are_the_page_drawn_after_them(tmp_path: Path) -> None:
    """`report --html` draws the colours and the timeline on a worker while the analyses run (issue 25 item 3):
    its page is the page drawn from the finished report (what a library caller gets from render)."""
    page = _report_html(DEMO, tmp_path / "demo.html")
    res = report.run([str(DEMO)], rows=True, also=("timeline",))
    (link,) = re.findall(r"<a href='(demo\.median_step\.json\.gz)'>", page)[:1]
    (trace,) = {str(t) for t in res["timeline"].col("trace")}
    after = render(res, title=f"tracekit report: {DEMO}", chrome={trace: link})
    assert "<svg class='timeline'" in after and page == after


def _tree(n: int) -> pd.DataFrame:
    """A phase tree of ``n`` phases p00.. with exclusive CPU means n, n-1, ... ms, one GPU-heavy phase, and '(other)'."""
    rows = [{"trace": "t", "step_kind": "s", "row_order": i + 1, "phase_path": f"p{i:02d}",
             "excl_cpu_ns_mean": (n - i) * 1e6, "excl_gpu_ns_mean": None} for i in range(n)]
    rows.append({"trace": "t", "step_kind": "s", "row_order": n + 1, "phase_path": "gpu_heavy",
                 "excl_cpu_ns_mean": 1.0, "excl_gpu_ns_mean": 500e6})  # small on the CPU, largest on the GPU
    rows.append({"trace": "t", "step_kind": "s", "row_order": n + 2, "phase_path": "(other)",
                 "excl_cpu_ns_mean": 0.5e6, "excl_gpu_ns_mean": None})
    return pd.DataFrame(rows)


def test_palette_does_not_repeat_and_groups_the_smallest_phases() -> None:
    # 15 named phases + gpu_heavy = 16: every one its own colour
    col = tl.phase_colours({"headline.phase_tree": _tree(15)})
    named = [p for p in col if p != "(other)"]
    assert len(named) == 16 and len({col[p] for p in named}) == 16
    assert col["(other)"] == tl.OTHER_COLOUR and tl.SMALL_COLOUR not in col.values()
    # 25 + gpu_heavy = 26 phases: the 15 largest keep a colour (gpu_heavy first: 500 ms of GPU time, then
    # p00..p13 by CPU time), the other 11 (p14..p24) share the 'smaller phases' colour
    col = tl.phase_colours({"headline.phase_tree": _tree(25)})
    big = ["gpu_heavy"] + [f"p{i:02d}" for i in range(14)]
    assert len({col[p] for p in big}) == 15 and not {col[p] for p in big} & {tl.SMALL_COLOUR, tl.OTHER_COLOUR}
    assert [p for p in col if col[p] == tl.SMALL_COLOUR] == [f"p{i:02d}" for i in range(14, 25)]
    # drawn: the bar's legend shows 15 colours once each and one 'smaller phases' entry naming 11
    data = plots.phase_bar_data(_tree(25))
    bar, _ = tl.phase_bar(data, pd.DataFrame(), col)
    assert bar is not None
    sw = re.findall(r"<i style='background:(#[0-9a-f]+)'>", bar)
    assert len(sw) == len(set(sw)) == 17  # 15 phases, smaller phases, (other)
    assert "smaller phases (11, one colour" in bar


# ----------------------------------------------------------------------------- footnotes

def test_per_step_table_notes_are_footnotes() -> None:
    """Two sentences on three NULL rows: markers [1] [2] [1] in the rows, each sentence once under the table."""
    res = view_fixture.results()
    hl = res["headline"].copy()
    a, b = "no runtime rows: capture with ProfilerActivity.CPU", "no sync events: enable_cuda_sync_events=True"
    for metric, note in (("GPU span", a), ("sync calls", b), ("idle: launch_bound", a)):
        hl.loc[hl["metric"] == metric, ["mean", "p50", "p99", "note"]] = [None, None, None, note]
    res["headline"] = hl
    page = render(res)
    rank0 = page[page.index("<h2 id='trace-1'>"):page.index("<h2 id='trace-2'>")]
    table = rank0[rank0.index("<table>"):rank0.index("</table>")]
    marks = re.findall(r"<tr><td class='text'>([^<]+)</td>.*?(?:<span class=fn>\[(\d)\]</span>)?</td></tr>", table)
    assert [(m, n) for m, n in marks if n] == [("GPU span", "1"), ("sync calls", "2"), ("idle: launch_bound", "1")]
    assert a not in table and b not in table  # no sentence inside the table
    notes = rank0[rank0.index("</table>"):]
    assert notes.startswith("</table></div><ol class='fn'>")
    fn = re.search(r"<ol class='fn'>(.*?)</ol>", notes).group(1)  # type: ignore[union-attr]
    assert fn == f"<li>{html.escape(a)}</li><li>{html.escape(b)}</li>"
    assert rank0.count(html.escape(a)) == 1 and rank0.count(html.escape(b)) == 1


# ----------------------------------------------------------------------------- the GPU ops of the window

US = 1000


def _sync_trace(path: Path) -> Path:
    """Step 1000..2000 us; the host sits in cudaDeviceSynchronize 1100..1900 while the GPU runs three ops with
    no launch record (correlations 901-903 have no runtime call): u0 900..1050 (starts before the step),
    u1 1100..1400, u2 1400..1850. k_step is launched in the step (1910) and runs 1950..2100, past its end;
    k_before is launched at 500, before the step, and runs 990..1080 on stream 8; u_late 2500..2600 has no
    launch record and lies outside the window: not drawn."""
    k = planted._k
    ev = [planted._x("user_annotation", "ProfilerStep#1", 1000, 1000),
          planted._rt("cudaLaunchKernel", 500, 10, 6), dict(k("k_before", 990, 90, 6), tid=8,
                                                              args={"device": 0, "stream": 8, "correlation": 6}),
          k("u0", 900, 150, 901), k("u1", 1100, 300, 902), k("u2", 1400, 450, 903),
          planted._rt("cudaDeviceSynchronize", 1100, 800, 1),
          planted._rt("cudaLaunchKernel", 1910, 10, 5), k("k_step", 1950, 150, 5),
          k("u_late", 2500, 100, 904)]
    return planted.write_kineto(path, ev)


def test_timeline_draws_every_gpu_op_of_the_window(tmp_path: Path) -> None:
    src = _sync_trace(tmp_path / "sync.json.gz")
    con = duckdb.connect()
    report.run([src], con=con)
    t = report.run_timeline(con)["timeline"]
    gpu = t[t["row_kind"] == "gpu_op"].sort_values("ts_ns")
    got = [(n, launch, p, ts // US, d // US) for n, launch, p, ts, d in
           zip(gpu["name"], gpu["launch"], gpu["phase_path"], gpu["ts_ns"], gpu["dur_ns"])]
    assert got == [("u0", "none", "(no launch record)", 900, 150), ("k_before", "outside_steps", "(none)", 990, 90),
                   ("u1", "none", "(no launch record)", 1100, 300), ("u2", "none", "(no launch record)", 1400, 450),
                   ("k_step", "step", "(other)", 1950, 150)]
    assert set(gpu["lane"]) == {"GPU 0 stream 7", "GPU 0 stream 8"}
    page = _report_html(src, tmp_path / "sync.html")
    svg = _svg(page, "timeline")[0]
    assert svg.count("fill='url(#tkh0)'") == 3  # u0, u1, u2 hatched
    assert svg.count("no launch record in the trace: launched before the trace window opened") == 3
    assert "u_late" not in svg
    assert "3 GPU ops of the window have no launch record in the trace" in page


# ----------------------------------------------------------------------------- one device numbering

def _rocm(path: Path, listed: int, op_devices: list[int]) -> Path:
    """A ROCm-style trace: ``listed`` GPUs in deviceProperties (ids 0..listed-1), a step 0..1000 us, and one kernel
    per entry of ``op_devices`` carrying that id as args.device and pid (roctracer's HSA agent id)."""
    ev: list[dict[str, Any]] = [planted._x("user_annotation", "ProfilerStep#1", 0, 1000)]
    for i, d in enumerate(op_devices):
        ev.append(planted._rt("hipLaunchKernel", 100 + 100 * i, 10, 10 + i))
        ev.append(dict(planted._k(f"k{i}", 150 + 100 * i, 50, 10 + i), pid=d, tid=0,
                       args={"device": d, "stream": 0, "correlation": 10 + i}))
    doc = {"schemaVersion": 1, "deviceProperties": [{"id": i, "name": "AMD Radeon Graphics", "numSms": 304}
                                                    for i in range(listed)], "traceEvents": ev}
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("listed, ops, lanes, info_line", [
    # one listed GPU, ops on agent 9: it is GPU 0 (as info lists it)
    (1, [9], ["GPU 0 stream 0"], "GPU ops on device id 9 (an HSA agent id, not a listed id): GPU 0"),
    # eight listed, ops on agents 2 and 9: two CPU agents, GPUs 0 and 7
    (8, [2, 9], ["GPU 0 stream 0", "GPU 7 stream 0"], "GPU ops on device id 9 (an HSA agent id, not a listed id): GPU 7"),
    # eight listed, ops on agent 9 only: 2..9 CPU agents fit, so which GPU cannot be told
    (8, [9], ["GPU ? (agent 9) stream 0"], "GPU ops on device id 9 (an HSA agent id, not a listed id): which listed GPU cannot be told"),
])
def test_gpu_lanes_number_devices_as_info_does(tmp_path: Path, listed: int, ops: list[int], lanes: list[str],
                                               info_line: str) -> None:
    src = _rocm(tmp_path / f"rocm{listed}_{len(ops)}.json", listed, ops)
    page = _report_html(src, tmp_path / "rocm.html")
    svg = _svg(page, "tl-lanes")[1]  # [0]: the phase bar's labels
    assert re.findall(r"<title>(GPU [^<]*)</title>", svg) == lanes
    out = CliRunner().invoke(cli, ["info", str(src)])
    assert out.exit_code == 0, out.output
    assert info_line in " ".join(out.output.split())
    assert f"GPU id={listed - 1}, name=AMD Radeon Graphics" in out.output


@needs_shared
def test_mi250_lane_is_a_gpu_info_lists(tmp_path: Path) -> None:
    """The MI250 trace lists GPUs 0..3 and runs every op on id 2, a listed id: the lane says GPU 2, the id info
    prints for it, and info prints no agent line (a listed id is kept: the trace cannot tell it from agent 2)."""
    src = tmp_path / MI250.name
    src.write_bytes(MI250.read_bytes())
    page = _report_html(src, tmp_path / "mi250.html", "--step-pattern", "ProfilerStep#1")
    assert re.findall(r"<title>(GPU [^<]*)</title>", _svg(page, "tl-lanes")[1]) == ["GPU 2 stream 0"]
    out = CliRunner().invoke(cli, ["info", str(src)])
    assert "GPU id=2, name=AMD Radeon Graphics" in out.output and "HSA agent" not in out.output


# ----------------------------------------------------------------------------- names are text, not mathtext

MATH = ["$x^$", "$\\frac{$", "price$1$2"]


def _fig_texts(svg: str) -> list[str]:
    """The visible text of every <text> of an SVG figure (its hover <title> left out), unescaped."""
    return [html.unescape(t) for t in re.findall(r"<text [^>]*>(?:<title>[^<]*</title>)?([^<]*)</text>", svg)]


def test_names_are_drawn_literally() -> None:
    """Names with dollar signs are text in the SVG figures (matplotlib parsed them as math: a traceback)."""
    bp = pd.DataFrame({"trace": ["t"] * 3, "device": [0] * 3, "phase_path": MATH, "comm_ops": [1] * 3,
                       "comm_exposed_ns": [3e6, 2e6, 1e6], "comm_overlap_ns": [1e6] * 3})
    bars, _ = plots.comm_phase_bars(bp)
    assert bars is not None
    steps = pd.DataFrame({"trace": "t", "step_index": range(9), "step_kind": [k for k in MATH for _ in range(3)],
                          "wall_ns": [1e6 + i * 1e5 for i in range(9)]})
    lat, _ = plots.latency(steps)
    assert lat is not None
    assert [t for t in _fig_texts(bars) if t in MATH] == MATH  # as typed: largest exposed first
    assert [t for t in _fig_texts(lat) if t in MATH] == MATH  # the legend, one entry per kind


HOSTILE = ["</text><script>alert(1)</script>", "a' onload='alert(2)", "]]><!--", "\x1b[31mred"]


def test_svg_figures_escape_every_name() -> None:
    """Trace text in every figure is escaped: no markup of its own, no quote that ends an attribute."""
    from tracekit.rows import Rows

    n = len(HOSTILE)
    bp = pd.DataFrame({"trace": HOSTILE, "device": [0] * n, "phase_path": HOSTILE, "comm_ops": [1] * n,
                       "comm_exposed_ns": [4e6, 3e6, 2e6, 1e6], "comm_overlap_ns": [1e6] * n})
    steps = Rows(("trace", "step_index", "step_kind", "wall_ns"), ("VARCHAR", "BIGINT", "VARCHAR", "BIGINT"),
                 tuple(("t", i, HOSTILE[i % n], 1_000_000 + i) for i in range(8)))
    idle = Rows(("trace", "step_index", "cause", "idle_ns"), ("VARCHAR", "BIGINT", "VARCHAR", "BIGINT"),
                tuple(("t", 1, c, 1000) for c in HOSTILE))
    rank_steps = Rows(("step_key", "rank", "start_offset_ns", "end_offset_ns"), ("VARCHAR", "BIGINT", "BIGINT", "BIGINT"),
                      tuple((HOSTILE[k], r, 0, 1000 + r) for k in range(n) for r in (0, 1)))
    figs = [plots.comm_phase_bars(bp)[0], plots.latency(steps)[0], plots.idle_by_step(idle)[0],
            plots.rank_timeline(rank_steps, Rows((), (), ()), "none")[0]]
    for svg in figs:
        assert svg is not None
        assert "<script" not in svg and "onload='" not in svg and "]]>" not in svg and "<!--" not in svg
        assert "\x1b" not in svg
        assert re.fullmatch(r"<svg class='fig'.*</svg>", svg, re.S) and svg.count("<svg") == svg.count("</svg>") == 1


def test_report_idle_figure_holds_the_planted_causes(tmp_path: Path) -> None:
    """tests/planted.py's idle split (worked out gap by gap in test_headline.test_planted_breakdown): step 1
    host_busy 300 + 800 + 3620 + 6470 = 11190 us, launch_bound 45 us, sync_blocked 60 us (11295 us); step 2
    host_busy 130 us, after_last_gpu_op 670 us (800 us). Bar heights are measured against the y axis' own ticks."""
    page = _report_html(planted.write(tmp_path / "planted.json.gz"), tmp_path / "p.html")
    svg = next(s for s in _svg(page, "fig") if "aria-label='GPU idle causes per step'" in s[:300])
    assert "GPU idle in step (ms)" in _fig_texts(svg)
    ticks = {float(t): float(y) for y, t in re.findall(r"<text x='[\d.]+' y='([\d.]+)' fill='#57606a' "
                                                       r"text-anchor='end' font-size='10'>([\d.]+)</text>", svg)}
    assert 0.0 in ticks and 10.0 in ticks
    px_per_ms = (ticks[0.0] - ticks[10.0]) / 10  # label baselines sit 3.5 px below their tick: the difference holds
    segs: dict[tuple[int, str], tuple[float, float]] = {}
    for y, h, step, cause in re.findall(r"<rect x='[\d.]+' y='([\d.]+)' width='[\d.]+' height='([\d.]+)' "
                                        r"fill='#[0-9a-f]+'><title>step (\d+): (\w+) ", svg):
        segs[(int(step), cause)] = (float(y), float(h))
    want = {(1, "host_busy"): 11.190, (1, "launch_bound"): 0.045, (1, "sync_blocked"): 0.060,
            (2, "after_last_gpu_op"): 0.670, (2, "host_busy"): 0.130}
    assert set(segs) == set(want)
    for key, ms in want.items():
        assert segs[key][1] == pytest.approx(ms * px_per_ms, abs=0.11), key  # coordinates have one decimal
    # stacked bottom up in name order: each segment starts where the one below it ends
    base = ticks[0.0] - 3.5
    for step, order in ((1, ["host_busy", "launch_bound", "sync_blocked"]), (2, ["after_last_gpu_op", "host_busy"])):
        top = base
        for c in order:
            y, h = segs[(step, c)]
            assert y + h == pytest.approx(top, abs=0.15), (step, c)
            top = y
    legend = [t for t in _fig_texts(svg) if t in {c for _, c in want}]
    assert legend == ["sync_blocked", "launch_bound", "host_busy", "after_last_gpu_op"]  # top of the stack first


def test_report_html_with_mathtext_names(tmp_path: Path) -> None:
    """Step ranges named with dollar signs (three kinds, three steps each, so the latency plot has a legend)."""
    ev = []
    for i, name in enumerate(MATH * 3):
        ev.append(planted._x("user_annotation", name, i * 1000, 800))
        ev.append(planted._x("user_annotation", "inner", i * 1000 + 100, 300))
    src = planted.write_kineto(tmp_path / "math.json.gz", ev)
    page = _report_html(src, tmp_path / "math.html", "--step-pattern", r".*\$.*")
    assert "Traceback" not in page and "<h3>Step latency over the run</h3><svg class='fig'" in page
    for name in MATH:
        assert html.escape(name, quote=True) in page


def test_hyphenated_hints_do_not_wrap() -> None:
    """A browser breaks after a hyphen: `nsys: --trace=cuda` read `nsys: --` / `trace=cuda` at 800 px."""
    res = view_fixture.results()
    ver = res["headline.verdicts"].copy()
    ver.loc[0, "verdict"] = "Launch counts unknown: Kineto: include ProfilerActivity.CPU; nsys: --trace=cuda"
    res["headline.verdicts"] = ver
    page = render(res)
    assert "nsys: <span class='nw'>--trace=cuda</span></li>" in page


def test_an_unknown_idle_cause_gets_a_colour_of_its_own() -> None:
    """A cause the figure has no colour for (added to gpu_idle.sql later) must not take kernel_gap's blue."""
    got = plots.cause_colours(["host_busy", "kernel_gap", "new_a", "new_b"])
    assert got["kernel_gap"] == "#1f77b4" and got["host_busy"] == "#f28e2b"  # the PNGs' colours
    assert len(set(got.values())) == 4


def test_every_table_counts_agree_with_their_noun() -> None:
    """'Every table' lists each output with its row count: one row is '(1 row)', never '(1 rows)'."""
    res = view_fixture.results()
    res["steps"] = res["steps"].head(2)  # the fixture's syncs table has exactly one row
    page = render(res)
    assert "<summary>syncs (1 row)</summary>" in page
    assert "<summary>steps (2 rows)</summary>" in page
    assert "(1 rows)" not in page
