"""Kernel categories (queries/kernel_categories.csv, lib/gpu_activity.sql's gpu_activity_names; kernels.sql `categories`).

Rules under test:
- every row of the table has a real example name (and, for a row with `launched_by`, an example launching
  op) that lands in that row (not only in its category): the first row, by `ord`, whose kind, pattern and
  launched_by match it is the row itself; an example taken from a shared trace (its `source` names the
  trace) is a kernel name of that trace, byte for byte, launched there under its example op;
- every GPU op of every trace in ../shared has exactly one category (one gpu_activity row per kernels row, none
  NULL); no name that says GEMM or attention is left in `other`; the names with ops in `other` per trace are
  the checked-in snapshot tests/golden/kernel_categories_other.json (read it: it says what the table does
  not know); the kernels launched inside `fb::rms_norm` (HTA's trace_filter traces) are norm, summed from
  the raw JSON;
- kernels.categories adds up exactly: per trace, its rows hold all of the trace's GPU op time; per step
  kind, kind_gpu_op_ns is the sum of its categories and of its steps' gpu_op_ns; on the H100 trace the
  step's op time and its GEMM / attention / activation / memset time equal sums computed from the raw JSON.
"""

from __future__ import annotations

import csv
import json
import os
import re
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import KINETO_DIR, NSYS_DIR, SHARED, load_json, needs_shared
from tracekit import report
from tracekit.ingest import convert
from tracekit.store import connect

TABLE = report.QUERY_DIR / "kernel_categories.csv"
SNAPSHOT = Path(__file__).parent / "golden" / "kernel_categories_other.json"
H100 = KINETO_DIR / "tracelens" / "h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz"


def _rows() -> list[dict[str, str]]:
    with TABLE.open(newline="") as f:
        return list(csv.DictReader(f))


def _shared_files() -> list[Path]:
    if not SHARED.exists():
        return []
    return sorted(KINETO_DIR.rglob("*.json.gz")) + sorted((NSYS_DIR / "sqlite").rglob("*.sqlite"))


def _key(p: Path) -> str:
    """A trace's name in the snapshot: its path under ../shared/traces without the suffix."""
    rel = p.relative_to(SHARED / "traces").as_posix()
    return re.sub(r"\.(json\.gz|sqlite)$", "", rel)


def _table_con() -> duckdb.DuckDBPyConnection:
    """A connection holding only the category table and the lookup macro of lib/gpu_activity.sql."""
    con = duckdb.connect()
    con.execute(f"SET VARIABLE kernel_categories_csv = '{TABLE}'")
    sql = (report.QUERY_DIR / "lib/gpu_activity.sql").read_text()
    start = sql.index("CREATE OR REPLACE TEMP TABLE gpu_activity_categories")
    end = sql.index("CREATE OR REPLACE TEMP TABLE gpu_activity_names")
    con.execute(sql[start:end])
    return con


def test_table_rows_are_ordered_and_complete() -> None:
    rows = _rows()
    assert [r for r in rows if not all(r[k] for k in ("ord", "category", "kind", "pattern", "example", "source"))] == []
    assert [r for r in rows if bool(r["launched_by"]) != bool(r["example_op"])] == []
    ords = [int(r["ord"]) for r in rows]
    assert ords == sorted(ords) and len(set(ords)) == len(ords)
    cats = {r["category"] for r in rows}
    assert cats == {"memcpy", "memset", "communication", "GEMM", "MoE", "KV-cache write", "sampling", "norm", "rotary",
                    "activation", "attention", "conv", "reduction", "elementwise", "other"}
    assert rows[-1]["category"] == "other" and rows[-1]["pattern"] == ".*"  # every kernel lands somewhere


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r['ord']}-{r['category']}")
def test_each_row_example_lands_in_that_row(row: dict[str, str]) -> None:
    con = _table_con()
    op = row["example_op"] or None
    first = con.execute("SELECT ord FROM gpu_activity_categories WHERE op_kind = ? AND regexp_matches(?, pattern) "
                        "AND (launched_by = '' OR (?::VARCHAR IS NOT NULL AND regexp_matches(?, launched_by))) ORDER BY ord LIMIT 1",
                        [row["kind"], row["example"], op, op]).fetchone()
    assert first is not None and first[0] == int(row["ord"]), (row["example"], first)
    assert con.execute("SELECT gpu_activity_category(?, ?, ?)", [row["kind"], row["example"], op]).fetchone()[0] == row["category"]
    if op:  # without its launching op the same name is not in this row
        assert con.execute("SELECT gpu_activity_category(?, ?, NULL)", [row["kind"], row["example"]]).fetchone()[0] != row["category"]


@needs_shared
@pytest.mark.parametrize("row", [r for r in _rows() if r["source"].startswith(("kineto/", "nsys/"))],
                         ids=lambda r: f"{r['ord']}-{r['category']}")
