"""The sink's spill is read back from a memory map whose pages are handed back once their rows are written
(tracekit.ingest.sink._PageDropper): what is dropped, and when."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

from tracekit.ingest.sink import _PageDropper


def test_pages_before_the_first_unwritten_batch_are_dropped(tmp_path: Path) -> None:
    spill = tmp_path / "spill.arrow"
    schema = pa.schema([("x", pa.int64())])
    with ipc.new_file(str(spill), schema) as w:
        for i in range(3):  # 5,000 rows = 40,000 bytes a batch: each starts on a later page than the one before
            w.write_batch(pa.record_batch([pa.array(range(i * 5000, (i + 1) * 5000))], schema=schema))
    calls: list[tuple[int, int]] = []
    d = _PageDropper()
    d._madvise = lambda addr, length, advice: calls.append((addr, length, advice))  # type: ignore[assignment]
    with pa.memory_map(str(spill)) as src:
        d.bounds(src)
        r = ipc.open_file(src)
        batches = [r.get_batch(i) for i in range(3)]
        for i, b in enumerate(batches):
            d.read(b, (i + 1) * 5000)
        page = [b.column(0).buffers()[1].address & ~4095 for b in batches]
        d.written(4000)  # inside the first batch: nothing is free yet
        assert calls == []
        d.written(6000)  # 10,000 rows: the first two batches are written, the third is still needed
        assert calls == [(page[0], page[2] - page[0], 4)]
        d.written(5000)  # all written: nothing left to drop (the map is closed next)
        assert len(calls) == 1


def test_mapped_batches_after_rows_written_from_elsewhere(tmp_path: Path) -> None:
    """StreamSink writes rows that never were in the map before the held (mapped) batches: the dropper counts
    output rows, so a mapped batch is free only once the output is past its own last row."""
    spill = tmp_path / "spill.arrow"
    schema = pa.schema([("x", pa.int64())])
    with ipc.new_file(str(spill), schema) as w:
        for i in range(2):
            w.write_batch(pa.record_batch([pa.array(range(i * 5000, (i + 1) * 5000))], schema=schema))
    calls: list[tuple[int, int, int]] = []
    d = _PageDropper()
    d._madvise = lambda addr, length, advice: calls.append((addr, length, advice))  # type: ignore[assignment]
    d.written(70000)  # rows written before the map is read (the runtime and GPU tables)
    with pa.memory_map(str(spill)) as src:
        d.bounds(src)
        r = ipc.open_file(src)
        batches = [r.get_batch(i) for i in range(2)]
        d.read(batches[0], 75000)
        d.read(batches[1], 80000)
        page = [b.column(0).buffers()[1].address & ~4095 for b in batches]
        d.written(4000)  # 74,000: still inside the first mapped batch
        assert calls == []
        d.written(1000)  # 75,000: the first mapped batch is written
        assert calls == [(page[0], page[1] - page[0], 4)]


def test_without_madvise_nothing_happens() -> None:
    d = _PageDropper()
    d._madvise = None
    d.read(pa.record_batch({"x": pa.array([1, 2, 3])}), 3)
    d.written(3)


def test_a_batch_outside_the_map_turns_dropping_off(tmp_path: Path) -> None:
    """A batch decoded into fresh memory (a compressed spill, say) must never be madvised: on heap pages
    MADV_DONTNEED would zero live data."""
    spill = tmp_path / "spill.arrow"
    schema = pa.schema([("x", pa.int64())])
    with ipc.new_file(str(spill), schema) as w:
        w.write_batch(pa.record_batch([pa.array(range(5000))], schema=schema))
    calls: list[tuple[int, int, int]] = []
    d = _PageDropper()
    d._madvise = lambda addr, length, advice: calls.append((addr, length, advice))  # type: ignore[assignment]
    with pa.memory_map(str(spill)) as src:
        d.bounds(src)
        d.read(ipc.open_file(src).get_batch(0), 5000)
        d.read(pa.record_batch([pa.array(range(5000))], schema=schema), 10000)  # heap memory, not the map
        d.read(pa.record_batch([pa.array(range(5000))], schema=schema), 15000)
        d.written(10000)
    assert calls == []
