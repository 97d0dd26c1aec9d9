"""One-way layers: every import in ``tracekit/`` and ``capture/`` points down (or sideways), never up, and
no modules import each other in a circle.

The layers follow the data flow, lowest first; a module may import its own layer and those below it:

0. ``base``    -- errors, terminal/HTML escaping, atomic writes, shipped resources, redaction, the Parquet
                  event schema (the contract ingest writes and store reads, so both must see it);
1. ``capture`` -- what runs inside the profiled program: ``capture/`` (sitecustomize, bootstrap, SGLang
                  plugin: stdlib only) and ``tracekit.annotate`` (the marks ``import tracekit`` exports);
2. ``ingest``  -- Kineto / Nsight Systems -> Parquet (``tracekit.ingest``);
3. ``store``   -- reading the Parquet (``store``, ``dataset``, ``naming``, the conversion cache), and the
                  ``tracekit capture`` driver, which runs a program and converts what it wrote;
4. ``engine``  -- parse query files, set parameters, run them (``report``, ``rows``, ``compare``...);
5. ``view``    -- terminal, HTML, JSON, warnings, docs (``tracekit.view``, ``render``, ``querydoc``): it formats result
                  tables and never runs SQL;
6. ``cli``     -- the verbs.

Why a test: the layers were prose, and three import cycles (store <-> ingest through
``atomic.refuse_input``, report <-> view, bootstrap <-> SGLang plugin) grew behind imports placed inside
functions. So imports inside functions count here like the others.

Imports under ``if TYPE_CHECKING:`` count too: they never run, but a lower layer that names an upper
layer's type in a signature still depends on it (mypy reads it, and a change up there breaks it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("base", "capture", "ingest", "store", "engine", "view", "cli")

#: Module (or package prefix) -> layer. The longest matching prefix wins; a module in none fails the test.
PLACE = {
    "tracekit.errors": "base", "tracekit.safe": "base", "tracekit.atomic": "base",
    "tracekit.resources": "base", "tracekit.redact": "base", "tracekit.schema": "base",
    "tracekit": "capture",  # the package's __init__: version and the marks of tracekit.annotate
    "tracekit.annotate": "capture", "sitecustomize": "capture", "tracekit_bootstrap": "capture",
    "tracekit_sglang": "capture", "tracekit_hooks": "capture",
    "tracekit.ingest": "ingest",
    "tracekit.store": "store", "tracekit.rawcache": "store", "tracekit.dataset": "store",
    "tracekit.naming": "store", "tracekit.capture": "store",
    "tracekit.report": "engine", "tracekit.rows": "engine", "tracekit.compare": "engine",
    "tracekit.noise": "engine", "tracekit.demangle": "engine", "tracekit.graphmap": "engine",
    "tracekit.export_chrome": "engine", "tracekit._chrome": "engine", "tracekit.executors": "engine",
    "tracekit.view": "view", "tracekit.render": "view", "tracekit.querydoc": "view",
    "tracekit.cli": "cli", "tracekit.__main__": "cli",
}


@dataclass(frozen=True)
class Edge:
    """One import statement of ours: ``src`` imports ``dst`` at ``file:line``."""

    src: str
    dst: str
    file: str
    line: int


def modules() -> dict[str, Path]:
    """Every module of ours by its import name (``capture/`` files are imported by their bare name)."""
    out = {}
    for p in sorted((REPO / "tracekit").rglob("*.py")):
        parts = p.relative_to(REPO).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    for p in sorted((REPO / "capture").glob("*.py")):
        out[p.stem] = p
    return out


def extensions() -> set[str]:
    """Our C extensions by import name (``tracekit.ingest._kscan``): imported, never parsed."""
    return {".".join(p.relative_to(REPO).parts[:-1] + (p.name.split(".")[0],))
            for p in (REPO / "tracekit").rglob("*.so")}


def layer_of(mod: str) -> str | None:
    """The layer of ``mod`` by its longest prefix in :data:`PLACE` (None: not placed)."""
    bits = mod.split(".")
    for n in range(len(bits), 0, -1):
        if ".".join(bits[:n]) in PLACE:
            return PLACE[".".join(bits[:n])]
    return None


def _targets(node: ast.Import | ast.ImportFrom, mod: str, is_pkg: bool, known: set[str]) -> Iterator[str]:
    """The modules of ours one import statement loads (``from pkg import sub`` names ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        yield from (a.name for a in node.names if a.name in known)
        return
    base = node.module or ""
    if node.level:
        pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
        pkg = pkg[: len(pkg) - node.level + 1]
        base = ".".join(pkg + ([base] if base else []))
    for a in node.names:
        if f"{base}.{a.name}" in known:
            yield f"{base}.{a.name}"
        elif base in known:
            yield base


def edges() -> list[Edge]:
    """Every import between our modules, wherever it stands (top level, function, ``TYPE_CHECKING``)."""
    mods = modules()
    known = set(mods) | extensions()
    out = []
    for mod, path in mods.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                rel = str(path.relative_to(REPO))
                out += [Edge(mod, t, rel, node.lineno) for t in _targets(node, mod, path.name == "__init__.py", known)
                        if t != mod]
    return out


def upward(es: list[Edge]) -> list[str]:
    """``file:line: src (layer) imports dst (higher layer)`` for each import that points up."""
    bad: list[str] = []
    for e in es:
        lo, hi = layer_of(e.src), layer_of(e.dst)
        msg = f"{e.file}:{e.line}: {e.src} ({lo}) imports {e.dst} ({hi}), a higher layer"
        if lo and hi and LAYERS.index(hi) > LAYERS.index(lo) and msg not in bad:
            bad.append(msg)
    return bad


def cycles(es: list[Edge]) -> list[list[str]]:
    """Each import cycle once, as the modules around it (strongly connected components of size > 1)."""
    graph: dict[str, set[str]] = {}
    for e in es:
        graph.setdefault(e.src, set()).add(e.dst)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in modules() if layer_of(m) is None]
    assert not unplaced, f"place these modules in tests/test_layers.py PLACE: {unplaced}"