def test_trace_examples_are_real_names(row: dict[str, str], names_by_trace: dict[str, set[tuple[str, str]]]) -> None:
    """An example said to come from a shared trace is one of that trace's GPU op names, as written there."""
    assert row["source"] in names_by_trace, f"no shared trace named {row['source']}"
    assert (row["kind"], row["example"], row["example_op"] or None) in names_by_trace[row["source"]]


@pytest.fixture(scope="module")
def categorised(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, str, str, str | None]]]:
    """Per shared trace (its _key): every distinct (kind, name, category, launched_op) of its GPU ops (gpu_activity);
    checks on the way that gpu_activity has one row per kernels row, each with a category."""
    files = _shared_files()
    if not files:
        pytest.skip("../shared/traces is absent")
    d = tmp_path_factory.mktemp("kcat")
    out: dict[str, list[tuple[str, str, str]]] = {}
    for i, f in enumerate(files):
        pq = d / f"{i}.parquet"
        convert(f, pq)
        con = connect(pq)
        report.prepare(con, ["lib/gpu_activity"])
        n_ops, n_gpu, n_null = con.execute("SELECT (SELECT count(*) FROM kernels), count(*), count(*) FILTER (WHERE category IS NULL) "
                                           "FROM gpu_activity").fetchone()
        assert (n_gpu, n_null) == (n_ops, 0), f
        out[_key(f)] = con.execute("SELECT DISTINCT kind, name, category, launched_op FROM gpu_activity ORDER BY ALL").fetchall()
        con.close()
    return out


@pytest.fixture(scope="module")
def names_by_trace(categorised: dict[str, list[tuple[str, str, str, str | None]]]) -> dict[str, set[tuple]]:
    """Per trace: (kind, name, None) of every GPU op name and (kind, name, launching op) where one matched."""
    return {k: {(kind, n, None) for kind, n, _, _ in v} | {(kind, n, o) for kind, n, _, o in v if o} for k, v in categorised.items()}


@needs_shared
def test_every_gpu_op_of_every_shared_trace_has_one_category(categorised: dict[str, list[tuple]]) -> None:
    """(One gpu_activity row per op with a category is checked while building the fixture.) One category per
    (name, launching op), and only the table's categories."""
    cats = {r["category"] for r in _rows()}
    for key, rows in categorised.items():
        keys = [(k, n, o) for k, n, _, o in rows]
        assert len(keys) == len(set(keys)), key
        assert all(c in cats for _, _, c, _ in rows), key
    assert sum(len(v) for v in categorised.values()) > 500  # the set really was read


@needs_shared
def test_no_gemm_or_attention_kernel_in_other(categorised: dict[str, list[tuple]]) -> None:
    # `fbgemm_gpu::` (Meta's embedding-bag library, HTA's recommender traces) is a namespace, not a GEMM: its
    # kernels (split_embedding_*, permute_*, bounds_check_indices with an fbgemm_gpu::FixedDivisor argument) say gemm
    looks = re.compile(r"(?i)(^|[^b]|[^f]b)gemm|gemv|matmul|attention|attn|flash|fmha|sdpa|cublas|cutlass|xmma")
    bad = {k: [n for kind, n, c, _ in v if c == "other" and looks.search(n or "")] for k, v in categorised.items()}
    assert {k: v for k, v in bad.items() if v} == {}


