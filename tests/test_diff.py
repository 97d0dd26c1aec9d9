"""`tracekit diff`: ground-truth pairs with a known change give the hand-worked deltas; the gate fires where it should.

The pairs come from tests/diff_pairs.py (planted trace, draft phase stretched by exactly 20%,
one kernel added in verify); every expected number below is worked out in that module's
docstring from the planted layout, not read from the code's output.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import diff_pairs  # noqa: E402
from conftest import KINETO_DIR, needs_shared  # noqa: E402

from tracekit import compare as cmp  # noqa: E402
from tracekit.cli import cli  # noqa: E402
from tracekit.errors import TraceError  # noqa: E402
from tracekit.ingest import convert  # noqa: E402

EPS = 1e-12
CONDITIONS = {  # condition -> fires?  (draft +0.1 ms = +20%; added_kernel 0 -> 1; gpu_op_ms +0.16 ms)
    "draft.ms_per_step > +5%": True,
    "draft.ms_per_step > +25%": False,
    "draft.ms_per_step > 50us": True,
    "draft.ms_per_step > 150us": False,
    "draft.ms_per_step >= x1.19": True,
    "draft.ms_per_step > x1.21": False,
    "draft.ms_per_step < -5%": False,
    "target.ms_per_step > +1%": False,
    "sampler.ms_per_step > 0ms": False,
    "step.wall_ms > +0%": False,
    "kernel:added_kernel.count > 0": True,
    "kernel:added_kernel.total_ms > +100%": True,
    "kernel:long_gemm.total_ms > 1ns": False,
    "run.gpu_op_ms > 0.15ms": True,
    "run.gpu_op_ms > 0.2ms": False,
    "step.launches >= 0.5": True,
    "verify.gpu_ms_per_step > 0.06ms": False,
}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A and B in different folders under the SAME file name: their traces share the name `p`."""
    d = tmp_path_factory.mktemp("pair")
    a = diff_pairs.write(d / "a" / "p.json.gz")
    b = diff_pairs.write(d / "b" / "p.json.gz", f=1.2, add_kernel=True)
    convert(a, d / "a" / "p.parquet")
    convert(b, d / "b" / "p.parquet")
    return d / "a" / "p.parquet", d / "b" / "p.parquet"


@pytest.fixture(scope="module")
def res(pair: tuple[Path, Path]) -> dict:
    return cmp.diff(*pair, conditions=list(CONDITIONS))


def _row(res: dict, metric: str) -> dict:
    df = res["diff"]
    rows = df[df["metric"] == metric].to_dict("records")
    assert len(rows) == 1, metric
    return rows[0]


@pytest.mark.parametrize("metric,a,b", [
    ("draft.ms_per_step", 0.5, 0.6),
    ("draft.gpu_ms_per_step", 0.15, 0.18),
    ("draft.calls_per_step", 0.5, 0.5),
    ("verify.gpu_ms_per_step", 0.15, 0.2),
    ("verify.ms_per_step", 0.5, 0.5),
    ("target.ms_per_step", 1.35, 1.35),
    ("sampler.ms_per_step", 2.995, 2.995),
    ("candidate.ms_per_step", 1.5, 1.5),
    ("step.wall_ms", 10.5, 10.5),
    ("step.launches", 3.5, 4.0),  # kernel launch calls: 6 + 1 in A (the cudaMemcpyAsync is a copy), one more in B
    ("run.gpu_op_ms", 8.905, 9.065),
    ("run.gpu_busy_ms", 8.905, 9.065),
    ("run.wall_ms", 21.0, 21.0),
    ("run.steps", 2, 2),
    ("run.traces", 1, 1),  # same trace name in A and B: still one trace per run
])
def test_side_by_side_delta_ratio(res: dict, metric: str, a: float, b: float) -> None:
    r = _row(res, metric)
    assert r["a"] == pytest.approx(a, rel=EPS) and r["b"] == pytest.approx(b, rel=EPS)
    assert r["delta"] == pytest.approx(b - a, abs=EPS)
    assert r["ratio"] == pytest.approx(b / a, rel=EPS)
    assert r["rel"] == pytest.approx((b - a) / a, abs=EPS)


def test_the_stretched_phase_is_exactly_20_percent_slower(res: dict) -> None:
    r = _row(res, "draft.ms_per_step")
    assert r["ratio"] == pytest.approx(1.2, rel=EPS) and r["rel"] == pytest.approx(0.2, rel=1e-9)
    moved = res["diff"][(res["diff"]["measure"] == "ms_per_step") & (res["diff"]["delta"].abs() > EPS)]
    assert list(moved["name"]) == ["draft"]  # no other phase changed length


