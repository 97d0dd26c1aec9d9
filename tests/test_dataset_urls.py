"""Issue 16: datasets and result tables at URLs (``pyarrow.fs``), with no network and no server.

Three filesystems stand in for an object store:
  - ``file://`` URLs: pyarrow's LocalFileSystem, as ``FileSystem.from_uri`` gives it;
  - ``simplecache::file://`` URLs (a scheme pyarrow does not know): fsspec's write-locally-then-upload
    cache over the local disk, wrapped as ``PyFileSystem(FSSpecHandler(...))``. To tracekit it is a remote
    filesystem (not pyarrow's LocalFileSystem): every task copies its input to local scratch and uploads
    what it wrote, the object-store path, yet worker processes share it;
  - ``memory://``: fsspec's in-process memory filesystem, nothing on disk at all (one process: jobs=1).
Each must give byte-for-byte the tables a plain local run gives (tests/test_cluster.py's planted ranks).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from tests.conftest import require_spark
from tests.test_cluster import _convert_and_report, _outcomes_ok, local_run, ranks  # noqa: F401  (fixtures)
from tests.test_cluster import _same_dataset as _same_files
from tests.test_cluster import _same_results as _same_tables
from tracekit import dataset, executors, report
from tracekit.errors import TraceError

fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed (it comes with torch: pip install 'tracekit[torch]')")

SC = "simplecache::file://"
US = 1000
#: queries/across_traces.sql's by_step on the planted ranks (worked out by hand in tests/test_cluster.py)
BY_STEP = [
    {"kind_index": 1, "traces": 3, "min_ns": 1700 * US, "median_ns": 1800 * US, "max_ns": 1800 * US},
    {"kind_index": 2, "traces": 3, "min_ns": 1100 * US, "median_ns": 1200 * US, "max_ns": 1400 * US},
]


def _same_dataset(a: Path, b: Path, source_files: list[str] | None = None) -> None:
    """Same event files and sidecar; with ``source_files``, b's sidecar names those URLs (its inputs)."""
    if source_files is None:
        return _same_files(a, b)
    sa, sb = dataset.read_sidecar(str(a)), dataset.read_sidecar(str(b))
    assert sb.column("source_file").to_pylist() == source_files  # not the task's scratch copy
    assert sa.drop_columns(["source_file"]).equals(sb.drop_columns(["source_file"]))
    for f in sorted(p.name for p in a.glob("*.parquet")):
        assert pq.read_table(a / f).equals(pq.read_table(b / f)), f


def _same_results(a: Path, b: Path, source_files: list[str] | None = None) -> None:
    """Same result tables; the ``traces`` table (the sidecar rows) may differ only in source_file, as above."""
    if source_files is None:
        return _same_tables(a, b)
    ta, tb = dataset.result_tables(str(a)), dataset.result_tables(str(b))
    assert list(ta) == list(tb) and len(ta) > 20
    for name in ta:
        assert [Path(f).name for f in ta[name]] == [Path(f).name for f in tb[name]]
        for i, (fa, fb) in enumerate(zip(ta[name], tb[name])):
            x, y = pq.read_table(fa), pq.read_table(fb)
            if name == "traces":
                assert y.column("source_file").to_pylist() == [source_files[i]]
                x, y = x.drop_columns(["source_file"]), y.drop_columns(["source_file"])
            assert x.equals(y), f"{name}: {fa} vs {fb}"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_resolve_schemes() -> None:
    fs, path = dataset.resolve("file:///tmp/a/b.parquet")
    assert isinstance(fs, pafs.LocalFileSystem) and path == "/tmp/a/b.parquet"
    fs, path = dataset.resolve(SC + "/tmp/a/b.parquet")
    assert isinstance(fs, pafs.PyFileSystem) and path == "/tmp/a/b.parquet"
    fs, path = dataset.resolve("memory://bucket/a.parquet")
    assert isinstance(fs, pafs.PyFileSystem) and path == "/bucket/a.parquet"
    assert not dataset.is_local(SC + "/tmp/a") and dataset.is_local("file:///tmp/a")
    with pytest.raises(TraceError, match=r"^nosuchscheme://x/y: cannot open: .*nosuchscheme"):
        dataset.resolve("nosuchscheme://x/y")


