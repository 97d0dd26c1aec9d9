"""syncs and gpu_idle against the golden `nsys analyze` outputs (nsys 2022.4.2) on real nsys exports.

Where the two measure the same thing:
- `cuda-sync-api` lists every cudaStreamSynchronize / cudaDeviceSynchronize call, longest first,
  truncated to 50 rows. syncs.calls lists our sync calls (more APIs); filtered to those two and cut
  to the golden row count, durations must be identical, and start times too (ties at the cut aside).
- `gap1ms_gpu-starv` lists, per (process, device), gaps >= 1 ms between the union of GPU ops from
  the first to the last op. gpu_idle.intervals lists the same interior gaps per device (edges are
  separate causes there); with one process per device the sets must be identical.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tracekit import report
from tracekit.ingest import convert

SHARED = Path(__file__).resolve().parents[2] / "shared"
NSYS = SHARED / "traces" / "nsys"
GOLDEN = NSYS / "golden" / "nsys-2022.4.2"
if not GOLDEN.is_dir():
    pytest.skip(f"shared nsys traces not found at {NSYS}", allow_module_level=True)
try:
    from tracekit.ingest import nsys as _nsys  # noqa: F401
except ImportError:  # pragma: no cover
    pytest.skip("nsys ingest not available", allow_module_level=True)


def _pairs(kind: str) -> list[tuple[Path, Path]]:
    out = []
    for d in sorted(GOLDEN.iterdir()):
        origin, _, stem = d.name.partition("__")
        sq = NSYS / "sqlite" / origin / f"{stem}.sqlite"
        golden = list(d.glob(f"analyze_{kind}*.csv"))
        if sq.exists() and golden:
            out.append((sq, golden[0]))
    return out


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, dict[str, pd.DataFrame]]:
    d = tmp_path_factory.mktemp("nsys")
    out: dict[Path, dict[str, pd.DataFrame]] = {}
    for sq in {p for p, _ in _pairs("cuda-sync-api") + _pairs("gap1ms")}:
        pq = d / (sq.parent.name + "_" + sq.stem + ".parquet")
        convert(sq, pq)
        out[sq] = report.run(pq, analyses=["syncs", "gpu_idle"], idle_top_n=10**9, sync_top_n=10**9)
    return out


@pytest.mark.parametrize("sq,golden", _pairs("cuda-sync-api"), ids=lambda p: p.parent.name if p.suffix == ".sqlite" else "")
def test_sync_calls_match_nsys(sq: Path, golden: Path, converted: dict) -> None:
    g = pd.read_csv(golden)
    calls = converted[sq]["syncs.calls"]
    ours = calls[calls["api"].isin(["cudaStreamSynchronize", "cudaDeviceSynchronize"])]
    ours = ours.sort_values(["dur_ns", "ts_ns"], ascending=[False, True]).head(len(g))
    assert len(ours) == len(g)
    assert sorted(ours["dur_ns"]) == sorted(g["Duration (ns)"])
    if len(g) < 50:  # not truncated: the calls are the same calls
        assert sorted(ours["ts_ns"]) == sorted(g["Start (ns)"])


@pytest.mark.parametrize("sq,golden", _pairs("gap1ms"), ids=lambda p: p.parent.name if p.suffix == ".sqlite" else "")
def test_gpu_gaps_match_nsys(sq: Path, golden: Path, converted: dict) -> None:
    g = pd.read_csv(golden)
    iv = converted[sq]["gpu_idle.intervals"]
    ours = iv[iv["gap_ns"] >= 1_000_000]
    assert sorted(zip(ours["gap_start_ns"], ours["gap_ns"])) == sorted(zip(g["Start (ns)"], g["Duration (ns)"]))
