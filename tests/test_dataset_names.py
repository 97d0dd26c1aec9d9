"""Issue 24 item 4: a dataset never loses a trace (tracekit/naming.py).

Each input is a constructed Kineto trace that states its own rank (``distributedInfo.rank``), a number
chosen per input below; the sidecar's ``rank`` of a file therefore says which input the file came from,
without trusting the naming code. Expected file names are worked out by hand from the rule in
tracekit/naming.py's docstring (and README, "Past one machine").
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path

import pyarrow.dataset as pads
import pytest
from click.testing import CliRunner

from tests.planted import _k, _rt, _x
from tracekit import dataset, naming
from tracekit.cli import cli


def _trace(path: Path, rank: int) -> Path:
    """One step with one kernel; the rank (and so the bytes) differ per input. ``.gz`` names are gzipped."""
    doc = {"schemaVersion": 1, "distributedInfo": {"rank": rank, "world_size": 8},
           "traceEvents": [_x("user_annotation", "ProfilerStep#1", 0, 1000), _rt("cudaLaunchKernel", 100, 10, 1),
                           _k("gemm", 200, 100 + rank, 1)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def run(cwd: Path, *args: str):  # type: ignore[no-untyped-def]
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        os.chdir(old)


def one_line_error(r, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    assert r.exit_code == 2, (r.exit_code, r.output, r.exception)
    assert isinstance(r.exception, SystemExit) and "Traceback" not in r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tracekit: error: "), r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


def files(ds: Path) -> list[str]:
    return sorted(p.name for p in ds.iterdir())


def ranks(ds: Path) -> dict[str, tuple[str, int]]:
    """file -> (trace id, rank) from the sidecar."""
    return {r["file"]: (r["trace"], r["rank"]) for r in dataset.read_sidecar(str(ds)).to_pylist()}


def report_traces(cwd: Path, ds: str) -> list[str]:
    """The traces `tracekit report DS --json` reads (its summary has one row per trace)."""
    r = run(cwd, "report", ds, "--json")
    assert r.exit_code == 0, r.output
    return sorted(row["trace"] for row in json.loads(r.stdout)["summary"]["summary"])


def test_two_commands_with_trace_names_keep_both(tmp_path: Path) -> None:
    _trace(tmp_path / "a" / "trace.json", 0), _trace(tmp_path / "b" / "trace.json", 1)
    r = run(tmp_path, "convert", "a/trace.json", "--trace", "A", "-o", "ds/")
    assert r.exit_code == 0, r.output
    r = run(tmp_path, "convert", "b/trace.json", "--trace", "B", "-o", "ds/")
    assert r.exit_code == 0, r.output
    assert files(tmp_path / "ds") == ["A.parquet", "B.parquet", "_tracekit"]
    assert ranks(tmp_path / "ds") == {"A.parquet": ("A", 0), "B.parquet": ("B", 1)}
    assert "the dataset holds 2 traces" in r.stderr
    assert report_traces(tmp_path, "ds/") == ["A", "B"]


def test_one_command_same_file_names_take_their_folders(tmp_path: Path) -> None:
    _trace(tmp_path / "a" / "trace.json", 0), _trace(tmp_path / "b" / "trace.json", 1)
    r = run(tmp_path, "convert", "a/trace.json", "b/trace.json", "-o", "ds/")
    assert r.exit_code == 0, r.output
    assert "2 of 2 traces converted (0 skipped" in r.stderr and "the dataset holds 2 traces" in r.stderr
    assert ranks(tmp_path / "ds") == {"a__trace.parquet": ("a__trace", 0), "b__trace.parquet": ("b__trace", 1)}
    mtimes = {f: (tmp_path / "ds" / f).stat().st_mtime_ns for f in ("a__trace.parquet", "b__trace.parquet")}
    r = run(tmp_path, "convert", "a/trace.json", "b/trace.json", "-o", "ds/")  # the same command again: same names
    assert r.exit_code == 0 and "2 of 2 traces converted (2 skipped" in r.stderr, r.output
    assert {f: (tmp_path / "ds" / f).stat().st_mtime_ns for f in mtimes} == mtimes
    r = run(tmp_path / "a", "convert", "trace.json", "-o", "../ds/")  # one of them alone, from another folder
    assert r.exit_code == 0 and "a__trace.parquet" in r.stderr and "holds 2 traces" in r.stderr, r.output
    assert files(tmp_path / "ds") == ["_tracekit", "a__trace.parquet", "b__trace.parquet"]
    assert report_traces(tmp_path, "ds") == ["a__trace", "b__trace"]


def test_rank_folders_as_many_as_tell_them_apart(tmp_path: Path) -> None:
    """run1/rank0, run2/rank0 need two folders; run1/rank1 is told apart by one (worked by hand)."""
    ins = {"run1/rank0/trace.json": 0, "run2/rank0/trace.json": 1, "run1/rank1/trace.json": 2}
    for rel, rank in ins.items():
        _trace(tmp_path / rel, rank)
    r = run(tmp_path, "convert", *ins, "-o", "ds/")
    assert r.exit_code == 0, r.output
    assert ranks(tmp_path / "ds") == {"run1__rank0__trace.parquet": ("run1__rank0__trace", 0),
                                      "run2__rank0__trace.parquet": ("run2__rank0__trace", 1),
                                      "rank1__trace.parquet": ("rank1__trace", 2)}


def test_names_differing_only_in_case_are_one_name(tmp_path: Path) -> None:
    """macOS and Windows folders would hold Trace.parquet and trace.parquet as one file."""
    _trace(tmp_path / "a" / "Trace.json", 0), _trace(tmp_path / "b" / "trace.json", 1)
    r = run(tmp_path, "convert", "a/Trace.json", "b/trace.json", "-o", "ds/")
    assert r.exit_code == 0, r.output
    assert ranks(tmp_path / "ds") == {"a__Trace.parquet": ("a__Trace", 0), "b__trace.parquet": ("b__trace", 1)}


def test_a_name_another_input_holds_is_refused_naming_both(tmp_path: Path) -> None:
    _trace(tmp_path / "a" / "trace.json", 0), _trace(tmp_path / "b" / "trace.json", 1)
    assert run(tmp_path, "convert", "a/trace.json", "-o", "ds/").exit_code == 0
    before = {f: (tmp_path / "ds" / f).read_bytes() for f in ("trace.parquet", "_tracekit/traces.parquet")}
    r = run(tmp_path, "convert", "b/trace.json", "-o", "ds/")
    one_line_error(r, "b/trace.json", str(tmp_path / "a" / "trace.json"), "'trace'", "--force")
    assert {f: (tmp_path / "ds" / f).read_bytes() for f in before} == before
    assert files(tmp_path / "ds") == ["_tracekit", "trace.parquet"]
    r = run(tmp_path, "convert", "b/trace.json", "-o", "ds/", "--force")  # said so: replaced
    assert r.exit_code == 0, r.output
    assert ranks(tmp_path / "ds") == {"trace.parquet": ("trace", 1)}


def test_a_trace_id_held_in_another_file_is_refused(tmp_path: Path) -> None:
    """ds/x.parquet holds trace 'A' (named so by --trace into a single file): a new ds/A.parquet would repeat it."""
    _trace(tmp_path / "a.json", 0), _trace(tmp_path / "b.json", 1)
    (tmp_path / "ds").mkdir()
    assert run(tmp_path, "convert", "a.json", "--trace", "A", "-o", "ds/x.parquet").exit_code == 0
    one_line_error(run(tmp_path, "convert", "b.json", "--trace", "A", "-o", "ds/"), "b.json", str(tmp_path / "a.json"))
    assert files(tmp_path / "ds") == ["x.parquet"]


def test_rerun_of_the_same_input_replaces_its_own_file(tmp_path: Path) -> None:
    src = _trace(tmp_path / "a" / "trace.json", 0)
    assert run(tmp_path, "convert", "a/trace.json", "-o", "ds/").exit_code == 0
    _trace(src, 5)  # captured again, same path
    r = run(tmp_path, "convert", "a/trace.json", "-o", "ds/")
    assert r.exit_code == 0 and "1 of 1 traces converted (0 skipped" in r.stderr, r.output
    assert ranks(tmp_path / "ds") == {"trace.parquet": ("trace", 5)}


def test_trace_renames_the_inputs_own_file(tmp_path: Path) -> None:
    _trace(tmp_path / "a" / "trace.json", 0)
    assert run(tmp_path, "convert", "a/trace.json", "-o", "ds/").exit_code == 0
    r = run(tmp_path, "convert", "a/trace.json", "--trace", "A", "-o", "ds/")
    assert r.exit_code == 0 and "[replaces trace.parquet]" in r.stderr and "holds 1 trace " in r.stderr, r.output
    assert ranks(tmp_path / "ds") == {"A.parquet": ("A", 0)}
    assert files(tmp_path / "ds") == ["A.parquet", "_tracekit"]


def test_no_input_becomes_a_hidden_file(tmp_path: Path) -> None:
    """`_rank0.json.gz` -> rank0, `.json.gz` (no name) -> its folder's, r: every engine reads all three."""
    for name, rank in (("_rank0.json.gz", 0), (".json.gz", 1), ("ok.json.gz", 2)):
        _trace(tmp_path / "r" / name, rank)
    r = run(tmp_path, "convert", "r/_rank0.json.gz", "r/.json.gz", "r/ok.json.gz", "-o", "ds/")
    assert r.exit_code == 0, r.output
    assert "3 of 3 traces converted" in r.stderr and "the dataset holds 3 traces" in r.stderr
    ds = tmp_path / "ds"
    assert files(ds) == ["_tracekit", "ok.parquet", "r.parquet", "rank0.parquet"]
    assert ranks(ds) == {"rank0.parquet": ("rank0", 0), "r.parquet": ("r", 1), "ok.parquet": ("ok", 2)}
    assert report_traces(tmp_path, "ds/") == ["ok", "r", "rank0"]
    assert len(pads.dataset(str(ds), format="parquet").files) == 3  # pyarrow skips . and _ names: none here


