"""tracekit.view: number formats, the terminal that fits (80 and 120 columns), the HTML page in a browser.

Expected cells are worked out by hand from the planted values in view_fixture.py (e.g. 70,633,700 ns
is 70.63 ms at 4 significant digits) or from the steps table computed by steps.sql, never copied from
the formatter's own output.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chromium_page
import view_fixture
from conftest import KINETO_DIR, REPO, needs_shared

from tracekit import report
from tracekit.cli import cli
from tracekit.view import model, plots, sections, terminal
from tracekit.view.html import render

SAMPLES = REPO / "samples" / "traces"
SAMPLE_DIRS = [SAMPLES / "spec_decode_k4" / "parquet", SAMPLES / "serve_2workers" / "parquet",
               SAMPLES / "spec_decode_stack_flops" / "parquet"]
REAL = [KINETO_DIR / "hta" / "ns_resolution_trace" / "rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
        KINETO_DIR / "tracelens" / "h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"]


# ----------------------------------------------------------------------------- formats

def test_durations_pick_one_unit_and_four_digits() -> None:
    assert model.fmt_duration(89_343_485.5, with_unit=True) == "89.34 ms"  # the mean step
    assert model.fmt_duration(4_500_000, with_unit=True) == "4.500 ms"
    assert model.fmt_duration(1_234, with_unit=True) == "1.234 us"
    assert model.fmt_duration(999, with_unit=True) == "999 ns"
    assert model.fmt_duration(2_500_000_000, with_unit=True) == "2.500 s"
    # a column: unit from the median, one decimals setting, unit in the header
    col = model.column("wall_ns", pd.Series([70_100_000, 69_900_000, 75_300_000]))
    assert col.header == "wall_ms" and col.cells == ["70.10", "69.90", "75.30"]
    # 89 ms beside 5 us (three decades apart): each cell carries its own unit
    col = model.column("blocked_ns", pd.Series([89_171_621, 4_766, 4_841]))
    assert col.header == "blocked" and col.cells == ["89.17 ms", "4.766 us", "4.841 us"]


def test_ids_timestamps_shares_counts() -> None:
    assert model.column("tid", pd.Series([7960])).cells == ["7960"]
    # ids under other names: a launching thread, a stream (issue 24: launch_tid printed as 25,286)
    assert model.column("launch_tid", pd.Series([25286])).cells == ["25286"]
    assert model.column("next_stream", pd.Series([1234])).cells == ["1234"]
    assert model.column("ts_ns", pd.Series([1712195495896449651])).cells == ["1712195495896449651"]
    assert model.column("step_index", pd.Series([12345])).cells == ["12345"]
    assert model.column("launches", pd.Series([1234, 56])).cells == ["1,234", "56"]
    assert model.column("gpu_busy_share", pd.Series([0.7647, 0.0004, None])).cells == ["76.5%", "0.04%", "NULL"]
    assert model.fmt_share(0.00001) == "<0.01%"


def test_elide_keeps_both_ends() -> None:
    a = "execute_model_with_a_rather_long_range_name"
    b = a + "/step[DECODE bs=32]"
    ea, eb = model.elide(a, 24), model.elide(b, 24)
    assert len(ea) == len(eb) == 24 and ea != eb  # cut from the right they would look identical
    assert eb.startswith("execute_") and eb.endswith("bs=32]") and "…" in eb
    assert model.elide("short", 24) == "short"


# ----------------------------------------------------------------------------- terminal

def _check_fits(lines: list[str], width: int) -> None:
    long = [ln for ln in lines if len(ln) > width]
    assert not long, f"{len(long)} lines longer than {width}: {long[:3]}"


def _check_numbers_whole(results: dict[str, pd.DataFrame], lines: list[str], keys: list[str], limit: int) -> None:
    """Every numeric cell of every printed table appears whole on one line (never folded)."""
    text = "\n".join(lines)
    for k in keys:
        tab = sections.result_table(results, k, limit=limit)
        for c in tab.columns:
            if c.numeric:
                for v in c.cells:
                    assert re.search(r"(^|\s)" + re.escape(v) + r"(\s|$)", text, re.M), (k, c.name, v)


def _check_no_empty_headers(results: dict[str, pd.DataFrame], lines: list[str]) -> None:
    for k, df in results.items():
        if k in sections.HIDDEN or len(df):
            continue
        assert any(ln.startswith(f"{k}: ") for ln in lines), k
        assert k not in lines, f"{k}: an empty table printed a title line (and headers)"


def test_fixture_headline_at_80_columns() -> None:
    res = view_fixture.results()
    lines = terminal.report_lines(res, 80)
    _check_fits(lines, 80)
    # hand-formatted from view_fixture: 70,633,700 ns -> 70.63 ms; 1234 launches; 0.7647 -> 76.5%
    assert "CPU span            70.63 ms  70.15 ms  75.30 ms" in lines
    assert "launches               1,234     1,230     1,260" in lines
    assert "GPU busy share         76.5%     76.3%     76.4%" in lines
    assert "sync stall          4.500 ms  4.400 ms  6.100 ms" in lines
    # the note does not fit at 80 columns: a marker, and the sentence whole under the table
    assert "idle: launch_bound      NULL      NULL      NULL  [1]" in lines
    assert "[1] no runtime rows: capture with ProfilerActivity.CPU" in lines
    # phase tree: children indented under their parent; 12.00/70.6337 = 17.0%; 14/47 = 29.8%
    assert "  lm_head   12.00   11.90   13.00      17.0%   14.00      29.8%" in lines
    assert "(other)      5.63    5.60    6.00       8.0%    0.00         0%" in lines
    # verdicts numbered, notes first, one heading per (trace, step kind)
    assert lines[0].startswith("warn: [rank1] converter: truncated file")
    assert sum(ln.startswith("== rank") for ln in lines) == 2
    assert "1. verify is the largest phase: 35.00 ms of a 70.63 ms step (49.6%)." in lines
    # hostile names are shown, not executed
    text = "\n".join(lines)
    assert "\x1b" not in text and "evil\\x1b[2J[bold]<script>" in text


def test_hostile_names_in_any_column_are_escaped() -> None:
    res = {"kernels": pd.DataFrame({"trace": ["t"], "device": ["\x1b]0;pwned\x07"], "name": [view_fixture.EVIL],
                                    "total_ns": [1_000]})}
    for width in (40, 80):
        text = "\n".join(terminal.report_lines(res, width, sections=["kernels"]))
        assert "\x1b" not in text and "\x07" not in text
        assert "\\x1b]0;pwned\\x07" in text  # shown as an escape, as typed
    page = render(res)
    assert "<script>" not in page and "\x1b" not in page


def test_fixture_at_120_columns_keeps_the_note_inline() -> None:
    lines = terminal.report_lines(view_fixture.results(), 120)
    _check_fits(lines, 120)
    assert "idle: launch_bound      NULL      NULL      NULL  no runtime rows: capture with ProfilerActivity.CPU" in lines


def test_sections_and_unknown_section() -> None:
    res = view_fixture.results()
    lines = terminal.report_lines(res, 80, sections=["gpu_idle"])
    # notes first (always), then only the tables asked for
    assert lines[0].startswith("warn: ") and "gpu_idle.by_step" in lines
    assert not any(ln.startswith("== ") or ln == "syncs" for ln in lines)
    with pytest.raises(ValueError, match="unknown section nope; known: headline"):
        terminal.report_lines(res, 80, sections=["nope"])


@pytest.fixture(scope="module")
def sample_results() -> dict[str, dict[str, pd.DataFrame]]:
    out = {}
    for d in SAMPLE_DIRS:
        con = duckdb.connect()
        res = report.run([d], con=con)
        res.update(report.run_timeline(con))
        out[d.parent.name] = res
    return out


@pytest.mark.parametrize("width", [80, 120])
def test_samples_fit(sample_results: dict[str, dict[str, pd.DataFrame]], width: int) -> None:
    for res in sample_results.values():
        for full in (False, True):
            lines = terminal.report_lines(res, width, full=full, limit=25)
            _check_fits(lines, width)
            if full:
                _check_numbers_whole(res, lines, sections.section_keys(res), 25)
                _check_no_empty_headers(res, lines)


@pytest.fixture(scope="module")
def real_results() -> list[dict[str, pd.DataFrame]]:
    missing = [p for p in REAL if not p.exists()]
    if missing:
        pytest.skip(f"{missing[0]} is absent: real-trace snapshots need ../shared/traces")
    return [report.run([p]) for p in REAL]


@needs_shared
@pytest.mark.parametrize("width", [80, 120])
def test_real_traces_fit(real_results: list[dict[str, pd.DataFrame]], width: int) -> None:
    for res in real_results:
        lines = terminal.report_lines(res, width, limit=10)
        _check_fits(lines, width)
        lines = terminal.report_lines(res, width, full=True, limit=10)
        _check_fits(lines, width)
        _check_numbers_whole(res, lines, sections.section_keys(res), 10)
        _check_no_empty_headers(res, lines)


def test_cli_width_section_and_piped_default(tmp_path: Path) -> None:
    k4 = str(SAMPLE_DIRS[0])
    out = CliRunner().invoke(cli, ["report", k4])  # CliRunner output is not a tty: 80 columns
    assert out.exit_code == 0, out.output
    assert max(len(ln) for ln in out.output.splitlines()) <= 80
    out = CliRunner().invoke(cli, ["report", k4, "--width", "60", "--section", "steps.stats"])
    assert out.exit_code == 0, out.output
    assert max(len(ln) for ln in out.output.splitlines()) <= 60
    assert out.output.startswith("warn: ") and "\nsteps.stats\n" in out.output and "kernels" not in out.output
    out = CliRunner().invoke(cli, ["report", k4, "--section", "nope"])
    assert out.exit_code == 2 and "unknown section nope" in out.output


# ----------------------------------------------------------------------------- timeline and plots

def test_timeline_is_the_median_step_of_every_trace(sample_results: dict[str, dict[str, pd.DataFrame]]) -> None:
    res = sample_results["serve_2workers"]
    tl, steps = res["timeline"], res["steps"]
    assert sorted(tl["trace"].unique()) == sorted(steps["trace"].unique())  # both workers
    for trace, st in steps.groupby("trace"):
        walls = sorted(st["wall_ns"])
        p50 = walls[(len(walls) - 1) // 2]  # quantile_disc(0.5): the lower middle value
        want = st.loc[(st["wall_ns"] - p50).abs().sort_values(kind="stable").index[0], "step_index"]
        got = tl[tl["trace"] == trace]["step_index"].unique()
        assert list(got) == [want]
        # 3 draft + 3 draft/lm_head... : every range of that step is on the timeline, none of the others
        n_ranges = res["steps.phases"].query("trace == @trace and step_index == @want")["range_instances"].sum()
        assert (tl[tl["trace"] == trace]["row_kind"] == "range").sum() == n_ranges


def test_timeline_without_timeline_sql_uses_median_step_ops(sample_results: dict[str, dict[str, pd.DataFrame]]) -> None:
    """tracekit.view.html.render(results) from Python (no --html connection): steps.median_step_ops still draws the step."""
    res = {k: v for k, v in sample_results["spec_decode_k4"].items() if not k.startswith("timeline")}
    page = render(res)
    ops = res["steps.median_step_ops"]
    assert page.count("<svg class='timeline'") == 1
    assert f"Step {ops['step_index'].iloc[0]} of trace {ops['trace'].iloc[0]}" in page
    assert "&#x27;step&#x27; steps" in page  # the kind (quotes escaped), looked up in the steps table


def test_phase_bars_equal_step_wall() -> None:
    res = view_fixture.results()
    data = plots.phase_bar_data(res["headline.phase_tree"])
    heights: dict[str, float] = {}
    for r in data.records():
        heights[r["trace"]] = heights.get(r["trace"], 0.0) + r["excl_cpu_ns_mean"]
    mean_wall = sum(view_fixture.WALLS) / len(view_fixture.WALLS)
    assert len(heights) == res["headline.phase_tree"]["trace"].nunique() >= 1
    for h in heights.values():
        assert abs(h - mean_wall) / mean_wall < 0.01


def test_phase_bars_equal_step_wall_on_a_sample(sample_results: dict[str, dict[str, pd.DataFrame]]) -> None:
    """With headline.sql's real phase tree: the stacked bar's height is the mean wall of steps.sql's steps."""
    res = sample_results["spec_decode_k4"]
    data = plots.phase_bar_data(res["headline.phase_tree"])
    for (trace, kind), sub in data.group_by(["trace", "step_kind"]).items():
        st = res["steps"].query("trace == @trace and step_kind == @kind")
        mean_wall = st["wall_ns"].mean()
        assert abs(sum(sub.col("excl_cpu_ns_mean")) - mean_wall) / mean_wall < 0.01, (trace, kind)


