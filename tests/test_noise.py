"""Noise-aware diff/compare: ratio of per-step medians, bootstrap interval, rank test, warm-up, @LEVEL gate.

Run pairs are built by tests/noise_runs.py from planted per-step draft kernel times (integer us),
so the medians and their ratio are known before tracekit runs (``statistics.median`` of the
planted lists). Three pairs, as the issue asks: a 5% slower draft with low noise (the gate
fires), the same 5% with high noise (the gate stays quiet and says "within noise"), identical
runs (everything within noise). The interval's coverage is checked by simulation.
"""

from __future__ import annotations

import math
import random
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))
import noise_runs  # noqa: E402

from tracekit import compare as cmp  # noqa: E402
from tracekit.view import compare as cmpview  # noqa: E402
from tracekit import noise  # noqa: E402
from tracekit.cli import cli  # noqa: E402
from tracekit.errors import TraceError  # noqa: E402
from tracekit.ingest import convert  # noqa: E402

STEPS = 31  # step 1 is the warm-up outlier, dropped by the default --warmup 1
WARM = 4000  # us: the warm-up step's draft kernel (4x the others)
LOW_A = [WARM] + [1000 + (i * 7) % 11 - 5 for i in range(2, STEPS + 1)]  # 995..1005 us
LOW_B = [WARM] + [1050 + (i * 5) % 11 - 5 for i in range(2, STEPS + 1)]  # 1045..1055 us: +5%
_r = random.Random(7)
HIGH_A = [WARM] + [int(min(1600, max(400, 1000 + 250 * _r.gauss(0, 1)))) for _ in range(2, STEPS + 1)]
HIGH_B = [WARM] + [round(1.05 * v) for v in reversed(HIGH_A[1:])]  # the same spread, 5% slower (median x1.05)


def _run(d: Path, name: str, draft: list[int]) -> Path:
    raw = noise_runs.write(d / name / "run.json.gz", draft, accepted=[i % 5 for i in range(len(draft))])
    out = d / name / "run.parquet"
    convert(raw, out)
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("noise")
    return {"low_a": _run(d, "low_a", LOW_A), "low_b": _run(d, "low_b", LOW_B),
            "high_a": _run(d, "high_a", HIGH_A), "high_b": _run(d, "high_b", HIGH_B)}


def _noise_row(res: dict, metric: str) -> dict:
    df = res["diff.noise"]
    rows = df[df["metric"] == metric].to_dict("records")
    assert len(rows) == 1, df
    return rows[0]


def test_low_noise_slowdown_fires(runs: dict[str, Path]) -> None:
    res = cmp.diff(runs["low_a"], runs["low_b"], conditions=["draft.gpu_ms_per_step > +2% @95",
                                                             "draft.incl_gpu_ms_per_step > +2% @95",
                                                             "verify.gpu_ms_per_step > +1% @95"])
    med_a, med_b = statistics.median(LOW_A[1:]) / 1e3, statistics.median(LOW_B[1:]) / 1e3
    r = _noise_row(res, "draft.gpu_ms_per_step")
    assert (r["n_a"], r["n_b"]) == (STEPS - 1, STEPS - 1)  # the warm-up step is dropped
    assert r["median_a"] == pytest.approx(med_a, abs=1e-12) and r["median_b"] == pytest.approx(med_b, abs=1e-12)
    assert r["ratio"] == pytest.approx(med_b / med_a, rel=1e-12)
    assert 1.02 < r["ci_lo"] <= med_b / med_a <= r["ci_hi"] < 1.08 and r["verdict"] == "higher"
    assert r["p_value"] < 1e-6  # every B step is slower than every A step
    g = res["diff.gate"].set_index("condition")
    assert bool(g.loc["draft.gpu_ms_per_step > +2% @95", "fired"]) is True
    assert bool(g.loc["draft.incl_gpu_ms_per_step > +2% @95", "fired"]) is True
    assert bool(g.loc["verify.gpu_ms_per_step > +1% @95", "fired"]) is False  # verify is constant: ratio 1
    assert g.loc["draft.gpu_ms_per_step > +2% @95", "ci_lo"] == pytest.approx(r["ci_lo"] - 1)
    line = [x for x in cmp.fired(res) if x.startswith("draft.gpu_ms_per_step")][0]
    assert "within noise" not in line and "@95%" in line


