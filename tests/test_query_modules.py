"""The contract between the SQL files of queries/ (issue 26 item 1), checked on the shipped text.

A module is a file; its name is its path under queries/ without `.sql` (`steps`, `lib/gpu_activity`).
Rules (Perfetto's stdlib rules, adapted):
- a module's public tables, views and macros are named after its file stem (`gpu_activity`,
  `gpu_activity_names`); `_x` names are private to the file that creates them;
- a module lists on its `-- @requires` line every module whose public objects it reads, and no other
  (the runner loads exactly those, depth first, each once: tracekit.report.setup_file);
- no `@requires` cycle; no name created by two modules (they share one connection).
Objects made outside queries/ are named in RUNNER with who makes them. Names are found with regexes on
the SQL with comments and string literals removed: CREATE statements for what a module makes, whole
words (not after a `.`) for what it reads.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest

from tracekit import report

#: Objects the Python side makes, readable by any module: name -> who makes it.
RUNNER = {
    "_demangled": "tracekit.demangle.register (report.prepare)",
    "run_metrics": "tracekit.compare.collect (lib/run_metrics per run, the runs unioned)",
    "run_metrics_step_values": "tracekit.compare.collect (lib/run_metrics per run, the runs unioned)",
    "_noise": "tracekit.noise.attach",
    "_conditions": "tracekit.compare.diff (the parsed --fail-if conditions)",
}

_CREATE = re.compile(r"\bCREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?(?:TABLE|VIEW|MACRO|FUNCTION)\s+"
                     r"(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_]\w*)", re.IGNORECASE)
_NOISE = re.compile(r"'(?:[^']|'')*'|--[^\n]*")


def code_of(text: str) -> str:
    """The SQL without comments and string literals (a name in prose or in a regex is no read)."""
    return _NOISE.sub(lambda m: "''" if m.group(0).startswith("'") else "", text)


def modules(root: Path = report.QUERY_DIR) -> dict[str, str]:
    """Every module of ``root``: name -> SQL text."""
    return {p.relative_to(root).with_suffix("").as_posix(): p.read_text() for p in sorted(root.rglob("*.sql"))}


def created(text: str) -> set[str]:
    """The tables, views and macros a module's SQL creates."""
    return set(_CREATE.findall(code_of(text)))


def reads(text: str, name: str) -> bool:
    """Whether the SQL names ``name`` as a whole word (not as ``x.name``, a column of an alias)."""
    return name in _words(code_of(text))


@functools.cache
def _words(code: str) -> frozenset[str]:
    return frozenset(re.findall(r"(?<![\w.])[A-Za-z_]\w*", code))


def requires(text: str) -> list[str]:
    """The modules on the file's ``-- @requires`` lines (what the runner loads first)."""
    return [r for m in report._REQUIRES.findall(text) for r in m.split()]


def violations(mods: dict[str, str]) -> list[str]:
    """Every broken rule, one line each (empty: the library keeps its contract)."""
    made = {m: created(t) for m, t in mods.items()}
    owner: dict[str, str] = {}
    out: list[str] = []
    for m, names in made.items():
        stem = m.rsplit("/", 1)[-1]
        for n in sorted(names):
            if n in owner:
                out.append(f"{m}: creates {n}, which {owner[n]} creates too (one connection holds both)")
            owner.setdefault(n, m)
            if not n.startswith("_") and n != stem and not n.startswith(stem + "_"):
                out.append(f"{m}: public {n} is not named after its module (want {stem} or {stem}_...)")
    for m, text in mods.items():
        req = requires(text)
        out += [f"{m}: @requires {r}, which is no module" for r in req if r not in mods]
        used: set[str] = set()
        for n, o in owner.items():
            if o == m or n in made[m] or n in RUNNER or not reads(text, n):
                continue
            used.add(o)
            if n.startswith("_"):
                out.append(f"{m}: reads {n}, private to {o}")
            elif o not in req:
                out.append(f"{m}: reads {n} of {o} without `-- @requires {o}`")
        out += [f"{m}: @requires {r} but reads nothing of it" for r in req if r in mods and r not in used]
    return out


