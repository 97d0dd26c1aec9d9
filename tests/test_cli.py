"""The CLI verbs convert / sql / info: outputs, formats, caching, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from click.testing import CliRunner

from tests.test_kineto_phases import EVENTS
from tracekit.cli import cli


def test_convert_sql_info(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    src = write_trace(EVENTS, name="demo.json")
    out = tmp_path / "demo.parquet"
    r = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert f"{len(EVENTS)} events" in r.output
    r = CliRunner().invoke(cli, ["sql", str(out), "SELECT kind, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "--format", "json"])
    assert json.loads(r.output) == [{"kind": "kernel", "n": 10}, {"kind": "range", "n": 5}, {"kind": "runtime", "n": 7}]
    r = CliRunner().invoke(cli, ["sql", str(out), "-q", "SELECT count(*) AS n FROM kernels", "--format", "csv"])
    assert r.output.splitlines() == ["n", "10"]
    r = CliRunner().invoke(cli, ["info", str(out), "--json"])
    info = json.loads(r.output)
    assert info["traces"]["demo"]["events"] == len(EVENTS)
    assert {k["kind"]: k["events"] for k in info["kinds"]} == {"kernel": 10, "range": 5, "runtime": 7}


def test_raw_trace_is_converted_and_cached(write_trace: Callable[..., Path]) -> None:
    src = write_trace(EVENTS, name="raw.json")
    r = CliRunner().invoke(cli, ["sql", str(src), "SELECT count(*) AS n FROM ranges", "--format", "csv"])
    assert r.output.splitlines() == ["n", "5"]
    cache = src.with_name("raw.json.tracekit.parquet")
    assert cache.exists()
    mtime = cache.stat().st_mtime_ns
    CliRunner().invoke(cli, ["info", str(src)])
    assert cache.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_dataset_folder(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    a = write_trace(EVENTS, name="rank0.json")
    b = write_trace(EVENTS[:5], name="rank1.json")
    ds = tmp_path / "ds"
    r = CliRunner().invoke(cli, ["convert", str(a), str(b), "-o", str(ds), "--jobs", "2"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["sql", str(ds), "SELECT trace, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "--format", "json"])
    assert json.loads(r.output) == [{"trace": "rank0", "n": len(EVENTS)}, {"trace": "rank1", "n": 5}]


def test_folder_of_raw_traces(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    """A folder holding only raw traces (per-rank downloads) stands for them, each converted and cached."""
    runs = tmp_path / "run"
    runs.mkdir()
    (runs / "r1").mkdir()
    write_trace(EVENTS, name="run/rank0.json")
    write_trace(EVENTS[:5], name="run/r1/rank1.json")
    (runs / "123.proc.json").write_text("{}")  # a capture's process record: not a trace
    r = CliRunner().invoke(cli, ["sql", str(runs), "SELECT trace, count(*) AS n FROM events GROUP BY 1 ORDER BY 1", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == [{"trace": "rank0", "n": len(EVENTS)}, {"trace": "rank1", "n": 5}]
    assert (runs / "r1" / "rank1.json.tracekit.parquet").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    r = CliRunner().invoke(cli, ["sql", str(empty), "SELECT 1"])
    assert r.exit_code == 2 and "no .parquet files and no raw traces" in r.output


def test_bad_input_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json at all")
    p = subprocess.run([sys.executable, "-m", "tracekit", "convert", str(bad), "-o", str(tmp_path / "o.parquet")],
                       capture_output=True, text=True)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and str(bad) in p.stderr
    assert not (tmp_path / "o.parquet").exists()


def test_convert_never_imports_pandas(write_trace: Callable[..., Path], tmp_path: Path) -> None:
    """The convert path builds Arrow buffers itself (tracekit/ingest/arrays.py): importing pandas would
    cost 0.2 s and ~35 MB per conversion, so a stray `pa.array(...)` on a hot path fails here."""
    src = write_trace(EVENTS, name="np.json")
    code = ("import sys; from tracekit.ingest import convert; "
            f"convert({str(src)!r}, {str(tmp_path / 'np.parquet')!r}); print('pandas' in sys.modules)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "False"
