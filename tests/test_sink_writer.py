"""TraceSink writes row groups on a writer thread: a failure there or on the reading side leaves no output.

Why: ``finish`` reads the spill back and adds the link columns on the calling thread while a second thread
encodes the previous row group; an error on either side must still end in an exception, no Parquet file
and no temporary files, as the single-threaded writer did.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tracekit.errors import TraceError
from tracekit.ingest import convert, sink


def _trace(path: Path, n: int) -> Path:
    ev = [{"ph": "X", "cat": "cpu_op", "name": f"op{i % 7}", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 5,
           "args": {"External id": i}} for i in range(n)]
    path.write_text(json.dumps({"traceEvents": ev}))
    return path


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.suffix != ".json")


@pytest.mark.parametrize("fail_on", [1, 2])
def test_writer_thread_error_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_on: int) -> None:
    monkeypatch.setattr(sink, "ROW_GROUP", 1000)
    src = _trace(tmp_path / "t.json", 5000)
    calls = []
    real = pq.ParquetWriter.write_table

    def flaky(self, table, row_group_size=None):  # noqa: ANN001
        calls.append(1)
        if len(calls) == fail_on:
            raise OSError("disk full (simulated)")
        return real(self, table, row_group_size=row_group_size)

    monkeypatch.setattr(pq.ParquetWriter, "write_table", flaky)
    with pytest.raises(TraceError, match=r"out\.parquet: cannot write: disk full \(simulated\)"):
        convert(src, tmp_path / "out.parquet")  # a bare OSError (pyarrow's) is named after the output
    assert _leftovers(tmp_path) == []


def test_reader_side_error_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tracekit.ingest import kineto

    monkeypatch.setattr(sink, "ROW_GROUP", 1000)
    monkeypatch.setattr(kineto, "BLOCK", 20_000)  # many spilled batches
    src = _trace(tmp_path / "t.json", 5000)
    from tracekit.ingest import link

    real = link.LinkOutput.columns
    calls = []

    def flaky(self, *a):  # noqa: ANN001, ANN002
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("boom")
        return real(self, *a)

    monkeypatch.setattr(link.LinkOutput, "columns", flaky)
    with pytest.raises(RuntimeError, match="boom"):
        convert(src, tmp_path / "out.parquet")
    assert len(calls) == 3
    assert _leftovers(tmp_path) == []


def test_many_row_groups_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sink, "ROW_GROUP", 700)
    src = _trace(tmp_path / "t.json", 5000)
    out = tmp_path / "out.parquet"
    convert(src, out)
    f = pq.ParquetFile(out)
    assert f.metadata.num_row_groups > 5
    t = f.read()
    assert t.column("seq").to_pylist() == list(range(5000))
    assert t.column("ts_ns").to_pylist() == [10_000 * i for i in range(5000)]
    assert _leftovers(tmp_path) == ["out.parquet"]


@pytest.mark.parametrize("ranges", [20, 2000])
def test_link_columns_with_few_or_many_distinct_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       ranges: int) -> None:
    """The link columns reach the writer as dictionaries, and the writer puts a dictionary's every entry into each
    row group: a trace with thousands of distinct range paths must not get its whole path list in every row
    group (sink._compact_dicts). Values are the same either way: op i runs inside range i (each
    range 10 us, one op at its start), whose name is unique with 2,000 "ranges" and one of 20 otherwise."""
    monkeypatch.setattr(sink, "ROW_GROUP", 1000)
    n = 6000
    ev = [{"ph": "X", "cat": "user_annotation", "name": f"r{i % ranges}-{i}" if ranges > 20 else f"r{i % ranges}",
           "pid": 1, "tid": 1, "ts": 10 * i, "dur": 9} for i in range(n)]
    ev += [{"ph": "X", "cat": "cpu_op", "name": "op", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 1} for i in range(n)]
    src = tmp_path / "t.json"
    src.write_text(json.dumps({"traceEvents": ev}))
    convert(src, tmp_path / "out.parquet")
    t = pq.read_table(tmp_path / "out.parquet", columns=["kind", "name", "phase_path", "phase"])
    rows = t.to_pylist()
    want = {r["name"] for r in rows if r["kind"] == "range"}
    got = [r["phase_path"] for r in rows if r["kind"] == "cpu_op"]
    assert len(got) == n and set(got) == want  # every op in its own range's path
    assert all(r["phase"] == r["phase_path"] for r in rows)
    md = pq.ParquetFile(tmp_path / "out.parquet").metadata
    col = md.schema.names.index("phase_path")
    dict_bytes = [md.row_group(i).column(col).total_compressed_size for i in range(md.num_row_groups)]
    # 12 row groups of 1,000 rows: with 6,000 distinct paths in every group's dictionary page each column chunk
    # would hold ~60 KB; built from the group's own rows it holds at most its 1,000 paths (~10 KB before LZ4)
    assert max(dict_bytes) < 20_000, dict_bytes
