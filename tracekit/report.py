"""Run the analyses in ``queries/``: the engine (parse the files, set the parameters, run them).

Every number comes from a SQL file in ``queries/``: this module only sets the
parameters and executes the files, so an analysis
is defined exactly once (users can read or rerun the same SQL with
``tracekit sql``). A file is split into sections by ``-- @output NAME`` lines:
statements before the first marker are set-up (temp tables, macros), each
section is one SELECT whose result is returned under ``NAME`` (``file`` for the
section named like the file, ``file.NAME`` for the others). A module's name is its path under
``queries/`` without ``.sql`` (``steps``, ``lib/gpu_activity``); building blocks that output
nothing live in ``queries/lib/``. A ``-- @requires a b`` line names every module whose tables or
macros the file reads (``headline`` reads ``steps``' and ``gpu_idle``'s tables, everything reads
``lib/gpu_activity``'s); :func:`setup_file` runs those set-ups first, depth first, each once per
connection (tests/test_query_modules.py checks that the lines are complete). Nothing is loaded
implicitly: :func:`prepare` sets the query variables and the Python-made tables, then loads the
modules asked for, for ``report``, ``sql -f``/``--query``, ``compare``/``diff`` and ``export-chrome``.

The headers are typed: each output section opens with one ``-- @column name TYPE meaning`` line per
column (:data:`COLUMN_TYPES`; the view formats by the type, tests/test_sql_headers.py checks it on real
traces), and each ``getvariable(name)`` is declared once, ``-- @param name TYPE default meaning``, in the
header of the file that reads it: :data:`DEFAULTS` and the CLI's query options are made from those lines,
docs/queries.md from all of them (``python -m tracekit.querydoc``).

Results are DataFrames (the documented API), Arrow tables (``arrow``) or, for the terminal and
JSON report, :class:`tracekit.rows.Rows` (``rows``): plain Python rows with their SQL types,
so ``tracekit report`` never imports pandas (issue 14: the import took longer than the queries on
a small trace). The view (:mod:`tracekit.view`: terminal, HTML, ``--json`` in
:mod:`tracekit.view.records`, warnings) accepts either, and never runs SQL: the timeline
the page draws runs here (``run(also=("timeline",))``, or :func:`run_timeline` after a report).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from tracekit.demangle import register
from tracekit.rows import from_cursor
from tracekit.store import META_VIEWS, connect, snapshot_meta

if TYPE_CHECKING:
    import pandas as pd

from tracekit.resources import queries_dir  # wheel: tracekit/_queries; checkout: queries/

QUERY_DIR = queries_dir()

#: Analyses in report order (each is ``queries/<name>.sql``; each loads the lib/ modules it requires).
ANALYSES = (
    "headline",
    "summary",
    "kernels",
    "phase_time",
    "steps",
    "launch",
    "syncs",
    "gpu_idle",
    "lm_head",
    "flops",
    "tokens",
    "trust",
    "comm",
    "collectives",
)

#: The declared type vocabulary of an output column (``-- @column name TYPE meaning``): the view formats a
#: column by it, and tests/test_sql_headers.py checks it against the DuckDB type of the column on real traces.
COLUMN_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    # TYPE: (what it means and how the report shows it, the DuckDB types it may have)
    "DURATION": (
        "nanoseconds of elapsed time; shown in one unit per column (ns, us, ms, s)",
        frozenset({"BIGINT", "HUGEINT", "INTEGER", "DOUBLE"}),
    ),
    "TIMESTAMP": (
        "nanoseconds on the trace's clock; shown bare (no separators)",
        frozenset({"BIGINT", "HUGEINT", "DOUBLE"}),
    ),
    "SHARE": ("a fraction, 0..1 unless said otherwise; shown as a percentage", frozenset({"DOUBLE", "FLOAT"})),
    "COUNT": (
        "how many; whole numbers with thousands separators",
        frozenset({"BIGINT", "HUGEINT", "INTEGER", "DOUBLE"}),
    ),
    "NUMBER": (
        (
            "any other quantity (a ratio, TFLOP/s, ms, tokens); decimals by magnitude, a column whose values"
            " are all whole shown as a count"
        ),
        frozenset({"DOUBLE", "FLOAT", "BIGINT", "HUGEINT", "INTEGER"}),
    ),
    "MEAN": ("an average of counts: always with decimals, even when whole", frozenset({"DOUBLE"})),
    "P_VALUE": (
        "a probability of a test; three decimals, or two significant digits below 0.001",
        frozenset({"DOUBLE"}),
    ),
    "VALUE": (
        "a value in the unit its row names (long tables: the row's unit column, else its metric's name)",
        frozenset({"DOUBLE", "BIGINT", "HUGEINT", "INTEGER"}),
    ),
    "ID": (
        "an identifier (thread, device, stream, step number); shown bare",
        frozenset({"BIGINT", "HUGEINT", "INTEGER", "UBIGINT"}),
    ),
    "BOOL": ("true or false; shown yes/no", frozenset({"BOOLEAN"})),
    "TEXT": ("a name or a label (JSON text too)", frozenset({"VARCHAR", "VARCHAR[]", "JSON"})),
    "NOTE": (
        (
            "a sentence that explains its row (why a value is NULL); empty when NULL, a footnote in the"
            " terminal and the page"
        ),
        frozenset({"VARCHAR"}),
    ),
    "FRAME": (
        "a Python frame, `file(line): function`; the terminal shows the file's last two path components",
        frozenset({"VARCHAR"}),
    ),
}

#: The types of a query parameter (``-- @param name TYPE default meaning``): its SQL type, and for the CLI the
#: Python type of its option (``tracekit.cli._params.query_options``). ``CHOICE(a,b)`` is TEXT limited to a, b.
PARAM_TYPES: dict[str, str] = {
    "TEXT": "VARCHAR",
    "REGEX": "VARCHAR",
    "COUNT": "BIGINT",
    "DURATION": "BIGINT",
    "NUMBER": "DOUBLE",
    "BOOL": "BOOLEAN",
    "CHOICE": "VARCHAR",
}

#: The default of a parameter that the verb running the file sets itself (written ``-``): not a user option.
SET_BY_CALLER = "-"


@dataclass(frozen=True)
class ColumnDecl:
    """One ``-- @column name TYPE meaning`` line of an output."""

    name: str
    type: str
    meaning: str


@dataclass(frozen=True)
class Param:
    """One ``-- @param name TYPE default [--flag] meaning`` line: a ``getvariable(name)`` the file reads.

    ``default``: the Python value of the SQL literal, or :data:`SET_BY_CALLER`. ``flag``: the CLI option's
    spelling when it is not ``--name`` with dashes (``--top`` for ``top_n``). ``choices``: for ``CHOICE(a,b)``.
    """

    name: str
    type: str
    default: Any
    meaning: str
    file: str
    flag: str | None = None
    choices: tuple[str, ...] = ()

    @property
    def option(self) -> str:
        """The CLI option that sets it."""
        return self.flag or "--" + self.name.replace("_", "-")


_OUTPUT = re.compile(r"^--\s*@output\s+([A-Za-z_][\w]*)\s*$", re.MULTILINE)
_REQUIRES = re.compile(r"^--\s*@requires\s+([\w/ ]+?)\s*$", re.MULTILINE)
_COLUMN = re.compile(r"^--\s*@column\s+(\w+)\s+([A-Z_]+)(?:\s+(?P<meaning>\S.*))?$")
_PARAM = re.compile(
    r"^--\s*@param\s+(\w+)\s+([A-Z_]+(?:\([\w,]+\))?)\s+"
    r"('(?:[^']|'')*'|NULL|TRUE|FALSE|-?\d+(?:\.\d+)?|-)(?:\s+(--[\w-]+))?(?:\s+(?P<meaning>\S.*))?$"
)
_MORE = re.compile(r"^--\s{3,}(\S.*)$")  # a meaning's next line: a comment indented past the ``-- @``


def _literal(text: str) -> Any:
    """The Python value of a default written as a SQL literal (``'a''b'``, NULL, TRUE, 50, 0.5) or ``-``."""
    if text == SET_BY_CALLER:
        return SET_BY_CALLER
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    return (
        {"NULL": None, "TRUE": True, "FALSE": False}.get(text)
        if text.isalpha()
        else (float(text) if "." in text else int(text))
    )


def _directives(lines: list[str], pattern: re.Pattern[str]) -> list[tuple[re.Match[str], str]]:
    """Each line of ``lines`` that ``pattern`` matches, with its meaning (group ``meaning``) and the lines that
    go on with it (comments indented past the ``-- @``) joined by single spaces."""
    out: list[tuple[re.Match[str], str]] = []
    i = 0
    while i < len(lines):
        m = pattern.match(lines[i]) if "@" in lines[i] else None  # the test first: this runs at every start-up
        i += 1
        if not m:
            continue
        meaning = [m.group("meaning") or ""]
        while i < len(lines) and (more := _MORE.match(lines[i])) and not more.group(1).startswith("@"):
            meaning.append(more.group(1).strip())
            i += 1
        out.append((m, " ".join(meaning).strip()))
    return out


def _leading_comments(section: str) -> list[str]:
    """The comment lines that open an output section (its ``@column`` block), up to its first SQL line."""
    out = []
    for line in section.splitlines():
        if line.strip() and not line.startswith("--"):
            break
        out.append(line)
    return out


def _params_of(name: str, header: str) -> list[Param]:
    params = []
    for m, meaning in _directives(header.splitlines(), _PARAM):
        typ, _, choices = m.group(2).partition("(")
        params.append(
            Param(
                m.group(1),
                typ,
                _literal(m.group(3)),
                meaning,
                name,
                m.group(4),
                tuple(choices.rstrip(")").split(",")) if choices else (),
            )
        )
    return params


@dataclass
class SqlFile:
    """One parsed query file: set-up statements, named output SELECTs, and what its header declares.

    ``columns``: per output name, its ``@column`` lines (the comment block that opens the output's section,
    so that a section split off by ``@output`` carries its own declaration); ``params``: the ``@param`` lines
    of the set-up part (the file header: they move with the file).
    """

    name: str
    setup: str
    outputs: list[tuple[str, str]] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)
    columns: dict[str, list[ColumnDecl]] = field(default_factory=dict)
    params: list[Param] = field(default_factory=list)

    def declared(self, output: str) -> tuple[str, ...]:
        """The declared types of ``output``'s columns in order (empty when it declares none)."""
        return tuple(c.type for c in self.columns.get(output, []))


