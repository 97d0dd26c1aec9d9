"""Issue 16: datasets with a sidecar, per-trace tasks on local / Ray / Spark executors, cross-trace tables.

The dataset is three planted Kineto ranks (built here, so the tests need no ../shared). Per rank r, on
one CPU thread and one GPU stream, times in us:

    ProfilerStep#1  0..1000     cudaLaunchKernel 100+10 -> kernel 200..200+K1[r]
    ProfilerStep#2  2000..3000  cudaLaunchKernel 2100+10 -> kernel 2200..2200+K2[r]

K1 = (1500, 1600, 1600), K2 = (1200, 1000, 900): each step's GPU work ends after its range, so the
step's end_to_end time is kernel end - step start: step 1 = 1700, 1800, 1800 us; step 2 = 1400,
1200, 1100 us. Ranks 1 and 2 tie at step 1 (the tie rule picks the lower rank). Every expected
number of the aggregate test follows from this table by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from tests.conftest import require_spark
from tests.determinism import CROSS_TRACE, differences, rows
from tests.planted import _k, _rt, _x
from tracekit import dataset, executors, report
from tracekit.errors import TraceError

K1, K2 = (1500, 1600, 1600), (1200, 1000, 900)


def _rank_events(r: int) -> list[dict[str, Any]]:
    return [
        _x("user_annotation", "ProfilerStep#1", 0, 1000),
        _rt("cudaLaunchKernel", 100, 10, 1), _k("gemm", 200, K1[r], 1),
        _x("user_annotation", "ProfilerStep#2", 2000, 1000),
        _rt("cudaLaunchKernel", 2100, 10, 2), _k("gemm", 2200, K2[r], 2),
    ]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("raw")
    out = []
    for r in range(3):
        p = d / f"rank{r}.json"
        p.write_text(json.dumps({"schemaVersion": 1, "distributedInfo": {"rank": r, "world_size": 3},
                                 "traceEvents": _rank_events(r)}))
        out.append(p)
    return out


def _outcomes_ok(outcomes: list[executors.Outcome]) -> None:
    assert [o.error for o in outcomes if not o.ok] == []


def _convert_and_report(ex: executors.Executor, inputs: list[str], ds: str, res: str) -> None:
    """Convert ``inputs`` into the dataset ``ds``, then report it into ``res``, on ``ex``; every task must succeed."""
    _outcomes_ok(executors.convert_many(inputs, ds, ex))
    _outcomes_ok(executors.report_many([ds], res, ex))


def _tables(out: Path) -> dict[str, Any]:
    """Every result table of a results folder, parts concatenated in file order."""
    return {name: pq.read_table([str(f) for f in files] if len(files) > 1 else files[0]).to_pandas()
            for name, files in dataset.result_tables(str(out)).items()}


@pytest.fixture(scope="module")
def local_run(ranks: list[Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("local")
    ds, res = base / "ds", base / "res"
    _convert_and_report(executors.make("local", jobs=2), [str(p) for p in ranks], str(ds), str(res))
    return ds, res


def test_sidecar_holds_the_footer_facts(ranks: list[Path], local_run: tuple[Path, Path]) -> None:
    ds, _ = local_run
    side = dataset.read_sidecar(str(ds)).to_pylist()
    assert [(r["trace"], r["file"], r["rank"], r["world_size"]) for r in side] == [
        (f"rank{r}", f"rank{r}.parquet", r, 3) for r in range(3)]
    for r, row in enumerate(side):
        assert row["source_sha256"] == hashlib.sha256(ranks[r].read_bytes()).hexdigest()
        assert row["events"] == pq.read_metadata(ds / row["file"]).num_rows == 6
        assert row["schema_version"] == "2" and row["source"] == "kineto" and row["converter_version"]
    # the sidecar is not an event file: tracekit's own readers skip the _tracekit/ folder
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet('{ds}/*.parquet')").fetchone()[0] == 18


def test_rerun_skips_same_bytes_and_force_converts(ranks: list[Path], tmp_path: Path) -> None:
    ds = tmp_path / "ds"
    ex = executors.make("local")
    first = executors.convert_many([str(p) for p in ranks[:2]], str(ds), ex)
    assert [o.value["skipped"] for o in first] == [False, False]
    mtime = (ds / "rank0.parquet").stat().st_mtime_ns
    again = executors.convert_many([str(p) for p in ranks[:2]], str(ds), ex)
    assert [o.value["skipped"] for o in again] == [True, True]
    assert (ds / "rank0.parquet").stat().st_mtime_ns == mtime
    forced = executors.convert_many([str(p) for p in ranks[:1]], str(ds), ex, force=True)
    assert [o.value["skipped"] for o in forced] == [False]
    changed = tmp_path / "rank1.json"  # same name, other input: refused (issue 24), replaced only with force
    changed.write_text(ranks[1].read_text().replace('"rank": 1', '"rank": 7'))
    with pytest.raises(TraceError, match="rank1.json and .*rank1.json"):
        executors.convert_many([str(changed)], str(ds), ex)
    out = executors.convert_many([str(changed)], str(ds), ex, force=True)
    assert [o.value["skipped"] for o in out] == [False]
    assert {r["trace"]: r["rank"] for r in dataset.read_sidecar(str(ds)).to_pylist()} == {"rank0": 0, "rank1": 7}


def test_per_trace_tables_equal_one_run_over_the_dataset(local_run: tuple[Path, Path]) -> None:
    ds, res = local_run
    whole = report.run([str(ds)])
    tables = _tables(res)
    assert set(tables) == set(whole) | {"traces"}
    for r in range(3):
        # the cross-rank tables of collectives.sql need every rank in one run: not per-trace outputs
        assert not differences(whole, {k: v for k, v in tables.items() if k != "traces"}, f"rank{r}", skip=CROSS_TRACE)
    assert len(tables["steps"]) == 6


def test_aggregate_planted_ranks(local_run: tuple[Path, Path]) -> None:
    _, res = local_run
    con = dataset.connect_results(str(res))
    out = report.run_sql(con, report.parse_sql(report.QUERY_DIR / "across_traces.sql"), set())
    by_step = rows(out["across_traces.by_step"])
    us = 1000
    assert by_step == [
        ("ProfilerStep#N", 1, 3, 1700 * us, 1800 * us, 1800 * us, 100 * us, 100 / 1800, "rank1", 1, "rank0", 0),
        ("ProfilerStep#N", 2, 3, 1100 * us, 1200 * us, 1400 * us, 300 * us, 300 / 1400, "rank0", 0, "rank2", 2),
    ]
    assert rows(out["across_traces"]) == [("ProfilerStep#N", 3, 2, 200.0 * us, 300 * us, 400 / 3200, "rank0", 0, 1)]
    assert rows(out["across_traces.per_trace"]) == [
        ("rank0", 0, "ProfilerStep#N", 2, 1400 * us, 1200 * us, 1400 / 1200, 1, 2),
        ("rank1", 1, "ProfilerStep#N", 2, 1200 * us, 1200 * us, 1.0, 1, 2),
        ("rank2", 2, "ProfilerStep#N", 2, 1100 * us, 1200 * us, 1100 / 1200, 0, 2),
    ]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_one_bad_trace_is_named_and_the_others_written(ranks: list[Path], tmp_path: Path) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"traceEvents": [{"ph": "X", "name": "k", "ts": ')  # cut short mid-event
    notrace = tmp_path / "empty.json"
    notrace.write_text("")
    ds = tmp_path / "ds"
    p = _cli("convert", str(ranks[0]), str(bad), str(notrace), str(ranks[1]), "-o", str(ds), "--jobs", "2", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert f"tracekit: error: {bad}: truncated before the first complete event" in p.stderr
    assert f"tracekit: error: {notrace}: empty file" in p.stderr and "Traceback" not in p.stderr
    assert sorted(f.name for f in ds.glob("*.parquet")) == ["rank0.parquet", "rank1.parquet"]
    assert [r["trace"] for r in dataset.read_sidecar(str(ds)).to_pylist()] == ["rank0", "rank1"]
    # report --out: a file that is not Parquet inside the dataset fails alone
    (ds / "zz_corrupt.parquet").write_bytes(b"PAR1 not really")
    res = tmp_path / "res"
    p = _cli("report", str(ds), "--out", str(res), "--jobs", "2", cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert "zz_corrupt.parquet" in p.stderr and "Traceback" not in p.stderr
    assert sorted(f.name for f in (res / "steps").glob("*.parquet")) == ["rank0.parquet", "rank1.parquet"]


def _same_dataset(a: Path, b: Path) -> None:
    files = sorted(f.name for f in a.glob("*.parquet"))
    assert files == sorted(f.name for f in b.glob("*.parquet"))
    for f in files:
        assert pq.read_table(a / f).equals(pq.read_table(b / f)), f
    assert dataset.read_sidecar(str(a)).equals(dataset.read_sidecar(str(b)))


def _same_results(a: Path, b: Path) -> None:
    ta, tb = dataset.result_tables(str(a)), dataset.result_tables(str(b))
    assert [k for k in ta] == [k for k in tb] and len(ta) > 20
    for name in ta:
        assert [Path(f).name for f in ta[name]] == [Path(f).name for f in tb[name]]
        for fa, fb in zip(ta[name], tb[name]):
            assert pq.read_table(fa).equals(pq.read_table(fb)), f"{name}: {fa} vs {fb}"


def test_ray_executor_gives_the_local_results(ranks: list[Path], local_run: tuple[Path, Path], tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'tracekit[ray]')")
    import ray

    ex = executors.make("ray", jobs=2)
    try:
        ds, res = tmp_path / "ds", tmp_path / "res"
        _convert_and_report(ex, [str(p) for p in ranks], str(ds), str(res))
    finally:
        ray.shutdown()
    _same_dataset(local_run[0], ds)
    _same_results(local_run[1], res)


def test_spark_executor_and_spark_sql_over_the_dataset(ranks: list[Path], local_run: tuple[Path, Path], tmp_path: Path) -> None:
    require_spark()
    ex = executors.make("spark", spark_master="local[2]")
    spark = ex.session()
    try:
        ds, res = tmp_path / "ds", tmp_path / "res"
        _convert_and_report(ex, [str(p) for p in ranks], str(ds), str(res))
        _same_dataset(local_run[0], ds)
        _same_results(local_run[1], res)
        # Spark SQL over the events and the sidecar: the per-trace numbers `tracekit sql` gives
        spark.read.parquet(str(ds)).createOrReplaceTempView("events")
        spark.read.parquet(str(ds / dataset.SIDECAR)).createOrReplaceTempView("traces")
        got = sorted(tuple(r) for r in spark.sql(
            "SELECT e.trace, t.rank, count(*) AS n, sum(CASE WHEN e.kind = 'kernel' THEN e.dur_ns END) AS kernel_ns "
            "FROM events e JOIN traces t ON t.trace = e.trace GROUP BY e.trace, t.rank").collect())
    finally:
        spark.stop()
    p = _cli("sql", str(ds), "-q", "SELECT trace, count(*) AS n, sum(dur_ns) FILTER (WHERE kind = 'kernel') AS kernel_ns "
             "FROM events GROUP BY trace ORDER BY trace", "--format", "json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    want = json.loads(p.stdout)
    ranks_meta = {t: m["rank"] for t, m in __import__("tracekit.store").store.read_metadata(ds).items()}
    assert got == [(w["trace"], ranks_meta[w["trace"]], w["n"], w["kernel_ns"]) for w in want]
    assert got == [(f"rank{r}", r, 6, (K1[r] + K2[r]) * 1000) for r in range(3)]
