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
