"""Is B really slower than A, or is it noise? Ratio of medians, a bootstrap interval, a rank test.

Input: the per-step distributions of ``queries/lib/run_metrics.sql`` (table ``run_metrics_step_values``:
one value per metric and step, warm-up steps already dropped there). Output: one row per
(metric, run against the baseline, level), written to the DuckDB table ``_noise`` that
``queries/diff.sql`` (the ``noise`` output and the ``@LEVEL`` gate) and ``queries/compare.sql``
(``noise``) read.

Why Python and not SQL: a bootstrap draws thousands of resamples of every distribution and
takes each one's median; in DuckDB that is a join against a generated table of resample
indices per metric and a ``quantile_cont`` per (metric, resample) group, orders of magnitude
slower than one ``numpy.median(axis=1)`` over a (resamples x steps) matrix, and the exact
Mann-Whitney statistic needs the tie correction as well. Everything here is a plain statistic of
the SQL's numbers; nothing is redefined (the metrics and the steps they use are the SQL's).

Definitions (each deterministic: the generator is seeded with :data:`SEED` and the metric name):

- ``median_a``, ``median_b``: medians of the per-step values; ``ratio = median_b / median_a``.
- Interval: percentile bootstrap of that ratio. Each of :data:`RESAMPLES` resamples draws the A
  steps and the B steps with replacement, independently, and takes the ratio of the medians;
  the interval is the (1-level)/2 and (1+level)/2 quantiles of those ratios (the resamples'
  medians are drawn directly from their exact distribution, :func:`boot_medians`, not by
  materialising the resamples, which costs far more). NULL when a side
  has fewer than :data:`MIN_STEPS` steps, or when a resampled median of A is 0.
- ``p_value``: two-sided Mann-Whitney U test of "A and B come from one distribution", normal
  approximation with tie correction and continuity correction (n >= 8 per side is where it is
  good; below that the p-value is still given and the interval is the figure to trust).
- ``verdict`` (at ``level``): ``higher`` when the interval lies above 1, ``lower`` below 1,
  ``within noise`` when it contains 1, NULL without an interval.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import duckdb

#: Bootstrap resamples per metric (2000: the percentile interval's end points move by well under
#: 1% of the interval width between seeds at this count; tests/test_noise.py checks coverage).
RESAMPLES = 2000
#: Base seed; each metric's generator is seeded with (SEED, crc32 of its name), so results do not
#: depend on which other metrics are compared.
SEED = 20240601
#: Fewest steps per side for an interval.
MIN_STEPS = 3
#: Default interval level (``--fail-if ... @95`` picks another).
LEVEL = 0.95


def _rng(metric: str) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(metric.encode())])


def boot_medians(x: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Medians (``numpy.median``) of ``resamples`` bootstrap resamples of ``x``, without drawing them.

    Why: drawing resamples costs O(resamples x n) (minutes for a long run's metrics); this is
    O(resamples x log n) and has exactly the same distribution. With x sorted, let C_j be how many of
    the n draws pick one of the j smallest values; the lower middle value of a resample is x_(j1),
    j1 the first j with C_j >= ceil(n/2). Given C at two positions, the draws between them are
    uniform over the positions between, so C at the midpoint is the lower count plus a binomial:
    a bisection over j draws j1 exactly in log2(n) binomials. For even n the upper middle value is
    x_(j1) again when C_j1 > n/2, else the smallest position picked by the n - C_j1 draws above j1
    (uniform over those positions: sampled through the distribution of their minimum).
    """
    xs = np.sort(np.asarray(x, dtype=float))
    n = len(xs)
    m = (n + 1) // 2  # rank of the lower middle value (1-based)
    lo = np.zeros(resamples, dtype=np.int64)
    hi = np.full(resamples, n, dtype=np.int64)
    c_lo = np.zeros(resamples, dtype=np.int64)
    c_hi = np.full(resamples, n, dtype=np.int64)
    while True:
        open_ = hi - lo > 1
        if not open_.any():
            break
        mid = (lo + hi) // 2
        p = np.where(open_, (mid - lo) / np.maximum(hi - lo, 1), 0.0)
        c_mid = c_lo + rng.binomial(np.where(open_, c_hi - c_lo, 0), p)
        up = open_ & (c_mid >= m)
        down = open_ & ~up
        hi, c_hi = np.where(up, mid, hi), np.where(up, c_mid, c_hi)
        lo, c_lo = np.where(down, mid, lo), np.where(down, c_mid, c_lo)
    j1 = hi  # 1-based position of the lower middle value; C_j1 = c_hi
    lower = xs[j1 - 1]
    if n % 2:
        return lower
    rest = n - c_hi  # draws above j1 (>= 1 whenever C_j1 == n/2)
    k = n - j1
    u = rng.random(resamples)
    with np.errstate(divide="ignore", invalid="ignore"):
        off = np.floor(k * (1 - u ** (1 / np.maximum(rest, 1)))).astype(np.int64) + 1
    j2 = np.where(c_hi > n // 2, j1, np.minimum(j1 + off, n))
    return (lower + xs[j2 - 1]) / 2


def bootstrap_ratio(
    a: np.ndarray,
    b: np.ndarray,
    level: float = LEVEL,
    resamples: int = RESAMPLES,
    rng: np.random.Generator | None = None,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of median(b) / median(a); (None, None) when undefined."""
    if len(a) < MIN_STEPS or len(b) < MIN_STEPS:
        return None, None
    rng = rng or np.random.default_rng(SEED)
    ma = boot_medians(a, resamples, rng)
    mb = boot_medians(b, resamples, rng)
    if np.any(ma == 0):
        return None, None
    r = mb / ma
    lo, hi = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def mann_whitney_p(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value (normal approximation, tie and continuity corrected)."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return None
    x = np.concatenate([a, b])
    _, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    avg_rank = np.cumsum(counts) - (counts - 1) / 2  # ties share the mean of their ranks
    u1 = avg_rank[inv[:n1]].sum() - n1 * (n1 + 1) / 2
    n = n1 + n2
    var = n1 * n2 / 12 * ((n + 1) - (counts**3 - counts).sum() / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return 1.0  # every value equal: no evidence of a difference
    z = (abs(u1 - n1 * n2 / 2) - 0.5) / math.sqrt(var)
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2))))


def verdict(lo: float | None, hi: float | None) -> str | None:
    """``higher`` / ``lower`` / ``within noise`` from an interval of B/A."""
    if lo is None or hi is None:
        return None
    if lo > 1:
        return "higher"
    if hi < 1:
        return "lower"
    return "within noise"


COLUMNS = [
    "metric",
    "label",
    "label_index",
    "level",
    "n_base",
    "n",
    "median_base",
    "median",
    "ratio",
    "ci_lo",
    "ci_hi",
    "p_value",
    "verdict",
]


def compare_distributions(values: pd.DataFrame, levels: Iterable[float] = (LEVEL,)) -> pd.DataFrame:
    """Every run against the baseline (lowest label_index), per metric and level.

    ``values``: rows of ``run_metrics_step_values`` (label, label_index, metric, value). Metrics that one
    side lacks entirely get no row (the mean tables already say that they are absent), nor do
    metrics that are 0 in every step of both runs.
    """
    levels = sorted(set(levels))
    rows: list[list[object]] = []
    if not len(values):
        return pd.DataFrame(columns=COLUMNS)
    base = int(values["label_index"].min())
    groups = {k: g["value"].to_numpy(dtype=float) for k, g in values.groupby(["metric", "label_index"], sort=False)}
    labels = dict(zip(values["label_index"], values["label"]))
    for metric in sorted(values["metric"].unique()):
        a = groups.get((metric, base))
        if a is None:
            continue
        for idx in sorted(labels):
            if idx == base or (metric, idx) not in groups:
                continue
            b = groups[(metric, idx)]
            if not a.any() and not b.any():
                continue  # 0 in every step of both (e.g. GPU time of a CPU-only capture): nothing to compare
            p = mann_whitney_p(a, b)
            med_a, med_b = float(np.median(a)), float(np.median(b))
            ratio = med_b / med_a if med_a != 0 else None
            for level in levels:
                rng = _rng(f"{metric}\0{idx}")
                lo, hi = bootstrap_ratio(a, b, level, rng=rng)
                rows.append(
                    [metric, labels[idx], idx, level, len(a), len(b), med_a, med_b, ratio, lo, hi, p, verdict(lo, hi)]
                )
    return pd.DataFrame(rows, columns=COLUMNS)


def attach(con: duckdb.DuckDBPyConnection, levels: Iterable[float] = (LEVEL,)) -> pd.DataFrame:
    """Compute :func:`compare_distributions` from ``run_metrics_step_values`` on ``con``; store it as table ``_noise``."""
    values = con.execute(
        "SELECT label, label_index, metric, value FROM run_metrics_step_values WHERE value IS NOT NULL"
    ).df()
    out = compare_distributions(values, levels)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _noise (metric VARCHAR, label VARCHAR, label_index INTEGER, level DOUBLE, "
        "n_base BIGINT, n BIGINT, median_base DOUBLE, median DOUBLE, ratio DOUBLE, ci_lo DOUBLE, ci_hi DOUBLE, "
        "p_value DOUBLE, verdict VARCHAR)"
    )
    if len(out):
        con.executemany(
            "INSERT INTO _noise VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    None if (isinstance(v, float) and math.isnan(v)) else (v.item() if hasattr(v, "item") else v)
                    for v in row
                ]
                for row in out.itertuples(index=False)
            ],
        )
    return out