def module_name(path: Path) -> str:
    """A shipped file's module name is its path under queries/ without ``.sql`` (``steps``, ``lib/idle``);
    a user's file is named by its stem."""
    try:
        return path.resolve().relative_to(QUERY_DIR.resolve()).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def parse_sql(path: Path) -> SqlFile:
    """Split ``path`` at its ``-- @output NAME`` markers; read its ``@requires``, ``@param`` and ``@column`` lines."""
    text = path.read_text()
    parts = _OUTPUT.split(text)
    name = module_name(path)
    sf = SqlFile(
        name,
        parts[0],
        requires=[r for m in _REQUIRES.findall(parts[0]) for r in m.split()],
        params=_params_of(name, parts[0]),
    )
    for i in range(1, len(parts), 2):
        sf.outputs.append((parts[i], parts[i + 1]))
        sf.columns[parts[i]] = [
            ColumnDecl(m.group(1), m.group(2), meaning)
            for m, meaning in _directives(_leading_comments(parts[i + 1]), _COLUMN)
        ]
    return sf


def _all_params() -> dict[str, Param]:
    """Every ``@param`` of the shipped query files, by name (analyses in report order, then the others)."""
    out: dict[str, Param] = {}
    for name in list_queries(private=True):
        # the header only (what precedes the first @output): this runs at import, on every start-up
        text = (QUERY_DIR / f"{name}.sql").read_text()
        first = _OUTPUT.search(text)
        header = text[: first.start()] if first else text
        for p in _params_of(name, header):
            out.setdefault(p.name, p)
    return out


