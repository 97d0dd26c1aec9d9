"""nsys SQLite ingest on a hand-built export (exact ground truth) and on bad input.

Why: the golden ``nsys stats`` outputs (tests/test_nsys_golden.py) cannot show phase / phase_path per
kernel or what happens when two processes reuse one correlationId; a file small enough to reason about
by hand can. These tests need nothing outside the repository.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tracekit.errors import TraceError
from tracekit.ingest import convert
from tracekit.ingest.nsys import convert_nsys

VM = 1 << 48


def gtid(pid: int, tid: int) -> int:
    return VM | (pid << 24) | tid


# ------------------------------------------------------------------------------------------------------------
# Hand-built export: exact expectations


def _tiny(path: Path, strings: dict[int, str] | None = None) -> Path:
    """A minimal nsys-like export: two processes (pid 100, 200) both using correlationId 7."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
            shortName INTEGER, gridX INTEGER, gridY INTEGER, gridZ INTEGER, blockX INTEGER, blockY INTEGER,
            blockZ INTEGER, registersPerThread INTEGER, staticSharedMemory INTEGER, dynamicSharedMemory INTEGER,
            futureColumn TEXT);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, text TEXT,
            globalTid INTEGER, textId INTEGER, domainId INTEGER);
        CREATE TABLE SOME_FUTURE_TABLE (x INTEGER);
    """)
    s = strings if strings is not None else {1: "cudaLaunchKernel_v7000", 2: "void kernA<int>(int *)", 3: "kernA",
                                              4: "void kernB(float)", 5: "kernB", 6: "registered range"}
    con.executemany("INSERT INTO StringIds VALUES (?, ?)", s.items())
    a, b = gtid(100, 100), gtid(200, 201)
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,0,?,?,1,0)", [
        (150, 160, a, 7), (600, 610, a, 8), (950, 960, a, 9), (50, 60, b, 7)])
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?,?,0,1,7,?,?,?,?,4,2,1,128,1,1,32,1024,512,'x')", [
        (170, 270, 7, VM | (100 << 24), 2, 3), (620, 700, 8, VM | (100 << 24), 4, 5),
        (970, 990, 9, VM | (100 << 24), 2, 3), (70, 95, 7, VM | (200 << 24), 4, 5)])
    con.executemany("INSERT INTO NVTX_EVENTS VALUES (?,?,?,?,?,?,?)", [
        (0, 1000, 59, "step", a, None, 0),
        (100, 400, 59, "fwd", a, None, 0),
        (500, 900, 59, None, a, 6, 1),  # registered string in domain 1
        (5, None, 75, "mydomain", a, None, 1),  # domain create
        (300, None, 34, "a mark", a, None, 0),
        (0, 2000, 59, "other thread", gtid(200, 202), None, 0),
    ])
    con.execute("INSERT INTO SOME_FUTURE_TABLE VALUES (1)")
    con.commit()
    con.close()
    return path


def test_tiny_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "tiny.parquet"
    meta = convert(_tiny(tmp_path / "tiny.sqlite"), out)
    rows = pq.read_table(out).to_pylist()
    assert meta["events"] == len(rows) == 4 + 4 + 6
    k = {(r["pid"], r["ts_ns"]): r for r in rows if r["kind"] == "kernel"}
    expect = {  # (pid, start): (name, phase, phase_path, correlation, launch_ts)
        (100, 170): ("void kernA<int>(int *)", "fwd", "step/fwd", (100 << 32) | 7, 150),
        (100, 620): ("void kernB(float)", "registered range", "step/registered range", (100 << 32) | 8, 600),
        (100, 970): ("void kernA<int>(int *)", "step", "step", (100 << 32) | 9, 950),
        # thread 201 has no range of its own: it borrows the range open on its process's main thread (202, the
        # only one with ranges) at its launch (t=50): "other thread" (issue 24 item 1: rule main_thread)
        (200, 70): ("void kernB(float)", "other thread", "other thread", (200 << 32) | 7, 50),
    }
    for key, (name, phase, path, corr, lts) in expect.items():
        r = k[key]
        assert (r["name"], r["phase"], r["phase_path"], r["correlation"]) == (name, phase, path, corr), key
        assert r["phase_rule"] == ("main_thread" if key[0] == 200 else "thread"), key
        assert (r["launch_name"], r["launch_ts_ns"], r["launch_dur_ns"]) == ("cudaLaunchKernel", lts, 10), key
        assert r["launch_tid"] == (100 if key[0] == 100 else 201)
        assert (r["grid_x"], r["grid_y"], r["grid_z"], r["block_x"], r["registers"]) == (4, 2, 1, 128, 32)
        assert r["shared_mem_bytes"] == 1024 + 512 and r["device"] == 0 and r["stream"] == 7
        assert (r["cat"], r["ph"], r["source"]) == ("CUPTI_ACTIVITY_KIND_KERNEL", "X", "nsys")
        args = json.loads(r["args"])
        assert args["shortName"] in ("kernA", "kernB") and args["futureColumn"] == "x"
    rt = [r for r in rows if r["kind"] == "runtime"]
    assert {r["name"] for r in rt} == {"cudaLaunchKernel"}
    assert {json.loads(r["args"])["api_name"] for r in rt} == {"cudaLaunchKernel_v7000"}
    assert sorted((r["pid"], r["tid"], r["correlation"]) for r in rt) == sorted(
        [(100, 100, (100 << 32) | 7), (100, 100, (100 << 32) | 8), (100, 100, (100 << 32) | 9), (200, 201, (200 << 32) | 7)])
    ranges = {r["name"]: r for r in rows if r["kind"] == "range"}
    assert json.loads(ranges["registered range"]["args"])["domain"] == "mydomain"
    assert json.loads(ranges["step"]["args"])["style"] == "PushPop"
    assert ranges["fwd"]["phase_path"] == "step/fwd" and ranges["fwd"]["dur_ns"] == 300
    mark = [r for r in rows if r["kind"] == "instant"]
    assert [(m["name"], m["ph"], m["dur_ns"], m["phase"]) for m in mark] == [("a mark", "i", 0, "fwd")]
    assert [r["name"] for r in rows if r["kind"] == "meta"] == ["mydomain"]
    assert meta["devices"] == [] and "export has no GPU device table (TARGET_INFO_GPU): GPU names, SM counts and peak FLOP/s are unknown" in meta["notes"]
    assert meta["table_rows"]["CUPTI_ACTIVITY_KIND_KERNEL"] == 4


def test_missing_stringids_row(tmp_path: Path) -> None:
    db = _tiny(tmp_path / "t.sqlite", strings={1: "cudaLaunchKernel", 3: "kernA", 5: "kernB", 6: "x"})
    out = tmp_path / "t.parquet"
    with pytest.raises(TraceError, match=r"StringIds has no row for id \d+"):
        convert_nsys(db, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.sqlite"]


@pytest.mark.parametrize("case", ["text", "not_nsys", "truncated", "corrupt", "empty"])
def test_bad_input(tmp_path: Path, case: str) -> None:
    src = tmp_path / "in.sqlite"
    if case == "text":
        src.write_text("hello, not a database\n" * 10)
    elif case == "empty":
        src.write_bytes(b"")
    elif case == "not_nsys":
        con = sqlite3.connect(src)
        con.execute("CREATE TABLE users (id INTEGER, name TEXT)")
        con.commit()
        con.close()
    else:
        _tiny(src)
        con = sqlite3.connect(src)  # grow it so that there is something to cut
        con.execute("CREATE TABLE pad (x BLOB)")
        con.executemany("INSERT INTO pad VALUES (randomblob(3000))", [()] * 50)
        con.commit()
        con.close()
        data = bytearray(src.read_bytes())
        if case == "truncated":
            src.write_bytes(bytes(data[: len(data) // 2]))
        else:
            page = int.from_bytes(data[16:18], "big")
            data[page:] = b"\xa5" * (len(data) - page)  # every page after sqlite_master is garbage
            src.write_bytes(bytes(data))
    out = tmp_path / "out.parquet"
    for fn in (convert, convert_nsys):
        with pytest.raises(TraceError) as ei:
            fn(src, out)
        msg = str(ei.value)
        assert "\n" not in msg and msg.startswith(str(src))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.sqlite"]


def test_report_without_nsys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rep = tmp_path / "cap.nsys-rep"
    rep.write_bytes(b"not really a report")
    monkeypatch.setenv("PATH", str(tmp_path))  # no nsys on PATH
    with pytest.raises(TraceError, match=r"nsys export --type sqlite"):
        convert(rep, tmp_path / "o.parquet")
    assert not (tmp_path / "o.parquet").exists()


def test_report_exported_by_nsys_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`.nsys-rep`: the `nsys` on PATH is asked for `export --type sqlite -o OUT REP` and OUT is converted."""
    db = _tiny(tmp_path / "exported.sqlite")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "nsys"
    fake.write_text("#!/bin/sh\n"
                    "[ \"$1 $2 $3\" = \"export --type sqlite\" ] || exit 3\n"
                    "while [ $# -gt 1 ]; do [ \"$1\" = -o ] && out=$2; shift; done\n"
                    f"cp {db} \"$out\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:/usr/bin:/bin")
    rep = tmp_path / "cap.nsys-rep"
    rep.write_bytes(b"report")
    ticks: list[int] = []
    meta = convert(rep, tmp_path / "o.parquet", progress=ticks.append)
    assert meta["events"] == 14 and meta["source_file"] == str(rep) and meta["trace"] == "cap"
    assert sum(ticks) == rep.stat().st_size  # progress in bytes of the input, like the Kineto reader