@needs_shared
def test_other_names_match_the_snapshot(categorised: dict[str, list[tuple]]) -> None:
    got = {k: sorted({n for kind, n, c, _ in v if c == "other"}) for k, v in categorised.items()}
    got = {k: v for k, v in got.items() if v}
    if os.environ.get("TRACEKIT_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text())


def _ns(us: object) -> int:
    return int((Decimal(str(us)) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


@needs_shared
def test_categories_add_up_on_every_shared_kineto_trace(tmp_path: Path) -> None:
    """Per trace: the category rows hold all GPU op time (summed from the Parquet's kernels view); per step
    kind: kind_gpu_op_ns = sum of its categories = sum of its steps' gpu_op_ns."""
    files = sorted(KINETO_DIR.rglob("*.json.gz"))
    for i, f in enumerate(files):
        pq = tmp_path / f"{i}.parquet"
        convert(f, pq)
        res = report.run(pq, analyses=["kernels", "steps"], rows=True)
        con = connect(pq)
        total = con.execute("SELECT coalesce(sum(greatest(dur_ns, 0)), 0) FROM kernels").fetchone()[0]
        cats = res["kernels.categories"].records()
        assert sum(r["total_ns"] for r in cats) == total, f
        kinds: dict[str, list[dict]] = {}
        for r in cats:
            kinds.setdefault(r["step_kind"], []).append(r)
        steps = res["steps"].records()
        for kind, rs in kinds.items():
            assert len({r["kind_gpu_op_ns"] for r in rs}) == 1
            assert rs[0]["kind_gpu_op_ns"] == sum(r["total_ns"] for r in rs), (f, kind)
            assert abs(sum(r["share"] for r in rs) - 1) < 1e-9
            if kind != "(outside steps)":
                assert rs[0]["kind_gpu_op_ns"] == sum(s["gpu_op_ns"] for s in steps if s["step_kind"] == kind), (f, kind)


@needs_shared
def test_h100_step_categories_equal_raw_json_sums(tmp_path: Path) -> None:
    """The H100 trace's one ProfilerStep: GPU ops whose launching runtime call starts inside the step (all on
    one thread), summed from the raw JSON; GEMM = names holding `gemm`, attention = `flash_fwd_kernel`,
    activation = `silu_kernel`, memset = gpu_memset events (simple rules that hold on this trace)."""
    ev = load_json(H100)["traceEvents"]
    step = [e for e in ev if e.get("ph") == "X" and re.fullmatch(r"ProfilerStep#\d+", e.get("name", ""))
            and e.get("cat") == "user_annotation"]
    assert len(step) == 1
    s0, s1 = _ns(step[0]["ts"]), _ns(step[0]["ts"]) + _ns(step[0]["dur"])
    corr = {e["args"]["correlation"] for e in ev if e.get("cat") in ("cuda_runtime", "cuda_driver") and e.get("ph") == "X"
            and s0 <= _ns(e["ts"]) < s1 and "correlation" in e.get("args", {})}
    gpu = [e for e in ev if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset") and e.get("ph") == "X"
           and e.get("args", {}).get("correlation") in corr]
    want_total = sum(_ns(e["dur"]) for e in gpu)
    want = {"GEMM": sum(_ns(e["dur"]) for e in gpu if "gemm" in e["name"]),
            "attention": sum(_ns(e["dur"]) for e in gpu if "flash_fwd_kernel" in e["name"]),
            "activation": sum(_ns(e["dur"]) for e in gpu if "silu_kernel" in e["name"]),
            "memset": sum(_ns(e["dur"]) for e in gpu if e["cat"] == "gpu_memset")}
    pq = tmp_path / "h100.parquet"
    convert(H100, pq)
    res = report.run(pq, analyses=["kernels"], rows=True)
    rows = {r["category"]: r for r in res["kernels.categories"].records() if r["step_kind"] == "ProfilerStep#N"}
    assert want_total == 31_905_473  # the headline's "GPU op time (kernels, copies, memsets)" of this step, 31.91 ms
    assert {r["kind_gpu_op_ns"] for r in rows.values()} == {want_total}
    assert sum(r["total_ns"] for r in rows.values()) == want_total
    for cat, ns in want.items():
        assert rows[cat]["total_ns"] == ns, cat
    assert rows["attention"]["ops"] == 24 and rows["attention"]["top_kernel"] == "flash_fwd_kernel<64, 128, 128, 4>"


# --------------------------------------------------------------------------- planted trace (tests/planted.py)

def test_planted_categories_by_hand(tmp_path: Path) -> None:
    """tests/planted.py, 2 steps of ProfilerStep#N, every op launched in a step. By hand (us): GEMM = long_gemm
    2000 + lm_head_gemm 500; memcpy = 50; other = graph_kernel_a/b/c 3 x 100 (graph replay) + small_kernel 5
    + sample_kernel 5450 + post_sample 100 + verify_kernel 300 + step2_kernel 200 = 6355; total 8905."""
    from tests import planted

    pq = tmp_path / "p.parquet"
    convert(planted.write(tmp_path / "p.json.gz"), pq)
    res = report.run(pq, analyses=["kernels"], rows=True)
    rows = {r["category"]: r for r in res["kernels.categories"].records()}
    assert set(rows) == {"GEMM", "memcpy", "other"}
    assert {c: r["total_ns"] for c, r in rows.items()} == {"GEMM": 2_500_000, "memcpy": 50_000, "other": 6_355_000}
    assert {c: r["ops"] for c, r in rows.items()} == {"GEMM": 2, "memcpy": 1, "other": 8}
    assert {r["kind_gpu_op_ns"] for r in rows.values()} == {8_905_000}
    assert rows["GEMM"]["per_step_ns"] == 1_250_000 and rows["GEMM"]["steps"] == 2
    assert rows["GEMM"]["share"] == pytest.approx(2500 / 8905)
    assert rows["other"]["graph_ops"] == 3 and "graph" in rows["other"]["note"]
    assert rows["GEMM"]["graph_ops"] == 0 and rows["GEMM"]["note"] is None
    assert rows["GEMM"]["top_kernel"] == "long_gemm"
    ph = {(r["phase"], r["category"]): r["total_ns"] for r in res["kernels.category_phases"].records()}
    assert ph == {("draft", "other"): 300_000, ("target", "GEMM"): 2_500_000, ("target", "other"): 5_000,
                  ("sampler", "other"): 5_550_000, ("sampler", "memcpy"): 50_000, ("verify", "other"): 300_000,
                  ("(other)", "other"): 200_000}


def test_planted_category_sentence_and_bar(tmp_path: Path) -> None:
    from tests import planted
    from tracekit.view.html import render
    from tracekit.view.terminal import report_lines

    pq = tmp_path / "p.parquet"
    convert(planted.write(tmp_path / "p.json.gz"), pq)
    lines = report_lines(report.run(pq, rows=True), width=80)
    text = " ".join(ln.strip() for ln in lines)
    # 8905 us / 2 steps = 4452.5 us, shown with 4 digits; 6355 / 8905 = 71.4%, 2500 / 8905 = 28.1%, 50 / 8905 = 0.56%
    assert "GPU op time by kernel category (4.452 ms per step, summed over ops): other 71.4%, GEMM 28.1%, memcpy 0.56%." in text
    assert "3 of 11 ops ran in CUDA/HIP graph replays: no launching op tells them apart there" in text
    assert max(len(ln) for ln in lines) <= 80
    page = render(report.run(pq))
    assert "<div class='cbar'>" in page and "3 of these ops ran in CUDA/HIP graph replays" in page
    assert "title='GEMM: 28.1%, 1.250 ms per step, 2 ops; top kernel: long_gemm'" in page


@needs_shared
def test_h100_terminal_names_and_category_line(tmp_path: Path) -> None:
    """At 80 columns the H100 trace's six top kernels read as six different names (before: four printed as
    `void at::nati…ambda(int)#1})`), and the first screen says where the step's GPU op time goes:
    GEMM 8,858,227 / 31,905,473 ns = 27.8%, attention 2,722,705 / 31,905,473 = 8.5% (sums checked above)."""
    from tracekit.view.terminal import report_lines

    pq = tmp_path / "h100.parquet"
    convert(H100, pq)
    res = report.run(pq, rows=True)
    first = " ".join(ln.strip() for ln in report_lines(res, width=80))
    assert "GPU op time by kernel category (31.91 ms per step, summed over ops): elementwise 58.0%, GEMM 27.8%, attention 8.5%," in first
    lines = report_lines(res, width=80, sections=["kernels"], limit=6)
    i = lines.index("kernels") + 3  # title, header, rule
    names = [re.split(r"\s{2,}", ln)[0] for ln in lines[i:i + 6]]
    assert len(set(names)) == 6 and not any(n.startswith("void ") for n in names), names
    assert names[3] == "flash_fwd_kernel<64, 128, 128, 4>"
    assert max(len(ln) for ln in lines) <= 80


@needs_shared
def test_kernels_launched_inside_fb_rms_norm_are_norm(tmp_path: Path) -> None:
    """HTA's trace_filter/sampled_rank-0: fb::rms_norm runs aten::pow / sqrt / div, whose kernels are generic
    elementwise by name; launched inside fb::rms_norm they are norm. Expected from the raw JSON: the kernels
    whose launching runtime call starts inside an fb::rms_norm cpu_op on its thread."""
    src = KINETO_DIR / "hta" / "trace_filter" / "sampled_rank-0.json.gz"
    ev = load_json(src)["traceEvents"]
    norms = [(e["tid"], _ns(e["ts"]), _ns(e["ts"]) + _ns(e["dur"])) for e in ev if e.get("name") == "fb::rms_norm" and e.get("ph") == "X"]
    corr = {e["args"]["correlation"] for e in ev if e.get("cat") == "cuda_runtime" and e.get("ph") == "X"
            and any(t == e["tid"] and a <= _ns(e["ts"]) < b for t, a, b in norms)}
    gpu = [e for e in ev if e.get("cat") == "kernel" and e.get("args", {}).get("correlation") in corr]
    assert len(norms) == 2 and len(gpu) > 0
    pq = tmp_path / "r0.parquet"
    convert(src, pq)
    con = connect(pq)
    report.prepare(con, ["lib/gpu_activity"])
    got = con.execute("SELECT count(*), sum(dur_ns), bool_and(category = 'norm') FROM gpu_activity WHERE launched_op = 'fb::rms_norm'").fetchone()
    assert got == (len(gpu), sum(_ns(e["dur"]) for e in gpu), True)
    # the same kernel names launched elsewhere keep their name's category
    cats = {c for (c,) in con.execute("SELECT DISTINCT category FROM gpu_activity WHERE launched_op IS NULL AND name IN "
                                      "(SELECT name FROM gpu_activity WHERE launched_op = 'fb::rms_norm')").fetchall()}
    assert cats and "norm" not in cats  # elementwise / reduction by name