def _sql_literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def set_params(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Any]:
    """Set every query variable (defaults overridden by ``params``); returns the values used."""
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown report parameter(s): {', '.join(sorted(unknown))}")
    used = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    for k, v in used.items():
        lit = _sql_literal(v)
        if v is None:  # typed even when NULL, so that comparisons bind as the type it has when set
            lit = f"CAST(NULL AS {PARAM_TYPES[PARAMS[k].type]})"
        con.execute(f"SET VARIABLE {k} = {lit}")
    return used


def _exec_script(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    if sql.strip() and re.sub(r"--[^\n]*", "", sql).strip():
        con.execute(sql)


def list_queries(private: bool = False) -> list[str]:
    """The shipped query files by name, report analyses first in report order (the building blocks
    ``lib/*`` after them, only if ``private``: they output nothing of their own)."""
    names = sorted(p.stem for p in QUERY_DIR.glob("*.sql"))
    lib = sorted(f"lib/{p.stem}" for p in (QUERY_DIR / "lib").glob("*.sql")) if private else []
    return [n for n in ANALYSES if n in names] + [n for n in names if n not in ANALYSES] + lib


#: Every query parameter, declared once by an ``@param`` line of the file that reads it (docs/queries.md).
PARAMS: dict[str, Param] = _all_params()

#: Default of every DuckDB variable a user may set (``getvariable(name)``): built from the ``@param`` lines, so
#: there is no second copy to fall behind; variables the verbs set themselves (``-``) are not among them.
DEFAULTS: dict[str, Any] = {n: p.default for n, p in PARAMS.items() if p.default is not SET_BY_CALLER}


#: Query files that need more than a trace (labelled runs, a slice, a reference): the verb that runs each.
VERB_OF = {
    "compare": "compare",
    "diff": "diff",
    "export_chrome": "export-chrome",
    "graph_map": "graphmap",
    "across_traces": "aggregate",
}


def describe(name: str) -> str:
    """The first sentence of ``queries/<name>.sql``'s header comment (its first paragraph), without ``name:``."""
    lines = []
    for line in (QUERY_DIR / f"{name}.sql").read_text().splitlines():
        text = re.sub(r"^--\s?", "", line).strip() if line.startswith("--") else ""
        if not text or text.startswith("@"):
            break
        lines.append(text)
    return re.sub(r"^" + re.escape(name) + r"\s*:\s*", "", " ".join(lines))


def module_graph(names: Iterable[str], skip: Collection[str] = ()) -> dict[str, SqlFile]:
    """``names`` and every module they require, directly or through others, parsed once each, in a topological
    order (depth first: each module after its ``@requires``, in the order they are listed): the order one
    connection builds them in (:func:`setup_file`), and the graph the workers of :func:`run_side_by_side` share.
    Modules in ``skip`` (built already) are left out, and what they require is not looked at through them.

    A cycle raises ValueError naming it: the modules' tables are built once, in order, so a module
    cannot read one that reads it back."""
    out: dict[str, SqlFile] = {}

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"queries/: @requires cycle {' -> '.join((*path[path.index(name) :], name))}")
        if name in out or name in skip:
            return
        sf = parse_sql(QUERY_DIR / f"{name}.sql")
        for req in sf.requires:
            visit(req, (*path, name))
        out[name] = sf

    for name in names:
        visit(name, ())
    return out