def test_moved_new_and_vanished_kernels(res: dict) -> None:
    k = res["diff.kernels"]
    assert list(k["name"]) == ["added_kernel", "graph_kernel_a", "graph_kernel_b", "graph_kernel_c"]
    added = k.iloc[0]
    assert added["status"] == "new" and (added["a_count"], added["b_count"]) == (0, 1)
    assert (added["a_ms"], added["b_ms"]) == (0, pytest.approx(0.1, rel=EPS))
    assert added["a_mean_ms"] != added["a_mean_ms"]  # NULL: a mean of nothing is not 0
    for _, r in k.iloc[1:].iterrows():
        assert r["status"] == "both" and r["delta_ms"] == pytest.approx(0.02, rel=1e-9)
        assert r["ratio"] == pytest.approx(1.2, rel=EPS)
    nv = res["diff.new_vanished"]
    assert list(zip(nv["name"], nv["status"])) == [("added_kernel", "new")]


def test_reverse_diff_says_vanished(pair: tuple[Path, Path]) -> None:
    r = cmp.diff(pair[1], pair[0])
    nv = r["diff.new_vanished"]
    assert list(zip(nv["name"], nv["status"])) == [("added_kernel", "vanished")]
    d = r["diff"].set_index("metric")
    assert d.loc["draft.ms_per_step", "ratio"] == pytest.approx(1 / 1.2, rel=EPS)


def test_gate_fires_and_stays_quiet(res: dict) -> None:
    g = res["diff.gate"]
    assert list(g["condition"]) == list(CONDITIONS)
    assert g["error"].isna().all()
    assert dict(zip(g["condition"], g["fired"].astype(bool))) == CONDITIONS
    lines = cmp.fired(res)
    assert lines[0] == "draft.ms_per_step > +5%: A 0.5 ms, B 0.6 ms, delta +0.1 ms (+20.0%)"
    assert len(lines) == sum(CONDITIONS.values())


@pytest.mark.parametrize("cond", ["draft.ms_per_step >> 5%", "draft.ms_per_step > 5 percent", "draft > 5%",
                                  "draft.ms_per_step 5%", "draft.ms_per_step > 5parsecs"])
def test_malformed_condition_is_one_line_error(cond: str) -> None:
    with pytest.raises(TraceError, match="--fail-if"):
        cmp.parse_condition(cond)


def test_threshold_units() -> None:
    assert cmp.parse_condition("a.b_ms > 200us").threshold == pytest.approx(0.2)
    assert cmp.parse_condition("a.b_ms > 1s").threshold == pytest.approx(1000)
    assert cmp.parse_condition("a.b_ms < -5%").threshold == pytest.approx(-0.05)
    c = cmp.parse_condition("kernel:Memcpy DtoH (Device -> Pinned).total_ms > x1.5")
    assert (c.metric, c.op, c.mode, c.threshold) == ("kernel:Memcpy DtoH (Device -> Pinned).total_ms", ">", "ratio", 1.5)


