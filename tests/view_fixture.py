"""A planted set of headline outputs (the contract of queries/headline.sql) for the view tests.

Values are chosen by hand so the expected cells can be worked out on paper: trace ``rank0`` has
10 decode steps whose exclusive phase times add up to the mean CPU span (70.6337 ms); trace
``rank1`` carries a hostile name (terminal escape, rich markup, HTML) and a very long phase path.
"""

from __future__ import annotations

import pandas as pd

KIND = "step[DECODE bs=32]"
LONG = "execute_model_with_a_rather_long_range_name_that_goes_on_and_on/step[DECODE bs=32]/forward"
EVIL = "evil\x1b[2J[bold]<script>alert(1)</script>"
#: mean CPU span of rank0 (ns); the exclusive phase means below add up to it exactly
SPAN = 70_633_700
#: rank0's 10 step wall times (ns): mean = SPAN
WALLS = [70_100_000, 69_900_000, 70_000_000, 75_300_000, 70_200_000,
         70_000_000, 70_100_000, 70_300_000, 70_137_000, 70_300_000]


def _headline(trace: str) -> list[dict]:
    rows = [("CPU span", "ns", SPAN, 70_150_000, 75_300_000, None),
            ("GPU span", "ns", 68_000_000, 67_900_000, 72_000_000, None),
            ("end-to-end span", "ns", 71_200_000, 71_000_000, 76_000_000, None),
            ("launches", "count", 1234.0, 1230.0, 1260.0, None),
            ("GPU busy (union)", "ns", 52_000_000, 51_800_000, 55_000_000, None),
            ("GPU busy share", "share", 0.7647, 0.7629, 0.7639, None),
            ("sync calls", "count", 2.0, 2.0, 2.0, None),
            ("sync stall", "ns", 4_500_000, 4_400_000, 6_100_000, None),
            ("idle: launch_bound", "ns", None, None, None, "no runtime rows: capture with ProfilerActivity.CPU")]
    return [{"trace": trace, "step_kind": KIND, "steps": 10, "row_order": i + 1, "metric": m, "unit": u,
             "mean": a, "p50": b, "p99": c, "note": n} for i, (m, u, a, b, c, n) in enumerate(rows)]


def _tree(trace: str, top: str) -> list[dict]:
    # (depth, phase, path, excl_mean, excl_p50, excl_p99, incl_mean, excl_gpu, incl_gpu)
    rows = [(0, top.split("/")[-1], top, 5_000_000, 4_900_000, 5_500_000, 30_000_000, 1_000_000, 20_000_000),
            (1, "lm_head", f"{top}/lm_head", 12_000_000, 11_900_000, 13_000_000, 12_000_000, 14_000_000, 14_000_000),
            (1, "sampler", f"{top}/sampler", 13_000_000, 12_800_000, 14_000_000, 13_000_000, 5_000_000, 5_000_000),
            (0, "verify", "verify", 20_000_000, 19_000_000, 24_000_000, 35_000_000, 6_000_000, 27_000_000),
            (1, "lm_head", "verify/lm_head", 15_000_000, 15_000_000, 16_000_000, 15_000_000, 21_000_000, 21_000_000),
            (0, "(other)", "(other)", 5_633_700, 5_600_000, 6_000_000, 5_633_700, 0, 0)]
    gpu_total = sum(r[7] for r in rows)
    return [{"trace": trace, "step_kind": KIND, "row_order": i + 1, "depth": d, "phase": ph, "phase_path": p,
             "excl_cpu_ns_mean": em, "excl_cpu_ns_p50": e50, "excl_cpu_ns_p99": e99, "incl_cpu_ns_mean": im,
             "excl_gpu_ns_mean": eg, "incl_gpu_ns_mean": ig, "excl_cpu_share": em / SPAN,
             "excl_gpu_share": eg / gpu_total}
            for i, (d, ph, p, em, e50, e99, im, eg, ig) in enumerate(rows)]


def results() -> dict[str, pd.DataFrame]:
    """Headline outputs for two traces plus the tables the plots read (steps, headline.idle, syncs)."""
    hl = pd.DataFrame(_headline("rank0") + _headline("rank1"))
    tree = pd.DataFrame(_tree("rank0", "draft") + _tree("rank1", LONG))
    ver = pd.DataFrame([
        {"trace": "rank0", "step_kind": KIND, "rank": 1,
         "verdict": "verify is the largest phase: 35.00 ms of a 70.63 ms step (49.6%).",
         "numerator_ns": 35_000_000, "denominator_ns": SPAN, "numerator": "verify incl CPU", "denominator": "CPU span"},
        {"trace": "rank0", "step_kind": KIND, "rank": 2,
         "verdict": "The GPU is busy 76.5% of its span; 1,234 launches per step.",
         "numerator_ns": 52_000_000, "denominator_ns": 68_000_000, "numerator": "GPU busy", "denominator": "GPU span"},
        {"trace": "rank1", "step_kind": KIND, "rank": 1, "verdict": f"{EVIL} dominates.",
         "numerator_ns": 1, "denominator_ns": 2, "numerator": "x", "denominator": "y"}])
    notes = pd.DataFrame([{"trace": "rank1", "severity": "warn", "source": "converter",
                           "message": "truncated file: 1,234 bytes after the last complete event were lost"}])
    steps = pd.DataFrame({"trace": ["rank0"] * 10 + ["rank1"] * 10, "step_index": list(range(1, 11)) * 2,
                          "step_kind": [KIND] * 20, "step_name": [KIND] * 20, "tid": [7960] * 20,
                          "ts_ns": [1_700_000_000_000_000_000 + i * 80_000_000 for i in range(20)],
                          "wall_ns": WALLS * 2})
    by_step = pd.DataFrame({"trace": ["rank0"] * 4, "step_index": [1, 1, 2, 2], "device": [0] * 4,
                            "cause": ["launch_bound", "other", "launch_bound", "host_busy"],
                            "intervals": [3, 1, 2, 5], "idle_ns": [2_000_000, 500_000, 1_500_000, 3_000_000],
                            "wall_ns": [70_100_000, 70_100_000, 69_900_000, 69_900_000]})
    syncs = pd.DataFrame({"trace": ["rank0"], "phase_path": ["verify"], "sync_class": ["implicit"],
                          "api": ["cudaStreamSynchronize"], "op_chain": ["aten::item > aten::_local_scalar_dense"],
                          "blocks_host": [True], "calls": [20], "blocked_ns": [45_000_000],
                          "share": [1.0]})
    empty = pd.DataFrame({"trace": pd.Series(dtype=object), "name": pd.Series(dtype=object)})
    return {"headline": hl, "headline.phase_tree": tree, "headline.verdicts": ver, "headline.notes": notes,
            "headline.idle": by_step.assign(step_kind=KIND)[["trace", "step_kind", "step_index", "cause", "idle_ns"]],
            "steps": steps, "gpu_idle.by_step": by_step, "syncs": syncs, "kernels": empty}