def cycles(mods: dict[str, str]) -> list[str]:
    """The `@requires` cycles, each as `a -> b -> a`."""
    graph = {m: [r for r in requires(t) if r in mods] for m, t in mods.items()}
    found: list[str] = []

    def walk(m: str, path: tuple[str, ...]) -> None:
        if m in path:
            found.append(" -> ".join((*path[path.index(m):], m)))
            return
        for r in graph[m]:
            walk(r, (*path, m))

    for m in graph:
        walk(m, ())
    return sorted(set(found))


def test_every_module_keeps_the_library_contract() -> None:
    bad = violations(modules())
    assert not bad, "queries/ breaks its module rules:\n" + "\n".join(bad)


def test_no_requires_cycle() -> None:
    assert cycles(modules()) == []


def test_building_blocks_output_nothing_and_analyses_stay_at_the_top() -> None:
    """lib/ holds what produces no report output; every file with `-- @output` is an analysis in queries/."""
    for m, text in modules().items():
        has_output = report._OUTPUT.search(text) is not None
        assert has_output != m.startswith("lib/"), f"{m}: {'an output in lib/' if has_output else 'no output outside lib/'}"


@pytest.mark.parametrize("case, sql, want", [
    ("undeclared read", "-- @requires lib/b\nSELECT * FROM c_rows, b;", "a: reads c_rows of c without `-- @requires c`"),
    ("private read", "-- @requires lib/b\nSELECT * FROM _b_tmp, b;", "a: reads _b_tmp, private to lib/b"),
    ("unused require", "-- @requires lib/b c\nSELECT * FROM b;", "a: @requires c but reads nothing of it"),
    ("bad public name", "-- @requires lib/b\nCREATE TEMP TABLE rows_of_a AS SELECT * FROM b;",
     "a: public rows_of_a is not named after its module (want a or a_...)"),
])
def test_the_checker_finds_each_broken_rule(case: str, sql: str, want: str) -> None:
    """The rules on a three-module library made up here (lib/b, c, and a that reads them)."""
    mods = {"lib/b": "CREATE TEMP TABLE b AS SELECT 1; CREATE TEMP TABLE _b_tmp AS SELECT 2;",
            "c": "-- @requires lib/b\n-- _b_tmp in a comment is no read\nCREATE TEMP TABLE c_rows AS SELECT * FROM b;",
            "a": sql}
    assert violations(mods) == [want], case


def test_the_checker_finds_a_cycle() -> None:
    mods = {"x": "-- @requires y\nSELECT * FROM y;", "y": "-- @requires x\nCREATE TABLE y AS SELECT * FROM x_t;"}
    assert cycles(mods) == ["x -> y -> x", "y -> x -> y"]


def test_runner_loads_requires_depth_first_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """setup_file runs each module after what it requires, each once, and names a cycle."""
    import duckdb

    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "b.sql").write_text("INSERT INTO log VALUES ('lib/b');")
    (tmp_path / "c.sql").write_text("-- @requires lib/b\nINSERT INTO log VALUES ('c');")
    (tmp_path / "a.sql").write_text("-- @requires c lib/b\nINSERT INTO log VALUES ('a');")
    (tmp_path / "x.sql").write_text("-- @requires y\nSELECT 1;")
    (tmp_path / "y.sql").write_text("-- @requires x\nSELECT 1;")
    monkeypatch.setattr(report, "QUERY_DIR", tmp_path)
    con = duckdb.connect()
    con.execute("CREATE TABLE log (m VARCHAR)")
    done: set[str] = set()
    report.setup_file(con, "a", done)
    assert [r[0] for r in con.execute("SELECT m FROM log").fetchall()] == ["lib/b", "c", "a"]
    assert done == {"lib/b", "c", "a"}
    with pytest.raises(ValueError, match=r"@requires cycle x -> y -> x"):
        report.setup_file(con, "x", set())


