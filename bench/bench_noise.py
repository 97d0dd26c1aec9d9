"""Time tracekit.noise (the bootstrap and rank test of diff/compare) on synthetic per-step values.

    python bench/bench_noise.py                 # 200x50, 1000x50, 2000x150 (steps x metrics per run)
    python bench/bench_noise.py --drawn         # also the naive bootstrap that materialises resamples

Two runs of lognormal per-step values (sd 0.2 in log space) per metric, one level (95%), the
default 2000 resamples. Prints seconds per size (best of 3).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from tracekit import noise


def values(steps: int, metrics: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"label": f"L{li}", "label_index": li, "metric": f"m{m}", "value": rng.lognormal(0, 0.2, steps)})
             for m in range(metrics) for li in (0, 1)]
    return pd.concat(parts, ignore_index=True)


def drawn(df: pd.DataFrame) -> None:
    """The textbook bootstrap: index matrices of shape (resamples, steps) and numpy.median per metric."""
    rng = np.random.default_rng(0)
    for _, g in df.groupby("metric"):
        for _, s in g.groupby("label_index"):
            x = s["value"].to_numpy()
            np.median(x[rng.integers(0, len(x), (noise.RESAMPLES, len(x)))], axis=1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--drawn", action="store_true")
    a = ap.parse_args()
    for steps, metrics in ((200, 50), (1000, 50), (2000, 150)):
        df = values(steps, metrics)
        best = min(_t(lambda: noise.compare_distributions(df)) for _ in range(3))
        line = f"{steps} steps x {metrics} metrics: compare_distributions {best:.2f} s"
        if a.drawn:
            line += f", drawn resamples {_t(lambda: drawn(df)):.2f} s"
        print(line, flush=True)


def _t(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
