"""`tracekit sql -f FILE` / `--query NAME` / `tracekit queries`, and "no share anywhere exceeds 1"."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests import planted
from tests.conftest import NSYS_DIR, SHARED, needs_shared
from tracekit import report
from tracekit.cli import cli
from tracekit.ingest import convert

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def planted_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("sqlq")
    return convert(planted.write(d / "planted.json.gz"), d / "planted.parquet") and d / "planted.parquet"


@pytest.fixture(scope="module")
def report_json(planted_parquet: Path) -> dict[str, list[dict]]:
    """Every output of the report, keyed as `report.run` keys them, as `tracekit sql --format json` prints them."""
    res = report.run([planted_parquet])
    return {k: json.loads(df.to_json(orient="records", date_format="iso")) for k, df in res.items()}


def _rows(tables: list[list[dict]]) -> list[list[str]]:
    """Each table's rows as sorted JSON strings: the same rows, whatever order a tie in ORDER BY takes under load."""
    return [sorted(json.dumps(r, sort_keys=True) for r in t) for t in tables]


def _sql(args: list[str], cwd: Path) -> list[list[dict]]:
    old = os.getcwd()
    os.chdir(cwd)  # from another folder: nothing may be found relative to the working directory
    try:
        r = CliRunner().invoke(cli, ["sql", *args, "--format", "json"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.output.splitlines() if line.strip()]


@pytest.mark.parametrize("name", report.ANALYSES)
def test_query_by_name_and_file_give_the_report_rows(name: str, planted_parquet: Path, report_json: dict,
                                                     tmp_path: Path) -> None:
    keys = [k for k in report_json if k == name or k.startswith(name + ".")]
    assert keys
    want = _rows([report_json[k] for k in keys])
    assert _rows(_sql([str(planted_parquet), "--query", name], tmp_path)) == want
    assert _rows(_sql([str(planted_parquet), "-f", str(report.QUERY_DIR / f"{name}.sql")], tmp_path)) == want
    sub = keys[-1].partition(".")[2] or name
    assert _rows(_sql([str(planted_parquet), "--query", name, "--output", sub], tmp_path)) == want[-1:]


def test_readme_kernels_command_runs_from_another_folder(planted_parquet: Path, tmp_path: Path) -> None:
    """The README's `tracekit sql dataset/ -f queries/kernels.sql` failed with `_gpu does not exist` (the table lib/gpu_activity.sql now makes)."""
    rows = _sql([str(planted_parquet.parent), "-f", str(REPO / "queries" / "kernels.sql")], tmp_path)[0]
    # tests/planted.py: sample_kernel is the longest op (5450 us)
    assert rows[0]["name"] == "sample_kernel" and rows[0]["total_ns"] == 5_450_000


def test_plain_sql_and_scripts_still_work(planted_parquet: Path, tmp_path: Path) -> None:
    assert _sql([str(planted_parquet), "SELECT count(*) AS n FROM kernels"], tmp_path) == [[{"n": 11}]]
    script = tmp_path / "mine.sql"
    script.write_text("-- my query: steps with their GPU span\nSELECT step_index, gpu_span_ns FROM step_instances s "
                      "JOIN (SELECT step_index, max(end_ns) - min(ts_ns) AS gpu_span_ns FROM steps_gpu GROUP BY 1) "
                      "USING (step_index) ORDER BY 1\n-- @requires steps\n")
    # step 1: 300..13530 us; step 2: 20130..20330 us
    assert _sql([str(planted_parquet), "-f", str(script)], tmp_path) == [
        [{"step_index": 1, "gpu_span_ns": 13_230_000}, {"step_index": 2, "gpu_span_ns": 200_000}]]


def test_unknown_output_is_a_usage_error(planted_parquet: Path) -> None:
    r = CliRunner().invoke(cli, ["sql", str(planted_parquet), "--query", "kernels", "--output", "nope"])
    assert r.exit_code == 2 and "no output 'nope'" in r.output


def test_queries_lists_each_analysis_with_its_header_line() -> None:
    r = CliRunner().invoke(cli, ["queries"])
    assert r.exit_code == 0
    lines = {ln.split()[0]: ln.split(None, 1)[1] for ln in r.output.splitlines()}
    assert set(report.ANALYSES) <= set(lines) and not any(n.startswith("_") for n in lines)
    assert lines["kernels"] == "which GPU ops take the GPU time?"
    assert lines["headline"].startswith("per trace and step kind, the per-step breakdown")
    assert list(lines)[: len(report.ANALYSES)] == list(report.ANALYSES)
    # a two-line first sentence is joined; a file that needs its own verb says which
    assert lines["graph_map"].endswith("launched one op at a time (eager run or graph capture)?  [tracekit graphmap]")


def test_query_that_needs_its_verb_says_so(planted_parquet: Path) -> None:
    r = CliRunner().invoke(cli, ["sql", str(planted_parquet), "--query", "diff"])
    assert r.exit_code == 2 and "run it with `tracekit diff`" in r.output


# --------------------------------------------------------------------------- no share above 1

def _share_traces() -> list[Path]:
    files = sorted((REPO / "samples" / "traces").rglob("*.parquet"))
    if SHARED.exists():
        files += sorted((SHARED / "traces" / "kineto").rglob("*.json.gz"))
        files += sorted((NSYS_DIR / "sqlite").rglob("*.sqlite"))
    return files


#: Columns owned by another analysis that are known to exceed 1 on a trace (reported to their owner).
@needs_shared
@pytest.mark.parametrize("path", _share_traces(), ids=lambda p: p.name)
def test_no_share_exceeds_one(path: Path) -> None:
    """Every `*_share` of every report output <= 1; the headline's sums and orderings hold."""
    res = report.run([path])
    over = []
    for key, df in res.items():
        for col in df.columns:
            if col == "share" or col.endswith("_share") or col.startswith("share_"):
                m = df[col].astype(float).max()
                if m == m and m > 1 + 1e-9:
                    over.append((key, col, m))
    assert not over  # flops' share of peak included: fp32 work faster than the fp32 peak is compared with TF32's
    # the headline's own invariants on every real trace
    tree = res["headline.phase_tree"]
    for _, g in tree.groupby(["trace", "step_kind"]):
        assert abs(g["excl_cpu_share"].sum() - 1) < 1e-9
        assert g["excl_gpu_share"].isna().all() or abs(g["excl_gpu_share"].sum() - 1) < 1e-9
        assert (g["excl_cpu_ns_mean"] >= 0).all() and (g["incl_cpu_ns_mean"] >= g["excl_cpu_ns_mean"] - 1e-6).all()
    h = res["headline"]
    for _, g in h.groupby(["trace", "step_kind"]):
        m = dict(zip(g["metric"], g["mean"]))
        assert m["end-to-end span"] >= m["CPU span"]
        if m.get("GPU span", float("nan")) == m.get("GPU span"):  # not NaN nor absent (no GPU activity): GPU ops ran
            assert m["GPU busy (union)"] <= m["GPU op time (kernels, copies, memsets)"] + 1e-6
            idle = sum(v for k, v in m.items() if k.startswith("idle: "))
            assert idle == pytest.approx(m["GPU idle, end to end"], rel=1e-9, abs=1e-6)
    # per step: the end-to-end window on each device is busy + other work + idle, exactly; the CPU span is
    # the four host buckets, exactly (every ns in one)
    st = res["steps"]
    g = st[st["gpu_ops"].fillna(0) > 0]
    assert (g["gpu_busy_ns"] + g["gpu_other_ns"] + g["gpu_idle_ns"] == g["e2e_dev_ns"]).all()
    assert (g["gpu_other_ns"] >= 0).all() and (g["gpu_idle_ns"] >= 0).all()
    h = st[st["host_launch_ns"].notna()]
    assert (h["host_launch_ns"] + h["host_blocking_ns"] + h["host_runtime_other_ns"] + h["host_outside_runtime_ns"]
            == h["wall_ns"]).all()
    assert (h["host_outside_runtime_ns"] >= 0).all()
    v = res["headline.verdicts"]
    for _, g in v.groupby(["trace", "step_kind"]):
        assert 1 <= len(g) <= 6 and list(g["rank"]) == list(range(1, len(g) + 1))


def test_param_overrides_a_default(planted_parquet: Path, tmp_path: Path) -> None:
    # ProfilerStep#2 only (20000..21000 us): one step, one op of 200 us
    rows = _sql([str(planted_parquet), "--query", "steps", "--output", "steps",
                 "--param", "step_pattern=ProfilerStep#2"], tmp_path)[0]
    assert [(r["step_name"], r["gpu_op_ns"]) for r in rows] == [("ProfilerStep#2", 200_000)]
    r = CliRunner().invoke(cli, ["sql", str(planted_parquet), "--query", "steps", "--param", "nope=1"])
    assert r.exit_code == 2 and "unknown report parameter(s): nope" in r.output


def test_queries_all_lists_the_building_blocks_after_the_analyses() -> None:
    """`--all` adds queries/lib/ (named by path, described by their own first line); plain `queries` hides them."""
    plain = CliRunner().invoke(cli, ["queries"]).output.splitlines()
    full = CliRunner().invoke(cli, ["queries", "--all"]).output.splitlines()
    assert not any(ln.startswith("lib/") for ln in plain)
    lib = [ln.split(None, 1) for ln in full if ln.startswith("lib/")]
    assert [ln.split()[0] for ln in full[: len(plain)]] == [ln.split()[0] for ln in plain]
    assert {name for name, _ in lib} >= {"lib/gpu_activity", "lib/runtime", "lib/step_instances", "lib/run_metrics"}
    assert dict(lib)["lib/gpu_activity"].startswith("one row per GPU op (gpu_activity)")


def test_a_script_reading_an_undeclared_module_is_told_the_line_to_add(planted_parquet: Path, tmp_path: Path) -> None:
    """Nothing is loaded that a file does not ask for: reading gpu_activity without `-- @requires lib/gpu_activity`
    is one error line naming that line (exit 2), and with the line the script runs (11 GPU ops: tests/planted.py)."""
    script = tmp_path / "mine.sql"
    script.write_text("-- my query\nSELECT count(*) AS n FROM gpu_activity\n")
    r = CliRunner().invoke(cli, ["sql", str(planted_parquet), "-f", str(script)])
    assert r.exit_code == 2
    assert "(queries/lib/gpu_activity.sql makes it: add `-- @requires lib/gpu_activity` to mine.sql)" in r.output
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    script.write_text("-- my query\n-- @requires lib/gpu_activity\nSELECT count(*) AS n FROM gpu_activity\n")
    assert _sql([str(planted_parquet), "-f", str(script)], tmp_path) == [[{"n": 11}]]
