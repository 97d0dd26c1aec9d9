"""`tracekit compare`: a sweep over N labelled runs, the label a column in SQL too.

Runs k=1, k=2, k=3 are tests/diff_pairs.py variants with the draft phase stretched by 1.0,
1.2 and 1.5 (k=3 also launches one extra kernel); expected values are worked out by hand in
that module: draft.ms_per_step = 1000 us * f / 2 steps, every other phase and the step wall
unchanged (the stretch is absorbed by the idle tail of step 1).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import diff_pairs  # noqa: E402

from tracekit import compare as cmp  # noqa: E402
from tracekit.view import compare as cmpview  # noqa: E402
from tracekit.cli import cli  # noqa: E402
from tracekit.errors import TraceError  # noqa: E402
from tracekit.ingest import convert  # noqa: E402

EPS = 1e-12
SWEEP = (("k=1", 1.0, False), ("k=2", 1.2, False), ("k=3", 1.5, True))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, list[str]]]:
    d = tmp_path_factory.mktemp("sweep")
    out = []
    for label, f, add in SWEEP:  # every file is named run.parquet: same trace name in every run
        src = diff_pairs.write(d / label / "run.json.gz", f=f, add_kernel=add)
        convert(src, d / label / "run.parquet")
        out.append((label, [str(d / label / "run.parquet")]))
    return out


@pytest.fixture(scope="module")
def res(runs: list[tuple[str, list[str]]]) -> dict:
    return cmp.compare(runs)


def test_sweep_table(res: dict) -> None:
    sw = res["compare.sweep"]
    assert list(sw["label"]) == ["k=1", "k=2", "k=3"]
    assert list(sw["traces"]) == [1, 1, 1] and list(sw["steps"]) == [2, 2, 2]
    assert list(sw["wall_ms"]) == [pytest.approx(21.0, rel=EPS)] * 3
    assert list(sw["wall_ratio"]) == [pytest.approx(1.0, rel=EPS)] * 3
    assert list(sw["step_wall_ms"]) == [pytest.approx(10.5, rel=EPS)] * 3
    # GPU op time: 8.905 ms + 3 graph kernels x 100 us x (f - 1) (+ 0.1 ms added kernel in k=3)
    assert list(sw["gpu_op_ms"]) == [pytest.approx(v, rel=EPS) for v in (8.905, 8.965, 9.155)]


def test_phases_per_label(res: dict) -> None:
    ph = res["compare.phases"]
    draft = ph[ph["phase"] == "draft"].sort_values("label_index")
    assert list(draft["label"]) == ["k=1", "k=2", "k=3"]
    assert list(draft["ms_per_step"]) == [pytest.approx(v, rel=EPS) for v in (0.5, 0.6, 0.75)]
    assert list(draft["ratio"]) == [pytest.approx(v, rel=EPS) for v in (1.0, 1.2, 1.5)]
    assert list(draft["gpu_ms_per_step"]) == [pytest.approx(v, rel=EPS) for v in (0.15, 0.18, 0.225)]
    target = ph[ph["phase"] == "target"]
    assert list(target["ms_per_step"]) == [pytest.approx(1.35, rel=EPS)] * 3
    wide = cmpview.phase_table(res)
    assert list(wide.columns) == ["phase", "k=1", "k=2", "k=3"]


def test_long_table_has_label_column_and_absent_kernel_is_zero(res: dict) -> None:
    c = res["compare"]
    k = c[c["metric"] == "kernel:added_kernel.count"].sort_values("label_index")
    assert list(k["label"]) == ["k=1", "k=2", "k=3"] and list(k["value"]) == [0, 0, 1]
    assert list(k["note"])[:2] == ["absent from this run"] * 2
    mean = c[c["metric"] == "kernel:added_kernel.mean_ms"].sort_values("label_index")
    assert mean["value"].isna().tolist() == [True, True, False]  # a mean of nothing is NULL, not 0


def test_cli_compare_sql_sees_labels(runs: list[tuple[str, list[str]]]) -> None:
    args = [x for label, paths in runs for x in ("--label", label, *paths)]
    r = CliRunner().invoke(cli, ["compare", *args, "--json", "--sql",
                                 "SELECT label, count(*) AS n FROM kernels WHERE kind = 'kernel' GROUP BY ALL ORDER BY label"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == [{"label": "k=1", "n": 10}, {"label": "k=2", "n": 10}, {"label": "k=3", "n": 11}]
    r = CliRunner().invoke(cli, ["compare", *args, "--sql", "SELECT label, value FROM run_metrics "
                                 "WHERE metric = 'draft.ms_per_step' ORDER BY label", "--json"])
    assert [round(x["value"], 9) for x in json.loads(r.stdout)] == [0.5, 0.6, 0.75]


def test_cli_compare_json_and_html_plot(runs: list[tuple[str, list[str]]], tmp_path: Path) -> None:
    args = [x for label, paths in runs for x in ("--label", label, *paths)]
    html = tmp_path / "sweep.html"
    r = CliRunner().invoke(cli, ["compare", *args, "--json", "--html", str(html)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert [x["label"] for x in doc["sweep"]] == ["k=1", "k=2", "k=3"]
    page = html.read_text()
    assert "<img class='plot'" in page and "data:image/png;base64," in page and "k=3" in page
    r = CliRunner().invoke(cli, ["compare", *args])
    assert r.exit_code == 0 and "compare.sweep" in r.stdout and "draft" in r.stdout


def test_run_parsing_and_bad_labels(runs: list[tuple[str, list[str]]]) -> None:
    p = runs[0][1][0]
    assert cmp.parse_runs(["--label", "x", p, p, "--label=y", p]) == [("x", [p, p]), ("y", [p])]
    assert cmp.parse_runs([p]) == [("run", [p])]
    with pytest.raises(TraceError, match="no trace follows"):
        cmp.parse_runs(["--label", "x"])
    with pytest.raises(TraceError, match="given twice"):
        cmp.compare([("x", [p]), ("x", [p])])
    r = CliRunner().invoke(cli, ["compare", "--label", "x", p, "--label", "x", p])
    assert r.exit_code == 2 and r.stderr.startswith("tracekit: error:") and len(r.stderr.strip().splitlines()) == 1


def test_runs_views_carry_labels_trace_devices_too(tmp_path: Path) -> None:
    """connect_runs: two runs of the same trace name stay apart in every view, trace_devices included."""
    import gzip

    from tracekit.ingest import convert
    from tracekit.store import connect_runs

    for i, gpu in enumerate(("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB")):
        src = tmp_path / f"r{i}" / "same.json.gz"
        src.parent.mkdir()
        with gzip.open(src, "wt") as f:
            json.dump({"traceEvents": [{"ph": "X", "cat": "kernel", "name": "k", "pid": 0, "tid": 7, "ts": 1, "dur": 2}],
                       "deviceProperties": [{"id": 0, "name": gpu, "numSms": 132 - 24 * i}]}, f)
        convert(src, tmp_path / f"r{i}" / "same.parquet")
    con = connect_runs([("A", [str(tmp_path / "r0" / "same.parquet")]), ("B", [str(tmp_path / "r1" / "same.parquet")])])
    assert con.execute("SELECT label, trace, count(*) FROM kernels GROUP BY ALL ORDER BY 1").fetchall() == \
        [("A", "same", 1), ("B", "same", 1)]
    assert con.execute("SELECT label, trace, device, name, sm_count FROM trace_devices ORDER BY 1").fetchall() == \
        [("A", "same", 0, "NVIDIA H100 80GB HBM3", 132), ("B", "same", 0, "NVIDIA A100-SXM4-80GB", 108)]


def test_cpu_only_runs_say_gpu_unknown_not_zero() -> None:
    """Two CPU-only captures (the k4 sample, twice): the GPU measures are NULL with the capture
    option that records them, never 0 (the step count and CPU phases stay numbers)."""
    root = Path(__file__).resolve().parents[1] / "samples" / "traces" / "spec_decode_k4" / "parquet"
    files = [str(p) for p in sorted(root.glob("*.parquet"))]
    r = cmp.compare([("a", files), ("b", files)])
    sw = r["compare.sweep"]
    assert sw["step_gpu_busy_ms"].isna().all() and sw["gpu_busy_ms"].isna().all()
    long = r["compare"].set_index(["label", "metric"])
    for m in ("step.gpu_busy_ms", "step.gpu_op_ms", "step.gpu_ops", "draft.gpu_ms_per_step",
              "draft.incl_gpu_ms_per_step"):
        row = long.loc[("a", m)]
        assert pd.isna(row["value"]), m
        assert row["note"].startswith("no GPU ops in this run: capture CUDA activity"), m
    assert long.loc[("a", "run.gpu_ops"), "value"] == 0  # a count of rows: zero is the truth
    assert long.loc[("a", "run.steps"), "value"] == 4  # the sample's 4 steps
    assert not r["compare.noise"]["metric"].str.contains("gpu").any()