def test_high_noise_slowdown_stays_quiet_and_says_why(runs: dict[str, Path]) -> None:
    res = cmp.diff(runs["high_a"], runs["high_b"], conditions=["draft.gpu_ms_per_step > +2% @95",
                                                               "draft.gpu_ms_per_step > +2%"])
    med_a, med_b = statistics.median(HIGH_A[1:]), statistics.median(HIGH_B[1:])
    assert med_b / med_a - 1 > 0.02  # the planted point estimate does exceed the threshold ...
    r = _noise_row(res, "draft.gpu_ms_per_step")
    assert r["ratio"] == pytest.approx(med_b / med_a, rel=1e-12)
    assert r["ci_lo"] < 1.02 < r["ci_hi"] and r["verdict"] == "within noise"  # ... but not beyond noise
    g = res["diff.gate"].set_index("condition")
    row = g.loc["draft.gpu_ms_per_step > +2% @95"]
    assert bool(row["fired"]) is False and bool(row["within_noise"]) is True
    assert "within noise" in row["reason"]
    # the mean-based condition (no @LEVEL) is judged on the means of all steps, warm-up included
    mean_rel = statistics.mean(HIGH_B) / statistics.mean(HIGH_A) - 1
    assert bool(g.loc["draft.gpu_ms_per_step > +2%", "fired"]) is (mean_rel > 0.02)


def test_identical_runs_all_within_noise(runs: dict[str, Path]) -> None:
    res = cmp.diff(runs["low_a"], runs["low_a"], conditions=["step.wall_ms > +0% @95", "draft.gpu_ms_per_step < -0% @90"])
    nz = res["diff.noise"]
    assert len(nz) >= 5 and set(nz["verdict"]) == {"within noise"}
    assert (nz["ratio"] == 1).all() and (nz["p_value"] == 1).all()
    assert not res["diff.gate"]["fired"].any()
    assert list(res["diff.gate"]["level"]) == [0.95, 0.90]


def test_warmup_override(runs: dict[str, Path]) -> None:
    res = cmp.diff(runs["low_a"], runs["low_b"], warmup_steps=0)
    r = _noise_row(res, "draft.gpu_ms_per_step")
    assert (r["n_a"], r["n_b"]) == (STEPS, STEPS)
    assert r["median_a"] == pytest.approx(statistics.median(LOW_A) / 1e3, abs=1e-12)


def test_sweep_one_row_per_label(runs: dict[str, Path], tmp_path: Path) -> None:
    res = cmp.compare([("base", [runs["low_a"]]), ("low", [runs["low_b"]]), ("high", [runs["high_b"]])])
    nz = res["compare.noise"]
    d = nz[nz["metric"] == "draft.gpu_ms_per_step"].set_index("label")
    assert list(d.index) == ["low", "high"]
    assert d.loc["low", "verdict"] == "higher"
    assert d.loc["high", "ratio"] == pytest.approx(statistics.median(HIGH_B[1:]) / statistics.median(LOW_A[1:]), rel=1e-12)
    tk = res["compare.tokens"].set_index("label")
    assert list(tk.index) == ["base", "low", "high"] and (tk["steps"] == STEPS - 1).all()
    assert (tk["wall_ms_p50"] == 4.0).all()  # every planted step is 4000 us
    acc = [i % 5 for i in range(STEPS)]  # noise_runs' accepted counts per step, as planted by _run
    assert tk.loc["low", "accepted_per_step"] == pytest.approx(sum(acc) / STEPS, rel=1e-12)
    assert tk.loc["low", "ms_per_accepted"] == pytest.approx(4.0 * STEPS / sum(acc), rel=1e-12)
    # tokens per s: (accepted + 1 per step) over first step start .. last step end = (STEPS - 1) * 5 ms + 4 ms
    assert tk.loc["low", "tokens_per_s"] == pytest.approx((sum(acc) + STEPS) / (((STEPS - 1) * 5 + 4) / 1e3), rel=1e-12)
    sv = res["compare.step_values"]
    assert len(sv) == 3 * (STEPS - 1) and set(sv["wall_ms"]) == {4.0}
    html = cmpview.to_html(res, "sweep")
    assert "Ratio of per-step medians to the baseline" in html and html.count("<img class='plot'") == 3