def setup_file(con: duckdb.DuckDBPyConnection, name: str, done: set[str]) -> SqlFile:
    """Run the set-up of module ``name`` (``queries/<name>.sql``), its ``@requires`` first (the order of
    :func:`module_graph`, which raises on a cycle), each unless ``done`` has it; adds what ran to ``done``."""
    if name in done:
        return parse_sql(QUERY_DIR / f"{name}.sql")
    graph = module_graph([name], skip=done)
    for m, sf in graph.items():
        _exec_script(con, sf.setup)
        done.add(m)
    return graph[name]


def modules_under(name: str) -> set[str]:
    """``name`` and every module it requires, directly or through others (what :func:`setup_file` loads for it)."""
    return set(module_graph([name]))


_CREATES = re.compile(
    r"^CREATE\s+OR\s+REPLACE\s+TEMP\s+(?:TABLE|VIEW|MACRO)\s+([A-Za-z]\w*)", re.MULTILINE | re.IGNORECASE
)
_MISSING = re.compile(r"(?:Table|Function) with name (\w+) does not exist")


def module_making(error: str) -> str | None:
    """The shipped module whose public table or macro a DuckDB "does not exist" ``error`` names, else None:
    a user's script that reads ``gpu_activity`` without ``-- @requires lib/gpu_activity`` is told which line
    to add (nothing is loaded that a file does not ask for)."""
    m = _MISSING.search(error)
    if m is None:
        return None
    for p in sorted(QUERY_DIR.rglob("*.sql")):
        if m.group(1) in _CREATES.findall(p.read_text()):
            return p.relative_to(QUERY_DIR).with_suffix("").as_posix()
    return None