# ----------------------------------------------------------------------------- HTML

def test_html_escapes_and_says_why_instead_of_empty_plots() -> None:
    page = render(view_fixture.results(), title="fixture <b>")
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page and "\x1b" not in page
    assert "fixture &lt;b&gt;" in page
    # rank1 has no steps in headline.idle: a sentence, not an empty axis
    assert "no GPU idle time inside steps" in page
    assert "kernels: no GPU ops in the trace" in page
    # a long phase path is elided in the cell and whole in the hover title
    short = model.elide(view_fixture.LONG, 60)
    assert f"title='{html.escape(view_fixture.LONG, quote=True)}'>{html.escape(short)}</td>" in page


def test_cli_html_writes_median_steps_for_perfetto(tmp_path: Path) -> None:
    out_html = tmp_path / "serve.html"
    out = CliRunner().invoke(cli, ["report", str(SAMPLE_DIRS[1]), "--html", str(out_html)])
    assert out.exit_code == 0, out.output
    page = out_html.read_text()
    for i in (1, 2):  # one per worker
        f = tmp_path / f"serve.median_step.{i}.json.gz"
        doc = json.loads(gzip.open(f).read())
        assert doc["tracekit"]["steps"] and len(doc["traceEvents"]) > 10
        assert f"href='{f.name}'" in page
    assert page.count("<svg class='timeline'") == 2


