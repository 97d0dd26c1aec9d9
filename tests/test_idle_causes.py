"""gpu_idle causes by their ordering rules (queries/gpu_idle.sql header), on a constructed trace.

Kineto form, times in us (ns = us * 1000), host_busy_min_ns T = 50 us. Thread 1 (pid 100) launches
everything. Device 0 streams 7 and 8, device 1 stream 9. G = gap start, E = gap end, L0/L1 = launch
call start/end of the op that ends the gap, P0 = launch of the previous op of its stream, S = sync.

  kA  s7  launch 10+5 (corr 1)     runs 20..100
  kD  d1 s9 launch 16+2 (corr 2)   runs 30..1000 (device 1)
  cudaEventRecord 40+2 (corr 3)                      the event kB's stream waits on (recorded on stream 9)
  cudaStreamWaitEvent 110+2 (corr 4) + cuda_sync 'Stream Wait Event' stream 7, wait_on_stream 9, record corr 3
  kB  s7  launch 120+5 (corr 5)    runs 1000..1100
  cudaStreamSynchronize 365+736 (corr 6)  S = 365..1101: began 245 us AFTER kB's launch (the issue's case)
  kC  s8  launch 1110+5 (corr 7)   runs 1120..1200
  hipStreamWaitEvent 1130+2 (corr 8), no GPU-side record (as in HIP traces)
  kE  s8  launch 1140+5 (corr 9)   runs 2000..2100
  kF  s8  launch 2110+5 (corr 10)  runs 2500..2600
  kG  s7  launch 2800+5 (corr 11)  runs 2810..2900
  cudaStreamSynchronize 2990+10 (corr 12)
  kH  s7  launch 3010+5 (corr 13)  runs 3020..3100
  kI  s7  launch 3105+5 (corr 14)  runs 3115..3200
  kJ  s7  corr 99, no launch call  runs 3300..3400

Device 0 gaps, by hand (Q = queued: L1 <= G, or D = E - max(G, L1) > T and D > H = max(G, L1) - G):
  100..1000  (900)  next kB: L1 125 > G, D 875 > 50 and > H 25 -> Q; recorded wait on s7 at W0 110,
             P0 10 < 110 < L0 120 -> gpu_wait, record cudaEventRecord @40 on stream 9.
             (old rule: the sync 365..1101 "overlapped the gap and the launch was within T of its end"
             because launch - sync_end was negative -> sync_blocked)
  1100..1120 (20)   next kC: L1 1115, D 5 -> not Q; S 365..1101: S0 <= G+T, S0 < L0 1110, S1 1101 > G,
             L0 - S1 = 9 <= 50 -> sync_blocked
  1200..2000 (800)  next kE: L1 1145 <= G -> Q; no recorded wait on s8; thread-order wait at 1130,
             P0 1110 < 1130 < L0 1140 -> gpu_wait (thread_order, stream unknown)
  2100..2500 (400)  next kF: L1 2115, D 385 > 50 and > H 15 -> Q; the wait at 1130 is older than
             P0 1140 -> no wait -> queued_dependency (old rule: launch_bound)
  2600..2810 (210)  next kG: D 5, not Q; last sync before L0 2800 ended 1101 <= G; L0 - G 200 > 50 -> host_busy
  2900..3020 (120)  next kH: D 5; S 2990..3000 began 90 us after G (> T) -> not sync_blocked;
             L0 - G 110 > 50 -> host_busy (old rule: sync_blocked)
  3100..3115 (15)   next kI: D 5; S1 3000 <= G; L0 - G 5 -> launch_bound
  3200..3300 (100)  next kJ: no launch -> no_launch_record
Window: 10 (first launch) .. 3400 (kJ end). Edges: device 0 10..20; device 1 10..30 and 1000..3400.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tracekit import report
from tracekit.ingest import convert

US = 1000


def _x(cat: str, name: str, ts: int, dur: int, pid: int = 100, tid: int = 1, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _rt(name: str, ts: int, dur: int, corr: int) -> dict[str, Any]:
    return _x("cuda_runtime", name, ts, dur, correlation=corr)


def _k(name: str, ts: int, dur: int, corr: int, stream: int, device: int = 0) -> dict[str, Any]:
    return _x("kernel", name, ts, dur, pid=device, tid=stream, device=device, stream=stream, correlation=corr)


EVENTS = [
    _rt("cudaLaunchKernel", 10, 5, 1), _k("kA", 20, 80, 1, 7),
    _rt("cudaLaunchKernel", 16, 2, 2), _k("kD", 30, 970, 2, 9, device=1),
    _rt("cudaEventRecord", 40, 2, 3),
    _rt("cudaStreamWaitEvent", 110, 2, 4),
    _x("cuda_sync", "Stream Wait Event", 111, 1, pid=0, tid=7, stream=7, device=0, correlation=4,
       cuda_sync_kind="Stream Wait Event", wait_on_stream=9, wait_on_cuda_event_record_corr_id=3, wait_on_cuda_event_id=5),
    _rt("cudaLaunchKernel", 120, 5, 5), _k("kB", 1000, 100, 5, 7),
    _rt("cudaStreamSynchronize", 365, 736, 6),
    _rt("cudaLaunchKernel", 1110, 5, 7), _k("kC", 1120, 80, 7, 8),
    _rt("hipStreamWaitEvent", 1130, 2, 8),
    _rt("cudaLaunchKernel", 1140, 5, 9), _k("kE", 2000, 100, 9, 8),
    _rt("cudaLaunchKernel", 2110, 5, 10), _k("kF", 2500, 100, 10, 8),
    _rt("cudaLaunchKernel", 2800, 5, 11), _k("kG", 2810, 90, 11, 7),
    _rt("cudaStreamSynchronize", 2990, 10, 12),
    _rt("cudaLaunchKernel", 3010, 5, 13), _k("kH", 3020, 80, 13, 7),
    _rt("cudaLaunchKernel", 3105, 5, 14), _k("kI", 3115, 85, 14, 7),
    _k("kJ", 3300, 100, 99, 7),
]


@pytest.fixture(scope="module")
def res(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    d = tmp_path_factory.mktemp("idle")
    (d / "t.json").write_text(json.dumps({"schemaVersion": 1, "traceEvents": EVENTS}))
    convert(d / "t.json", d / "t.parquet")
    return report.run(d / "t.parquet", analyses=["gpu_idle"], idle_top_n=100)


def test_each_gap_gets_the_cause_of_its_ordering(res: dict[str, pd.DataFrame]) -> None:
    iv = res["gpu_idle.intervals"]
    got = [(r.gap_start_ns // US, r.gap_ns // US, r.cause) for r in iv[iv.device == 0].sort_values("gap_start_ns").itertuples()]
    assert got == [(100, 900, "gpu_wait"), (1100, 20, "sync_blocked"), (1200, 800, "gpu_wait"),
                   (2100, 400, "queued_dependency"), (2600, 210, "host_busy"), (2900, 120, "host_busy"),
                   (3100, 15, "launch_bound"), (3200, 100, "no_launch_record")]
    assert (iv.device == 1).sum() == 0  # device 1 has one op: edges only


def test_gap_evidence_names_the_wait_and_the_record(res: dict[str, pd.DataFrame]) -> None:
    iv = res["gpu_idle.intervals"].set_index("gap_start_ns")
    a = iv.loc[100 * US]  # recorded cross-stream wait, launched before the sync began
    assert (a.next_op, a.next_stream, a.next_launch_ts_ns, a.next_launch_end_ns) == ("kB", 7, 120 * US, 125 * US)
    assert (a.wait_call, a.wait_ts_ns, a.wait_stream, a.wait_evidence) == ("cudaStreamWaitEvent", 110 * US, 7, "gpu_sync_record")
    assert (a.event_record_call, a.event_record_ts_ns, a.event_record_stream) == ("cudaEventRecord", 40 * US, 9)
    assert pd.isna(a.note) and pd.isna(a.sync_call)
    b = iv.loc[1200 * US]  # wait with no GPU-side record: stream and event unknown, and the note says why
    assert (b.wait_call, b.wait_ts_ns, b.wait_evidence) == ("hipStreamWaitEvent", 1130 * US, "thread_order")
    assert pd.isna(b.wait_stream) and pd.isna(b.event_record_call) and pd.isna(b.event_record_stream)
    assert "enable_cuda_sync_events=True" in b.note
    s = iv.loc[1100 * US]
    assert (s.sync_call, s.sync_ts_ns, s.sync_end_ns) == ("cudaStreamSynchronize", 365 * US, 1101 * US)
    assert pd.isna(s.wait_call)
    q = iv.loc[2100 * US]
    assert pd.isna(q.wait_call) and "not in the trace" in q.note
    assert "no launching call" in iv.loc[3200 * US].note
    for t in (2600, 2900, 3100):  # host-side causes carry no wait or sync evidence
        assert iv.loc[t * US][["sync_call", "wait_call", "note"]].isna().all()


def test_cause_totals_and_shares(res: dict[str, pd.DataFrame]) -> None:
    g = res["gpu_idle"].set_index("device").loc[0]
    assert g.window_ns == (3400 - 10) * US and g.gaps == 8
    assert (g.gpu_wait_ns, g.sync_blocked_ns, g.queued_dependency_ns, g.host_busy_ns, g.launch_bound_ns,
            g.no_launch_record_ns, g.edge_ns) == tuple(x * US for x in (1700, 20, 400, 330, 15, 100, 10))
    assert g.other_ns == (1700 + 400 + 100) * US  # the GPU-side and unknown causes together
    assert g.idle_ns == g.window_ns - g.busy_ns == (1700 + 20 + 400 + 330 + 15 + 100 + 10) * US
    c = res["gpu_idle.causes"].set_index(["device", "cause"])
    w = c.loc[(0, "gpu_wait")]
    assert (w.intervals, w.idle_ns, w.max_ns) == (2, 1700 * US, 900 * US)
    assert w.share_of_idle == pytest.approx(1700 / 2575, abs=1e-12)
    d1 = res["gpu_idle"].set_index("device").loc[1]
    assert (d1.gaps, d1.edge_ns, d1.gpu_wait_ns) == (0, (20 + 2400) * US, 0)


def test_nsys_recorded_wait(tmp_path: Path) -> None:
    """Gap 1 of the table above as an nsys export: the SYNCHRONIZATION row (syncType 2) names the waiting
    stream but not the event record, so the cause is the same and the record is NULL with a note."""
    import sqlite3

    gtid, gpid = (1 << 48) | (100 << 24) | 1, (1 << 48) | (100 << 24)
    sq = tmp_path / "w.sqlite"
    con = sqlite3.connect(sq)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE CUPTI_ACTIVITY_KIND_RUNTIME (start INTEGER NOT NULL, end INTEGER NOT NULL, eventClass INTEGER,
            globalTid INTEGER, correlationId INTEGER, nameId INTEGER NOT NULL, returnValue INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_KERNEL (start INTEGER NOT NULL, end INTEGER NOT NULL, deviceId INTEGER,
            contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER, demangledName INTEGER,
            shortName INTEGER);
        CREATE TABLE CUPTI_ACTIVITY_KIND_SYNCHRONIZATION (start INTEGER NOT NULL, end INTEGER NOT NULL,
            deviceId INTEGER, contextId INTEGER, streamId INTEGER, correlationId INTEGER, globalPid INTEGER,
            syncType INTEGER NOT NULL, eventId INTEGER NOT NULL);
        INSERT INTO StringIds VALUES (1, 'cudaLaunchKernel_v7000'), (2, 'cudaEventRecord_v3020'),
            (3, 'cudaStreamWaitEvent_v3020'), (4, 'cudaStreamSynchronize_v3020'), (5, 'kA'), (6, 'kB'), (7, 'kD');
    """)
    us = 1000
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_RUNTIME VALUES (?,?,0,?,?,?,0)", [
        (10 * us, 15 * us, gtid, 1, 1), (16 * us, 18 * us, gtid, 2, 1), (40 * us, 42 * us, gtid, 3, 2),
        (110 * us, 112 * us, gtid, 4, 3), (120 * us, 125 * us, gtid, 5, 1), (365 * us, 1101 * us, gtid, 6, 4)])
    con.executemany("INSERT INTO CUPTI_ACTIVITY_KIND_KERNEL VALUES (?,?,?,1,?,?,?,?,?)", [
        (20 * us, 100 * us, 0, 7, 1, gpid, 5, 5), (30 * us, 1000 * us, 1, 9, 2, gpid, 7, 7),
        (1000 * us, 1100 * us, 0, 7, 5, gpid, 6, 6)])
    con.execute("INSERT INTO CUPTI_ACTIVITY_KIND_SYNCHRONIZATION VALUES (?,?,0,1,7,4,?,2,5)", (111 * us, 112 * us, gpid))
    con.commit()
    con.close()
    convert(sq, tmp_path / "w.parquet")
    iv = report.run(tmp_path / "w.parquet", analyses=["gpu_idle"])["gpu_idle.intervals"]
    a = iv[iv.device == 0].iloc[0]
    assert (a.gap_start_ns, a.gap_ns, a.cause) == (100 * US, 900 * US, "gpu_wait")
    assert (a.wait_call, a.wait_ts_ns, a.wait_stream, a.wait_evidence) == ("cudaStreamWaitEvent", 110 * US, 7, "gpu_sync_record")
    assert pd.isna(a.event_record_call) and pd.isna(a.event_record_stream)
    assert "event record this wait waits on is not in the trace" in a.note