def register_udfs(con: duckdb.DuckDBPyConnection, temp: bool = True) -> None:
    """What the queries need from Python: the table ``_demangled`` of the traces' mangled kernel names and
    their readings by the C++ runtime's demangler (tracekit.demangle; not an analysis). ``temp=False``: in the
    connection's database, for analyses side by side (:func:`run`)."""
    register(con, temp=temp)


def set_variables(con: duckdb.DuckDBPyConnection, params: Mapping[str, Any]) -> dict[str, Any]:
    """Every variable the query files read on ``con``: the parameters (:func:`set_params`) and the path of the
    kernel category table. Variables belong to one connection: each cursor of a side-by-side run sets them."""
    used = set_params(con, params)
    # the kernel category table lib/gpu_activity.sql reads: a data file users edit, shipped with the SQL; it stays at
    # the top of queries/ because the report's notes name that path (comm.sql)
    con.execute(f"SET VARIABLE kernel_categories_csv = {_sql_literal(str(QUERY_DIR / 'kernel_categories.csv'))}")
    return used


def prepare(con: duckdb.DuckDBPyConnection, requires: Iterable[str] = (), **params: Any) -> set[str]:
    """Make ``con`` (views already registered) ready for any query file: the variables at their defaults
    (overridden by ``params``), the tables made in Python (``_demangled``), then the set-up of each module
    in ``requires`` with what it requires (nothing else: a module loads what it declares).

    Returns the set of files whose set-up ran; pass it on to :func:`run_file` so none runs twice.
    """
    set_variables(con, params)
    register_udfs(con)
    done: set[str] = set()
    for name in requires:
        setup_file(con, name, done)
    return done


def run_sql(
    con: duckdb.DuckDBPyConnection, sf: SqlFile, done: set[str], arrow: bool = False, rows: bool = False
) -> dict[str, Any]:
    """Execute a parsed file (a shipped analysis or the user's): its ``@requires``, set-up, then outputs.

    ``arrow``: Arrow tables instead of DataFrames (they keep the SQL types of empty results, which result
    tables written as Parquet need: tracekit.executors). ``rows``: :class:`Rows` (no pandas)."""
    for req in sf.requires:
        setup_file(con, req, done)
    if sf.name not in done:
        _exec_script(con, sf.setup)
        done.add(sf.name)
    return outputs(con, sf, arrow=arrow, rows=rows)


def outputs(con: duckdb.DuckDBPyConnection, sf: SqlFile, arrow: bool = False, rows: bool = False) -> dict[str, Any]:
    """Each output of ``sf`` (its set-up done) fetched from ``con``: ``name`` for the output named like the file,
    ``name.OUTPUT`` for the others; DataFrames, Arrow tables (``arrow``) or :class:`Rows` (``rows``)."""

    def fetch(output: str, sql: str) -> Any:
        if arrow:
            return con.sql(sql).to_arrow_table()
        if rows:  # with the declared column types, which the view formats by
            return from_cursor(con.execute(sql), [(c.name, c.type) for c in sf.columns.get(output, [])])
        return con.execute(sql).df()

    return {(sf.name if o == sf.name else f"{sf.name}.{o}"): fetch(o, sql) for o, sql in sf.outputs}


