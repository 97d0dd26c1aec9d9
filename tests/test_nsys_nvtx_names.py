"""PyTorch emit_nvtx range names in nsys exports: per-call suffixes removed so that phases aggregate.

torch.autograd.profiler.emit_nvtx names each op range ``NAME[, seq = N][, op_id = N][, sizes = [...]]
[, input_op_ids = [...]]`` (torch/csrc/profiler/util.cpp, getNvtxStr). op_id is new on every call, so
before the fix each call was its own phase: 16,727 phase_time rows for the 2xH100 nsys-ai export.
The expected counts here come from the raw SQLite, with a per-thread stack sweep written in this file.
"""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from tracekit import report, store
from tracekit.ingest import convert
from tests.conftest import NSYS_DIR

NSYS_AI = NSYS_DIR / "sqlite" / "nsys-ai"


def _base(text: str | None) -> str | None:
    """Cut at the first emit_nvtx field marker (a different statement of the rule than the converter's regex)."""
    if text is None:
        return None
    cut = [m.start() for m in re.finditer(r", (seq|op_id) = \d+|, sizes = \[|, input_op_ids = \[", text)]
    return text[: cut[0]] if cut else text


def _raw_paths(sq: Path) -> tuple[set[str], int]:
    """Distinct range paths of push/pop + start/end ranges (innermost-open nesting per thread), and range count."""
    con = sqlite3.connect(f"file:{sq}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT globalTid, start, coalesce(\"end\", start), coalesce((SELECT value FROM StringIds WHERE id = textId), text) "
        "FROM NVTX_EVENTS WHERE eventType IN (59, 60, 70, 71) ORDER BY globalTid, start, coalesce(\"end\", start) DESC"
    ).fetchall()
    con.close()
    paths: set[str] = set()
    stack: list[tuple[int, str]] = []  # (end, path)
    thread = None
    for gtid, start, end, text in rows:
        if gtid != thread:
            thread, stack = gtid, []
        while stack and stack[-1][0] <= start:
            stack.pop()
        name = _base(text) or ""
        path = f"{stack[-1][1]}/{name}" if stack else name
        paths.add(path)
        stack.append((end, path))
    return paths, len(rows)


@pytest.mark.skipif(not NSYS_AI.is_dir(), reason=f"nsys-ai exports not found at {NSYS_AI} (../shared absent)")
def test_emit_nvtx_phases_aggregate(tmp_path: Path) -> None:
    sq = NSYS_AI / "h100_2gpu_1s.sqlite"
    pq = tmp_path / "h.parquet"
    convert(sq, pq)
    paths, n_ranges = _raw_paths(sq)
    r = report.run(pq, analyses=["phase_time"])
    pt = r["phase_time"]
    # phase_time rows: every range path, plus '(none)' for GPU ops without a launch (trimmed window)
    assert set(pt["phase_path"]) == paths | {"(none)"}
    assert len(pt) == len(paths) + 1 == 512
    con = store.connect(pq)
    got = con.execute("SELECT count(*), count(*) FILTER (WHERE json_extract_string(args, '$.raw_name') IS NOT NULL), "
                      "count(DISTINCT name) FROM ranges").fetchone()
    con.close()
    raw = sqlite3.connect(f"file:{sq}?mode=ro", uri=True).execute(
        "SELECT count(*) FILTER (WHERE text LIKE '%, op_id = %' OR text LIKE '%, seq = %'), "
        "count(DISTINCT text) FROM NVTX_EVENTS WHERE eventType = 59").fetchone()
    assert got[0] == n_ranges and got[1] == raw[0] > 16000  # every suffixed name keeps its raw text in args
    assert got[2] < raw[1]


def _nvtx_db(path: Path) -> Path:
    """One thread: step [0,100) > 'aten::mm, seq = 4, op_id = 11, sizes = [[2, 3], [3, 4]], input_op_ids = [(9,0)]'
    [10,20) and 'aten::mm, op_id = 12' [30,40) > launch at 32 -> kernel; a mark 'm, op_id = 1' keeps its text."""
    gtid, gpid = (1 << 48) | (100 << 24) | 1, (1 << 48) | (100 << 24)
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, text TEXT,
            globalTid INTEGER, textId INTEGER, domainId INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
            shortName INTEGER);
        INSERT INTO StringIds VALUES (1, 'cudaLaunchKernel_v7000'), (2, 'gemm');
    """)
    con.executemany("INSERT INTO NVTX_EVENTS VALUES (?,?,?,?,?,NULL,0)", [
        (0, 100, 59, "step", gtid),
        (10, 20, 59, "aten::mm, seq = 4, op_id = 11, sizes = [[2, 3], [3, 4]], input_op_ids = [(9,0)]", gtid),
        (30, 40, 59, "aten::mm, op_id = 12", gtid),
        (50, None, 34, "m, op_id = 1", gtid)])
    con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (32, 34, 0, ?, 5, 1, 0)", (gtid,))
    con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (60, 70, 0, 1, 7, 5, ?, 2, 2)", (gpid,))
    con.commit()
    con.close()
    return path


def test_emit_nvtx_suffixes_constructed(tmp_path: Path) -> None:
    pq = tmp_path / "n.parquet"
    convert(_nvtx_db(tmp_path / "n.sqlite"), pq)
    con = store.connect(pq)
    rows = con.execute("SELECT kind, name, phase_path, args FROM events WHERE kind IN ('range', 'instant', 'kernel') "
                       "ORDER BY ts_ns").fetchall()
    con.close()
    got = [(k, n, p, json.loads(a).get("raw_name")) for k, n, p, a in rows]
    assert got == [
        ("range", "step", "step", None),
        ("range", "aten::mm", "step/aten::mm",
         "aten::mm, seq = 4, op_id = 11, sizes = [[2, 3], [3, 4]], input_op_ids = [(9,0)]"),
        ("range", "aten::mm", "step/aten::mm", "aten::mm, op_id = 12"),
        ("instant", "m, op_id = 1", "step", None),  # a mark inside step: its phase, its own text kept
        ("kernel", "gemm", "step/aten::mm", None),
    ]
    pt = report.run(pq, analyses=["phase_time"])["phase_time"]
    mm = pt[pt["phase_path"] == "step/aten::mm"].iloc[0]
    assert (mm["range_instances"], mm["cpu_ns"], mm["gpu_op_ns"]) == (2, 20, 10)
