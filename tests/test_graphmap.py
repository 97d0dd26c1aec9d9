"""``tracekit graphmap``: kernels replayed from CUDA graphs get the phases and shapes of a reference.

Constructed pairs (microseconds, one CPU thread, one stream); every expected value below is
worked out by hand from the event lists built here.

Reference (eager), ``ProfilerStep#1``, one op after another (each op inside its own ranges):
  1. decode/draft          aten::mm [[1,64],[64,128]]   -> gemm_a
  2. decode/draft          (no cpu_op)                  -> act_k
  3. decode/draft/lm_head  aten::mm [[1,64],[64,32000]] -> gemm_a   (same kernel as 1: position decides)
  4. decode/sampler        aten::argmax [[1,32000]]     -> argmax_k
  preceded by an unrelated eager copy_k in 'prepare'.
Replay: ProfilerStep#5/decode: cudaGraphLaunch (corr 50) -> gemm_a, act_k, gemm_a, argmax_k;
        ProfilerStep#6:        cudaGraphLaunch (corr 60) -> the same four (launch not in 'decode');
        ProfilerStep#7/decode: cudaGraphLaunch (corr 70) -> gemm_a, act_k, argmax_k (no lm_head: not in REF);
        ProfilerStep#7: an eager cudaLaunchKernel -> tail_k (not replayed: untouched).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest

from tests.conftest import KINETO_DIR, load_json, needs_shared
from tracekit.errors import TraceError
from tracekit.graphmap import graph_map, read_graphmap_metadata, write_mapped

PID, TID, GPU, STREAM = 100, 1, 0, 7
Op = tuple[list[str], str, tuple[str, Any] | None]

FORWARD: list[Op] = [
    (["decode", "draft"], "gemm_a", ("aten::mm", [[1, 64], [64, 128]])),
    (["decode", "draft"], "act_k", None),
    (["decode", "draft", "lm_head"], "gemm_a", ("aten::mm", [[1, 64], [64, 32000]])),
    (["decode", "sampler"], "argmax_k", ("aten::argmax", [[1, 32000]])),
]


def _x(cat: str, name: str, ts: int, dur: int, pid: int = PID, tid: int = TID, **args: Any) -> dict[str, Any]:
    return {"ph": "X", "cat": cat, "name": name, "pid": pid, "tid": tid, "ts": ts, "dur": dur, "args": args}


def _k(name: str, ts: int, corr: int) -> dict[str, Any]:
    return _x("kernel", name, ts, 10, pid=GPU, tid=STREAM, device=0, stream=STREAM, correlation=corr)


def eager_step(step: str, t0: int, ops: list[Op], corr0: int, launched: bool = True) -> list[dict[str, Any]]:
    """One step range with ``ops`` run one at a time; ``launched=False``: launch calls only (graph capture)."""
    ev = [_x("user_annotation", step, t0, 20 + 100 * len(ops))]
    for i, (path, kernel, op) in enumerate(ops):
        t = t0 + 10 + i * 100
        ev += [_x("user_annotation", name, t + j, 90 - 2 * j) for j, name in enumerate(path)]
        if op:
            ev.append(_x("cpu_op", op[0], t + 20, 30, **{"Input Dims": op[1], "Input type": ["float"] * len(op[1])}))
        ev.append(_x("cuda_runtime", "cudaLaunchKernel", t + 25, 5, correlation=corr0 + i))
        if launched:
            ev.append(_k(kernel, t + 50, corr0 + i))
    return ev


def graph_step(step: str, t0: int, kernels: list[str], corr: int, inside: list[str]) -> list[dict[str, Any]]:
    """A step whose ranges ``inside`` enclose one cudaGraphLaunch replaying ``kernels``."""
    ev = [_x("user_annotation", step, t0, 1000)]
    ev += [_x("user_annotation", name, t0 + 1 + j, 900 - 2 * j) for j, name in enumerate(inside)]
    ev.append(_x("cuda_runtime", "cudaGraphLaunch", t0 + 20, 10, correlation=corr))
    ev += [_k(k, t0 + 100 + 20 * i, corr) for i, k in enumerate(kernels)]
    return ev


def write(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"schemaVersion": 1, "traceEvents": events}))
    return path


FOUR = [k for _, k, _ in FORWARD]
THREE = ["gemm_a", "act_k", "argmax_k"]


def replay_events() -> list[dict[str, Any]]:
    return (graph_step("ProfilerStep#5", 5000, FOUR, 50, ["decode"])
            + graph_step("ProfilerStep#6", 6000, FOUR, 60, [])
            + graph_step("ProfilerStep#7", 7000, THREE, 70, ["decode"])
            + [_x("cuda_runtime", "cudaLaunchKernel", 7950, 5, correlation=80), _k("tail_k", 7960, 80)])


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    prepare = [_x("user_annotation", "prepare", 2, 5), _x("cuda_runtime", "cudaLaunchKernel", 3, 2, correlation=9),
               _k("copy_k", 4, 9)]
    ref = write(tmp_path / "ref.json", prepare + eager_step("ProfilerStep#1", 1000, FORWARD, 1))
    rep = write(tmp_path / "replay.json", replay_events())
    return rep, ref


EXPECTED = {  # node -> (phase, phase_path under 'ProfilerStep#N/decode', op, dims)
    1: ("draft", "decode/draft", "aten::mm", [[1, 64], [64, 128]]),
    2: ("draft", "decode/draft", None, None),
    3: ("lm_head", "decode/draft/lm_head", "aten::mm", [[1, 64], [64, 32000]]),
    4: ("sampler", "decode/sampler", "aten::argmax", [[1, 32000]]),
}


def test_eager_reference_maps_both_replays_and_abstains_on_the_third(pair: tuple[Path, Path]) -> None:
    rep, ref = pair
    res = graph_map(rep, ref)
    launches = res["graph_map"].set_index("launch_correlation")
    assert launches.loc[50, ["replayed", "matched", "shaped", "ambiguous", "regions"]].tolist() == [4, 4, 3, 0, 1]
    assert launches.loc[50, "method"] == "sequence"
    assert launches.loc[60, ["replayed", "matched", "shaped"]].tolist() == [4, 4, 3]
    assert launches.loc[70, ["replayed", "matched", "shaped", "regions"]].tolist() == [3, 0, 0, 0]
    assert launches.loc[70, "method"] == "none"
    assert launches.loc[70, "note"].startswith("unmatched: this sequence of 3 GPU ops does not occur")
    s = res["graph_map.summary"].iloc[0]
    assert (s.graph_launches, s.distinct_sequences, s.replayed, s.matched, s.shaped, s.unmatched) == (3, 2, 11, 8, 6, 3)
    assert s.matched_pct == pytest.approx(round(100 * 8 / 11, 2))

    rows = res["graph_map.rows"]
    for corr, prefix in ((50, "ProfilerStep#5/"), (60, "ProfilerStep#6/")):
        got = rows[rows.launch_correlation == corr].set_index("node")
        for node, (phase, path, op, dims) in EXPECTED.items():
            r = got.loc[node]
            assert (r.status, r.phase, r.phase_path) == ("matched", phase, prefix + path)
            assert (r.op_name, json.loads(r.input_dims)) == (op, dims) if op else pd.isna(r.op_name) and pd.isna(r.input_dims)
    third = rows[rows.launch_correlation == 70]
    assert third.status.tolist() == ["unmatched"] * 3
    assert third.phase_path.tolist() == ["ProfilerStep#7/decode"] * 3


def test_write_mapped_parquet(pair: tuple[Path, Path], tmp_path: Path) -> None:
    rep, ref = pair
    out = tmp_path / "mapped.parquet"
    write_mapped(rep, ref, out)
    t = pq.read_table(out).to_pandas()
    k = t[t.kind == "kernel"].sort_values("ts_ns")
    assert k.phase_path.tolist() == (
        ["ProfilerStep#5/" + EXPECTED[n][1] for n in (1, 2, 3, 4)]
        + ["ProfilerStep#6/" + EXPECTED[n][1] for n in (1, 2, 3, 4)]
        + ["ProfilerStep#7/decode"] * 3 + ["ProfilerStep#7"])
    lm = k[k.phase == "lm_head"]
    assert len(lm) == 2 and json.loads(lm.input_dims.iloc[0]) == [[1, 64], [64, 32000]]
    gm = json.loads(lm.args.iloc[0])["@graphmap"]
    assert gm["method"] == "sequence" and gm["node"] == 3 and gm["op"] == "aten::mm"
    assert gm["launch_phase_path"] == "ProfilerStep#5/decode" and json.loads(lm.args.iloc[0])["correlation"] == 50
    assert "@graphmap" not in json.loads(k[k.name == "tail_k"].args.iloc[0])
    meta = read_graphmap_metadata(out)
    assert (meta["replayed"], meta["matched"], meta["shaped"], meta["unmatched"]) == (11, 8, 6, 3)
    assert meta["by_method"] == {"sequence": 8}
    # same schema, every other row unchanged
    src = pq.read_table(str(rep) + ".tracekit.parquet")
    assert pq.read_schema(out).names == src.schema.names and pq.read_table(out).num_rows == src.num_rows
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_disagreeing_regions_leave_the_node_ambiguous(tmp_path: Path) -> None:
    """Two eager steps: node 1 sits in 'draft' in one and 'target' in the other; nodes 2-4 agree."""
    other = [(["decode", "target"], "gemm_a", FORWARD[0][2])] + FORWARD[1:]
    ref = write(tmp_path / "ref2.json", eager_step("ProfilerStep#1", 1000, FORWARD, 1)
                + eager_step("ProfilerStep#2", 2000, other, 11))
    rep = write(tmp_path / "replay.json", replay_events())
    res = graph_map(rep, ref)
    launch = res["graph_map"].set_index("launch_correlation").loc[50]
    assert launch[["replayed", "matched", "shaped", "ambiguous", "regions"]].tolist() == [4, 3, 2, 1, 2]
    assert launch.note.startswith("ambiguous: the 2 reference regions disagree on the phase of 1 ops")
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    assert rows.loc[1, ["status", "phase_path"]].tolist() == ["ambiguous", "ProfilerStep#5/decode"]
    assert rows.loc[3, ["status", "phase_path"]].tolist() == ["matched", "ProfilerStep#5/decode/draft/lm_head"]
    assert rows.ref_seq.isna().all()  # two regions: no single reference row to point at


def test_capture_trace_reference_maps_by_launch_order(tmp_path: Path) -> None:
    """A profile of the capture: launches between Begin/EndCapture ran nothing (no kernel rows)."""
    ev = [_x("user_annotation", "capture_bs1", 0, 900),
          _x("cuda_runtime", "cudaStreamBeginCapture", 5, 2, correlation=90)]
    cap = eager_step("warm", 10, FORWARD, 1, launched=False)[1:]  # the ops without a step range
    ev += cap + [_x("cuda_runtime", "cudaStreamEndCapture", 800, 2, correlation=91)]
    ref = write(tmp_path / "cap.json", ev)
    rep = write(tmp_path / "replay.json", replay_events())
    res = graph_map(rep, ref)
    launches = res["graph_map"].set_index("launch_correlation")
    assert launches.loc[50, ["replayed", "matched", "shaped", "method"]].tolist() == [4, 4, 3, "capture_order"]
    assert "launch order and count only" in launches.loc[50, "note"]
    assert launches.loc[70, ["matched", "method"]].tolist() == [0, "none"]
    assert "no capture window has exactly 3 launches" in launches.loc[70, "note"]
    rows = res["graph_map.rows"].query("launch_correlation == 60").set_index("node")
    assert rows.phase_path.tolist() == ["ProfilerStep#6/" + EXPECTED[n][1] for n in (1, 2, 3, 4)]
    assert rows.loc[3, "op_name"] == "aten::mm"


def test_bad_input(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    rep, ref = pair
    with pytest.raises(TraceError, match="nothing to map"):
        write_mapped(ref, ref, tmp_path / "o.parquet")  # the reference has no graph launches
    assert not (tmp_path / "o.parquet").exists()
    r = subprocess.run([sys.executable, "-m", "tracekit", "graphmap", str(rep), "--reference", str(tmp_path / "nope.json")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("tracekit: error:") and len(r.stderr.strip().splitlines()) == 1


def test_cli_json(pair: tuple[Path, Path], tmp_path: Path) -> None:
    rep, ref = pair
    out = tmp_path / "m.parquet"
    r = subprocess.run([sys.executable, "-m", "tracekit", "graphmap", str(rep), "-r", str(ref), "-o", str(out), "--json"],
                       capture_output=True, text=True, check=True)
    doc = json.loads(r.stdout)
    assert doc["summary"][0]["matched"] == 8 and len(doc["graph_map"]) == 3 and out.exists()


HTA_GRAPH = KINETO_DIR / "hta" / "trace_diff" / "test" / "test.json.gz"


def _raw_graph_ops() -> tuple[dict[int, dict[str, Any]], dict[int, list[tuple[float, str]]]]:
    """From the raw JSON of trace_diff/test, not through tracekit: cudaGraphLaunch calls by correlation,
    and the (ts, name) of the GPU ops each one replayed."""
    raw = load_json(HTA_GRAPH)["traceEvents"]
    launches = {e["args"]["correlation"]: e for e in raw
                if e.get("cat") == "cuda_runtime" and e.get("name") == "cudaGraphLaunch"}
    ops: dict[int, list[tuple[float, str]]] = {}
    for e in raw:
        if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and e.get("args", {}).get("correlation") in launches:
            ops.setdefault(e["args"]["correlation"], []).append((e["ts"], e["name"]))
    return launches, ops


@needs_shared
def test_real_hta_graph_trace_reports_every_replayed_op(tmp_path: Path) -> None:
    """trace_diff/test (V100, HTA test data): 12 cudaGraphLaunch calls. As its own reference, none of
    its two replayed sequences occurs among its eager launches: all are reported unmatched, none guessed."""
    launches, ops = _raw_graph_ops()
    per = {c: len(v) for c, v in ops.items()}
    sequences = {tuple(n for _, n in sorted(v)) for v in ops.values()}
    assert len(launches) == 12 and sorted(set(per.values())) == [339, 502] and len(sequences) == 2
    src = tmp_path / HTA_GRAPH.name
    src.write_bytes(HTA_GRAPH.read_bytes())  # the cache is written beside the input: keep it out of ../shared
    res = graph_map(src, src)
    got = res["graph_map"].set_index("launch_correlation")
    assert got.replayed.to_dict() == per
    assert (got.matched == 0).all() and (got.method == "none").all()
    s = res["graph_map.summary"].iloc[0]
    assert (s.graph_launches, s.distinct_sequences, s.replayed, s.matched, s.unmatched) == (12, 2, sum(per.values()), 0, sum(per.values()))


@needs_shared
def test_real_graph_sequence_against_an_eager_reference_built_from_it(tmp_path: Path) -> None:
    """The 339 real op names (kernels and memsets) of trace_diff/test's first graph, launched one by one
    in a constructed eager reference (ops 1-200 in 'head', 201-339 in 'head/tail'): all six replays of
    that graph are matched node for node; the six replays of the 502-op graph stay unmatched."""
    launches, ops = _raw_graph_ops()
    first = min((c for c in ops if len(ops[c]) == 339), key=lambda c: launches[c]["ts"])
    names = [n for _, n in sorted(ops[first])]
    ref = write(tmp_path / "eager.json", eager_step(
        "ProfilerStep#1", 0, [(["head"] if i < 200 else ["head", "tail"], n, None) for i, n in enumerate(names)], 1))
    src = tmp_path / HTA_GRAPH.name
    src.write_bytes(HTA_GRAPH.read_bytes())
    res = graph_map(src, ref)
    got = res["graph_map"].set_index("launch_correlation")
    small = [c for c in ops if len(ops[c]) == 339]
    assert len(small) == 6 and (got.loc[small, "matched"] == 339).all() and (got.loc[small, "method"] == "sequence").all()
    assert (got.drop(index=small).matched == 0).all()
    s = res["graph_map.summary"].iloc[0]
    assert (s.replayed, s.matched, s.shaped) == (6 * 339 + 6 * 502, 6 * 339, 0)
    assert got.loc[small[0], "note"].endswith("no shapes: the reference has no cpu_op input shapes (profile with record_shapes=True)")
    rows = res["graph_map.rows"].set_index(["launch_correlation", "node"])
    for c in small:
        lp = launches[c]
        r200, r201 = rows.loc[(c, 200)], rows.loc[(c, 201)]
        assert r200.phase_path == r200.old_phase_path + "/head" and r201.phase_path == r201.old_phase_path + "/head/tail"
        assert (r200.phase, r201.phase) == ("head", "tail") and r201["name"] == names[200]
        assert lp["ts"] * 1000 == got.loc[c, "launch_ts_ns"]


# ---------------------------------------------------------------- ROCm-style captures: names at capture
# A HIP graph capture profiled with torch.profiler on ROCm: hipLaunchKernel calls between
# hipStreamBeginCapture and hipStreamEndCapture run nothing but carry the kernel name in args.kernel.

def rocm_capture(ops: list[Op], names: list[str] | None = None, extra: list[str] = (), t0: int = 0) -> list[dict[str, Any]]:
    """A capture window launching ``ops`` by name (``names`` overrides the launch names; ``extra``
    are launches appended after them), each inside its ranges and cpu_op, no GPU rows."""
    names = names if names is not None else [k for _, k, _ in ops]
    ev = [_x("user_annotation", "capture_bs1", t0, 100 * (len(ops) + len(extra)) + 50),
          _x("cuda_runtime", "hipStreamBeginCapture", t0 + 5, 2, correlation=900)]
    for i, (path, _, op) in enumerate(ops):
        t = t0 + 10 + i * 100
        ev += [_x("user_annotation", name, t + j, 90 - 2 * j) for j, name in enumerate(path)]
        if op:
            ev.append(_x("cpu_op", op[0], t + 20, 30, **{"Input Dims": op[1], "Input type": ["float"] * len(op[1])}))
        if names[i] is not None:
            ev.append(_x("cuda_runtime", "hipLaunchKernel", t + 25, 5, correlation=1000 + i, kernel=names[i]))
    for j, name in enumerate(extra):
        t = t0 + 10 + (len(ops) + j) * 100
        ev.append(_x("cuda_runtime", "hipExtModuleLaunchKernel", t + 25, 5, correlation=1500 + j, kernel=name))
    end = t0 + 10 + (len(ops) + len(extra)) * 100
    return ev + [_x("cuda_runtime", "hipStreamEndCapture", end, 2, correlation=901)]


def _rocm_replay(kernels: list[str] = FOUR) -> list[dict[str, Any]]:
    ev = graph_step("ProfilerStep#5", 5000, kernels, 50, ["decode"]) + graph_step("ProfilerStep#6", 6000, kernels, 60, [])
    return [dict(e, name="hipGraphLaunch") if e["name"] == "cudaGraphLaunch" else e for e in ev]


def _map(tmp_path: Path, ref_events: list[dict[str, Any]], rep_events: list[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    return graph_map(write(tmp_path / "replay.json", rep_events), write(tmp_path / "cap.json", ref_events))


def test_rocm_capture_with_one_extra_trailing_launch_maps_every_node_by_name(tmp_path: Path) -> None:
    """4 nodes against 5 named launches (the first 4 names equal, position by position): shift 0, all
    4 matched with their paths and shapes, the 5th launch reported as aligned to nothing."""
    res = _map(tmp_path, rocm_capture(FORWARD, extra=["extra_k"]), _rocm_replay())
    launches = res["graph_map"].set_index("launch_correlation")
    for corr in (50, 60):
        row = launches.loc[corr]
        assert row[["replayed", "matched", "shaped", "ambiguous", "unaligned", "ref_unaligned", "regions"]].tolist() == [4, 4, 3, 0, 0, 1, 1]
        assert row.method == "capture_name"
        assert "kernel names at capture aligned at shift 0" in row.note and "1 capture launches aligned to no replayed op" in row.note
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    for node, (phase, path, op, dims) in EXPECTED.items():
        r = rows.loc[node]
        assert (r.status, r.phase, r.phase_path) == ("matched", phase, "ProfilerStep#5/" + path)
        assert (r.op_name, json.loads(r.input_dims)) == (op, dims) if op else pd.isna(r.op_name)
    s = res["graph_map.summary"].iloc[0]
    assert (s.replayed, s.matched, s.shaped, s.unmatched, s.matched_pct) == (8, 8, 6, 0, 100.0)


def test_rocm_capture_missing_its_first_launch_aligns_the_rest(tmp_path: Path) -> None:
    """The capture window lacks node 1's launch (window = act_k, gemm_a, argmax_k): shift -1 puts 3 equal
    names in place; node 1 stays unmatched (no launch of its name at its place)."""
    res = _map(tmp_path, rocm_capture(FORWARD[1:]), _rocm_replay())
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["replayed", "matched", "shaped", "unaligned", "ref_unaligned"]].tolist() == [4, 3, 2, 1, 0]
    assert "aligned at shift -1" in row.note and "1 ops not aligned" in row.note
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    assert rows.loc[1, ["status", "phase_path"]].tolist() == ["unmatched", "ProfilerStep#5/decode"]
    for node in (2, 3, 4):
        assert (rows.loc[node, "status"], rows.loc[node, "phase_path"]) == ("matched", "ProfilerStep#5/" + EXPECTED[node][1])


def test_rocm_capture_with_a_different_name_in_the_middle_does_not_guess(tmp_path: Path) -> None:
    """Same count (4 launches for 4 nodes) but launch 3 is named other_k where the replay ran gemm_a:
    order and count alone would map node 3 to lm_head; by name it stays unmatched."""
    names = ["gemm_a", "act_k", "other_k", "argmax_k"]
    res = _map(tmp_path, rocm_capture(FORWARD, names=names), _rocm_replay())
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["replayed", "matched", "unaligned", "ref_unaligned", "method"]].tolist() == [4, 3, 1, 1, "capture_name"]
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    assert rows.status.tolist() == ["matched", "matched", "unmatched", "matched"]
    assert rows.loc[3, "phase_path"] == "ProfilerStep#5/decode" and pd.isna(rows.loc[3, "op_name"])


def test_rocm_capture_aligning_equally_at_two_shifts_is_left_unmatched(tmp_path: Path) -> None:
    """Replay act_k, act_k against a capture of act_k x3: shifts 0 and 1 both put 2 names in place."""
    ops = [(["decode", "draft"], "act_k", None)] * 3
    res = _map(tmp_path, rocm_capture(ops), _rocm_replay(["act_k", "act_k"]))
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["replayed", "matched", "regions", "unaligned", "method"]].tolist() == [2, 0, 0, 0, "none"]
    assert "align equally well at several shifts (not guessed)" in row.note


def test_rocm_capture_window_does_not_use_order_when_names_disagree(tmp_path: Path) -> None:
    """Names exist but fewer than half align (1 of 4): no region, and no fall-back to order and count."""
    names = ["x_k", "act_k", "y_k", "z_k"]
    res = _map(tmp_path, rocm_capture(FORWARD, names=names), _rocm_replay())
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["matched", "regions", "method"]].tolist() == [0, 0, "none"]
    assert "no named capture window aligns at least half of its ops by name (best: 1 of 4)" in row.note


@needs_shared
def test_real_graph_names_against_a_rocm_style_capture_with_one_extra_launch(tmp_path: Path) -> None:
    """The 339 real op names of trace_diff/test's first graph (repeated layer kernels: many equal names,
    so shifts by a layer also align many) launched by name in a constructed capture window plus one
    trailing launch (340 launches for 339 nodes, as the 1,567-vs-1,566 capture of the issue): every
    replay of that graph is matched 339 of 339 at shift 0; the 502-op graph is not aligned (< half)."""
    launches, ops = _raw_graph_ops()
    first = min((c for c in ops if len(ops[c]) == 339), key=lambda c: launches[c]["ts"])
    names = [n for _, n in sorted(ops[first])]
    cap = write(tmp_path / "cap.json", rocm_capture(
        [(["head"] if i < 200 else ["head", "tail"], n, None) for i, n in enumerate(names)], extra=[names[0]]))
    src = tmp_path / HTA_GRAPH.name
    src.write_bytes(HTA_GRAPH.read_bytes())
    got = graph_map(src, cap)["graph_map"].set_index("launch_correlation")
    small = [c for c in ops if len(ops[c]) == 339]
    assert (got.loc[small, "matched"] == 339).all() and (got.loc[small, "method"] == "capture_name").all()
    assert (got.loc[small, "ref_unaligned"] == 1).all() and (got.loc[small, "unaligned"] == 0).all()
    assert (got.drop(index=small).matched == 0).all()


# ---------------------------------------------------------------- the report uses what graphmap found

from tracekit import report  # noqa: E402
from tracekit.view.warnings import warnings_of  # noqa: E402


def _report(path: Path) -> dict[str, pd.DataFrame]:
    return report.run(path, analyses=["lm_head", "flops", "trust"])


def test_report_on_the_mapped_trace_uses_mapped_phases_and_shapes(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """After graphmap, launches 50 and 60 carry lm_head (node 3: aten::mm [[1,64],[64,32000]], 10 us) and
    the draft GEMM (node 1: [[1,64],[64,128]], 10 us); launch 70 (3 ops) stays unmapped: 8 of 11 mapped."""
    rep, ref = pair
    out = tmp_path / "mapped.parquet"
    write_mapped(rep, ref, out)
    res = _report(out)
    lm = res["lm_head"]
    r1 = lm[lm.method == "1_range"].set_index("scope")
    assert sorted(r1.index) == ["ProfilerStep#5/decode/draft", "ProfilerStep#6/decode/draft"]
    assert r1.used.all() and (r1.status == "ok").all() and (r1.lm_head_ops == 1).all() and (r1.lm_head_gpu_ns == 10_000).all()
    assert (r1.scope_gpu_ns == 30_000).all()  # nodes 1, 2 (draft) and 3 (draft/lm_head)
    r2 = lm[lm.method == "2_gemm_shape"].set_index("scope")
    assert sorted(r2.index) == ["ProfilerStep#5/decode/draft/lm_head", "ProfilerStep#6/decode/draft/lm_head"]
    assert (r2.status == "ok").all() and (r2.vocab == 32000).all() and (r2.lm_head_gpu_ns == 10_000).all()
    assert (r2.vocab_source == "inferred: largest GEMM output dim").all()
    assert set(lm.severity) == {"info"} and not [w for w in warnings_of(res) if w["analysis"] == "lm_head"]

    fl = res["flops"].set_index("phase_path")
    for step in ("ProfilerStep#5", "ProfilerStep#6"):
        assert fl.loc[f"{step}/decode/draft", ["ops", "flops", "timed_ops", "gpu_ns"]].tolist() == [1, 2 * 64 * 128, 1, 10_000]
        lm_row = fl.loc[f"{step}/decode/draft/lm_head"]
        assert lm_row[["ops", "flops", "gpu_ops", "gpu_ns"]].tolist() == [1, 2 * 64 * 32000, 1, 10_000]
        assert lm_row.tflops_s == pytest.approx(2 * 64 * 32000 / 10_000 / 1e3)
    assert len(fl) == 4

    tr = res["trust"].set_index("flag").loc["graph_replayed_share"]
    assert tr.severity == "warn"  # 8 of 11 < 99%
    assert "(8 of 11 mapped by tracekit graphmap, 72.73%)" in tr.message and "tracekit graphmap" in tr.message


def test_trust_lowers_the_graph_warning_when_99pct_are_mapped(pair: tuple[Path, Path], tmp_path: Path) -> None:
    """Only launches 50 and 60 (8 ops, all matched): the flag becomes info with the mapped share."""
    _, ref = pair
    rep = write(tmp_path / "replay2.json", graph_step("ProfilerStep#5", 5000, FOUR, 50, ["decode"])
                + graph_step("ProfilerStep#6", 6000, FOUR, 60, []))
    out = tmp_path / "mapped2.parquet"
    write_mapped(rep, ref, out)
    tr = _report(out)["trust"].set_index("flag").loc["graph_replayed_share"]
    assert tr.severity == "info"
    assert tr.message == "graph-replayed ops mapped by tracekit graphmap: 8 of 8 (100.0%) carry the phase and shapes of their reference op"
    # unmapped, the same trace warns and recommends graphmap and nsys (CUDA)
    tr0 = _report(rep)["trust"].set_index("flag").loc["graph_replayed_share"]
    assert tr0.severity == "warn" and "run `tracekit graphmap`" in tr0.message and "nsys --cuda-graph-trace=node" in tr0.message


def _shaped_graph_trace(tmp_path: Path, rocm: bool) -> Path:
    """The unmapped replay trace plus one eager aten::add with Input Dims: record_shapes was on, but
    every GEMM ran inside the graph replays (11 GPU ops)."""
    ev = replay_events() + [_x("cpu_op", "aten::add", 7900, 30, **{"Input Dims": [[4, 8], [4, 8]], "Input type": ["float", "float"]})]
    if rocm:
        ev = [dict(e, name=e["name"].replace("cuda", "hip")) if e["cat"] == "cuda_runtime" else e for e in ev]
    return write(tmp_path / f"shaped_{rocm}.json", ev)


@pytest.mark.parametrize("rocm", [False, True])
def test_advice_on_a_shaped_graph_trace_recommends_graphmap_not_record_shapes(tmp_path: Path, rocm: bool) -> None:
    res = _report(_shaped_graph_trace(tmp_path, rocm))
    lm = res["lm_head"].set_index("method")
    note2 = lm.loc["2_gemm_shape", "note"]
    assert lm.loc["2_gemm_shape", "status"] == "unavailable"
    assert note2.startswith("no GEMM cpu_op ran outside CUDA graphs (shapes are recorded: 1 cpu_ops carry them); "
                            "11 GPU ops were replayed by graphs, without shapes: run `tracekit graphmap`")
    assert lm.loc["1_range", ["status", "severity"]].tolist() == ["abstain", "warn"]
    assert "run `tracekit graphmap`" in lm.loc["1_range", "note"]
    fl = res["flops"].iloc[0]
    assert fl.note.startswith("no matmul/attention cpu_op outside CUDA graph replays: the 11 graph-replayed GPU ops have no cpu_op "
                              "(the trace does record shapes); run `tracekit graphmap`")
    tr = res["trust"].set_index("flag").loc["graph_replayed_share", "message"]
    texts = [note2, lm.loc["1_range", "note"], fl.note, tr]
    assert not any("record_shapes" in t for t in texts)
    assert all(("nsys" in t) != rocm for t in (lm.loc["1_range", "note"], tr))  # ROCm: no nsys advice
    assert len([w for w in warnings_of(res) if w["analysis"] == "lm_head"]) == 1


def test_graph_trace_with_small_eager_gemms_abstains_once(tmp_path: Path) -> None:
    """Unmapped graph replays plus one eager shaped aten::mm [[4,8],[8,16]] (no vocabulary-sized output):
    the head may hide in the replays, so both methods abstain, and the report warns once (1_range)."""
    ev = replay_events() + [_x("cpu_op", "aten::mm", 7900, 30, **{"Input Dims": [[4, 8], [8, 16]], "Input type": ["float", "float"]})]
    res = _report(write(tmp_path / "small_gemm.json", ev))
    lm = res["lm_head"].set_index("method")
    assert lm.loc[["1_range", "2_gemm_shape"], "status"].tolist() == ["abstain", "abstain"]
    assert lm.severity.tolist() == ["warn", "info", "info"]
    assert lm.loc["2_gemm_shape", "note"] == ("no GEMM whose output dim equals the vocabulary size outside the 11 graph-replayed "
                                              "GPU ops (abstains for the reason given on 1_range)")
    assert [w["flag"] for w in warnings_of(res) if w["analysis"] == "lm_head"] == ["1_range"]


def test_a_trace_without_an_lm_head_gets_one_info_note(tmp_path: Path) -> None:
    """A diffusion-like eager step: two shaped GEMMs with output dims 3072 and 64, no lm_head range."""
    ops: list[Op] = [(["denoise"], "gemm_a", ("aten::mm", [[16, 64], [64, 3072]])),
                     (["denoise"], "gemm_b", ("aten::mm", [[16, 3072], [3072, 64]]))]
    res = _report(write(tmp_path / "dit.json", eager_step("ProfilerStep#1", 1000, ops, 1)))
    lm = res["lm_head"].set_index("method")
    assert lm.note.notna().sum() == 1 and set(lm.severity) == {"info"} and "abstain" not in set(lm.status)
    assert lm.loc["1_range", "note"].startswith("no LM head in this trace: no range matching (?i).*lm_head.* and none of its 2 shaped GEMMs")
    assert not [w for w in warnings_of(res) if w["analysis"] == "lm_head"]


def test_rocm_capture_window_leaves_out_launches_that_ran(tmp_path: Path) -> None:
    """An eager launch inside the window (to another stream: its kernel side_k ran) is not part of the
    capture: the 4 captured launches align at shift 0 with no launch left over."""
    ev = rocm_capture(FORWARD)
    ev += [_x("cuda_runtime", "hipLaunchKernel", 215, 3, correlation=777, kernel="side_k"), _k("side_k", 230, 777)]
    res = _map(tmp_path, ev, _rocm_replay())
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["replayed", "matched", "unaligned", "ref_unaligned", "method"]].tolist() == [4, 4, 0, 0, "capture_name"]


QWEN = KINETO_DIR / "tracelens" / "h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"


@needs_shared
def test_real_qwen_forward_without_its_lm_head_says_the_window_lacks_it(tmp_path: Path) -> None:
    """TraceLens' Qwen1.5-0.5B trace: from the raw JSON, aten::embedding's weight is [151936, 1024] and no
    GEMM (aten::linear/mm/addmm/matmul) has an output dim of 151936 or any >= 16000: the model has an LM
    head the captured forward does not run. One info note, no warning."""
    raw = [e for e in load_json(QWEN)["traceEvents"] if e.get("cat") == "cpu_op"]
    emb = {e["args"]["Input Dims"][0][0] for e in raw if e["name"] == "aten::embedding"}

    def out_dim(name: str, d: list[list[int]]) -> int | None:  # weight rows (linear), else last dim of B
        b = d[1] if name == "aten::linear" else d[2] if name in ("aten::addmm", "aten::baddbmm") else d[1]
        return (b[0] if name == "aten::linear" else b[-1]) if b else None

    outs = [out_dim(e["name"], e["args"]["Input Dims"]) for e in raw
            if e["name"] in ("aten::linear", "aten::mm", "aten::addmm", "aten::matmul", "aten::bmm", "aten::baddbmm")]
    outs = [o for o in outs if o is not None]
    assert emb == {151936} and outs and max(outs) < 16000
    src = tmp_path / QWEN.name
    src.write_bytes(QWEN.read_bytes())
    res = _report(src)
    lm = res["lm_head"].set_index("method")
    assert lm.note.notna().sum() == 1 and set(lm.severity) == {"info"}
    assert lm.loc["1_range", "note"].startswith(
        f"no LM head GPU op in this trace: the model embeds a vocabulary of 151936 tokens (aten::embedding), "
        f"but no range matches (?i).*lm_head.* and none of its {len(outs)} shaped GEMMs has an output dim >= 16000")
    assert not [w for w in warnings_of(res) if w["analysis"] == "lm_head"]


def test_rocm_capture_with_an_extra_launch_in_the_middle_aligns_around_it(tmp_path: Path) -> None:
    """Window gemm_a, extra_k, act_k, gemm_a, argmax_k for nodes gemm_a, act_k, gemm_a, argmax_k: shift 1
    aligns nodes 2-4 (3 names, the only shift with 3); the gap before them (node 1; positions 1..2) aligns
    at its own shift 0. All 4 matched, extra_k left over."""
    ops = [FORWARD[0], (["decode", "draft"], "extra_k", None)] + FORWARD[1:]
    res = _map(tmp_path, rocm_capture(ops), _rocm_replay())
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["replayed", "matched", "shaped", "unaligned", "ref_unaligned"]].tolist() == [4, 4, 3, 0, 1]
    assert "aligned at shift 1 (1 more inside gaps at their own shift)" in row.note
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    assert rows.phase_path.tolist() == ["ProfilerStep#5/" + EXPECTED[n][1] for n in (1, 2, 3, 4)]


def test_rocm_capture_missing_a_middle_launch_aligns_the_rest_in_order(tmp_path: Path) -> None:
    """Window gemm_a, act_k, argmax_k (the lm_head launch missing): shift 0 aligns nodes 1-2, the gap
    (nodes 3-4, position 3) aligns node 4 to argmax_k; node 3 has no launch: unmatched, not guessed."""
    res = _map(tmp_path, rocm_capture([FORWARD[0], FORWARD[1], FORWARD[3]]), _rocm_replay())
    rows = res["graph_map.rows"].query("launch_correlation == 50").set_index("node")
    assert rows.status.tolist() == ["matched", "matched", "unmatched", "matched"]
    assert rows.loc[4, "phase_path"] == "ProfilerStep#5/decode/sampler" and rows.loc[4, "op_name"] == "aten::argmax"
    row = res["graph_map"].set_index("launch_correlation").loc[50]
    assert row[["matched", "unaligned", "ref_unaligned"]].tolist() == [3, 1, 0]