def run(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    analyses: Iterable[str] | None = None,
    timings: dict[str, float] | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    arrow: bool = False,
    rows: bool = False,
    small_one_thread: bool | None = None,
    workers: int | None = None,
    also: Iterable[str] = (),
    after: Iterable[After] = (),
    **params: Any,
) -> dict[str, pd.DataFrame]:
    """Run the analyses over converted traces; returns ``{output name: DataFrame}``.

    ``params`` override :data:`DEFAULTS` (``step_pattern``, ``vocab``, ``lm_head_regex``, ...).
    ``timings`` (if given) receives wall seconds per file and ``prepare``: with one worker a file's time
    includes the set-up of the modules it is the first to require, with several each module is timed alone.
    ``arrow``: Arrow tables instead; ``rows``: :class:`~tracekit.rows.Rows` instead (what the terminal and JSON
    report read, without importing pandas). ``small_one_thread``: apply :func:`one_thread_if_small`, and with
    several workers give DuckDB's own thread pool only the cores the workers leave (each worker's thread runs
    its statements: on 2 cores, with 216k and 419k events, one DuckDB thread under two workers was 10-15% faster
    than two); None (the default) does so only on a connection ``run`` opened itself, True on ``con`` too
    (``report --html`` opens its own).

    ``workers``: how many modules run side by side (:func:`run_side_by_side`); None (the default) is
    :func:`auto_workers` on a connection ``run`` opened itself and 1 on ``con``. Above 1 the modules' tables are
    made in ``con``'s database instead of as TEMP objects, so ``con`` must be an in-memory database
    (ValueError otherwise). The results are the same either way (tests/test_report_parallel.py).

    ``also``: other shipped modules whose outputs to return after the analyses' (``report --html`` asks for
    ``timeline``, the page's); ``after``: Python work on the connection once the modules it requires are
    built (:class:`After`: the page's median-step export), side by side with what is left.
    """
    names = tuple(analyses or ANALYSES)
    unknown = [a for a in names if a not in ANALYSES]
    if unknown:
        raise ValueError(f"unknown analysis {', '.join(unknown)}; known: {', '.join(ANALYSES)}")
    names += tuple(also)
    after = tuple(after)
    if workers is None:
        workers = auto_workers() if con is None else 1
    if small_one_thread is None:
        small_one_thread = con is None
    con = connect(paths, con=con)
    con.execute("SET enable_progress_bar = false")  # DuckDB's bar would interleave with the tables
    if small_one_thread:
        one_thread_if_small(con)
        if workers > 1:  # the workers' own threads run the statements: DuckDB's pool gets the cores left over
            con.execute(f"SET threads = {max(1, _cores() - workers + 1)}")
    if workers > 1:
        return run_side_by_side(con, names, workers, params, timings=timings, arrow=arrow, rows=rows, after=after)
    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    done = prepare(con, **params)
    if timings is not None:
        timings["prepare"] = time.perf_counter() - t0
    for name in names:
        t0 = time.perf_counter()
        out.update(run_file(con, name, done=done, arrow=arrow, rows=rows))
        if timings is not None:
            timings[name] = time.perf_counter() - t0
    for task in after:
        task.work(con, out)
    return out


#: How many modules' worth of time an :class:`After` task counts as when :func:`run_side_by_side` picks what to run
#: next (the page's median-step export: ~0.5 s on a 216k-event trace, where a module takes 0.01-0.1 s).
AFTER_WEIGHT = 10


@dataclass(frozen=True)
class After:
    """Python work that :func:`run` does on the report's connection once the modules ``requires`` are built:
    ``work(cursor, outputs so far)``, on one of the workers' cursors (its TEMP tables are its own; the
    modules' tables and the variables are there), side by side with the modules still to run.

    Why: the page's median-step export reads the timeline's rows and the ``lib/`` tables, then renders its
    events in Python; run after the report it was the page's largest extra cost (issue 25 item 3)."""

    requires: tuple[str, ...]
    work: Callable[[duckdb.DuckDBPyConnection, Mapping[str, Any]], None]


def auto_workers() -> int:
    """The modules :func:`run` runs side by side by default: one per usable core, at most 4 (the modules'
    dependency graph is rarely wider: ``lib/gpu_activity`` comes first, ``headline`` late)."""
    return max(1, min(_cores(), 4))


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: ``CREATE [OR REPLACE] TEMP`` at the start of a line: what :func:`in_database` rewrites.
_TEMP = re.compile(r"^(CREATE\s+(?:OR\s+REPLACE\s+)?)TEMP(?:ORARY)?\s+", re.MULTILINE | re.IGNORECASE)


def in_database(sql: str) -> str:
    """``sql`` with each ``CREATE ... TEMP`` object made in the connection's database instead.

    Why: a TEMP table, view or macro belongs to one DuckDB connection, and the modules that run side by
    side (:func:`run_side_by_side`) run on cursors of one in-memory database: each must see the tables the
    others built. The files keep TEMP, which is what a user running them with ``tracekit sql`` wants
    (nothing written into a database file of theirs); tests/test_report_parallel.py checks that every
    object a shipped file creates is made by a statement this rewrites."""
    return _TEMP.sub(r"\1", sql)


