"""tracekit report: the Python API, --json keys, and the HTML report (headless Chromium screenshot)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import planted

from tracekit import report
from tracekit.cli import cli
from tracekit.ingest import convert


@pytest.fixture(scope="module")
def pq(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("report")
    ev = planted.events()
    # a kernel name with HTML metacharacters must come out escaped
    ev.append(planted._k("evil<script>alert(1)</script>&kernel", 20400, 10, 51))
    ev.append(planted._rt("cudaLaunchKernel", 20350, 20, 51))
    src = d / "r.json"
    src.write_text(json.dumps({"traceEvents": ev}))
    convert(src, d / "r.parquet")
    return d / "r.parquet"


def test_json_keys(pq: Path) -> None:
    out = CliRunner().invoke(cli, ["report", str(pq), "--json"])
    assert out.exit_code == 0, out.output
    doc = json.loads(out.output)
    assert set(doc) == {*report.ANALYSES, "warnings"}
    assert set(doc["steps"]) == {"steps", "stats", "phases", "phase_stats", "median_step_ops"}
    assert set(doc["gpu_idle"]) == {"gpu_idle", "causes", "by_phase", "by_step", "intervals"}
    assert set(doc["syncs"]) == {"syncs", "calls"}
    assert doc["summary"]["summary"][0]["gpu_ops"] == 12
    assert any(w["flag"] == "graph_replayed_share" for w in doc["warnings"])


def test_terminal_tables(pq: Path) -> None:
    out = CliRunner().invoke(cli, ["report", str(pq), "--step-pattern", "ProfilerStep#\\d+", "--vocab", "32000", "--full"])
    assert out.exit_code == 0, out.output
    for title in ("kernels", "phase_time", "steps.stats", "launch", "syncs", "gpu_idle.causes", "lm_head", "trust"):
        assert title in out.output


def test_html(pq: Path, tmp_path: Path) -> None:
    html_path = tmp_path / "r.html"
    out = CliRunner().invoke(cli, ["report", str(pq), "--html", str(html_path)])
    assert out.exit_code == 0, out.output
    text = html_path.read_text()
    # every figure is inline SVG (no network, no PNG: issue 25); the layout checks in a browser are in test_view.py
    assert "<img " not in text and "data:image/png" not in text and text.count("<svg class='fig'") >= 1
    assert "<script>" not in text and "evil&lt;script&gt;" in text


@pytest.mark.parametrize("flag, one", [(None, False), (True, True)])
def test_run_small_one_thread_on_callers_connection(pq: Path, flag: bool | None, one: bool) -> None:
    """report.run leaves a caller's connection at its thread count unless told (small_one_thread=True, what
    report --html asks): the planted trace has a few dozen events, far under report.SMALL_EVENTS."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    report.run([pq], con=con, analyses=["summary"], small_one_thread=flag)
    assert con.execute("SELECT current_setting('threads')").fetchall()[0][0] == (1 if one else 2)