def test_cli_convert_report_aggregate_on_file_urls(ranks: list[Path], local_run: tuple[Path, Path], tmp_path: Path) -> None:
    ds, res = tmp_path / "ds", tmp_path / "res"
    p = _cli("convert", *(r.as_uri() for r in ranks), "-o", ds.as_uri() + "/", "--jobs", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "3 of 3 traces converted (0 skipped" in p.stderr
    p = _cli("report", ds.as_uri(), "--out", res.as_uri() + "/", "--jobs", "2", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    _same_dataset(local_run[0], ds)
    _same_results(local_run[1], res)
    p = _cli("aggregate", res.as_uri(), "--output", "by_step", "--format", "json", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    got = [{k: r[k] for k in BY_STEP[0]} for r in json.loads(p.stdout)]
    assert got == BY_STEP


def test_fsspec_filesystem_takes_the_object_store_path(ranks: list[Path], local_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Inputs, dataset and results all at simplecache::file:// URLs, two worker processes: copy in, upload out."""
    urls = [f"{SC}{r}" for r in ranks]
    ds, res = tmp_path / "ds", tmp_path / "res"
    ex = executors.make("local", jobs=2)
    conv = executors.convert_many(urls, f"{SC}{ds}", ex)
    _outcomes_ok(conv)
    assert [o.value["dst"] for o in conv] == [f"{SC}{ds}/rank{r}.parquet" for r in range(3)]
    _outcomes_ok(executors.report_many([f"{SC}{ds}"], f"{SC}{res}", ex))
    _same_dataset(local_run[0], ds, source_files=urls)
    _same_results(local_run[1], res, source_files=urls)
    again = executors.convert_many(urls, f"{SC}{ds}", ex)  # same bytes, read back through the URL: skipped
    assert [o.value["skipped"] for o in again] == [True, True, True]
    # no scratch file is left in the dataset (uploads go straight to their names)
    assert sorted(p.name for p in ds.rglob("*") if p.is_file()) == ["rank0.parquet", "rank1.parquet", "rank2.parquet", "traces.parquet"]


def test_memory_filesystem_end_to_end(ranks: list[Path], local_run: tuple[Path, Path]) -> None:
    """Nothing on disk: inputs uploaded to memory://, converted, reported and aggregated there (one process)."""
    mem = fsspec.filesystem("memory")
    root = "memory://tk-test"
    try:
        for r in ranks:
            mem.pipe(f"/tk-test/raw/{r.name}", r.read_bytes())
        ex = executors.make("local", jobs=1)
        _convert_and_report(ex, [f"{root}/raw/{r.name}" for r in ranks], f"{root}/ds", f"{root}/res")
        for r in range(3):
            got = pq.read_table(mem.open(f"/tk-test/ds/rank{r}.parquet"))
            assert got.equals(pq.read_table(local_run[0] / f"rank{r}.parquet"))
        side = dataset.read_sidecar(f"{root}/ds")
        assert side.column("source_file").to_pylist() == [f"{root}/raw/rank{r}.json" for r in range(3)]
        assert side.drop_columns(["source_file"]).equals(dataset.read_sidecar(str(local_run[0])).drop_columns(["source_file"]))
        tables = dataset.result_tables(f"{root}/res")
        assert list(tables) == list(dataset.result_tables(str(local_run[1])))
        assert tables["steps"] == [f"{root}/res/steps/rank{r}.parquet" for r in range(3)]
        con = dataset.connect_results(f"{root}/res")
        out = report.run_sql(con, report.parse_sql(report.QUERY_DIR / "across_traces.sql"), set())
        by_step = out["across_traces.by_step"]
        assert [{k: int(v) for k, v in r.items() if k in BY_STEP[0]} for r in by_step.to_dict("records")] == BY_STEP
    finally:
        mem.rm("/tk-test", recursive=True)


def test_spark_executor_on_fsspec_urls(ranks: list[Path], local_run: tuple[Path, Path], tmp_path: Path) -> None:
    require_spark()
    ex = executors.make("spark", spark_master="local[2]")
    spark = ex.session()
    try:
        ds, res = tmp_path / "ds", tmp_path / "res"
        _convert_and_report(ex, [f"{SC}{r}" for r in ranks], f"{SC}{ds}", f"{SC}{res}")
    finally:
        spark.stop()
    urls = [f"{SC}{r}" for r in ranks]
    _same_dataset(local_run[0], ds, source_files=urls)
    _same_results(local_run[1], res, source_files=urls)
