"""docs/queries.md, generated from the headers of ``queries/*.sql``: ``python -m tracekit.querydoc > docs/queries.md``.

Why generated: the column lists used to be prose that nothing checked, and fell behind the SELECTs. Now each
output declares its columns (``-- @column name TYPE meaning``) and each file its parameters (``-- @param``);
tests/test_sql_headers.py checks the declarations against real traces, and this page is made from them, so
the page cannot say anything the headers do not (tests/test_sql_headers.py fails when it is stale).
"""

from __future__ import annotations

from tracekit import report


def _cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _syntax() -> list[str]:
    return [
        "## Writing a header",
        "",
        "- `-- @output NAME` starts an output section; the comment lines right after it declare its columns in",
        "  the SELECT's order, one `-- @column name TYPE meaning` each. A meaning goes on over the next `--`",
        "  lines indented by three or more spaces; a bare `--` line ends it.",
        "- `-- @param name TYPE default [--flag] meaning` in the file's header (before its first `@output`), once",
        "  for each `getvariable('name')` the file reads (read by several files: declared in one of them, e.g.",
        "  `step_pattern` in lib/step_instances.sql, the module that defines a step).",
        f"  TYPE: {', '.join(report.PARAM_TYPES)} (`CHOICE(a,b)`: one of a, b); default: a SQL literal, or `-`",
        "  when the verb that runs the file sets it. `--flag`: the CLI option's spelling when it is not",
        "  `--name` with dashes.",
        "- tests/test_sql_headers.py runs every output on real traces and fails when a declaration and the",
        "  result disagree (names, order, DuckDB type), when a `getvariable` has no `@param` or two, and when",
        "  this page is stale.",
        "",
    ]


def _types() -> list[str]:
    out = [
        "## Column types",
        "",
        "What `-- @column name TYPE meaning` may declare. The report formats a column by its type (a result",
        "with no header, as `tracekit sql` on your own SQL, falls back on the column's name).",
        "",
        "| type | meaning | DuckDB types |",
        "|---|---|---|",
    ]
    for name, (meaning, sql_types) in report.COLUMN_TYPES.items():
        out.append(f"| `{name}` | {_cell(meaning)} | {', '.join(sorted(sql_types))} |")
    return [*out, ""]


def _default(p: report.Param) -> str:
    if p.default is report.SET_BY_CALLER:
        return "set by the verb"
    return f"`{report._sql_literal(p.default)}`"


def _params() -> list[str]:
    out = [
        "## Parameters",
        "",
        "Each `getvariable(name)` of the SQL, declared once (`-- @param name TYPE default meaning`) in the file",
        "that reads it. `tracekit report` and the other verbs set them to these defaults (`report.DEFAULTS`);",
        "the option overrides one; `tracekit sql -f FILE --param name=value` too.",
        "",
        "| parameter | type | default | option (in the verbs that offer it) | file | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for p in report.PARAMS.values():
        option = f"`{p.option}`" if p.default is not report.SET_BY_CALLER else ""
        typ = f"{p.type}({', '.join(p.choices)})" if p.choices else p.type
        out.append(f"| `{p.name}` | {typ} | {_cell(_default(p))} | {option} | {p.file}.sql | {_cell(p.meaning)} |")
    return [*out, ""]


def _file(name: str) -> list[str]:
    sf = report.parse_sql(report.QUERY_DIR / f"{name}.sql")
    out = [f"### {name}.sql", "", report.describe(name), ""]
    if sf.requires:
        out += ["Requires: " + ", ".join(f"{r}.sql" for r in sf.requires) + ".", ""]
    if name in report.VERB_OF:
        out += [f"Run by `tracekit {report.VERB_OF[name]}`.", ""]
    for output, _ in sf.outputs:
        key = name if output == name else f"{name}.{output}"
        out += [f"#### `{key}`", "", "| column | type | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | {c.type} | {_cell(c.meaning)} |" for c in sf.columns.get(output, [])]
        out.append("")
    return out


def markdown() -> str:
    """The whole page."""
    lines = [
        "# Query files",
        "",
        "Generated from the headers of `queries/*.sql` by `python -m tracekit.querydoc > docs/queries.md`;",
        "do not edit by hand. Report analyses first, in report order.",
        "",
    ]
    lines += _syntax() + _types() + _params() + ["## Files and their outputs", ""]
    for name in report.list_queries(private=True):
        lines += _file(name)
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(markdown())
