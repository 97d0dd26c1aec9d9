"""What the report shows, in which order: notes, then per trace and step kind the verdicts, the
per-step headline table and the phase tree; every other result table on request.

Shared by the terminal and the HTML report so both tell the same story. The numbers are the
``headline`` outputs of ``queries/headline.sql`` (and every other file's outputs as they are);
nothing here computes an analysis, it only picks, orders, renames for display and formats.
Results arrive as :class:`~tracekit.rows.Rows` (DataFrames are converted once, by the callers'
:func:`~tracekit.rows.all_rows`), so the terminal report runs without pandas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tracekit.rows import Rows, as_rows, missing
from tracekit.view.model import Table, fmt_duration, fmt_share, plural, table
from tracekit.view.warnings import warnings_of

Results = Mapping[str, Any]  # result key -> Rows (or a DataFrame, converted where read)

#: Result keys that are plot inputs, not tables for reading.
HIDDEN = frozenset({"steps.median_step_ops", "timeline", "timeline.links"})

#: Headline rows shown, display names for the phase tree (the view picks, SQL computes).
_TREE_COLS = {
    "phase": "phase",
    "excl_cpu_ns_mean": "cpu_ns",
    "excl_cpu_ns_p50": "p50_ns",
    "excl_cpu_ns_p99": "p99_ns",
    "excl_cpu_share": "cpu_share",
    "excl_gpu_ns_mean": "gpu_ns",
    "excl_gpu_share": "gpu_share",
}
_TREE_FULL = {**_TREE_COLS, "incl_cpu_ns_mean": "cpu_incl_ns", "incl_gpu_ns_mean": "gpu_incl_ns"}
TREE_TITLE = "phase tree, exclusive (children not counted in parents; shares add up to 100%)"
TREE_NOTE = (
    "exclusive time per step (a parent's row leaves out its children, so each share column "
    "adds up to 100%); cpu = range time on the step's thread, mean with p50/p99 over the steps"
)
TREE_NOTE_GPU = "; gpu = GPU op time (kernels, copies, memsets) launched in the phase"

#: Fallback when headline.sql did not run: the steps.stats metrics that say what a step costs.
_FALLBACK_METRICS = (
    "wall_ns",
    "cpu_span_ns",
    "gpu_span_ns",
    "gpu_busy_ns",
    "gpu_op_ns",
    "launches",
    "sync_stall_ns",
    "gpu_busy_share_e2e",
)


@dataclass
class Note:
    """One warning or info line (converter notes, trust flags, analyses that abstained)."""

    trace: str
    severity: str
    source: str
    message: str


#: The step kind of the step that stands for a whole trace where no range matches the step pattern (queries/lib/
#: step_instances.sql, ``step_instances_whole_name()``: one per process that made runtime calls, over the trace's
#: window); tests/test_whole_trace.py holds the two equal.
WHOLE_TRACE = "(whole trace)"

#: Phase trees longer than this show only their largest rows, of at least :data:`TREE_MIN_SHARE` of CPU or GPU time
#: (and the rows above them); ``--full`` shows every row. A whole trace of `emit_nvtx` ranges has hundreds of phases.
TREE_ROWS = 30
TREE_MIN_SHARE = 0.01


def counted(step_kind: str, steps: int | None) -> str:
    """``3 steps``; for a whole trace (:data:`WHOLE_TRACE`), its processes."""
    return plural(steps, "process" if step_kind == WHOLE_TRACE else "step")


def per_unit(step_kind: str, steps: int | None) -> str:
    """What a kind's numbers are per: `` per step``; a whole trace's are over its window, per process when several."""
    if step_kind != WHOLE_TRACE:
        return " per step"
    return " per process" if steps and steps > 1 else ""


def _pruned(tree: Rows) -> tuple[Rows, int]:
    """``tree`` (depth-first, ``depth`` column) cut to at most :data:`TREE_ROWS` rows when longer: its largest rows
    (CPU or GPU share, at least :data:`TREE_MIN_SHARE`) with the rows above them, and ``(other)``, in tree order;
    and how many rows went."""
    need = {"depth", "excl_cpu_share", "excl_gpu_share", "phase"}
    if len(tree) <= TREE_ROWS or not need <= set(tree.columns):
        return tree, 0
    d, c, g, n = (tree.columns.index(x) for x in ("depth", "excl_cpu_share", "excl_gpu_share", "phase"))

    def size(r: tuple[Any, ...]) -> float:
        return max((float(r[i]) for i in (c, g) if not missing(r[i])), default=0.0)

    above: list[list[int]] = []  # per row, the rows above it
    stack: list[int] = []
    for i, r in enumerate(tree.data):
        del stack[int(r[d]) if not missing(r[d]) else 0 :]
        above.append(list(stack))
        stack.append(i)
    kept = {i for i, r in enumerate(tree.data) if r[n] == "(other)"}
    for i in sorted(range(len(tree)), key=lambda i: (-size(tree.data[i]), i)):
        if size(tree.data[i]) < TREE_MIN_SHARE:
            break
        new = ({i, *above[i]}) - kept
        if len(kept) + len(new) <= TREE_ROWS:
            kept |= new
    data = tuple(r for i, r in enumerate(tree.data) if i in kept)
    return Rows(tree.columns, tree.types, data, tree.declared), len(tree) - len(data)


@dataclass
class Group:
    """The headline of one (trace, step kind)."""

    trace: str
    step_kind: str
    steps: int | None
    verdicts: list[str] = field(default_factory=list)
    headline: Table | None = None
    tree: Table | None = None
    categories: str | None = None  # one sentence: the kind's GPU op time by kernel category (kernels.categories)
    tree_hidden: str = ""  # the phase tree's rows left out (_pruned), and where they are; "" when none


def _get(results: Results, key: str) -> Rows:
    return as_rows(results.get(key))


def _same(a: Any, b: Any) -> bool:
    """SQL equality: NULL equals nothing (as pandas' ``==`` on NaN)."""
    return not missing(a) and not missing(b) and a == b


def traces(results: Results) -> list[str]:
    """Every trace named in the results, in order of first appearance."""
    seen: dict[str, None] = {}
    for df in results.values():
        rs = as_rows(df)
        if "trace" in rs:
            for t in rs.col("trace"):
                if not missing(t):
                    seen.setdefault(str(t), None)
    return list(seen)


def notes(results: Results) -> list[Note]:
    """headline.notes (converter notes, 'no step matched'), then the report's warnings (trust, lm_head)."""
    out: list[Note] = []
    hn = _get(results, "headline.notes")
    for r in hn.records():
        if r.get("severity") == "warn":
            continue  # warnings_of below has it (said once, not as 'steps' and 'headline/steps')
        out.append(
            Note(
                str(r.get("trace")),
                str(r.get("severity") or "info"),
                str(r.get("source") or ""),
                str(r.get("message") or ""),
            )
        )
    for w in warnings_of(results):
        src = w["flag"] if w["analysis"] == "headline" else f"{w['analysis']}/{w['flag']}"  # converter, steps
        out.append(Note(str(w["trace"]), "warn", str(src), str(w["message"])))
    # one line per distinct message: a 16-rank run should not print the same warning 16 times
    merged: dict[tuple[str, str, str], Note] = {}
    for n in out:
        k = (n.severity, n.source, n.message)
        if k in merged:
            merged[k].trace += ", " + n.trace
        else:
            merged[k] = Note(n.trace, n.severity, n.source, n.message)
    return list(merged.values())


def groups(results: Results, full: bool = False, prune: str | None = None) -> list[Group]:
    """One :class:`Group` per (trace, step kind) of ``headline``, in the SQL's order. ``prune``: where every row of
    a long phase tree is (:func:`_pruned` then leaves its small rows out); default ``--full`` unless ``full``."""
    if prune is None and not full:
        prune = "--full"
    hl = _get(results, "headline")
    if not len(hl):
        return []
    tree = _get(results, "headline.phase_tree")
    ver = _get(results, "headline.verdicts")
    out: list[Group] = []
    key = ["trace", "step_kind"]
    ver_of = ver.group_by(key) if len(ver) else {}
    tree_of = tree.group_by(key) if len(tree) else {}
    for (trace, kind), sub in hl.group_by(key).items():
        sub = sub.sort_by("row_order") if "row_order" in sub else sub
        first: Any = sub.col("steps")[0] if "steps" in sub else None
        steps = int(first) if not missing(first) else None
        # a NULL trace or step kind matches no verdict nor tree row (SQL equality, as pandas' == on NaN)
        null_key = missing(trace) or missing(kind)
        g = Group(str(trace), str(kind), steps)
        keep = [c for c in ("metric", "unit", "mean", "p50", "p99", "note") if c in sub]
        shown = sub.select(keep)
        if "note" in shown and all(missing(v) for v in shown.col("note")):
            shown = shown.drop(["note"])
        g.headline = table(
            "headline",
            shown,
            title=(
                f"over the trace window ({counted(str(kind), steps)}; no step matched --step-pattern)"
                if kind == WHOLE_TRACE
                else f"per step ({steps if steps is not None else '?'} step{'' if steps == 1 else 's'} of {kind})"
            ),
        )
        if len(ver):
            v = ver.empty() if null_key else ver_of.get((trace, kind), ver.empty())
            v = v.sort_by("rank") if "rank" in v else v
            g.verdicts = [str(x) for x in v.col("verdict") if isinstance(x, str) and x]
        if len(tree):
            t = tree.empty() if null_key else tree_of.get((trace, kind), tree.empty())
            t = t.sort_by("row_order") if "row_order" in t else t
            names = _TREE_FULL if full else _TREE_COLS
            cols = [c for c in names if c in t]
            if "excl_gpu_share" in t and all(missing(x) for x in t.col("excl_gpu_share")):
                # no GPU op in these steps: zeros and NULLs in GPU columns would only hide the CPU numbers
                cols = [c for c in cols if c not in ("excl_gpu_ns_mean", "excl_gpu_share", "incl_gpu_ns_mean")]
            hidden = 0
            if prune:
                t, hidden = _pruned(t)
            shown_t = _with_instances(t).select(cols + (["depth"] if "depth" in t else []), rename=names)
            if hidden:
                g.tree_hidden = f"{hidden:,} smaller rows not shown: {prune}"
            title = TREE_TITLE + (f"; {g.tree_hidden}" if hidden else "")
            g.tree = table("headline.phase_tree", shown_t, indent_by="depth", shared_unit=True, title=title)
        if not null_key:
            g.categories = category_line(results, str(trace), str(kind))
        out.append(g)
    return out


def _with_instances(tree: Rows) -> Rows:
    """Module and frame phases (phase_source, queries/lib/modules.sql) named with their instances per step: the 24
    decoder layers of a model are one row, ``Qwen2DecoderLayer ×24``. Range phases keep their name as it is."""
    if not {"phase", "phase_source", "instances_mean"} <= set(tree.columns):
        return tree
    i, j, k = (tree.columns.index(c) for c in ("phase", "phase_source", "instances_mean"))

    def name(r: tuple[Any, ...]) -> Any:
        n, src = r[k], r[j]
        if missing(n) or missing(src) or n <= 1 or not ({"module", "frame"} & set(str(src).split(","))):
            return r[i]
        return f"{r[i]} ×{int(n) if n == int(n) else round(n, 1)}"

    return Rows(tree.columns, tree.types, tuple((*r[:i], name(r), *r[i + 1 :]) for r in tree.data), tree.declared)


def category_rows(results: Results, trace: str, step_kind: str) -> list[dict[str, Any]]:
    """kernels.categories rows of one (trace, step kind), in the SQL's order (most time first)."""
    kc = _get(results, "kernels.categories")
    if not len(kc):
        return []
    return [r for r in kc.records() if _same(r["trace"], trace) and _same(r["step_kind"], step_kind)]


#: What the category sentence and the stacked bar say about graph replays (kernels.sql's note, shortened).
GRAPH_NOTE = "no launching op tells them apart there; the category from the kernel name is the breakdown there is"


def category_line(results: Results, trace: str, step_kind: str) -> str | None:
    """One sentence: the step kind's GPU op time per step by kernel category, shares of the kind's total
    (kernels.categories; the denominator named), with the graph-replay caveat when ops ran in replays."""
    rows = category_rows(results, trace, step_kind)
    if not rows:
        return None
    per = rows[0].get("kind_gpu_op_ns")
    steps = rows[0].get("steps")
    if not missing(per) and not missing(steps) and steps:
        per = per / steps
    nb = "\u00a0"  # a category and its share stay on one line (the terminal's wrap turns it back into a space)
    parts = ", ".join(f"{str(r['category']).replace(' ', nb)}{nb}{fmt_share(r['share'])}" for r in rows)
    s = f"GPU op time by kernel category ({_ms(per)}{per_unit(step_kind, steps)}, summed over ops): {parts}."
    graph = sum(int(r["graph_ops"]) for r in rows if not missing(r["graph_ops"]))
    if graph:
        ops = sum(int(r["ops"]) for r in rows if not missing(r["ops"]))
        s += f" {graph:,} of {plural(ops, 'op')} ran in CUDA/HIP graph replays: {GRAPH_NOTE}."
    return s + " Per phase and top kernels: --section kernels."


def fallback(results: Results) -> list[Table]:
    """Without headline.sql's outputs: the summary and the step cost metrics of steps.stats."""
    out = []
    many = len(traces(results)) > 1
    if "summary" in results:
        out.append(result_table(results, "summary", many=many))
    st = _get(results, "steps.stats")
    if len(st):
        st = st.where(lambda r: r["metric"] in _FALLBACK_METRICS)
        kinds = {k for k in st.col("step_kind") if not missing(k)}
        keep = (
            (["trace"] if many else [])
            + (["step_kind"] if len(kinds) > 1 else [])
            + ["metric", "steps", "mean", "p50", "p99"]
        )
        out.append(table("steps.stats", st.select(keep), title="per step (steps.stats; headline.sql gave no rows)"))
    elif "steps" in results:
        out.append(table("steps", st))
    return out


def section_keys(results: Results) -> list[str]:
    """Every table the report can show (plot inputs left out)."""
    return [k for k in results if k not in HIDDEN]


def select(results: Results, names: Sequence[str]) -> list[str]:
    """The result keys named by ``--section`` values: a key itself or a file name (``gpu_idle`` = all its outputs).

    Raises ValueError naming the unknown ones and the known ones.
    """
    keys = section_keys(results)
    out: list[str] = []
    bad = []
    for n in names:
        hit = [k for k in keys if k == n or k.startswith(n + ".")]
        if not hit:
            bad.append(n)
        out.extend(h for h in hit if h not in out)
    if bad:
        raise ValueError(f"unknown section {', '.join(bad)}; known: {', '.join(keys)}")
    return out


def result_table(results: Results, key: str, limit: int | None = None, many: bool | None = None) -> Table:
    """Any result table, formatted; the ``trace`` column dropped when the results hold one trace."""
    df = _get(results, key)
    if many is None:
        many = len(traces(results)) > 1
    drop = [] if many else ["trace"]
    return table(key, df, limit=limit, drop=drop)


def more_line(results: Results, shown: Sequence[str]) -> str:
    """The closing hint: what else there is and how to see it."""
    rest = [k for k in section_keys(results) if k not in shown and not k.startswith("headline")]
    files = list(dict.fromkeys(k.split(".")[0] for k in rest))
    return (
        f"More: --section NAME ({', '.join(files)}), --full for every table, --json for all rows, "
        "--html FILE for plots and the median step's timeline."
    )


# ----------------------------------------------------------------------------- several GPUs

#: How each clock alignment reads in a caption (collectives.sql's `alignment` output, `method`).
ALIGN_TEXT = {
    "collective_end": "clocks aligned so that matched collectives end together on every rank "
    "(rank_align = collective_end; collectives.alignment has each shift)",
    "none": "raw timestamps, no clock alignment (rank_align = none: valid only when the ranks share one clock)",
    "one_clock": "one trace: its GPUs share one clock, nothing to align",
}


def _ms(ns: Any) -> str:
    return fmt_duration(ns, with_unit=True)


def has_comm(results: Results) -> bool:
    """Any communication kernel (NCCL/RCCL, DeepEP, custom all-reduce, ...: comm.sql's `comm_ops`) in any trace."""
    c = _get(results, "comm")
    return bool(len(c)) and "comm_ops" in c and any(not missing(n) and n > 0 for n in c.col("comm_ops"))


def rank_count(results: Results) -> int:
    """Ranks seen together: traces of a multi-rank set (collectives.alignment, one row per trace) or ranks
    whose collectives matched (collectives.by_rank: an nsys report of several GPUs is one trace, one rank
    per device); 0 or 1 for one rank."""
    br = _get(results, "collectives.by_rank")
    matched = len({r for r in br.col("rank") if not missing(r)}) if len(br) and "rank" in br else 0
    return max(len(_get(results, "collectives.alignment")), int(matched))


def alignment(results: Results) -> str:
    """The clock alignment used for cross-rank times: 'collective_end' when any trace was shifted, 'one_clock'
    for one trace holding several GPUs, else 'none'."""
    al = _get(results, "collectives.alignment")
    if len(al) == 1:  # several GPUs in one trace (an nsys report): ranks are devices on one clock
        return "one_clock"
    if len(al) and "method" in al and "collective_end" in al.col("method"):
        return "collective_end"
    return "none"


def comm_lines(results: Results, trace: str) -> list[str]:
    """One sentence per GPU of ``trace`` with communication kernels: exposed communication per step and the
    overlap share with its numerator and denominator, naming the GPU as every other line does (comm.sql's
    `gpu`) and the libraries whose kernels these are (`comm_libraries`: the time is not only NCCL's)."""
    c = _get(results, "comm")
    if not len(c):
        return []
    out = []
    rows = c.where(lambda r: _same(r["trace"], trace) and not missing(r["comm_ops"]) and r["comm_ops"] > 0)
    for r in rows.records():
        per = r.get("comm_exposed_ns_per_step")
        per_s = (
            f"{_ms(per)} per step ({plural(int(r['steps']), 'step')})"
            if not missing(per)
            else f"{_ms(r['comm_exposed_ns'])} in all (per step: NULL, no step matched --step-pattern)"
        )
        share = r.get("comm_overlap_share")
        gpu = r.get("gpu") if not missing(r.get("gpu")) else f"device {r['device']}"
        libs = f" ({r['comm_libraries']})" if not missing(r.get("comm_libraries")) else ""
        out.append(
            f"{gpu}: exposed communication {per_s}; {fmt_share(share)} of communication time{libs} "
            f"overlapped by compute ({_ms(r['comm_overlap_ns'])} of {_ms(r['comm_ns'])})"
        )
    return out


def straggler(results: Results) -> str | None:
    """The slow-rank sentence from collectives.straggler (None for one rank): who arrives late, what it costs."""
    if rank_count(results) < 2:
        return None
    st = _get(results, "collectives.straggler")
    if not len(st):
        m = _get(results, "collectives.matched")
        return (
            "no rank arrived late at a matched collective"
            if len(m)
            else "no collective matched across ranks (no communication kernel, or the ranks' calls do not pair up)"
        )
    r = st.records()[0]
    s = (
        f"rank {r['rank']} arrives last at {r['times_last']} of {plural(int(r['matched_calls']), 'matched collective')}, "
        f"on average {_ms(r['late_ns_mean'])} after the next-latest rank, costing every other rank at least "
        f"that per call; the others waited {_ms(r['caused_wait_ns'])} for it in all"
    )
    if int(r["steps"] or 0) > 0:
        s += (
            f" ({_ms(r['caused_wait_ns_per_step'])} per step over {plural(int(r['steps']), 'step')}); steps end "
            f"{_ms(r['skew_ns_mean'])} apart on average (latest minus earliest end), rank {r['rank']} last in "
            f"{r['slowest_steps']} of them"
        )
    return s + "."
