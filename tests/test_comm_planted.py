"""comm.sql and collectives.sql on constructed 2- and 8-rank traces whose truth is planted (tests/planted_ranks.py).

Expected numbers are worked out from the plan in planted_ranks' docstring (microseconds * 1000), not
from the queries' output: per step and rank, comm = E - A(r), overlap 200 us, exposed = E - A(r) - 200;
memory 200 us, overlap 50, exposed 150; the slow rank arrives last and everyone else waits for it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.planted_ranks import NELEMS, clock_us, comp_us, end_extra, write_ranks
from tracekit import report

US = 1000


def _truth(n: int, slow: int) -> dict[str, dict[int, int]]:
    """Per rank (ns): arrival A(r) - B on the rank's own step clock, comm, exposed."""
    last = max(comp_us(q, slow) for q in range(n))
    arr = {r: (100 + comp_us(r, slow)) * US for r in range(n)}
    end = (100 + last + 500) * US
    return {"arrival": arr, "comm": {r: end - arr[r] for r in range(n)},
            "exposed": {r: end - arr[r] - 200 * US for r in range(n)}}


@pytest.fixture(scope="module")
def eight(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    files = write_ranks(tmp_path_factory.mktemp("r8"), 8, slow=3)
    return report.run(files, analyses=["comm", "collectives"])


def test_exposed_comm_per_device_step_and_phase(eight: dict) -> None:
    t = _truth(8, 3)
    comm = eight["comm"].set_index("trace")
    for r in range(8):
        row = comm.loc[f"rank{r}"]
        assert row["comm_ops"] == 2 and row["mem_ops"] == 4
        assert row["comm_ns"] == 2 * t["comm"][r]
        assert row["comm_overlap_ns"] == 2 * 200 * US
        assert row["comm_exposed_ns"] == 2 * t["exposed"][r]
        assert row["comm_overlap_share"] == pytest.approx(400 * US / (2 * t["comm"][r]))
        assert (row["mem_ns"], row["mem_overlap_ns"], row["mem_exposed_ns"]) == (400 * US, 100 * US, 300 * US)
        assert row["comm_exposed_ns_per_step"] == t["exposed"][r]  # 2 steps
        assert row["mem_exposed_ns_per_step"] == 150 * US
        # GPU window: first op (gemm_a of step 1 at B+100) to last (sample_kernel of step 2, ends 10000+6300)
        assert row["gpu_window_ns"] == (16300 - 100) * US
    st = eight["comm.by_step"]
    assert len(st) == 16
    for r in st.itertuples():
        rank = int(r.trace.removeprefix("rank"))
        assert r.wall_ns == (9000 + end_extra(rank, 8, 3)) * US
        assert (r.comm_ns, r.comm_overlap_ns, r.comm_exposed_ns) == (t["comm"][rank], 200 * US, t["exposed"][rank])
        assert (r.mem_ns, r.mem_overlap_ns, r.mem_exposed_ns) == (200 * US, 50 * US, 150 * US)
        assert r.comm_exposed_share == pytest.approx(t["exposed"][rank] / r.wall_ns)
    ph = eight["comm.by_phase"]
    assert set(ph.phase_path) == {"attn/tp_allreduce", "sampler"}  # relative to the step: both steps add up
    r3 = ph[(ph.trace == "rank3") & (ph.phase_path == "attn/tp_allreduce")].iloc[0]
    assert (r3.comm_ops, r3.comm_op_ns, r3.comm_overlap_ns, r3.comm_exposed_ns) == (2, 2 * t["comm"][3], 400 * US, 2 * t["exposed"][3])
    assert r3.comm_exposed_ns_per_step == t["exposed"][3]
    smp = ph[(ph.trace == "rank0") & (ph.phase_path == "sampler")].iloc[0]
    assert (smp.comm_ops, smp.mem_ops, smp.mem_op_ns, smp.mem_overlap_ns, smp.mem_exposed_ns) == (0, 4, 400 * US, 100 * US, 300 * US)
    assert smp.mem_exposed_ns_per_step == 150 * US
    kt = eight["comm.kernel_types"]
    k0 = dict(zip(kt[kt.trace == "rank0"].kernel_type, kt[kt.trace == "rank0"].time_ns))
    assert k0 == {"COMMUNICATION": 2 * t["exposed"][0], "COMPUTATION overlapping COMMUNICATION": 400 * US,
                  "COMPUTATION": 2 * (comp_us(0, 3) + 200) * US,  # gemm_a + sample_kernel outside the memcpy
                  "MEMORY": 300 * US, "COMPUTATION overlapping MEMORY": 100 * US}


def test_collective_rows_sizes_and_bandwidth(eight: dict) -> None:
    c = eight["collectives"]
    assert len(c) == 16 and set(c.coll_type) == {"all_reduce"}
    # step 1 from the kernel's args, step 2 from record_param_comms through the External id
    assert set(c[c.step_index == 1].type_source) == {"args"}
    assert set(c[c.step_index == 2].type_source) == {"record_param_comms"}
    assert set(c.msg_bytes) == {NELEMS * 2} and set(c.group_size) == {8} and set(c.seq) == {1, 2}
    t = _truth(8, 3)
    for r in c.itertuples():
        assert r.dur_ns == t["comm"][r.rank]
        assert r.algbw_gbs == pytest.approx(NELEMS * 2 / t["comm"][r.rank])
        assert r.busbw_gbs == pytest.approx(NELEMS * 2 / t["comm"][r.rank] * 2 * 7 / 8)  # all-reduce: 2(n-1)/n
    bt = eight["collectives.by_type"]
    assert set(bt.size_bucket) == {"1-16MiB"} and set(bt.calls) == {2}


def test_slow_rank_waits_and_alignment(eight: dict) -> None:
    t = _truth(8, 3)
    al = eight["collectives.alignment"].set_index("rank")
    for r in range(8):  # unsynchronised clocks recovered exactly from the common collective end
        assert al.loc[r, "offset_ns"] == (clock_us(r) - clock_us(0)) * US
        assert al.loc[r, "method"] == "collective_end" and al.loc[r, "residual_ns"] == 0
    m = eight["collectives.matched"]
    assert len(m) == 2 and set(m.match_by) == {"seq"} and set(m.ranks) == {8}
    arr = t["arrival"]
    others = max(v for r, v in arr.items() if r != 3)
    for row in m.itertuples():
        assert row.last_rank == 3
        assert row.arrival_skew_ns == arr[3] - arr[0]
        assert row.late_ns == arr[3] - others  # rank 3 is this much later than the next-latest rank
        assert row.total_wait_ns == sum(arr[3] - v for v in arr.values())
    w = eight["collectives.waits"]
    for row in w.itertuples():
        assert row.wait_ns == arr[3] - arr[row.rank] and row.behind_ns == arr[row.rank] - arr[0]
    br = eight["collectives.by_rank"].set_index("rank")
    assert br.loc[3, "times_last"] == 2 and br.loc[3, "wait_ns"] == 0
    assert br.loc[3, "caused_wait_ns"] == 2 * sum(arr[3] - v for v in arr.values())
    assert br.loc[0, "wait_ns"] == 2 * (arr[3] - arr[0])


def test_step_skew_and_slowest_rank(eight: dict) -> None:
    t = _truth(8, 3)
    sk = eight["collectives.step_skew"].set_index("step_key")
    assert list(sk.index) == ["ProfilerStep#1", "ProfilerStep#2"]
    for key in sk.index:
        row = sk.loc[key]
        assert row["ranks"] == 8 and row["start_skew_ns"] == 0  # all steps start together once aligned
        assert row["skew_ns"] == end_extra(3, 8, 3) * US  # rank 3 ends last, rank 0 first (extra 0)
        assert row["slowest_rank"] == 3 and row["late_rank"] == 3
        assert row["late_ns"] == t["arrival"][3] - t["arrival"][0]
        assert row["max_wait_ns"] == t["arrival"][3] - t["arrival"][0]
    rs = eight["collectives.rank_steps"]
    r5 = rs[(rs["rank"] == 5) & (rs.step_key == "ProfilerStep#2")].iloc[0]
    assert r5.wall_ns == (9000 + 50) * US and r5.wait_ns == t["arrival"][3] - t["arrival"][5]
    assert r5.start_ts_ns == 10000 * US + clock_us(0) * US and r5.start_offset_ns == 0
    assert r5.end_offset_ns == (9000 + 50) * US


def test_two_ranks_without_seq_and_a_missing_call(tmp_path: Path) -> None:
    """No Seq, ranks from file names, rank 1's capture lacks step 1's all-reduce: steps 2 and 3 still match."""
    files = write_ranks(tmp_path, 2, slow=1, steps=3, seq=False, rank_in_meta=False, drop=frozenset({(1, 1)}))
    r = report.run(files, analyses=["collectives"])
    al = r["collectives.alignment"].set_index("rank")
    assert al.loc[1, "offset_ns"] == (clock_us(1) - clock_us(0)) * US and al.loc[1, "matched_calls"] == 2
    m = r["collectives.matched"]
    assert len(m) == 2 and set(m.match_by) == {"nearest_end"} and list(m.step_key) == ["ProfilerStep#2", "ProfilerStep#3"]
    t = _truth(2, 1)
    assert set(m.last_rank) == {1} and set(m.late_ns) == {t["arrival"][1] - t["arrival"][0]}
    c = r["collectives"]
    assert len(c) == 5 and set(c["rank"]) == {0, 1}  # from the names rank0 / rank1
    assert c.seq.isna().all()


def test_raw_clocks_when_alignment_is_off(tmp_path: Path) -> None:
    files = write_ranks(tmp_path, 2, slow=1)
    r = report.run(files, analyses=["collectives"], rank_align="none")
    al = r["collectives.alignment"]
    assert set(al.method) == {"none"} and set(al.offset_ns) == {0}
    m = r["collectives.matched"].iloc[0]
    t = _truth(2, 1)
    # raw timestamps: rank 1's clock runs (clock_us(1) - clock_us(0)) us ahead, and that shows as skew
    assert m.arrival_skew_ns == t["arrival"][1] - t["arrival"][0] + (clock_us(1) - clock_us(0)) * US


def test_single_rank_has_no_cross_rank_rows(tmp_path: Path) -> None:
    files = write_ranks(tmp_path, 1, slow=0)
    r = report.run(files, analyses=["collectives"])
    assert len(r["collectives"]) == 2
    for key in ("alignment", "matched", "waits", "by_rank", "rank_steps", "step_skew"):
        assert len(r[f"collectives.{key}"]) == 0, key


def test_diff_metrics_and_gate(tmp_path: Path) -> None:
    """comm.exposed_ms_per_step, rank.skew_ms_per_step, rank.wait_ms_per_step in diff and --fail-if."""
    from tracekit import compare

    a = write_ranks(tmp_path / "a", 2, slow=1)
    b = write_ranks(tmp_path / "b", 8, slow=3)
    r = compare.diff(a, b, conditions=["comm.exposed_ms_per_step > +50%", "rank.skew_ms_per_step > 0.1ms"])
    d = r["diff"].set_index("metric")

    def per_step(n: int, slow: int) -> tuple[float, float, float]:
        t = _truth(n, slow)
        exposed = sum(t["exposed"].values()) / n / 1e6  # every rank-step has its own; mean over rank-steps
        wait = sum(t["arrival"][slow] - v for v in t["arrival"].values()) / n / 1e6
        return exposed, end_extra(slow, n, slow) * US / 1e6, wait

    for side, (n, slow) in (("a", (2, 1)), ("b", (8, 3))):
        exposed, skew, wait = per_step(n, slow)
        assert d.loc["comm.exposed_ms_per_step", side] == pytest.approx(exposed)
        assert d.loc["rank.skew_ms_per_step", side] == pytest.approx(skew)
        assert d.loc["rank.wait_ms_per_step", side] == pytest.approx(wait)
        assert d.loc["mem.exposed_ms_per_step", side] == pytest.approx(0.150)
    g = r["diff.gate"].set_index("condition")
    # A: (2110 + 300) / 2 = 1205 us; B: 1870 us: +55 %
    assert bool(g.loc["comm.exposed_ms_per_step > +50%", "fired"])
    assert not bool(g.loc["rank.skew_ms_per_step > 0.1ms", "fired"])  # 320 -> 380 us: +0.06 ms


def test_single_rank_skew_is_null_with_a_note(tmp_path: Path) -> None:
    from tracekit import compare

    one = write_ranks(tmp_path / "one", 1, slow=0)
    d = compare.diff(one, one)["diff"].set_index("metric")
    assert d.loc["rank.skew_ms_per_step", "a"] != d.loc["rank.skew_ms_per_step", "a"]  # NaN
    assert "one trace per rank" in d.loc["rank.skew_ms_per_step", "note"]
    assert d.loc["comm.exposed_ms_per_step", "a"] == pytest.approx(_truth(1, 0)["exposed"][0] / 1e6)
