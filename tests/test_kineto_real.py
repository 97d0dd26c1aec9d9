"""Every real Kineto trace in ../shared converts losslessly, checked against the raw JSON.

The expected values are computed here from the raw file with the standard
library's ``json`` module (decimals parsed exactly), independently of tracekit.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import kineto_files, needs_real
from tracekit.ingest import convert
from tracekit.store import connect, read_metadata

pytestmark = needs_real  # the full ../shared set, else the traces shipped in tests/data/real
FILES = kineto_files()
KERNEL_CATS = {"kernel", "Kernel"}
LAUNCH_CATS = {"cuda_runtime", "cuda_driver", "Runtime"}


def _ns(x: Decimal) -> int:
    return int((x * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _raw(path: Path) -> dict:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, Path]:
    out = tmp_path_factory.mktemp("kineto")
    result = {}
    for i, f in enumerate(FILES):
        dst = out / f"{i}.parquet"
        convert(f, dst)
        result[f] = dst
    return result


@pytest.mark.parametrize("path", FILES, ids=[str(f.relative_to(f.parents[2])) for f in FILES])
def test_rows_and_kernels_match_raw_json(path: Path, converted: dict[Path, Path]) -> None:
    raw = _raw(path)
    events = raw["traceEvents"]
    con = connect(converted[path])

    # rows out == events in, per (ph, cat)
    want = Counter((e.get("ph"), e.get("cat")) for e in events)
    got = Counter({(ph, cat): n for ph, cat, n in con.execute("SELECT ph, cat, count(*) FROM events GROUP BY ALL").fetchall()})
    assert got == want

    # kernel count and summed kernel duration, exact ns
    kern = [e for e in events if e.get("cat") in KERNEL_CATS]
    want_sum = sum(_ns(Decimal(e["dur"])) for e in kern)
    n, s = con.execute("SELECT count(*), coalesce(sum(dur_ns), 0) FROM events WHERE kind = 'kernel'").fetchone()
    assert (n, s) == (len(kern), want_sum)

    # launches that have a kernel with the same correlation
    kcorr = {e["args"]["correlation"] for e in kern if "correlation" in e.get("args", {})}
    launches = {e["args"]["correlation"] for e in events
                if e.get("cat") in LAUNCH_CATS and e.get("args", {}).get("correlation") in kcorr}
    linked = con.execute("SELECT count(DISTINCT correlation) FROM events WHERE kind = 'kernel' AND launch_name IS NOT NULL").fetchone()[0]
    assert linked == len(launches)

    # the earliest timestamp is exact to the ns
    ts = [Decimal(e["ts"]) for e in events if "ts" in e and e.get("ph") != "M"]
    assert con.execute("SELECT min(ts_ns) FROM events WHERE ph <> 'M'").fetchone()[0] == _ns(min(ts))


def test_metadata_has_no_secrets(converted: dict[Path, Path]) -> None:
    """The TraceLens H100 trace carries metadata.system.env (a token was published there)."""
    tl = next(f for f in FILES if "tracelens" in str(f))
    meta = read_metadata(converted[tl])
    (m,) = meta.values()
    text = json.dumps(m)
    assert "HF_TOKEN" not in text and not re.search(r"hf_[A-Za-z0-9]{20,}", text)
    assert m["devices"][0]["name"] == "NVIDIA H100 80GB HBM3"
    assert m["base_time_ns"] == 1751410836000000000
    # the env block is dropped wholesale
    assert m["extra"]["metadata"]["system"]["env"] == "<redacted>"


def test_specific_facts(converted: dict[Path, Path]) -> None:
    """Hand-checked facts from SOURCES.md: graph launches, HIP launches, driver launches."""
    by = {str(f.relative_to(f.parents[2])): converted[f] for f in FILES}
    # AMD: hipLaunchKernel x12 + hipExtModuleLaunchKernel x2 launch the 14 kernels
    con = connect(next(v for k, v in by.items() if "amd_trace" in k))
    rows = dict(con.execute("SELECT launch_name, count(*) FROM events WHERE kind = 'kernel' GROUP BY 1").fetchall())
    assert rows == {"hipLaunchKernel": 12, "hipExtModuleLaunchKernel": 2}
    # Triton: one kernel launched through the driver API
    con = connect(next(v for k, v in by.items() if "triton_example" in k))
    assert con.execute("SELECT launch_name FROM events WHERE kind = 'kernel'").fetchall() == [("cuLaunchKernel",)]
    # legacy category names (Kernel / Runtime / async_gpu) map to the same kinds
    con = connect(next(v for k, v in by.items() if "inference_rank_1" in k))
    kinds = dict(con.execute("SELECT kind, count(*) FROM events WHERE cat IN ('Kernel', 'Runtime', 'async_gpu') GROUP BY 1").fetchall())
    assert kinds == {"kernel": 4, "runtime": 8, "flow": 8}


def test_graph_launches(converted: dict[Path, Path]) -> None:
    """trace_diff/test has 12 cudaGraphLaunch calls (SOURCES.md); their kernels carry launch_name cudaGraphLaunch."""
    src = next((f for f in FILES if str(f).endswith("trace_diff/test/test.json.gz")), None)
    if src is None:
        pytest.skip("hta/trace_diff/test is in ../shared only (not shipped: 1.6 MB)")
    con = connect(converted[src])
    assert con.execute("SELECT count(*) FROM runtime WHERE name = 'cudaGraphLaunch'").fetchone()[0] == 12
    g = con.execute("SELECT count(*), count(DISTINCT correlation) FROM kernels WHERE launch_name = 'cudaGraphLaunch'").fetchone()
    assert g[0] > g[1] > 0  # many kernels per graph launch


@pytest.mark.parametrize("name", ["nccl_data", "mi250_minitoy", "step_based_trace", "h100__Qwen"])
def test_c_scanner_and_python_path_agree(name: str, tmp_path: Path) -> None:
    """The C scanner and the pure-Python path give the same rows (args compared as JSON: whitespace differs)."""
    from tracekit.ingest import kscan
    from tracekit.ingest.kineto import convert_kineto

    if not kscan.AVAILABLE:
        pytest.skip("C scanner not built")
    src = next((f for f in FILES if name in f.name), None)
    if src is None:
        pytest.skip(f"no {name} trace: it is in ../shared only")
    fast, slow = tmp_path / "fast.parquet", tmp_path / "slow.parquet"
    convert_kineto(src, fast)
    convert_kineto(src, slow, fast=False)
    a = pq.read_table(fast).to_pylist()
    b = pq.read_table(slow).to_pylist()
    assert len(a) == len(b)
    for x, y in zip(a, b):
        xa, ya = x.pop("args"), y.pop("args")
        assert x == y
        assert (json.loads(xa) if xa else None) == (json.loads(ya) if ya else None)
