"""Every shipped analysis is a function of a trace's rows alone (issue 16, item 1).

For real Kineto and nsys traces (and a bundled sample when ../shared is absent), the report over
  - the trace alone,
  - the trace inside a dataset with other traces, and
  - a copy of the trace with its rows shuffled (other order, small row groups)
must give identical rows, in the same order, for every output. Ties that used to be resolved by
row order (arg_max, mode, ASOF joins on equal timestamps, window ORDER BYs) now end in ``row_id``
or in a value order: this test is what fails when one is missed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import KINETO_DIR, REPO, real_trace
from tests.determinism import CROSS_TRACE, differences, shuffled_copy
from tracekit import report
from tracekit.ingest import convert

#: Real traces with ties of every kind named in the issue (kernels of equal time in two phases, cpu ops
#: starting in the same microsecond, two GPUs), small enough to run three reports each.
REAL = [real_trace(rel) for rel in (  # ../shared's, else the copies shipped in tests/data/real (not h100_2gpu_1s)
    "kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz",
    "kineto/hta/trace_filter/sampled_rank-0.json.gz",
    "kineto/hta/critical_path/alexnet/benchmark_result_2869224_1695835535_trace.json.gz",
    "nsys/sqlite/nsys-ai/h100_2gpu_1s.sqlite",
    "nsys/sqlite/nsightful/power_iteration__baseline.sqlite",
)]
SAMPLE = REPO / "samples" / "traces" / "spec_decode_stack_flops" / "parquet" / "31512-spec_decode.parquet"
OTHER = REPO / "samples" / "traces" / "serve_2workers" / "parquet"


def _cases() -> list:
    out = [pytest.param(SAMPLE, id="sample-spec_decode")]
    for p in REAL:
        out.append(pytest.param(p, id=p.name.split(".")[0][:40], marks=pytest.mark.skipif(
            not p.exists(), reason=f"{p} is absent: the real-trace determinism cases need ../shared/traces")))
    return out


def _run(paths: list[Path]) -> dict:
    con = duckdb.connect()
    con.execute("SET threads = 2")
    return report.run([str(p) for p in paths], con=con)


@pytest.mark.parametrize("src", _cases())
def test_alone_in_dataset_and_shuffled_agree(src: Path, tmp_path: Path) -> None:
    if src.suffix == ".parquet":
        alone = src
    else:
        alone = tmp_path / "alone.parquet"
        convert(src, alone)
    trace = duckdb.sql(f"SELECT DISTINCT trace FROM read_parquet('{alone}')").fetchall()
    assert len(trace) == 1
    trace = trace[0][0]
    ds = tmp_path / "dataset"
    ds.mkdir()
    shutil.copy(alone, ds / "a.parquet")
    for f in sorted(OTHER.glob("*.parquet")):  # two more traces, files sorted before and after
        shutil.copy(f, ds / f.name)
    shuffled = shuffled_copy(alone, tmp_path / "shuffled.parquet")

    base = _run([alone])
    assert any(len(df) for df in base.values())
    assert not differences(base, _run([ds]), trace, skip=CROSS_TRACE), "alone vs inside a dataset"
    assert not differences(base, _run([shuffled]), trace), "alone vs rows shuffled"


@pytest.mark.parametrize("src", [pytest.param(p, id=p.name.split(".")[0][:40], marks=pytest.mark.skipif(
    not p.exists(), reason=f"{p} is absent: needs ../shared/traces")) for p in (REAL[0], REAL[3])])
def test_row_id_numbers_the_rows_of_a_trace(src: Path, tmp_path: Path) -> None:
    """row_id is 0..n-1 in file order; Kineto writes traceEvents order (seq), nsys repeats seq across tables."""
    out = tmp_path / "t.parquet"
    convert(src, out)
    n, ids_in_order, distinct_seq, seq_order = duckdb.connect().execute(f"""
        SELECT count(*), bool_and(row_id = file_row_number), count(DISTINCT seq),
               bool_and(row_id = rank_by_seq - 1)
        FROM (SELECT row_id, seq, file_row_number, row_number() OVER (ORDER BY seq, file_row_number) AS rank_by_seq
              FROM read_parquet('{out}', file_row_number = true))""").fetchone()
    assert ids_in_order
    if src.suffix == ".sqlite":
        assert distinct_seq < n  # seq is per nsys table: it cannot break ties, row_id can
    else:
        assert distinct_seq == n and seq_order


def test_files_without_row_id_get_their_positions() -> None:
    """A file converted before schema version 2 (the bundled samples) reads with row_id = position in the file."""
    from tracekit.store import connect

    assert "row_id" not in duckdb.sql(f"SELECT * FROM read_parquet('{SAMPLE}') LIMIT 0").columns
    con = connect(SAMPLE)
    n, ok = con.execute("SELECT count(*), bool_and(row_id = seq) FROM events").fetchone()
    # the sample's converter numbered seq in traceEvents order and wrote rows in that order
    assert n > 1000 and ok


# ---- the analyses other verbs run: export_chrome, graph_map, diff --------------------------------------

def _trace_of(path: Path) -> str:
    return duckdb.sql(f"SELECT DISTINCT trace FROM read_parquet('{path}')").fetchall()[0][0]


@pytest.mark.parametrize("src", [pytest.param(SAMPLE, id="sample-spec_decode")] + [
    pytest.param(p, id=p.name.split(".")[0][:40], marks=pytest.mark.skipif(not p.exists(), reason=f"{p} is absent: needs ../shared/traces"))
    for p in (REAL[0], REAL[3])])
def test_export_chrome_bytes_do_not_depend_on_row_order(src: Path, tmp_path: Path) -> None:
    from tracekit.export_chrome import export_chrome

    alone = src if src.suffix == ".parquet" else tmp_path / "alone.parquet"
    if alone != src:
        convert(src, alone)
    trace = _trace_of(alone)
    ds = tmp_path / "ds"
    ds.mkdir()
    shutil.copy(alone, ds / "a.parquet")
    for f in sorted(OTHER.glob("*.parquet")):
        shutil.copy(f, ds / f.name)
    shuffled = shuffled_copy(alone, tmp_path / "shuffled.parquet")
    outs = []
    for i, path in enumerate((alone, shuffled, ds)):
        out = tmp_path / f"slice{i}.json"
        export_chrome([path], out, trace=trace)
        outs.append(out.read_bytes())
    assert len(outs[0]) > 1000 and outs[0] == outs[1] == outs[2]


def test_graph_map_does_not_depend_on_row_order(tmp_path: Path) -> None:
    from tests import planted
    from tracekit.graphmap import graph_map

    p = tmp_path / "planted.parquet"
    convert(planted.write(tmp_path / "planted.json"), p)
    shuffled = shuffled_copy(p, tmp_path / "shuffled.parquet", row_group=3)
    a, b = graph_map(p, p), graph_map(shuffled, shuffled)
    assert sum(len(df) for df in a.values()) > 0
    assert not differences(a, b, trace=None)


@pytest.mark.skipif(not (KINETO_DIR / "hta" / "trace_diff").exists(), reason="../shared/traces is absent: the diff pair is HTA's trace_diff")
def test_diff_does_not_depend_on_row_order(tmp_path: Path) -> None:
    from tracekit.compare import diff

    pair = []
    for name in ("control", "test"):
        p = tmp_path / f"{name}.parquet"
        convert(KINETO_DIR / "hta" / "trace_diff" / name / f"{name}.json.gz", p)
        pair.append(p)
    shuffled = [shuffled_copy(p, tmp_path / f"{p.stem}_shuffled.parquet", seed=i) for i, p in enumerate(pair)]
    a, b = diff([str(pair[0])], [str(pair[1])]), diff([str(shuffled[0])], [str(shuffled[1])])
    assert sum(len(df) for df in a.values()) > 0
    assert not differences(a, b, trace=None)


# ---- compare.sql and diff.sql over several runs (bundled samples: no ../shared needed) -------------------

SAMPLE_K4 = REPO / "samples" / "traces" / "spec_decode_k4" / "parquet" / "24035-spec_decode.parquet"


def _shuffled_run(files: list[Path], dst: Path, seed: int) -> list[str]:
    """Each file of a run with its rows shuffled (seed per file), in small row groups."""
    dst.mkdir()
    return [str(shuffled_copy(f, dst / f.name, seed=seed + i, row_group=991)) for i, f in enumerate(files)]


def test_compare_does_not_depend_on_row_order(tmp_path: Path) -> None:
    """compare.sql's every output (matrix, sweep, phases, noise, step values, tokens) on shuffled copies of three runs, one of two ranks."""
    from tracekit.compare import compare

    runs = {"k4": [SAMPLE_K4], "stack": [SAMPLE], "serve": sorted(OTHER.glob("*.parquet"))}
    assert len(runs["serve"]) == 2
    a = compare([(label, [str(f) for f in files]) for label, files in runs.items()])
    b = compare([(label, _shuffled_run(files, tmp_path / label, seed=11 * i))
                 for i, (label, files) in enumerate(runs.items())])
    assert set(a) == {"compare", "compare.sweep", "compare.phases", "compare.noise", "compare.step_values", "compare.tokens"}
    assert len(a["compare"]) > 20 and len(a["compare.phases"]) > 0
    assert not differences(a, b, trace=None)


def test_diff_of_planted_pair_does_not_depend_on_row_order(tmp_path: Path) -> None:
    """diff.sql (deltas, moved kernels, new/vanished, noise, gate) on tests/diff_pairs.py's pair, rows shuffled."""
    from tests import diff_pairs
    from tracekit.compare import diff

    pair = []
    for name, f, add in (("a", 1.0, False), ("b", 1.2, True)):
        p = tmp_path / name / "run.parquet"
        convert(diff_pairs.write(tmp_path / name / "run.json.gz", f=f, add_kernel=add), p)
        pair.append(p)
    shuffled = [shuffled_copy(p, tmp_path / f"{p.parent.name}_shuffled.parquet", seed=i, row_group=3) for i, p in enumerate(pair)]
    conds = ["draft.ms_per_step > +5%"]
    a = diff([str(pair[0])], [str(pair[1])], conditions=conds)
    b = diff([str(shuffled[0])], [str(shuffled[1])], conditions=conds)
    assert len(a["diff"]) > 10 and len(a["diff.gate"]) == 1
    assert "added_kernel" in set(a["diff.new_vanished"]["name"]) and len(a["diff.kernels"]) >= 3
    assert not differences(a, b, trace=None)