def test_gate_grammar_errors(runs: dict[str, Path]) -> None:
    with pytest.raises(TraceError, match="relative"):
        cmp.parse_condition("draft.ms_per_step > 2ms @95")
    with pytest.raises(TraceError, match="level"):
        cmp.parse_condition("draft.ms_per_step > +5% @abc")
    with pytest.raises(TraceError, match="per-step values"):
        cmp.diff(runs["low_a"], runs["low_b"], conditions=["run.wall_ms > +5% @95"])


def test_cli_gate_exit_codes(runs: dict[str, Path]) -> None:
    r = CliRunner().invoke(cli, ["diff", str(runs["low_a"]), str(runs["low_b"]), "--fail-if", "draft.gpu_ms_per_step > +2% @95"])
    assert r.exit_code == 1 and "gate: draft.gpu_ms_per_step > +2% @95" in r.output
    r = CliRunner().invoke(cli, ["diff", str(runs["high_a"]), str(runs["high_b"]), "--fail-if", "draft.gpu_ms_per_step > +2% @95"])
    assert r.exit_code == 0, r.output
    assert "within noise" in r.output


def test_mann_whitney_hand_values() -> None:
    # a = 1,2,3 vs b = 4,5,6: U = 0, mean 4.5, var = 3*3*7/12 = 5.25, z = (4.5 - 0.5)/sqrt(5.25)
    z = 4.0 / math.sqrt(5.25)
    assert noise.mann_whitney_p(np.array([1.0, 2, 3]), np.array([4.0, 5, 6])) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    # ties: a = 1,2,2 vs b = 2,3,3: ranks 1, 3, 3 | 3, 5.5, 5.5 -> R1 = 7, U1 = 1; tie groups 3 and 2:
    # var = 9/12 * (7 - (24 + 6) / 30) = 4.5; z = (4.5 - 1 - 0.5)/sqrt(4.5)
    z = 3.0 / math.sqrt(4.5)
    assert noise.mann_whitney_p(np.array([1.0, 2, 2]), np.array([2.0, 3, 3])) == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert noise.mann_whitney_p(np.array([5.0, 5]), np.array([5.0, 5, 5])) == 1.0


def test_bootstrap_is_deterministic_and_covers() -> None:
    """Coverage by simulation: lognormal steps (sd 0.2 in log space), 40 per side, true median ratio 1.05."""
    a0 = np.exp(np.random.default_rng(1).normal(0, 0.2, 40))
    assert noise.bootstrap_ratio(a0, a0 * 1.05, rng=np.random.default_rng(3)) == noise.bootstrap_ratio(
        a0, a0 * 1.05, rng=np.random.default_rng(3))
    sim = np.random.default_rng(2024)
    reps, hit = 300, 0
    for _ in range(reps):
        a = np.exp(sim.normal(0, 0.2, 40))
        b = 1.05 * np.exp(sim.normal(0, 0.2, 40))
        lo, hi = noise.bootstrap_ratio(a, b, 0.95, resamples=1000, rng=sim)
        hit += lo <= 1.05 <= hi
    cov = hit / reps
    # binomial sd at 0.95 over 300 reps is 0.0126: 0.90..0.99 is about +-4 sd around the nominal level
    assert 0.90 <= cov <= 0.99, cov


@pytest.mark.parametrize("n", [3, 4, 7, 8, 31])
def test_boot_medians_match_drawn_resamples(n: int) -> None:
    """The bisection sampler has the distribution of numpy.median over drawn resamples (ties included)."""
    x = np.round(np.random.default_rng(n).lognormal(0, 0.3, n), 1)
    fast = noise.boot_medians(x, 100_000, np.random.default_rng(1))
    slow = np.median(x[np.random.default_rng(2).integers(0, n, (100_000, n))], axis=1)
    vals = np.union1d(fast, slow)
    diff = max(abs((fast == v).mean() - (slow == v).mean()) for v in vals)
    assert diff < 0.006, diff  # pmf sd per value <= 0.0016 per side at 100k draws
