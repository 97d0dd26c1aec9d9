"""Lint the SQL of ``queries/``: every statement parses as DuckDB, and the layout rules hold.

Why sqlglot and not sqlfluff: sqlfluff 4.5 (dialect duckdb) could not parse 4 of the 25 files
(``CREATE TABLE t(cols) AS VALUES``, the ``lambda a, b: ...`` syntax, ``AS overlaps``, a CASE with
``IS NOT DISTINCT FROM``) and took 60 s for one rule on this 2-core machine; sqlglot parses every
statement in about 1 s, and the layout rules below are a few lines each.

Rules (each finding is one ``FILE:LINE: rule: message`` line; exit 1 when there is any):

- ``parse``: each statement parses with ``sqlglot.parse(read="duckdb")``. sqlglot cannot read a macro
  whose body is a bare ``'text' || x`` expression, so such a macro's body is parsed as ``SELECT <body>``.
- ``line-length``: at most :data:`MAX_LINE` characters, unless the overflow is one word that no break can
  split (at least :data:`UNBREAKABLE` characters without a space, the rest of the line fitting): the
  ``step_pattern`` regex default of its ``@param`` line is one such word.
- ``tab``, ``trailing-space``, ``final-newline`` (exactly one at the end).
- ``keyword-case``: the clause and operator keywords of :data:`KEYWORDS` in upper case (function names
  such as ``first()`` or ``range()`` and column names are left as written).
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

MAX_LINE = 120
#: A word (no spaces) this long cannot be wrapped: a line over MAX_LINE only because of it is allowed.
UNBREAKABLE = 60
ROOT = Path(__file__).resolve().parents[1]

#: Keywords that are never a function or column name in DuckDB SQL, so lower case can only be style.
KEYWORDS = frozenset(
    (
        "SELECT",
        "FROM",
        "WHERE",
        "JOIN",
        "ON",
        "GROUP",
        "ORDER",
        "BY",
        "AS",
        "CASE",
        "WHEN",
        "THEN",
        "ELSE",
        "END",
        "AND",
        "OR",
        "NOT",
        "IN",
        "IS",
        "NULL",
        "WITH",
        "RECURSIVE",
        "UNION",
        "INTERSECT",
        "EXCEPT",
        "ALL",
        "DISTINCT",
        "HAVING",
        "QUALIFY",
        "LIMIT",
        "OFFSET",
        "OVER",
        "PARTITION",
        "CREATE",
        "TABLE",
        "VIEW",
        "MACRO",
        "TEMP",
        "TEMPORARY",
        "INSERT",
        "INTO",
        "VALUES",
        "INNER",
        "OUTER",
        "CROSS",
        "FULL",
        "USING",
        "BETWEEN",
        "LIKE",
        "ILIKE",
        "EXISTS",
        "ASC",
        "DESC",
        "NULLS",
        "WINDOW",
        "ROWS",
        "PRECEDING",
        "FOLLOWING",
        "UNBOUNDED",
        "CURRENT",
        "ROW",
        "SET",
        "VARIABLE",
        "DROP",
        "IF",
        "CAST",
    )
)

_MACRO_BODY = re.compile(r"\bMACRO\s+[\w.]+\s*\([^)]*\)\s+AS\s+(.*?);?\s*$", re.S | re.I)


def sql_files(paths: list[str]) -> list[Path]:
    """The ``.sql`` files named or under the folders named, sorted (so findings come in a stable order)."""
    out: list[Path] = []
    for p in map(Path, paths):
        out += sorted(p.rglob("*.sql")) if p.is_dir() else [p]
    return out


def layout(lines: list[str]) -> Iterator[tuple[int, str, str]]:
    """(line number, rule, message) for tabs, trailing spaces and long lines."""
    for no, line in enumerate(lines, 1):
        if "\t" in line:
            yield no, "tab", "a tab (indent with spaces)"
        if line != line.rstrip():
            yield no, "trailing-space", "spaces at the end of the line"
        if len(line) > MAX_LINE and not _unbreakable(line):
            yield no, "line-length", f"{len(line)} characters (at most {MAX_LINE})"


def _unbreakable(line: str) -> bool:
    """Whether ``line`` is long only because of one word that no line break can split."""
    word = max(line.split(), key=len, default="")
    return len(word) >= UNBREAKABLE and len(line) - len(word) <= MAX_LINE


def keyword_case(text: str) -> Iterator[tuple[int, str, str]]:
    """Lower- or mixed-case keywords of :data:`KEYWORDS` (comments and strings are not tokens, so not read)."""
    for tok in sqlglot.Dialect.get_or_raise("duckdb").tokenize(text):
        if tok.token_type in (TokenType.VAR, TokenType.STRING, TokenType.IDENTIFIER):
            continue
        words = tok.text.split()
        if any(w.upper() in KEYWORDS and w != w.upper() for w in words):
            yield tok.line, "keyword-case", f"{tok.text!r}: keywords in upper case"


def _statements(text: str) -> list[exp.Expression | None]:
    """sqlglot's parse of ``text``, quietly (its fallback warnings are findings here, not log lines)."""
    log = logging.getLogger("sqlglot")
    level, log.level = log.level, logging.ERROR
    try:
        return sqlglot.parse(text, read="duckdb")
    finally:
        log.setLevel(level)


def parse_errors(text: str) -> Iterator[tuple[int, str, str]]:
    """Statements sqlglot cannot read as DuckDB (a macro with a bare expression body: read as SELECT)."""
    try:
        stmts = _statements(text)
    except (ParseError, TokenError) as e:
        errs = getattr(e, "errors", None) or [{}]
        yield int(errs[0].get("line") or 1), "parse", str(e).splitlines()[0]
        return
    for s in stmts:
        if not isinstance(s, exp.Command):
            continue
        raw = s.sql(dialect="duckdb")
        body = _MACRO_BODY.search(raw)
        try:
            if body is None:
                raise ParseError("statement read only as an opaque command")
            sqlglot.parse_one(f"SELECT {body.group(1)}", read="duckdb")
        except (ParseError, TokenError) as e:
            first = raw.lstrip().splitlines()[0][:60] if raw.strip() else ""
            no = next((i for i, ln in enumerate(text.splitlines(), 1) if first and first in ln), 1)
            yield no, "parse", f"{str(e).splitlines()[0]}: {first}"


def lint(path: Path) -> list[tuple[int, str, str]]:
    """Every finding in one file, by line."""
    text = path.read_text()
    found = list(layout(text.splitlines()))
    if not text.endswith("\n") or text.endswith("\n\n"):
        found.append((len(text.splitlines()), "final-newline", "the file must end with exactly one newline"))
    found += keyword_case(text)
    found += parse_errors(text)
    return sorted(found)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", default=[str(ROOT / "queries")])
    args = ap.parse_args(argv)
    files = sql_files(args.paths)
    bad = 0
    for f in files:
        for no, rule, msg in lint(f):
            print(f"{f}:{no}: {rule}: {msg}")
            bad += 1
    print(f"{len(files)} SQL files, {bad} findings", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