def test_two_inputs_the_folders_cannot_part_are_refused_before_writing(tmp_path: Path) -> None:
    _trace(tmp_path / "r" / "ok.json", 0), _trace(tmp_path / "r" / "_ok.json", 1)
    r = run(tmp_path, "convert", "r/ok.json", "r/_ok.json", "-o", "ds/")
    one_line_error(r, "r/ok.json and r/_ok.json", "'ok'")
    assert not (tmp_path / "ds").exists()
    one_line_error(run(tmp_path, "convert", "r/ok.json", "r/ok.json", "-o", "ds/"), "r/ok.json", "given twice")


@pytest.mark.parametrize("bad", ["../evil", "a/b", "x\x1b[31my", ".hidden", "_x", "", "..", "a b"])
def test_trace_values_that_cannot_name_a_file_are_refused(tmp_path: Path, bad: str) -> None:
    _trace(tmp_path / "a.json", 0)
    line = one_line_error(run(tmp_path, "convert", "a.json", "--trace", bad, "-o", "ds/"), "--trace")
    assert "\x1b" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


@pytest.mark.parametrize("text, name", [
    ("my trace", "my_trace"), ("a\nb\tc", "a_b_c"), ("_rank0", "rank0"), ("..", ""), ("x/../y", "x_.._y"),
    ("__init__", "init__"), ("rank.", "rank"), ("échantillon", "échantillon"), ("a\u202eb", "a_b"),
])
def test_safe_name(text: str, name: str) -> None:
    assert naming.safe_name(text) == name


def test_long_names_are_cut_and_stay_apart() -> None:
    a, b = naming.safe_name("x" * 300 + "1"), naming.safe_name("x" * 300 + "2")
    assert len(a.encode()) == len(b.encode()) == naming.NAME_MAX and a != b
    assert a == "x" * (150 - 13) + "-" + hashlib.sha256(("x" * 300 + "1").encode()).hexdigest()[:12]
