"""The style checks of .ci/run catch what they promise: tools/lint_sql.py on planted SQL files.

Each planted problem sits on a line chosen here, so the expected (line, rule) pairs are known before
the linter runs; a clean file and a macro sqlglot reads only through the linter's fallback give none.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytest.importorskip("sqlglot", reason="the `lint` extra (sqlglot) is not installed")

ROOT = Path(__file__).resolve().parents[1]


def _lint_sql() -> ModuleType:
    """tools/lint_sql.py as a module (tools/ is not a package: it is run as a script by .ci/run)."""
    spec = importlib.util.spec_from_file_location("lint_sql", ROOT / "tools" / "lint_sql.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["lint_sql"] = mod
    spec.loader.exec_module(mod)
    return mod


LINT = _lint_sql()
LONG = "SELECT " + ", ".join(f"c{i:03d}" for i in range(40)) + " FROM t;"  # 7 + 40 * 6 - 2 + 8 = 253 columns

PLANTED = "\n".join([
    "SELECT 1 AS a;",  # 1: clean
    "select 2 AS b FROM t;",  # 2: keyword-case
    "SELECT\t3;",  # 3: tab
    "SELECT 4;  ",  # 4: trailing-space
    LONG,  # 5: line-length
    "SELECT first(x), range(3) AS overlaps FROM t WHERE a Is NULL;",  # 6: keyword-case ('Is' only)
    "CREATE OR REPLACE TEMP MACRO m(a) AS 'x: ' || a;",  # 7: clean (sqlglot's Command fallback, re-read)
    "-- @param p REGEX '" + "a|" * 70 + "b' the default: one 142-character word",  # 8: clean (unbreakable)
    "-- " + "word " * 30,  # 9: line-length (153 columns of words a break can split)
]) + "\n"


def test_each_planted_problem_is_found_on_its_line(tmp_path: Path) -> None:
    f = tmp_path / "planted.sql"
    f.write_text(PLANTED)
    found = {(no, rule) for no, rule, _ in LINT.lint(f)}
    assert found == {(2, "keyword-case"), (3, "tab"), (4, "trailing-space"), (5, "line-length"),
                     (6, "keyword-case"), (9, "line-length"), (9, "trailing-space")}, found


def test_a_statement_that_does_not_parse_is_named_with_its_line(tmp_path: Path) -> None:
    f = tmp_path / "broken.sql"
    f.write_text("SELECT 1;\n\nSELECT a FROM (SELECT b FROM t;\n")
    assert [(no, rule) for no, rule, _ in LINT.lint(f)] == [(3, "parse")]


def test_a_blank_line_at_the_end_is_a_finding(tmp_path: Path) -> None:
    f = tmp_path / "tail.sql"
    f.write_text("SELECT 1;\n\n")
    assert [rule for _, rule, _ in LINT.lint(f)] == ["final-newline"]


def test_a_long_line_fails_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = tmp_path / "q"
    d.mkdir()
    (d / "a.sql").write_text(f"SELECT 1;\n{LONG}\n")
    assert LINT.main([str(d)]) == 1
    assert "a.sql:2: line-length" in capsys.readouterr().out
    (d / "a.sql").write_text("SELECT 1;\n")
    assert LINT.main([str(d)]) == 0


def test_the_shipped_queries_pass_the_sql_linter(capsys: pytest.CaptureFixture[str]) -> None:
    """What .ci/run checks, here too, so that a pytest run alone shows a new long or lower-case line."""
    assert LINT.main([str(ROOT / "queries")]) == 0, capsys.readouterr().out