def test_intervals_union_on_hand_made_intervals() -> None:
    """lib/intervals' macro on intervals whose union is worked out by hand.

    Group 1: [0,10) [5,12) [12,20) touch/overlap -> one island 0..20; [25,30) a second (gap 20..25);
    [26,27) inside it. Group 2: [3,4) [3,4) (equal: tie decides the order) -> one island of length 1."""
    import duckdb

    con = duckdb.connect()
    con.execute((report.QUERY_DIR / "lib" / "intervals.sql").read_text())
    got = con.execute("""
        WITH iv(grp, ts_ns, end_ns, tie) AS (VALUES (1, 0, 10, 1), (1, 5, 12, 2), (1, 12, 20, 3), (1, 25, 30, 4),
                                                    (1, 26, 27, 5), (2, 3, 4, 7), (2, 3, 4, 6))
        SELECT grp, tie, prev_end_ns, island FROM intervals_union(iv) ORDER BY grp, ts_ns, end_ns, tie""").fetchall()
    assert got == [(1, 1, None, 1), (1, 2, 10, 1), (1, 3, 12, 1), (1, 4, 20, 2), (1, 5, 30, 2),
                   (2, 6, None, 1), (2, 7, 4, 1)]
    lengths = con.execute("""
        WITH iv(grp, ts_ns, end_ns, tie) AS (VALUES (1, 0, 10, 1), (1, 5, 12, 2), (1, 12, 20, 3), (1, 25, 30, 4),
                                                    (1, 26, 27, 5), (2, 3, 4, 7), (2, 3, 4, 6))
        SELECT grp, sum(e - s) FROM (SELECT grp, island, min(ts_ns) AS s, max(end_ns) AS e FROM intervals_union(iv)
                                     GROUP BY ALL) GROUP BY grp ORDER BY grp""").fetchall()
    assert lengths == [(1, 25), (2, 1)]  # 20 + 5; 1


@pytest.mark.parametrize("expr, want", [
    ("notes_no_runtime_rows()", "no CUDA/HIP runtime rows: Kineto: include ProfilerActivity.CPU; nsys: --trace=cuda"),
    ("notes_no_sync_captured()",
     "no sync API call captured (Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda): unknown, not zero"),
    ("notes_no_gpu_launched_in('these steps')", ("no GPU op launched in these steps (was CUDA activity captured? "
                                                 "Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda)")),
    ("notes_no_gpu_launched_in('the trace')", ("no GPU op launched in the trace (was CUDA activity captured? "
                                               "Kineto: activities=[CPU, CUDA]; nsys: --trace=cuda)")),
    ("notes_fix_cuda_activity()", "ProfilerActivity.CUDA; nsys --trace=cuda"),
    ("notes_fix_cuda_torch()", "torch.profiler activities=[CPU, CUDA]; nsys --trace=cuda"),
    ("notes_fix_runtime_short()", "Kineto ProfilerActivity.CPU, nsys --trace=cuda"),
    ("notes_no_gpu_activity(NULL)", ("no GPU activity in this run (no GPU op, no CUDA/HIP runtime call, no sync record): "
                                     "a CPU-only run, or CUDA activity was not captured (Kineto activities=[CPU, CUDA], "
                                     "nsys --trace=cuda)")),
])
def test_notes_keep_the_words_the_report_prints(expr: str, want: str) -> None:
    """lib/notes' macros replaced literals that the report's JSON carries: each must say exactly what the
    literal said (the texts here are copied from the files before the macros existed, not from the macros).
    Rewording a note is allowed, but then here too and on purpose (the report's output changes)."""
    import duckdb

    con = duckdb.connect()
    con.execute((report.QUERY_DIR / "lib" / "notes.sql").read_text())
    assert con.execute(f"SELECT {expr}").fetchone()[0] == want