def _is_in_memory(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return row is not None and row[0] is None


#: The task of :func:`run_side_by_side` that computes the metadata views once (store.snapshot_meta).
_META = "store/snapshot_meta"


def run_side_by_side(
    con: duckdb.DuckDBPyConnection,
    names: Iterable[str],
    workers: int,
    params: Mapping[str, Any],
    timings: dict[str, float] | None = None,
    arrow: bool = False,
    rows: bool = False,
    after: Iterable[After] = (),
) -> dict[str, Any]:
    """Run the analyses ``names`` and every module they require on ``workers`` cursors of ``con`` at once:
    each module as soon as the modules it requires are built; the results in the order one worker gives.
    Each of ``after`` runs once its modules are built, on the cursor of the worker that takes it.

    Why: a report is ~200 statements in ~30 modules, most independent of each other once ``lib/gpu_activity``
    and a few others exist; DuckDB runs each statement on the thread that calls it when the input is small
    (``threads = 1``) and releases the GIL meanwhile, so a second core halves what is left (BENCHMARKS.md,
    issue 25). The modules' tables are made in ``con``'s database (:func:`in_database`), which must be in
    memory. The first error in module order is raised once every worker has stopped; Ctrl-C interrupts the
    other workers' statements."""
    import threading  # deferred: only this path uses it

    if not _is_in_memory(con):
        raise ValueError("run(workers > 1) needs an in-memory DuckDB connection: it creates the modules' tables there")
    names = tuple(names)
    after = tuple(after)
    t0 = time.perf_counter()
    files = module_graph([*names, *(r for task in after for r in task.requires)])
    # building blocks first: every analysis waits on some of them, and no building block waits on an analysis
    order = [m for m in files if m not in names] + [m for m in files if m in names]
    needs = {m: tuple(sf.requires) for m, sf in files.items()}
    # The metadata views computed once (store.snapshot_meta), by the first free worker, not planned again at each
    # of the modules' ~20 reads: a module that names one waits for it (one that reads it through another
    # module's macro waits through its @requires).
    tasks = {_META: After((), lambda cur, _: snapshot_meta(cur))} | {f"after {i}": t for i, t in enumerate(after)}
    names_meta = re.compile(r"\b(?:" + "|".join(META_VIEWS) + r")\b")
    for m, sf in files.items():
        if names_meta.search(sf.setup) or any(names_meta.search(sql) for _, sql in sf.outputs):
            needs[m] += (_META,)
    for key, task in tasks.items():
        needs[key] = task.requires
    # Python work first once it may start: it holds the GIL, so it is best begun while the others are in DuckDB
    order = [*tasks, *order]
    # Which ready module a free worker takes: the one with the longest chain of work waiting on it (a Python task
    # counts as many modules: the page's export, the longest single step, waits on steps and the timeline), then
    # the order above. Without it the export began only once every analysis was done.
    height: dict[str, int] = {}

    def chain(m: str) -> int:  # m's own weight plus the longest chain of what waits on it
        if m not in height:
            height[m] = (AFTER_WEIGHT if m in tasks else 1) + max((chain(d) for d in order if m in needs[d]), default=0)
        return height[m]

    order = sorted(order, key=lambda m: -chain(m))  # stable: ties keep the order above (list.sort empties ``order``)
    cursors = [con.cursor() for _ in range(workers)]
    for cur in cursors:
        set_variables(cur, params)
    register_udfs(con, temp=False)
    if timings is not None:
        timings["prepare"] = time.perf_counter() - t0

    results: dict[str, dict[str, Any]] = {}
    errors: dict[str, BaseException] = {}
    done: set[str] = set()
    started: set[str] = set()
    stop = threading.Event()
    cond = threading.Condition()

    def next_module() -> str | None:
        with cond:
            while True:
                if errors or stop.is_set():
                    return None
                ready = [m for m in order if m not in started and all(r in done for r in needs[m])]
                if ready:
                    started.add(ready[0])
                    return ready[0]
                if len(started) == len(order):
                    return None
                cond.wait()

    def work(cur: duckdb.DuckDBPyConnection) -> None:
        while (name := next_module()) is not None:
            t = time.perf_counter()
            try:
                if name in tasks:
                    with cond:
                        so_far = {k: v for r in results.values() for k, v in r.items()}
                    tasks[name].work(cur, so_far)
                else:
                    sf = files[name]
                    _exec_script(cur, in_database(sf.setup))
                    got = outputs(cur, sf, arrow=arrow, rows=rows)
                    with cond:
                        results[name] = got
            except BaseException as e:  # noqa: BLE001 (re-raised by the caller once every worker has stopped)
                with cond:
                    errors[name] = e
                    cond.notify_all()
                return
            if timings is not None:
                timings[name] = time.perf_counter() - t
            with cond:
                done.add(name)
                cond.notify_all()

    helpers = [
        threading.Thread(target=work, args=(cur,), name=f"tracekit-report-{i}", daemon=True)
        for i, cur in enumerate(cursors[1:], 1)
    ]
    for h in helpers:
        h.start()
    failed = True
    try:
        work(cursors[0])
        failed = bool(errors)
    finally:
        if failed:  # Ctrl-C (while this thread waited, or in its module), or a module failed: stop the others now
            with cond:
                stop.set()
                cond.notify_all()
            for cur in cursors[1:]:
                cur.interrupt()
        for h in helpers:
            h.join()
        for cur in cursors:  # the tables stay in the database; the cursors' own state (variables) goes
            cur.close()
    if errors:
        # Ctrl-C first; then the first real failure in module order (not the interruptions this caused)
        ctrl_c = [e for e in errors.values() if isinstance(e, KeyboardInterrupt)]
        real = {m: e for m, e in errors.items() if not isinstance(e, duckdb.InterruptException)} or errors
        raise ctrl_c[0] if ctrl_c else real[min(real, key=order.index)]
    out: dict[str, Any] = {}
    for name in names:
        out.update(results[name])
    return out


#: Inputs with fewer events than this run the analyses on one DuckDB thread (see :func:`one_thread_if_small`).
SMALL_EVENTS = 50_000


def one_thread_if_small(con: duckdb.DuckDBPyConnection) -> bool:
    """``SET threads = 1`` when ``events`` holds fewer than :data:`SMALL_EVENTS` rows; True if it did.

    Why: on a small trace the ~140 statements of a report cost planning and scheduling, not scanning,
    and one thread was faster (report.run on 3,332 events, 2 cores, fresh processes alternated, median
    of 5: 0.459 vs 0.480 s; at 109k events a wash, 0.82 vs 0.81 s: hence the threshold well below).
    It also makes the last bits of parallel float sums repeatable on such inputs. :func:`run` changes
    only a connection it opened itself unless told (``small_one_thread``); the count reads Parquet
    metadata (~1 ms).
    """
    n = con.execute("SELECT count(*) FROM events").fetchone()
    if n is not None and n[0] < SMALL_EVENTS:
        con.execute("SET threads = 1")
        return True
    return False


def run_file(
    con: duckdb.DuckDBPyConnection,
    name: str,
    setup: bool = True,
    done: set[str] | None = None,
    arrow: bool = False,
    rows: bool = False,
) -> dict[str, Any]:
    """Execute ``queries/<name>.sql`` on ``con``: its set-up (unless ``setup`` is False, or ``done`` has
    it), the set-up of its ``@requires``, then every output.

    Keys: ``name`` for the output named like the file, ``name.OUTPUT`` for the others. The views and
    variables the file reads must be in place (:func:`prepare` does that).
    """
    done = set() if done is None else done
    if not setup:
        done.add(name)
    return run_sql(con, parse_sql(QUERY_DIR / f"{name}.sql"), done, arrow=arrow, rows=rows)


def run_timeline(con: duckdb.DuckDBPyConnection, rows: bool = False) -> dict[str, Any]:
    """Run ``queries/timeline.sql`` on a connection where ``tracekit.report.run`` ran steps.sql
    (its temp tables are there, and those of every module steps.sql and timeline.sql require: ``done`` keeps
    them from being built twice, which would also renumber gpu_activity's gid under the tables that hold it).
    ``rows``: :class:`~tracekit.rows.Rows` instead of DataFrames. (``report --html`` asks :func:`run` for it
    instead, ``also=("timeline",)``: side by side with the analyses.)"""
    return run_file(con, "timeline", done=modules_under("timeline") - {"timeline"}, rows=rows)