def test_duplicate_correlation_ids(write_trace, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two hipLaunchKernel calls share correlation 7 (as in some HIP traces); kernels with id 7 at 20 and 60 us
    link to the launch at 10 and at 50 us (the latest that started at or before each), not both to the first.
    trust: 2 of 3 GPU ops had a choice; the conversion notes say so too."""
    from tracekit import store

    ev = [_x("cuda_runtime", "hipLaunchKernel", 10, 2, correlation=7), _k("k1", 20, 5, 7, 0),
          _x("user_annotation", "decode", 40, 30), _x("cuda_runtime", "hipLaunchKernel", 50, 2, correlation=7),
          _k("k2", 60, 5, 7, 0), _x("cuda_runtime", "hipLaunchKernel", 80, 2, correlation=8), _k("k3", 90, 5, 8, 0)]
    src = write_trace(ev)
    convert(src, tmp_path / "d.parquet")
    con = store.connect(tmp_path / "d.parquet")
    got = con.execute("SELECT name, launch_ts_ns, phase FROM kernels ORDER BY ts_ns").fetchall()
    con.close()
    assert got == [("k1", 10 * US, None), ("k2", 50 * US, "decode"), ("k3", 80 * US, None)]
    tr = report.run(tmp_path / "d.parquet", analyses=["trust"])["trust"].set_index("flag").loc["duplicate_correlation"]
    assert (tr.severity, tr.value) == ("warn", pytest.approx(2 / 3))
    assert tr.numerator.endswith("= 2") and tr.denominator == "GPU ops = 3"
    notes = next(iter(store.read_metadata(tmp_path / "d.parquet").values()))["notes"]
    assert any(n.startswith("2 GPU ops share their correlation id") for n in notes)
