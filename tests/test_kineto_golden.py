"""Every real Kineto trace converts to exactly the rows it converted to when the digests were recorded.

Why: the other Kineto tests check counts, sums and link rules against the raw JSON; this one pins every
value of every column (phase, phase_path and the launch_* columns included), so a speed change in the
reader, the sink or the linker that alters any output value fails here. The digests are per column, over
the rows in ``seq`` order, and independent of Parquet encoding (row groups, codecs, dictionaries).

An intended output change: rerun with ``TRACEKIT_REGEN_GOLDEN=1`` and commit ``golden/kineto_digests.json``
with the change that explains it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import KINETO_BASE, SHARED_PRESENT, kineto_files, needs_real
from tracekit.ingest import convert

pytestmark = needs_real  # the full ../shared set, else the traces shipped in tests/data/real
FILES = kineto_files()
GOLDEN = Path(__file__).parent / "golden" / "kineto_digests.json"


def column_digest(col: pa.ChunkedArray) -> str:
    """sha256 of a column's values and NULLs, from its Arrow buffers (no Python objects per value)."""
    a = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if pa.types.is_dictionary(a.type):
        a = a.cast(a.type.value_type)
    h = hashlib.sha256(str(a.type).encode())
    valid = np.asarray(a.is_valid())
    h.update(np.packbits(valid).tobytes())
    if pa.types.is_string(a.type) or pa.types.is_large_string(a.type):
        offs = np.frombuffer(a.buffers()[1], np.int32 if pa.types.is_string(a.type) else np.int64)[a.offset : a.offset + len(a) + 1]
        data = a.buffers()[2]
        h.update(np.diff(offs).astype(np.int64).tobytes())
        h.update(memoryview(data)[int(offs[0]) : int(offs[-1])] if data is not None else b"")
    else:
        vals = np.asarray(a.fill_null(0))
        h.update(vals.tobytes())
    return h.hexdigest()[:24]


def digests(path: Path) -> dict[str, object]:
    t = pq.read_table(path)
    t = t.take(np.argsort(np.asarray(t.column("seq")), kind="stable"))
    return {"rows": t.num_rows, **{name: column_digest(t.column(name)) for name in t.column_names}}


@pytest.mark.skipif(not FILES, reason="no real Kineto traces")
def test_real_traces_match_recorded_digests(tmp_path: Path) -> None:
    want = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    got = {}
    for f in FILES:
        dst = tmp_path / "out.parquet"
        convert(f, dst)
        got[str(f.relative_to(KINETO_BASE))] = digests(dst)
    if os.environ.get("TRACEKIT_REGEN_GOLDEN") and SHARED_PRESENT:  # never from the shipped subset
        GOLDEN.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        pytest.skip("digests rewritten")
    if not SHARED_PRESENT:  # the shipped subset: each of its traces has its digests recorded from the full set
        assert set(got) <= set(want), "a shipped trace has no recorded digests"
        want = {k: want[k] for k in got}
    assert set(got) == set(want), "traces added or removed: regenerate the digests (see the module docstring)"
    for name in sorted(got):
        diff = [c for c in got[name] if got[name][c] != want[name].get(c)]
        assert not diff, f"{name}: columns differ from the recorded output: {diff}"
