"""docs/design.md's worked example is real: its module keeps the library's rules and gives nsys's own numbers.

Why: a design document whose example no longer runs teaches the wrong thing (datasette's rule: tests fail
when the docs fall behind the code). The example module (`queries/memory_ops.sql` in the doc, not shipped)
is read from the doc, checked against the module contract of tests/test_query_modules.py and the
declared-columns check of tests/test_sql_headers.py, and run on the real nsys exports whose golden
`nsys stats --report cuda_gpu_mem_time_sum` output (nsys 2022.4.2) we hold: count and total time per
operation must be nsys's, exactly.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from tests.conftest import NSYS_GOLDEN, nsys_files
from tests.test_query_modules import modules, violations
from tracekit import report
from tracekit.ingest import convert
from tracekit.rows import from_cursor
from tracekit.store import connect

DOC = Path(__file__).resolve().parents[1] / "docs" / "design.md"


def example() -> str:
    """The SQL block that follows the doc's `<!-- example: queries/memory_ops.sql -->` marker."""
    m = re.search(r"<!-- example: queries/memory_ops\.sql -->\n```sql\n(.*?)```", DOC.read_text(), re.S)
    assert m, "docs/design.md lost its worked example (the marker and the ```sql block after it)"
    return m.group(1)


def golden_exports() -> list[tuple[Path, Path]]:
    """(export, its stats_gpumemtimesum.csv) for every real nsys export with that golden report."""
    out = []
    for p in nsys_files():
        g = NSYS_GOLDEN / f"{p.parent.name}__{p.stem}" / "stats_gpumemtimesum.csv"
        if g.exists():
            out.append((p, g))
    return out


def test_the_example_keeps_the_module_rules() -> None:
    mods = modules()
    mods["memory_ops"] = example()
    bad = [v for v in violations(mods) if v.startswith("memory_ops")]
    assert not bad, bad


@pytest.mark.skipif(not golden_exports(), reason="no real nsys export with a golden stats_gpumemtimesum.csv")
@pytest.mark.parametrize("export,golden", golden_exports(), ids=lambda p: p.parent.name if p.suffix == ".csv" else "")
def test_the_example_gives_nsys_numbers(export: Path, golden: Path, tmp_path: Path) -> None:
    sql = tmp_path / "memory_ops.sql"
    sql.write_text(example())
    out = tmp_path / "t.parquet"
    convert(export, out)
    con = connect([str(out)])
    sf = report.parse_sql(sql)
    report.prepare(con, sf.requires)
    ((_, select),) = sf.outputs
    rows = from_cursor(con.execute(select))
    # the columns are what the example declares (names in order, DuckDB types allowed by each TYPE)
    decl = sf.columns["memory_ops"]
    assert [c.name for c in decl] == list(rows.columns)
    for c, t in zip(decl, rows.types):
        assert t in report.COLUMN_TYPES[c.type][1], (c.name, c.type, t)
    # nsys names an operation `[CUDA memcpy HtoD]` / `[CUDA memset]`; the example `memcpy HtoD` / `memset`
    want = {
        r["Operation"].strip("[]").removeprefix("CUDA "): (int(r["Count"]), int(r["Total Time (ns)"]))
        for r in csv.DictReader(golden.open())
    }
    got = {r["operation"]: (r["ops"], r["total_ns"]) for r in rows.records()}
    assert got == want
    assert abs(sum(r["share"] for r in rows.records()) - 1.0) < 1e-12
