"""The report's "Several GPUs" presentation on the planted 2- and 8-rank traces (tests/planted_ranks.py).

Expected numbers are worked out by hand from the plan in planted_ranks' docstring, never copied from
the output. 8 ranks, slow rank 3: arrivals A(r) - B = 100 + 1000 + 10 r us, rank 3 + 1800 = 2930 us;
the next-latest is rank 7 at 1170 us, so rank 3 arrives 1760 us after it at both all-reduces; the
others wait sum(2930 - A(r)) = 7 * 2930 - (7 * 1100 + 10 * 25) = 12560 us per call (25120 us over 2
steps); rank 3's step ends 10 * 8 + 300 = 380 us after rank 0's. Rank 7's NCCL kernel runs from 1170
to E = 100 + 2830 + 500 = 3430 us: 2260 us per step, 200 overlapped, 2060 us exposed.
2 ranks, slow rank 1: arrivals 1100 and 2910 us: 1810 us late per call, step ends 2 * 10 + 300 = 320 us apart.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chromium_page
from planted_ranks import clock_us, write_ranks

from tracekit import report
from tracekit.cli import cli
from tracekit.view import sections
from tracekit.view.html import render
from tracekit.view.terminal import report_lines

US = 1000
SAMPLE_K4 = Path(__file__).resolve().parent.parent / "samples" / "traces" / "spec_decode_k4" / "parquet"


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return report.run(write_ranks(tmp_path_factory.mktemp("v8"), 8, slow=3))


def test_straggler_row_is_the_planted_slow_rank(eight: dict) -> None:
    s = eight["collectives.straggler"]
    assert len(s) == 1
    r = s.iloc[0]
    assert (r["rank"], r["trace"], r["times_last"], r["matched_calls"]) == (3, "rank3", 2, 2)
    assert r["late_ns_mean"] == 1760 * US
    assert r["caused_wait_ns"] == 2 * 12560 * US and r["caused_wait_ns_per_step"] == 12560 * US
    assert r["steps"] == 2 and r["skew_ns_mean"] == 380 * US and r["slowest_steps"] == 2
    assert r["alignment"] == "collective_end"


def test_terminal_block_fits_80_columns(eight: dict) -> None:
    lines = report_lines(eight, 80)
    long = [ln for ln in lines if len(ln) > 80]
    assert not long, long[:3]
    text = "\n".join(lines)
    assert "several GPUs (rank7):" in text
    # rank 7: 2060 us exposed per step; 400 us of 2 * 2260 = 4520 us overlapped = 8.8%
    flat = " ".join(ln.strip() for ln in lines)
    assert "GPU 0: exposed communication 2.060 ms per step (2 steps); 8.8% of communication time (NCCL/RCCL/HCCL)" in flat
    assert "overlapped by compute (400.0 us of 4.520 ms)" in flat
    assert "slowest rank: rank 3 arrives last at 2 of 2 matched collectives, on average 1.760 ms after" in flat
    assert "the others waited 25.12 ms for it in all (12.56 ms per step over 2 steps)" in flat
    assert "steps end 380.0 us apart on average" in flat
    assert "rank_align = collective_end" in flat


def test_html_section_names_the_slow_rank_and_its_figures_draw(eight: dict, tmp_path: Path) -> None:
    page = render(eight)
    assert "<h2 id='several-gpus'>Several GPUs</h2>" in page
    assert page.index("several-gpus") < page.index("id='trace-1'")  # before the per-trace sections
    assert "rank 3 arrives last at 2 of 2 matched collectives, on average 1.760 ms" in page
    assert "aria-label='Per-rank step timeline'" in page and "aria-label='Exposed communication per phase'" in page
    assert "matched collectives end together" in page
    assert "rank7: GPU 0: exposed communication 2.060 ms per step" in page
    if chromium_page.chromium() is None:
        pytest.skip("chromium not installed: the HTML checks above ran, the browser ones did not")
    out = tmp_path / "r8.html"
    out.write_text(page)
    facts = chromium_page.check(out, 1400)
    figs = {f["label"]: f["width"] > 100 and f["height"] > 50 and f["right"] <= facts["viewport"]
            for f in facts["figures"]}  # drawn, and inside the page
    assert figs["Per-rank step timeline"] and figs["Exposed communication per phase"]
    assert all(figs.values()), facts["figures"]
    assert facts["scrollWidth"] <= facts["viewport"]


def test_cli_rank_align_none_changes_the_alignment(tmp_path: Path) -> None:
    files = [str(p) for p in write_ranks(tmp_path / "r2", 2, slow=1)]
    runner = CliRunner()
    docs = {}
    for align in ("collective_end", "none"):
        html = tmp_path / f"{align}.html"
        res = runner.invoke(cli, ["report", *files, "--rank-align", align, "--json", "--html", str(html)])
        assert res.exit_code == 0, res.output
        docs[align] = (json.loads(res.output), html.read_text())
    al = {r["trace"]: r for r in docs["collective_end"][0]["collectives"]["alignment"]}
    assert al["rank1"]["method"] == "collective_end" and al["rank1"]["offset_ns"] == clock_us(1) * US
    st = docs["collective_end"][0]["collectives"]["straggler"][0]
    assert (st["rank"], st["late_ns_mean"], st["skew_ns_mean"]) == (1, 1810 * US, 320 * US)
    assert sections.ALIGN_TEXT["collective_end"] in docs["collective_end"][1]
    # raw clocks: rank 1's clock runs clock_us(1) us ahead, and it shows as lateness
    al = {r["trace"]: r for r in docs["none"][0]["collectives"]["alignment"]}
    assert {r["method"] for r in al.values()} == {"none"} and al["rank1"]["offset_ns"] == 0
    st = docs["none"][0]["collectives"]["straggler"][0]
    assert st["alignment"] == "none" and st["late_ns_mean"] == (1810 + clock_us(1)) * US
    assert sections.ALIGN_TEXT["none"] in docs["none"][1]
    assert sections.ALIGN_TEXT["collective_end"] not in docs["none"][1]
    bad = runner.invoke(cli, ["report", *files, "--rank-align", "sideways"])
    assert bad.exit_code == 2 and "sideways" in bad.output


def test_one_rank_says_so_instead_of_an_empty_plot(tmp_path: Path) -> None:
    r = report.run(write_ranks(tmp_path, 1, slow=0))
    page = render(r)
    assert "Several GPUs" in page  # it ran NCCL kernels
    assert "one rank only: no per-rank step timeline" in page
    assert "aria-label='Per-rank step timeline'" not in page and "Slowest rank." not in page
    assert "aria-label='Exposed communication per phase'" in page
    assert sections.straggler(r) is None


@pytest.mark.skipif(not SAMPLE_K4.exists(), reason="samples/traces/spec_decode_k4 missing")
def test_no_comm_one_rank_has_no_section() -> None:
    r = report.run([str(SAMPLE_K4)])
    page = render(r)
    assert "Several GPUs" not in page
    assert "several GPUs" not in "\n".join(report_lines(r, 80))


def test_comm_bars_without_nccl_say_why() -> None:
    import pandas as pd

    from tracekit.view import plots

    uri, why = plots.comm_phase_bars(pd.DataFrame({"trace": ["a"], "device": [0], "phase_path": ["x"], "comm_ops": [0],
                                                   "comm_exposed_ns": [0], "comm_overlap_ns": [0]}))
    assert uri is None and "no communication kernel" in why
    uri, why = plots.rank_timeline(pd.DataFrame(), pd.DataFrame(), "none")
    assert uri is None and "no per-rank steps" in why


def test_real_nsys_two_gpus_in_one_trace(tmp_path: Path) -> None:
    """An nsys report of a 2-GPU run (one trace, one rank per device): the section, one clock, no timeline."""
    from conftest import NSYS_DIR

    from tracekit.ingest import convert

    src = NSYS_DIR / "sqlite" / "nsys-ai" / "mfu_2gpu_before.sqlite"
    if not src.exists():
        pytest.skip("../shared/traces is absent: the real 2-GPU nsys report is not there")
    pq = tmp_path / "mfu.parquet"
    convert(src, pq)
    r = report.run([pq])
    assert sections.rank_count(r) == 2 and sections.alignment(r) == "one_clock"
    page = render(r)
    assert "Several GPUs" in page and sections.ALIGN_TEXT["one_clock"] in page
    assert "aria-label='Per-rank step timeline'" not in page and "no per-rank steps" in page
    assert "aria-label='Exposed communication per phase'" in page
    lines = report_lines(r, 80)
    assert max(len(ln) for ln in lines) <= 80
    text = "\n".join(lines)
    assert "- GPU 0: exposed communication" in text and "- GPU 1: exposed communication" in text
    assert "per step: NULL, no step" in text  # no step range in this capture: NULL, not a per-step number