def test_cli_gate_exit_codes(pair: tuple[Path, Path], tmp_path: Path) -> None:
    a, b = map(str, pair)
    runner = CliRunner()
    r = runner.invoke(cli, ["diff", a, b, "--fail-if", "draft.ms_per_step > +5%", "--fail-if", "target.ms_per_step > +5%"])
    assert r.exit_code == 1, r.output
    assert r.stderr.strip().splitlines() == ["tracekit: gate: draft.ms_per_step > +5%: A 0.5 ms, B 0.6 ms, delta +0.1 ms (+20.0%)"]
    html = tmp_path / "d.html"
    r = runner.invoke(cli, ["diff", a, b, "--json", "--html", str(html), "--fail-if", "draft.ms_per_step > +25%"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["fired"] == [] and {x["metric"] for x in doc["diff"]} >= {"draft.ms_per_step", "step.wall_ms"}
    draft = next(x for x in doc["diff"] if x["metric"] == "draft.ms_per_step")
    assert (draft["numerator"], draft["denominator"]) == ("summed CPU range time of the phase", "steps")
    assert [x["name"] for x in doc["new_vanished"]] == ["added_kernel"]
    page = html.read_text()
    assert "added_kernel" in page and "draft.ms_per_step" in page and "data:image/png;base64," in page
    for bad, msg in [("draft.ms_per_step >> 5%", "cannot read"), ("nope.ms_per_step > 5%", "unknown metric nope.ms_per_step"),
                     ("kernel:added_kernel.count > 5ms", "not a time")]:
        r = runner.invoke(cli, ["diff", a, b, "--fail-if", bad])
        assert r.exit_code == 2 and r.stderr.startswith("tracekit: error: --fail-if") and msg in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and r.stdout == ""


def test_missing_steps_give_null_and_a_note_not_zero(pair: tuple[Path, Path]) -> None:
    r = cmp.diff(*pair, step_pattern="no_such_step")
    row = _row(r, "step.wall_ms")
    assert row["a"] is None or row["a"] != row["a"]
    assert "step pattern" in row["note"]
    assert _row(r, "run.steps")["a"] == 0
    assert not (r["diff"]["scope"] == "phase").any()
    with pytest.raises(TraceError, match="has no value"):
        cmp.diff(*pair, conditions=["step.wall_ms > +5%"], step_pattern="no_such_step")


def test_a_note_both_sides_share_is_said_once(pair: tuple[Path, Path]) -> None:
    r = cmp.diff(*pair, step_pattern="no_such_step")  # neither run has a step
    assert _row(r, "step.wall_ms")["note"] == (
        "A and B: no range matched the step pattern no_such_step: pass --step-pattern, "
        'or mark the loop with tracekit.phase("step")')


def test_a_folder_of_ranks_is_one_run(tmp_path: Path) -> None:
    for side, f in (("a", 1.0), ("b", 1.2)):
        for rank in (0, 1):
            src = diff_pairs.write(tmp_path / "raw" / side / f"rank{rank}.json.gz", f=f)
            (tmp_path / side).mkdir(exist_ok=True)
            convert(src, tmp_path / side / f"rank{rank}.parquet")
    r = cmp.diff(tmp_path / "a", tmp_path / "b")
    assert _row(r, "run.traces")["a"] == 2 and _row(r, "run.steps")["b"] == 4
    row = _row(r, "draft.ms_per_step")  # 2 x 1000 us / 4 steps -> 2 x 1200 us / 4 steps
    assert (row["a"], row["b"]) == (pytest.approx(0.5, rel=EPS), pytest.approx(0.6, rel=EPS))
    assert _row(r, "run.gpu_op_ms")["a"] == pytest.approx(2 * 8.905, rel=EPS)


@needs_shared
def test_real_trace_against_itself_is_all_zero(tmp_path: Path) -> None:
    src = KINETO_DIR / "hta" / "trace_diff" / "control" / "control.json.gz"
    if not src.exists():
        pytest.skip(f"{src} is absent from ../shared")
    pq = tmp_path / "control.parquet"
    convert(src, pq)
    r = cmp.diff(pq, pq, conditions=["step.wall_ms > +0%", "run.wall_ms > 0ns", "run.gpu_op_ms > x1"])
    d = r["diff"]
    assert len(d) > 10
    both = d.dropna(subset=["a"])
    assert (both["delta"] == 0).all() and (both["a"] == both["b"]).all()
    assert len(r["diff.kernels"]) == 0 and len(r["diff.new_vanished"]) == 0
    assert cmp.fired(r) == [] and not r["diff.gate"]["fired"].any()


@needs_shared
def test_real_pair_new_and_vanished_kernels_match_the_raw_json(tmp_path: Path) -> None:
    """HTA's trace_diff control/test pair: the kernel names found in only one file, read with json alone."""
    from conftest import load_json

    base = KINETO_DIR / "hta" / "trace_diff"
    if not (base / "test" / "test.json.gz").exists():
        pytest.skip(f"{base} is absent from ../shared")
    names = {}
    for side in ("control", "test"):
        doc = load_json(base / side / f"{side}.json.gz")
        names[side] = {e["name"] for e in doc["traceEvents"]
                       if e.get("ph") == "X" and e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")}
        convert(base / side / f"{side}.json.gz", tmp_path / f"{side}.parquet")
    r = cmp.diff(tmp_path / "control.parquet", tmp_path / "test.parquet")
    nv = r["diff.new_vanished"]
    assert set(nv.loc[nv["status"] == "new", "name"]) == names["test"] - names["control"]
    assert set(nv.loc[nv["status"] == "vanished", "name"]) == names["control"] - names["test"]


def test_top_limits_the_moved_kernels(pair: tuple[Path, Path]) -> None:
    r = cmp.diff(*pair, top_n=2)
    assert list(r["diff.kernels"]["name"]) == ["added_kernel", "graph_kernel_a"]
