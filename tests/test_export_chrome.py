"""`tracekit export-chrome`: the slice it selects, the Chrome trace format it writes, exact round trips.

Expected slices are worked out independently of tracekit: by hand from tests/planted.py, and
for a real trace with a Python one-off over the raw JSON (parsed with Decimal, so times stay
exact), never from tracekit's own output.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests import planted
from tests.conftest import NSYS_DIR, real_trace
from tracekit.cli import cli
from tracekit.export_chrome import Steps, export_chrome, render_event, us_text
from tracekit.ingest import convert
from tracekit.store import connect

NS_TRACE = real_trace("kineto/hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz")
CUPY = NSYS_DIR / "sqlite" / "nvtx-examples" / "cupy.nsys2020.3.sqlite"
PHS = {"X", "i", "I", "s", "t", "f", "M", "C", "B", "E", "b", "e", "n"}
PROC_META = {"process_name", "process_labels", "process_sort_index"}
META = PROC_META | {"thread_name", "thread_sort_index"}


def read_chrome(path: Path) -> dict[str, Any]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def check_chrome_format(doc: dict[str, Any]) -> None:
    """The Chrome trace event format rules a viewer relies on (Trace Event Format doc)."""
    assert doc["displayTimeUnit"] == "ns"
    evs = doc["traceEvents"]
    assert isinstance(evs, list) and evs
    slices: dict[tuple[Any, Any], list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for e in evs:
        assert e["ph"] in PHS, e
        assert isinstance(e["name"], str) and "pid" in e, e
        if e["ph"] == "M":
            assert e["name"] in META and isinstance(e["args"], dict), e
            if e["name"].endswith("_name"):
                assert isinstance(e["args"]["name"], str), e
            if not e["name"].startswith("process"):
                assert "tid" in e, e
            continue
        assert "tid" in e and isinstance(e["ts"], (int, Decimal)), e
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, Decimal)) and e["dur"] >= 0, e
            slices[(e["pid"], e["tid"])].append((Decimal(e["ts"]), Decimal(e["ts"]) + Decimal(e["dur"])))
    flows: dict[tuple[str, Any], list[dict[str, Any]]] = defaultdict(list)
    for e in evs:
        if e["ph"] in ("s", "f"):
            assert "id" in e and "cat" in e, e
            flows[(e["cat"], e["id"])].append(e)
            if e["ph"] == "f":
                assert e.get("bp") == "e", e  # binds to the enclosing slice
            # each end lies in (binds to) a complete event on its thread
            assert any(a <= Decimal(e["ts"]) <= b for a, b in slices[(e["pid"], e["tid"])]), e
    for key, g in flows.items():
        assert {x["ph"] for x in g} == {"s", "f"}, key
        if key[0] == "ac2g":
            s = min(Decimal(x["ts"]) for x in g if x["ph"] == "s")
            assert all(Decimal(x["ts"]) >= s for x in g if x["ph"] == "f"), key


# --------------------------------------------------------------------------- units

def test_us_text_is_exact_decimal() -> None:
    assert us_text(1234567) == b"1234.567"
    assert us_text(5000) == b"5"
    assert us_text(1500) == b"1.5"
    assert us_text(1712195495501688612) == b"1712195495501688.612"
    assert us_text(-1) == b"-0.001"
    assert us_text(0) == b"0"


def test_steps_parse() -> None:
    assert Steps.parse("3:5") == Steps(3, 5)
    assert Steps.parse("3") == Steps(3, 3)
    assert Steps.parse("3:") == Steps(3, None)
    assert Steps.parse(":5") == Steps(1, 5)
    for bad in ("0:2", "5:3", "a", ":", "", "1:2:3"):
        with pytest.raises(ValueError):
            Steps.parse(bad)


def test_render_moves_at_keys_to_top_level() -> None:
    ev = json.loads(render_event("f", "ac2g", "ac2g", 0, 7, 1001, 0, 42, '{"@bp":"e"}'))
    assert ev == {"ph": "f", "cat": "ac2g", "name": "ac2g", "pid": 0, "tid": 7, "ts": 1.001, "id": 42, "bp": "e"}
    ev = json.loads(render_event("X", "Trace", "x", None, None, 2000, 3000, None, '{"@pid":"Spans","@tid":"T","n":1}'))
    assert ev == {"ph": "X", "cat": "Trace", "name": "x", "pid": "Spans", "tid": "T", "ts": 2, "dur": 3, "args": {"n": 1}}
    # a negative source duration (kept raw as @dur) goes out as written
    ev = json.loads(render_event("X", "c", "n", 1, 1, 0, 0, None, '{"@dur":-1}'))
    assert ev["dur"] == -1 and "args" not in ev
    assert json.loads(render_event("i", None, "m", 1, 2, 5, 0, None, None)) == {"ph": "i", "name": "m", "pid": 1, "tid": 2, "ts": 0.005}


# --------------------------------------------------------------------------- planted (hand-worked)

@pytest.fixture(scope="module")
def planted_kineto(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("planted")
    out = d / "planted.parquet"
    convert(planted.write(d / "planted.json.gz"), out, trace="planted")
    return out


def _names(doc: dict[str, Any]) -> Counter[tuple[str, str]]:
    return Counter((e["ph"], e["name"]) for e in doc["traceEvents"])


def test_planted_phase_and_step(planted_kineto: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    res = export_chrome(planted_kineto, out, phase="sampler", steps="1:1")
    doc = read_chrome(out)
    # tests/planted.py, sampler 3910..9900 in ProfilerStep#1: the range, its 4 runtime calls and 2 cpu_ops,
    # and the 3 GPU ops launched by correlations 29, 30, 31 (32 is the sync: it launches nothing).
    assert _names(doc) == Counter({
        ("X", "sampler"): 1, ("X", "cudaLaunchKernel"): 2, ("X", "aten::item"): 1,
        ("X", "aten::_local_scalar_dense"): 1, ("X", "cudaMemcpyAsync"): 1, ("X", "cudaStreamSynchronize"): 1,
        ("X", "sample_kernel"): 1, ("X", "Memcpy DtoH (Device -> Pinned)"): 1, ("X", "post_sample"): 1})
    assert res["events"] == 10 and res["steps"] == 2 and res["steps_selected"] == 1
    ev = {e["name"]: e for e in doc["traceEvents"]}
    assert ev["sample_kernel"]["ts"] == 3950 and ev["sample_kernel"]["dur"] == 5450
    assert ev["cudaStreamSynchronize"]["args"] == {"correlation": 32}
    check_chrome_format(doc)


def test_render_bytes_without_hoisting() -> None:
    # the common row (no "@" key in args): keys in the schema's order, times as exact decimal us, args verbatim
    assert render_event("X", "kernel", "k\"1", 1, 7, 1234567, 5000, None, '{"a": 1}') == (
        b'{"ph":"X","cat":"kernel","name":"k\\"1","pid":1,"tid":7,"ts":1234.567,"dur":5,"args":{"a": 1}}')
    # dur only for complete events; a flow id as "id"; no args key when args is NULL
    assert render_event("s", "ac2g", "ac2g", 0, 3, -1500, 9, 42, None) == (
        b'{"ph":"s","cat":"ac2g","name":"ac2g","pid":0,"tid":3,"ts":-1.5,"id":42}')


def test_planted_on_the_reports_connection(planted_kineto: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """report --html exports on its own connection (con=, no second build of the lib/ modules): the same slice as
    test_planted_phase_and_step, written in batches of 3 rows so that the joins between batches are read too."""
    import duckdb

    from tracekit import export_chrome as ec
    from tracekit import report

    con = duckdb.connect()
    report.run([planted_kineto], con=con, analyses=["steps"])
    monkeypatch.setattr(ec, "_BATCH", 3)
    out = tmp_path / "s.json.gz"
    res = export_chrome(planted_kineto, out, phase="sampler", steps="1:1", con=con)
    doc = read_chrome(out)
    assert res["events"] == 10 and res["steps"] == 2 and res["steps_selected"] == 1
    assert _names(doc) == Counter({
        ("X", "sampler"): 1, ("X", "cudaLaunchKernel"): 2, ("X", "aten::item"): 1,
        ("X", "aten::_local_scalar_dense"): 1, ("X", "cudaMemcpyAsync"): 1, ("X", "cudaStreamSynchronize"): 1,
        ("X", "sample_kernel"): 1, ("X", "Memcpy DtoH (Device -> Pinned)"): 1, ("X", "post_sample"): 1})
    ev = {e["name"]: e for e in doc["traceEvents"]}
    assert ev["sample_kernel"]["ts"] == 3950 and ev["sample_kernel"]["dur"] == 5450
    check_chrome_format(doc)


def test_planted_second_step_and_graph_phase(planted_kineto: Path, tmp_path: Path) -> None:
    export_chrome(planted_kineto, tmp_path / "a.json", steps="2")
    assert _names(read_chrome(tmp_path / "a.json")) == Counter(
        {("X", "ProfilerStep#2"): 1, ("X", "cudaLaunchKernel"): 1, ("X", "step2_kernel"): 1})
    # phase alone: draft's graph launch replays three kernels with its correlation (10)
    export_chrome(planted_kineto, tmp_path / "b.json.gz", phase="draft")
    assert _names(read_chrome(tmp_path / "b.json.gz")) == Counter(
        {("X", "draft"): 1, ("X", "cudaGraphLaunch"): 1, ("X", "graph_kernel_a"): 1,
         ("X", "graph_kernel_b"): 1, ("X", "graph_kernel_c"): 1})
    # a phase name matches whole path elements only
    with pytest.raises(Exception, match="selects no events"):
        export_chrome(planted_kineto, tmp_path / "c.json", phase="draf")


def test_planted_nsys_maps_gpu_rows_and_makes_flows(tmp_path: Path) -> None:
    pq = tmp_path / "n.parquet"
    convert(planted.write_nsys(tmp_path / "n.sqlite"), pq, trace="n")
    out = tmp_path / "n.json"
    export_chrome(pq, out, phase="sampler", steps="1")
    doc = read_chrome(out)
    check_chrome_format(doc)
    evs = doc["traceEvents"]
    # nsys has no cpu_ops: sampler range + 4 runtime calls + 3 GPU ops; one ac2g s/f pair per launch
    # that has a GPU op (29, 30, 31); GPU 0 / stream 7 named by two metadata rows.
    assert Counter(e["ph"] for e in evs) == Counter({"X": 8, "s": 3, "f": 3, "M": 2})
    gpu = [e for e in evs if e["ph"] == "X" and e["cat"] in ("kernel", "gpu_memcpy")]
    assert sorted((e["name"], e["pid"], e["tid"], e["ts"], e["dur"]) for e in gpu) == [
        ("[CUDA memcpy DtoH]", 0, 7, 9400, 50), ("post_sample", 0, 7, 9510, 100),  # nsys names copies by kind (2 = DtoH)
        ("sample_kernel", 0, 7, 3950, 5450)]
    assert {e["args"]["name"] for e in evs if e["ph"] == "M"} == {"GPU 0", "stream 7"}
    cpu = [e for e in evs if e["ph"] == "X" and e["cat"] in ("cuda_runtime", "user_annotation")]
    assert {(e["pid"], e["tid"]) for e in cpu} == {(planted.PID, planted.TID)}
    # reconverted, the Kineto reader sees the same kinds, times and links
    back = tmp_path / "back.parquet"
    convert(out, back)
    got = connect(back).execute(
        "SELECT kind, ts_ns, dur_ns, correlation & 4294967295, device, stream FROM events "
        "WHERE kind IN ('kernel', 'memcpy', 'runtime', 'range') ORDER BY ts_ns, kind").fetchall()
    assert got == [
        ("range", 3910000, 5990000, None, None, None), ("runtime", 3920000, 20000, 29, None, None),
        ("kernel", 3950000, 5450000, 29, 0, 7), ("runtime", 4420000, 30000, 30, None, None),
        ("runtime", 4460000, 5000000, 32, None, None), ("memcpy", 9400000, 50000, 30, 0, 7),
        ("runtime", 9480000, 20000, 31, None, None), ("kernel", 9510000, 100000, 31, 0, 7)]


def test_cli_errors_are_one_line_and_write_nothing(planted_kineto: Path, tmp_path: Path) -> None:
    r = CliRunner()
    out = tmp_path / "x.json"
    for args, msg in ((["--phase", "nope"], "selects no events"), (["--steps", "3:5"], "out of range: trace 'planted' has 2 steps"),
                      (["--trace", "other"], "no trace named 'other'")):
        res = r.invoke(cli, ["export-chrome", str(planted_kineto), "-o", str(out), *args])
        assert res.exit_code == 2, res.output
        assert res.output.count("\n") == 1 and res.output.startswith("tracekit: error:") and msg in res.output
        assert not out.exists() and not list(tmp_path.glob(".x.json*"))
    res = r.invoke(cli, ["export-chrome", str(planted_kineto), "-o", str(out), "--steps", "0:1"])
    assert res.exit_code == 2 and "1 <= A <= B" in res.output
    res = r.invoke(cli, ["export-chrome", str(planted_kineto), "-o", str(out), "--phase", "verify", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["events"] == 3  # verify range, its launch, verify_kernel


def test_dataset_with_two_traces_needs_trace(planted_kineto: Path, tmp_path: Path) -> None:
    d = tmp_path / "ds"
    d.mkdir()
    convert(planted.write(tmp_path / "p.json.gz"), d / "a.parquet", trace="a")
    convert(planted.write(tmp_path / "p.json.gz"), d / "b.parquet", trace="b")
    with pytest.raises(Exception, match="holds 2 traces"):
        export_chrome(d, tmp_path / "o.json", steps="2")
    assert export_chrome(d, tmp_path / "o.json", steps="2", trace="b")["events"] == 3


# --------------------------------------------------------------------------- real traces

def _independent_slice(events: list[dict[str, Any]], phase: str, first: int, last: int) -> list[int]:
    """Indices into traceEvents of the slice, from the raw JSON alone (the rules of export_chrome.sql)."""
    gpu_cats = {"kernel", "gpu_memcpy", "gpu_memset", "cuda_sync"}
    rt_cats = {"cuda_runtime", "cuda_driver"}
    steps = sorted((e["ts"], i) for i, e in enumerate(events)
                   if e.get("ph") == "X" and re.fullmatch(r"ProfilerStep#\d+", e.get("name", "")))
    assert len({(events[i]["pid"], events[i]["tid"]) for _, i in steps}) == 1  # one thread: steps take every thread by time
    chosen = [events[i] for _, i in steps[first - 1:last]]
    spans: dict[tuple[Any, Any], list[tuple[Decimal, Decimal]]] = defaultdict(list)
    for e in events:
        if e.get("ph") == "X" and e.get("cat") == "user_annotation" and e["name"] == phase:
            spans[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))

    def keep(e: dict[str, Any]) -> bool:
        return (any(a <= e["ts"] < b for a, b in spans.get((e.get("pid"), e.get("tid")), ()))
                and any(s["ts"] <= e["ts"] < s["ts"] + s["dur"] for s in chosen))

    cpu = [i for i, e in enumerate(events) if e.get("ph") not in ("s", "f", "M") and "ts" in e
           and e.get("cat") not in gpu_cats | {"gpu_user_annotation"} and keep(e)]
    corr = {events[i]["args"]["correlation"] for i in cpu if events[i].get("cat") in rt_cats}
    ext = {events[i]["args"]["External id"] for i in cpu if events[i].get("cat") == "user_annotation"}
    gpu = [i for i, e in enumerate(events) if e.get("ph") == "X" and (
        (e.get("cat") in gpu_cats and e.get("args", {}).get("correlation") in corr)
        or (e.get("cat") == "gpu_user_annotation" and e.get("args", {}).get("External id") in ext))]
    bind = {(events[i]["pid"], events[i]["tid"], events[i]["ts"]) for i in cpu + gpu}
    groups: dict[tuple[Any, Any], list[int]] = defaultdict(list)
    for i, e in enumerate(events):
        if e.get("ph") in ("s", "f"):
            groups[(e.get("cat"), e.get("id"))].append(i)
    flows = [i for g in groups.values() if {events[j]["ph"] for j in g} == {"s", "f"}
             and all((events[j]["pid"], events[j]["tid"], events[j]["ts"]) in bind for j in g) for i in g]
    keys = {(events[i]["pid"], events[i]["tid"]) for i in cpu + gpu + flows}
    pids = {p for p, _ in keys}
    meta = [i for i, e in enumerate(events) if e.get("ph") == "M" and (
        (e["name"] in PROC_META and e["pid"] in pids) or (e["name"] not in PROC_META and (e["pid"], e.get("tid")) in keys))]
    return sorted(cpu + gpu + flows + meta)


ROW_SQL = "SELECT kind, name, ts_ns, dur_ns, pid, tid, correlation, args FROM events"


def _rows(con: Any, where: str = "") -> Counter[tuple[Any, ...]]:
    out: Counter[tuple[Any, ...]] = Counter()
    for *k, args in con.execute(ROW_SQL + where).fetchall():
        out[(*k, json.dumps(json.loads(args), sort_keys=True) if args is not None else None)] += 1
    return out


@pytest.mark.skipif(not NS_TRACE.exists(), reason=f"{NS_TRACE} is absent: neither ../shared/traces nor tests/data/real holds it")
def test_real_trace_slice_round_trips_exactly(tmp_path: Path) -> None:
    with gzip.open(NS_TRACE, "rt", encoding="utf-8") as f:  # Decimal: the raw times, exact
        events = json.load(f, parse_float=Decimal)["traceEvents"]
    want = _independent_slice(events, "## forward ##", 2, 3)
    pq = tmp_path / "t.parquet"
    convert(NS_TRACE, pq)
    out = tmp_path / "fw.json.gz"
    res = export_chrome(pq, out, phase="## forward ##", steps="2:3")
    doc = read_chrome(out)
    check_chrome_format(doc)
    got = doc["traceEvents"]
    assert res["events"] == len(got) == len(want)
    # same events, times compared as exact decimals against the raw text (ns digits kept)
    assert Counter((e["ph"], e.get("cat"), e["name"], e.get("ts"), e.get("dur")) for e in got) == \
        Counter((events[i]["ph"], events[i].get("cat"), events[i]["name"], events[i].get("ts"), events[i].get("dur")) for i in want)
    kinds = Counter(e["ph"] for e in got)
    assert kinds["s"] == kinds["f"] > 0 and kinds["M"] > 0
    assert doc["distributedInfo"]["rank"] == 0 and doc["deviceProperties"]
    # converting the export again gives the slice's rows, row for row, args and ns exact
    back = tmp_path / "back.parquet"
    convert(out, back)
    orig = _rows(connect(pq), f" WHERE seq IN ({','.join(map(str, want))})")
    assert _rows(connect(back)) == orig and sum(orig.values()) == len(want)


@pytest.mark.skipif(not CUPY.exists(), reason="../shared/traces is absent: the nsys export test needs the shared nsys exports")
def test_real_nsys_phase_export(tmp_path: Path) -> None:
    pq = tmp_path / "c.parquet"
    convert(CUPY, pq)
    out = tmp_path / "c.json"
    export_chrome(pq, out, phase="compute")
    doc = read_chrome(out)
    check_chrome_format(doc)
    back = tmp_path / "back.parquet"
    convert(out, back)
    q = ("SELECT kind, name, ts_ns, dur_ns, correlation, device, stream FROM events "
         "WHERE kind IN ('kernel', 'memcpy', 'memset', 'runtime', 'range', 'gpu_sync')")
    # every row of the phase (and the GPU ops launched in it) comes back with the same kind, time and links
    phase_rows = Counter(connect(pq).execute(
        q + " AND (contains('/' || phase_path || '/', '/compute/'))").fetchall())
    assert phase_rows and Counter(connect(back).execute(q).fetchall()) == phase_rows
    n_gpu = sum(n for r, n in phase_rows.items() if r[0] in ("kernel", "memcpy", "memset"))
    assert n_gpu > 0 and Counter(e["ph"] for e in doc["traceEvents"])["f"] == n_gpu
