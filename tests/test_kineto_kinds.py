"""The Kineto kind rules are one table (tracekit/ingest/kineto_kinds.py), and both readers follow it.

The msgspec path turns the table into a DuckDB CASE (kineto._kind_case); the C scanner's path reads ph/cat/name
in C and maps them with pyarrow (kscan.kind_of). Each entry of the table is run through both, from a real
event, so an entry added to the table and not to a reader (or a reader that grew its own rule) fails here.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from tracekit.ingest import kineto, kscan
from tracekit.ingest.kineto_kinds import CAT_KIND, PH_KIND, STEP_CATS

#: (ph, cat, name) -> kind, written out by hand from the rules (not from the table), one row per rule.
HAND = [
    ("X", "kernel", "sm90_gemm", "kernel"),
    ("X", "Kernel", "old torch kernel", "kernel"),
    ("X", "cuda_runtime", "cudaLaunchKernel", "runtime"),
    ("X", "gpu_memcpy", "Memcpy HtoD", "memcpy"),
    ("X", "user_annotation", "decode", "range"),
    ("X", "cpu_op", "aten::mm", "cpu_op"),
    ("X", "cpu_op", "ProfilerStep#4", "range"),   # the step marker, written as an op
    ("X", "Operator", "ProfilerStep#0", "range"),
    ("X", "user_annotation", "ProfilerStep#4", "range"),
    ("X", "kernel", "ProfilerStep#4", "kernel"),  # only op categories turn a step name into a range
    ("M", "kernel", "process_name", "meta"),      # ph decides before cat
    ("C", None, "Memory", "counter"),
    ("s", "ac2g", "ac2g", "flow"),
    ("i", "cpu_instant_event", "[memory]", "instant"),
    ("X", "some_new_cat", "x", "other"),
    ("X", None, "x", "other"),
]


def _duckdb_kind(ph: str | None, cat: str | None, name: str | None) -> str:
    """The msgspec path's rule: kineto._kind_case evaluated by DuckDB on one row."""
    con = duckdb.connect()
    row = con.execute(f"SELECT {kineto._kind_case()} FROM (SELECT ?::VARCHAR AS ph, ?::VARCHAR AS cat, "
                      "?::VARCHAR AS name)", [ph, cat, name]).fetchone()
    assert row is not None
    return str(row[0])


def _c_kind(ph: str, cat: str | None, name: str) -> str | None:
    """The C scanner's path: one real event scanned by _kscan, its kind column."""
    ev: dict[str, object] = {"ph": ph, "name": name, "pid": 1, "tid": 2, "ts": 10.0, "dur": 1.0}
    if cat is not None:
        ev["cat"] = cat
    cols = kscan.scan_block(json.dumps(ev).encode())
    assert cols is not None, f"the C scanner gave up on {ev}"
    return cols["kind"][0].as_py()  # type: ignore[no-any-return]


@pytest.mark.parametrize("ph,cat,name,want", HAND, ids=[f"{p}-{c}-{n}" for p, c, n, _ in HAND])
def test_rules_by_hand_on_the_sql_path(ph: str, cat: str | None, name: str, want: str) -> None:
    assert _duckdb_kind(ph, cat, name) == want


@pytest.mark.skipif(not kscan.AVAILABLE, reason="tracekit.ingest._kscan is not built")
@pytest.mark.parametrize("ph,cat,name,want", HAND, ids=[f"{p}-{c}-{n}" for p, c, n, _ in HAND])
def test_rules_by_hand_on_the_c_path(ph: str, cat: str | None, name: str, want: str) -> None:
    assert _c_kind(ph, cat, name) == want


@pytest.mark.skipif(not kscan.AVAILABLE, reason="tracekit.ingest._kscan is not built")
def test_every_table_entry_on_both_paths() -> None:
    """Each cat and each ph of the table gives its kind on the SQL path and on the C scanner's."""
    cases = [("X", cat, "op", kind) for cat, kind in CAT_KIND.items()]
    cases += [(ph, "kernel", "op", kind) for ph, kind in PH_KIND.items()]
    cases += [("X", cat, "ProfilerStep#1", "range") for cat in STEP_CATS]
    got = [(ph, cat, name, want, _duckdb_kind(ph, cat, name), _c_kind(ph, cat, name)) for ph, cat, name, want in cases]
    wrong = [g for g in got if g[4] != g[3] or g[5] != g[3]]
    assert not wrong, "(ph, cat, name, table's kind, SQL path's, C path's) that disagree:\n" + "\n".join(map(str, wrong))