def test_no_import_points_up() -> None:
    bad = upward(edges())
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_cycle() -> None:
    es = edges()
    found = cycles(es)
    where = {(e.src, e.dst): f"{e.file}:{e.line}" for e in es}
    msgs = [" -> ".join(c) + "  (" + ", ".join(where[(a, b)] for a in c for b in c if (a, b) in where) + ")"
            for c in found]
    assert not found, "import cycles:\n" + "\n".join(msgs)


def unexplained_deferred_imports(path: Path) -> list[str]:
    """``file:line`` of each import inside a function whose group says nothing: an import inside a function is
    there to keep start-up fast (or because the module may be missing), and a comment on one of the
    consecutive import lines it stands in says which; any other import belongs at the top of the file."""
    lines = path.read_text().splitlines()
    bad = []
    for fn in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            for field in ("body", "orelse", "finalbody", "handlers"):
                stmts = getattr(node, field, None)
                if not isinstance(stmts, list):
                    continue
                group: list[ast.stmt] = []
                for st in [*stmts, None]:
                    if isinstance(st, (ast.Import, ast.ImportFrom)):
                        group.append(st)
                        continue
                    if group and not any("#" in lines[g.lineno - 1] for g in group):
                        bad.append(f"{path.relative_to(REPO)}:{group[0].lineno}")
                    group = []
    return sorted(set(bad))


def test_imports_inside_functions_say_why() -> None:
    bad = [b for p in modules().values() for b in unexplained_deferred_imports(p)]
    assert not bad, ("imports inside a function without a comment saying why (start-up, optional module): move them "
                     "to the top of the file or say why:\n" + "\n".join(bad))


def test_checker_sees_planted_faults() -> None:
    """The checker itself: an upward import inside a function and a two-module cycle are both reported."""
    es = [Edge("tracekit.store", "tracekit.report", "tracekit/store.py", 9),
          Edge("tracekit.view.html", "tracekit.view.plots", "a.py", 1),
          Edge("tracekit.view.plots", "tracekit.view.html", "b.py", 2)]
    assert upward(es) == ["tracekit/store.py:9: tracekit.store (store) imports tracekit.report (engine), a higher layer"]
    assert cycles(es) == [["tracekit.view.html", "tracekit.view.plots"]]