def _pages(tmp_path: Path) -> list[Path]:
    fx = tmp_path / "fixture.html"
    fx.write_text(render(view_fixture.results(), title="fixture"))
    k4 = tmp_path / "k4.html"
    out = CliRunner().invoke(cli, ["report", str(SAMPLE_DIRS[0]), "--html", str(k4)])
    assert out.exit_code == 0, out.output
    return [fx, k4]


@pytest.mark.skipif(chromium_page.chromium() is None,
                    reason="chromium is not installed (Debian package `chromium`): browser layout not checked")
@pytest.mark.parametrize("width", [1400, 800])
def test_html_layout_in_chromium(tmp_path: Path, width: int) -> None:
    for page in _pages(tmp_path):
        facts = chromium_page.check(page, width)
        assert facts["viewport"] == width
        assert facts["scrollWidth"] <= width, f"{page.name}: horizontal overflow at {width}px"
        assert not facts["images"]  # the figures are inline SVG (issue 25), each drawn inside the page
        assert facts["figures"] and all(f["width"] > 100 and f["height"] > 50 and f["right"] <= width
                                        for f in facts["figures"]), facts["figures"]
        assert facts["numeric_cells"] > 20 and facts["broken_numbers"] == [], facts["broken_numbers"][:5]
        shot = chromium_page.screenshot(page, tmp_path / f"{page.stem}{width}.png", width)
        assert shot.stat().st_size > 20_000
