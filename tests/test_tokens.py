"""Token accounting: tracekit.count in the trace, queries/tokens.sql, the tokens.* diff metrics.

The capture test runs samples/spec_decode.py under `tracekit capture` with PLANTED acceptance
(``--accept``: step i accepts the i-th listed number of its K drafted tokens), so the accepted and
drafted counts are known before the run. Times per accepted token are checked against the step
ranges read straight from the Parquet with plain SQL (sum of the `step` range durations), not
against tokens.sql's own intermediate tables. The constructed trace of tests/noise_runs.py (exact
integer-us layout) checks the per-phase and GPU figures by hand.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import noise_runs  # noqa: E402

import tracekit  # noqa: E402
from tracekit import annotate  # noqa: E402
from tracekit import compare as cmp  # noqa: E402
from tracekit import report as rep  # noqa: E402
from tracekit.ingest import convert  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
K, PLAN = 4, [3, 0, 4, 1, 2, 4]  # draft length and planted accepted tokens per step (6 steps)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "cap"
    r = subprocess.run([sys.executable, "-m", "tracekit", "capture", "--out", str(out), "--", sys.executable,
                        str(REPO / "samples" / "spec_decode.py"), "--steps", str(len(PLAN)), "--draft-len", str(K),
                        "--accept", ",".join(map(str, PLAN))], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "parquet"


def test_count_events_in_parquet(captured: Path) -> None:
    con = duckdb.connect()
    rows = con.execute(f"SELECT kind, name, phase_path FROM read_parquet('{captured}/*.parquet') "
                       "WHERE starts_with(name, 'tracekit.count') ORDER BY ts_ns").fetchall()
    assert [r[1] for r in rows] == [f"tracekit.count accepted={a} batch_size=1 drafted={K} tokens={a + 1}" for a in PLAN]
    assert {r[0] for r in rows} == {"range"} and all(r[2] == "step/" + r[1] for r in rows)
    # never a phase: the ranges view and the per-step phase table leave them out
    from tracekit.store import connect

    c = connect(captured)
    assert c.execute("SELECT count(*) FROM ranges WHERE starts_with(name, 'tracekit.count')").fetchone() == (0,)
    res = rep.run(captured, analyses=["steps"])
    assert not res["steps.phases"]["phase"].str.contains("tracekit.count").any()


def test_tokens_summary_exact(captured: Path) -> None:
    res = rep.run(captured, analyses=["steps", "flops", "tokens"])
    s = res["tokens.summary"].to_dict("records")
    assert len(s) == 1
    s = s[0]
    acc = sum(PLAN)  # 14
    assert (s["steps"], s["steps_counted"], s["drafted"], s["accepted"], s["tokens"]) == (6, 6, 6 * K, acc, acc + 6)
    assert s["tokens_source"] == "count"
    assert s["acceptance_rate"] == pytest.approx(acc / (6 * K), rel=1e-12)
    assert s["mean_accept_len"] == pytest.approx(acc / 6, rel=1e-12)
    assert s["accepted_per_step"] == pytest.approx(acc / 6, rel=1e-12)
    con = duckdb.connect()
    wall_ns, first, last = con.execute(
        f"SELECT sum(dur_ns), min(ts_ns), max(ts_ns + dur_ns) FROM read_parquet('{captured}/*.parquet') "
        "WHERE kind = 'range' AND name = 'step'").fetchone()
    assert s["ms_per_accepted"] == pytest.approx(wall_ns / 1e6 / acc, rel=1e-12)
    assert s["e2e_ms_per_accepted"] == pytest.approx((last - first) / 1e6 / acc, rel=1e-12)
    assert s["ms_per_token"] == pytest.approx(wall_ns / 1e6 / (acc + 6), rel=1e-12)
    assert s["tokens_per_s"] == pytest.approx((acc + 6) / ((last - first) / 1e9), rel=1e-12)
    draft_ns = con.execute(f"SELECT sum(dur_ns) FROM read_parquet('{captured}/*.parquet') "
                           "WHERE kind = 'range' AND name = 'draft' AND phase_path = 'step/draft'").fetchone()[0]
    assert s["draft_ms_per_accepted"] == pytest.approx(draft_ns / 1e6 / acc, rel=1e-12)
    assert s["gpu_ms_per_accepted"] is None or math.isnan(s["gpu_ms_per_accepted"])  # CPU-only capture: unknown, not 0
    assert "no GPU op" in s["note"]
    # GFLOPs per accepted token: lm_head matmuls alone are 2*1*64*32000 (K draft) + 2*(K+1)*128*32000 (verify) per step
    lm_head = 6 * (K * 2 * 64 * 32000 + 2 * (K + 1) * 128 * 32000)
    assert s["gflops_per_accepted"] > lm_head / acc / 1e9
    lm_ns = con.execute(f"SELECT sum(dur_ns) FROM read_parquet('{captured}/*.parquet') "
                        "WHERE kind = 'range' AND name = 'lm_head' AND phase_path = 'step/draft/lm_head'").fetchone()[0]
    sp = res["tokens.draft_split"].iloc[0]
    assert sp["draft_ms_per_step"] == pytest.approx(draft_ns / 1e6 / 6, rel=1e-12)
    assert sp["lm_head_ms_per_step"] == pytest.approx(lm_ns / 1e6 / 6, rel=1e-12)
    assert sp["rest_ms_per_step"] == pytest.approx((draft_ns - lm_ns) / 1e6 / 6, rel=1e-12)
    assert sp["lm_head_ms_per_accepted"] == pytest.approx(lm_ns / 1e6 / acc, rel=1e-12)
    assert math.isnan(sp["lm_head_gpu_ms_per_step"])
    per = res["tokens"]
    assert list(per["accepted"]) == PLAN and list(per["drafted"]) == [K] * 6
    assert list(per["acceptance_rate"]) == [a / K for a in PLAN]
    assert math.isnan(per["ms_per_accepted"].iloc[1])  # step 2 accepted nothing: undefined, not infinite
    ln = res["tokens.lengths"].set_index("accepted")
    assert dict(ln["steps"]) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 2}


def test_constructed_trace_per_phase_and_gpu(tmp_path: Path) -> None:
    """noise_runs layout, 3 steps: draft kernels 1000/2000/3000 us, verify 300 us, accepted 1/2/3."""
    raw = noise_runs.write(tmp_path / "t.json.gz", [1000, 2000, 3000], accepted=[1, 2, 3])
    pq = convert(raw, tmp_path / "t.parquet") and tmp_path / "t.parquet"
    res = rep.run(pq, analyses=["steps", "flops", "tokens"])
    s = res["tokens.summary"].iloc[0]
    assert s["accepted"] == 6 and s["drafted"] == 12 and s["tokens"] == 9
    assert s["ms_per_accepted"] == pytest.approx(3 * 4.0 / 6)  # three 4000 us steps
    assert s["gpu_ms_per_accepted"] == pytest.approx((6000 + 900) / 1e3 / 6)  # no overlap: busy = sum of kernels
    assert s["draft_gpu_ms_per_accepted"] == pytest.approx(6.0 / 6)
    assert s["draft_ms_per_accepted"] == pytest.approx(3 * 2.5 / 6)
    assert s["e2e_ms_per_accepted"] == pytest.approx((3 * 5000 + 4000 - 5000) / 1e3 / 6)  # 5000..19000 us
    assert math.isnan(s["gflops_per_accepted"]) and "GFLOPs need" in s["note"]
    ph = res["tokens.phases"].set_index("phase")
    assert ph.loc["draft", "gpu_ms_per_accepted"] == pytest.approx(1.0)
    assert ph.loc["verify", "cpu_ms_per_accepted"] == pytest.approx(3 * 1.2 / 6)
    assert ph.loc["verify", "incl_gpu_ms_per_accepted"] == pytest.approx(0.9 / 6)
    m = cmp.diff(pq, pq)["diff"].set_index("metric")
    assert m.loc["tokens.ms_per_accepted", "a"] == pytest.approx(2.0)
    assert m.loc["tokens.acceptance_rate", "a"] == pytest.approx(0.5)
    assert m.loc["tokens.accepted_per_step", "a"] == pytest.approx(2.0)
    assert m.loc["draft.incl_gpu_ms_per_step", "a"] == pytest.approx(2.0)


def test_no_counts_is_null_with_note(tmp_path: Path) -> None:
    raw = noise_runs.write(tmp_path / "t.json.gz", [1000, 2000])
    pq = tmp_path / "t.parquet"
    convert(raw, pq)
    s = rep.run(pq, analyses=["steps", "flops", "tokens"])["tokens.summary"].iloc[0]
    assert s["steps"] == 2 and s["steps_counted"] == 0 and math.isnan(s["ms_per_accepted"])
    assert "tracekit.count(accepted=" in s["note"]
    m = cmp.diff(pq, pq)["diff"].set_index("metric")
    assert math.isnan(m.loc["tokens.ms_per_accepted", "a"]) and "tracekit.count" in m.loc["tokens.ms_per_accepted", "note"]
    s2 = rep.run(pq, analyses=["steps", "flops", "tokens"], tokens_per_step=8)["tokens.summary"].iloc[0]
    assert s2["tokens"] == 16 and s2["tokens_source"] == "tokens_per_step" and s2["ms_per_token"] == pytest.approx(8.0 / 16)


def test_count_api(monkeypatch: pytest.MonkeyPatch) -> None:
    assert annotate.count_event_name({"drafted": 4, "accepted": 3}) == "tracekit.count accepted=3 drafted=4"
    assert annotate.count_event_name({"x": 0.5}) == "tracekit.count x=0.5"
    marks: list[str] = []
    monkeypatch.setattr(annotate, "_ACTIVE", False)
    tracekit.count("accepted", 3)  # outside a capture: nothing, not even validation cost
    monkeypatch.setattr(annotate, "_ACTIVE", True)
    monkeypatch.setattr(annotate, "_RECORDING", False)
    monkeypatch.setattr(annotate, "_nvtx_mark", marks.append)
    monkeypatch.setattr(annotate, "_nvtx_push", lambda m: None)
    monkeypatch.setattr(annotate, "_nvtx_pop", lambda: None)
    tracekit.count("accepted", 3)
    tracekit.count(drafted=4, batch_size=2)
    with tracekit.phase("step", batch_size=8, mode="decode", vocab=32000):  # vocab: descriptive, no count
        pass
    assert marks == ["tracekit.count accepted=3", "tracekit.count batch_size=2 drafted=4", "tracekit.count batch_size=8"]
    for bad in ({"accepted": "3"}, {"accepted": float("nan")}, {"accepted": True}):
        with pytest.raises(TypeError):
            tracekit.count(**bad)
    with pytest.raises(TypeError):
        tracekit.count("bad name", 1)


def test_nsys_marks(tmp_path: Path) -> None:
    """nsys: tracekit.count arrives as NVTX marks (eventType 34), kind 'instant'; tokens.sql reads them too."""
    import sqlite3

    db = tmp_path / "n.sqlite"
    con = sqlite3.connect(db)
    con.executescript("""
        CREATE TABLE StringIds (id INTEGER NOT NULL PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE NVTX_EVENTS (start INTEGER NOT NULL, end INTEGER, eventType INTEGER NOT NULL, text TEXT,
            globalTid INTEGER, textId INTEGER, domainId INTEGER);
    """)
    t = (1 << 48) | (100 << 24) | 100
    con.executemany("INSERT INTO NVTX_EVENTS VALUES (?,?,?,?,?,?,?)", [
        (0, 1000, 59, "step", t, None, 0), (100, 700, 59, "verify", t, None, 0),
        (800, None, 34, "tracekit.count accepted=2 batch_size=1 drafted=3 tokens=3", t, None, 0),
        (1000, 3000, 59, "step", t, None, 0),
        (2500, None, 34, "tracekit.count accepted=1 batch_size=1 drafted=3 tokens=2", t, None, 0),
    ])
    con.commit()
    con.close()
    pq = tmp_path / "n.parquet"
    convert(db, pq)
    rows = duckdb.connect().execute(f"SELECT kind FROM read_parquet('{pq}') WHERE starts_with(name, 'tracekit.count')").fetchall()
    assert rows == [("instant",), ("instant",)]
    s = rep.run(pq, analyses=["steps", "flops", "tokens"])["tokens.summary"].iloc[0]
    assert (s["steps_counted"], s["accepted"], s["drafted"], s["tokens"]) == (2, 3, 6, 5)
    assert s["ms_per_accepted"] == pytest.approx((1000 + 2000) / 1e6 / 3)
