"""Start-up: ``tracekit sql``, ``tracekit info`` and ``tracekit report`` (terminal, --json) load no module
they do not use (issue 14).

Why: pandas alone was 0.9 s of a 1.3 s ``tracekit sql small.parquet "select 1"``; pyarrow a further
0.2 s. The verbs print DuckDB rows with rich and read Parquet footers with DuckDB, so none of
pandas, pyarrow (or its compute kernels), numpy or matplotlib should be imported. ``report`` reads
result rows with their SQL types (tracekit/rows.py), ``--html`` too (SVG figures, issue 25). The check looks at
``sys.modules`` after the real command ran in a fresh interpreter, so any import on the path counts,
whoever adds it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit import schema, store

REPO = Path(__file__).resolve().parents[1]
SAMPLE = sorted((REPO / "samples" / "traces" / "spec_decode_k4" / "parquet").glob("*.parquet"))[0]
HEAVY = ("pandas", "pyarrow", "pyarrow.compute", "numpy", "matplotlib")

RUN = """
import json, runpy, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["tracekit", *json.loads(sys.argv[1])]
try:
    runpy.run_module("tracekit", run_name="__main__")
except SystemExit as e:
    code = e.code
else:
    code = 0
print(json.dumps({"code": code, "loaded": [m for m in heavy if m in sys.modules]}), file=sys.stderr)
"""


def _loaded(args: list[str]) -> tuple[int, list[str], str]:
    p = subprocess.run([sys.executable, "-c", RUN, json.dumps(args), json.dumps(HEAVY)], capture_output=True,
                       text=True, cwd=REPO)
    last = json.loads(p.stderr.strip().splitlines()[-1])
    return last["code"], last["loaded"], p.stdout


@pytest.mark.parametrize("args", [
    ["sql", str(SAMPLE), "SELECT 1 AS one"],
    ["sql", str(SAMPLE), "SELECT kind, count(*) AS n, sum(dur_ns) / 1e6 AS ms FROM events GROUP BY 1 ORDER BY 1"],
    ["info", str(SAMPLE)],
], ids=["sql-select-1", "sql-group-by", "info"])
def test_sql_and_info_load_no_heavy_modules(args: list[str]) -> None:
    code, loaded, out = _loaded(args)
    assert code == 0
    assert loaded == [], f"{' '.join(args[:1])} imported {loaded}"
    assert out.strip()  # it printed its table


def test_sql_table_values() -> None:
    """The pandas-free table path prints DuckDB's values: the cpu_op count, counted here with pyarrow."""
    import pyarrow.parquet as pq

    n = pq.read_table(SAMPLE, columns=["kind"]).column("kind").to_pylist().count("cpu_op")
    code, _, out = _loaded(["sql", str(SAMPLE), "SELECT kind, count(*) AS n FROM events WHERE kind = 'cpu_op' GROUP BY 1"])
    assert code == 0
    row = [ln for ln in out.splitlines() if "cpu_op" in ln]
    assert len(row) == 1 and f"{n:,}" in row[0].split()


def test_metadata_key_matches_schema() -> None:
    """store spells the metadata key out (no pyarrow import); it must stay the schema's."""
    assert store.META_TRACES_KEY.encode() == schema.META_TRACES


REPORT_SAMPLE = sorted((REPO / "samples" / "traces" / "serve_2workers" / "parquet").glob("*.parquet"))


@pytest.mark.parametrize("args", [
    ["report", str(SAMPLE)],
    ["report", str(SAMPLE), "--json"],
    ["report", *map(str, REPORT_SAMPLE), "--full", "--width", "100"],
], ids=["report", "report-json", "report-full-two-ranks"])
def test_report_loads_no_heavy_modules(args: list[str]) -> None:
    code, loaded, out = _loaded(args)
    assert code == 0
    assert loaded == [], f"{' '.join(args[:1])} imported {loaded}"
    assert out.strip()


def test_report_json_without_pandas_values() -> None:
    """The pandas-free JSON carries DuckDB's values: summary's row count per kind is the Parquet file's."""
    import pyarrow.parquet as pq

    kinds = pq.read_table(SAMPLE, columns=["kind"]).column("kind").to_pylist()
    code, loaded, out = _loaded(["report", str(SAMPLE), "--json"])
    assert code == 0 and loaded == []
    doc = json.loads(out)
    assert doc["summary"]["summary"][0]["events"] == len(kinds)


def test_report_html_loads_no_heavy_modules(tmp_path: Path) -> None:
    """``report --html``: the page's figures are SVG written directly, its tables and timeline read Rows and the
    median step is exported from DuckDB's tuples: no pandas, matplotlib, pyarrow or numpy (issue 25 item 3)."""
    page = tmp_path / "r.html"
    code, loaded, out = _loaded(["report", *map(str, REPORT_SAMPLE), "--html", str(page)])
    assert code == 0
    assert loaded == [], f"report --html imported {loaded}"
    assert "<svg class='fig'" in page.read_text() and "median_step" in out
    assert len(list(tmp_path.glob("r.median_step.*.json.gz"))) == len(REPORT_SAMPLE) == 2


#: What ``tracekit convert EXPORT.sqlite -o OUT`` must not load (issue 25 item 4): pandas (pyarrow's probes of
#: Python values import it unless hidden; the ADBC DB-API imports it through pyarrow.dataset), DuckDB (nothing is
#: queried), the DB-API module itself, the Kineto reader, and the dataset/query modules of a folder output.
CONVERT_NOT = ("pandas", "duckdb", "adbc_driver_manager.dbapi", "pyarrow.dataset", "tracekit.ingest.kineto",
               "tracekit.store", "tracekit.dataset", "matplotlib")

# The CLI ends a one-file conversion with os._exit (tracekit.cli.exit_now): the report is printed from there.
RUN_EXIT = """
import json, os, runpy, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["tracekit", *json.loads(sys.argv[1])]
real_exit = os._exit
def report(code, exit_now=True):
    print(json.dumps({"code": code, "exit_now": exit_now, "loaded": [m for m in heavy if m in sys.modules]}), file=sys.stderr)
    sys.stderr.flush()
    real_exit(code)
os._exit = report
try:
    runpy.run_module("tracekit", run_name="__main__")
except SystemExit as e:
    report(e.code, False)
report(0, False)
"""


def test_convert_nsys_loads_only_what_it_uses(tmp_path: Path) -> None:
    """A one-file nsys conversion imports none of :data:`CONVERT_NOT`, ends by ``exit_now`` after its summary line,
    and writes the table the library's ``convert`` writes (pandas loaded in this process): hiding pandas from
    pyarrow changes no value."""
    import pyarrow.parquet as pq

    from tests import planted
    from tracekit.ingest import convert

    src = planted.write_nsys(tmp_path / "planted.sqlite")
    out = tmp_path / "cli.parquet"
    p = subprocess.run([sys.executable, "-c", RUN_EXIT, json.dumps(["convert", str(src), "-o", str(out)]),
                        json.dumps(CONVERT_NOT)], capture_output=True, text=True, cwd=REPO)
    last = json.loads(p.stderr.strip().splitlines()[-1])
    assert last["code"] == 0 and last["exit_now"]
    assert last["loaded"] == [], f"convert of an nsys export imported {last['loaded']}"
    said = " ".join(p.stderr.split())  # rich wraps the line at the console's width
    assert f"{out}: " in said and "events (trace 'planted')" in said  # the summary got out before os._exit
    convert(src, tmp_path / "lib.parquet", trace="planted")
    assert pq.read_table(out).equals(pq.read_table(tmp_path / "lib.parquet"), check_metadata=True)
