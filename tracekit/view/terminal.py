"""Lay view-model tables out in a terminal of a given width.

Rules (issue 10): a number is never wrapped nor cut (numeric columns get their natural width);
text columns are elided in the middle with ``…`` to make the table fit; a table whose numeric
columns alone do not fit is split into column blocks that repeat its leading text columns; no
line is longer than the width. Every string from a trace passes through :func:`tracekit.safe.term`
before it is measured, so an escape sequence is shown, never executed, and counted as shown.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.cells import cell_len

from tracekit.rows import all_rows
from tracekit.safe import term
from tracekit.view import sections as sec
from tracekit.view.model import Column, Table, elide, footnote, is_frame, is_note, plural, short_frame

GAP = "  "
MIN_TEXT = 12  # a text column is not squeezed below this many cells (unless its content is shorter)


#: Widest line laid out, in cells (`report --width`'s bound): lines are built as strings of this many cells,
#: so `--width 1000000000` (or COLUMNS=1000000000 on a terminal) was a MemoryError (issue 23).
MAX_WIDTH = 4096


def terminal_width(override: int | None = None) -> int:
    """``override``, else the terminal's width, else 80 (piped output is read in editors and PRs); 20..MAX_WIDTH."""
    if override:
        return min(MAX_WIDTH, max(20, int(override)))
    if sys.stdout.isatty():
        return min(MAX_WIDTH, shutil.get_terminal_size((80, 24)).columns)
    return 80


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - cell_len(text))
    return fill + text if right else text + fill


def _safe(col: Column) -> Column:
    """Terminal-safe copy of ``col``: headers and every cell escaped (an id column may hold a name); a
    Python frame's path cut to its last two components (the terminal only: --json and HTML keep it whole)."""
    cells = [short_frame(c) for c in col.cells] if is_frame(col) else col.cells
    return Column(col.name, term(col.header), col.kind, [term(c) for c in cells], col.hover, col.declared)


def _floor(col: Column, natural: int, width: int) -> int:
    """How far a column may shrink: numbers not at all, text to a quarter of the line (at least 12 cells), a
    Python frame to half of it (its file and its function are at the two ends: both must stay readable)."""
    if col.numeric:
        return natural
    return min(natural, max(MIN_TEXT, width // (2 if is_frame(col) else 4)))


def _natural(cols: list[Column], indent: list[int] | None) -> list[int]:
    widths = [c.natural_width() for c in cols]
    if indent is not None and cols:
        widths[0] = max(
            cell_len(cols[0].header), max((2 * d + cell_len(c) for d, c in zip(indent, cols[0].cells)), default=0)
        )
    return widths


def _fit(
    cols: list[Column], width: int, indent: list[int] | None, fixed: dict[int, int] | None = None
) -> list[int] | None:
    """Widths that fit ``width`` by shrinking text columns only (widest first); None when that cannot fit.

    ``fixed``: column index -> width kept as is (key columns repeated across blocks keep one width).
    """
    fixed = fixed or {}
    widths = [fixed.get(i, w) for i, w in enumerate(_natural(cols, indent))]
    total = sum(widths) + len(GAP) * (len(cols) - 1)
    floors = [widths[i] if i in fixed else _floor(c, w, width) for i, (c, w) in enumerate(zip(cols, widths))]
    while total > width:
        cand = [i for i, c in enumerate(cols) if widths[i] > floors[i]]
        if not cand:
            return None
        i = max(cand, key=lambda j: widths[j] - floors[j])
        step = min(total - width, widths[i] - floors[i])
        widths[i] -= step
        total -= step
    return widths


def _blocks(cols: list[Column], width: int, indent: list[int] | None) -> list[tuple[list[Column], list[int]]]:
    """Split columns into blocks that each fit, every block repeating the leading text/id key columns."""
    widths = _fit(cols, width, indent)
    if widths is not None:
        return [(cols, widths)]
    nkey = 0
    for c in cols[:2]:  # key columns: the leading text/id columns that say what a row is
        if c.numeric and c.kind != "id":
            break
        nkey += 1
        if c.hover:  # a kernel's short name says it alone (its category goes with the other columns)
            break
    key, rest = cols[:nkey], cols[nkey:]
    nat = _natural(cols, indent)
    # the key columns (what a row is: a kernel name, a phase path) keep up to 45% of the line in every block,
    # 60% when one is a kernel's short name (a column with the full name behind it): it is what the rows are about
    fixed = {i: nat[i] for i in range(len(key))}
    share = 60 if any(c.hover for c in key) else 45
    budget = max(MIN_TEXT, width * share // 100) - len(GAP) * (len(key) - 1)
    while sum(fixed.values()) > budget:
        i = max(fixed, key=lambda j: fixed[j])
        lo = _floor(key[i], nat[i], width) if is_frame(key[i]) else MIN_TEXT
        if key[i].numeric or fixed[i] <= lo:
            break
        fixed[i] -= 1
    blocks: list[tuple[list[Column], list[int]]] = []
    cur: list[Column] = []
    for c in rest:
        if cur and _fit(key + cur + [c], width, indent, fixed) is None:
            blocks.append((key + cur, _fit(key + cur, width, indent, fixed) or []))
            cur = []
        cur.append(c)
    if cur:
        blocks.append((key + cur, _fit(key + cur, width, indent, fixed) or []))
    out = []
    for bcols, w in blocks:
        if not w:  # one column wider than the line even alone with its keys: show it without them
            bcols = [c for c in bcols if c not in key]
            w = _fit(bcols, width, None) or [min(c.natural_width(), width) for c in bcols]
        out.append((bcols, w))
    return out


def _cell(col: Column, text: str, width: int, depth: int = 0) -> str:
    if col.numeric:
        return _pad(text, width, right=True)
    prefix = "  " * depth
    return _pad(prefix + elide(text, max(1, width - cell_len(prefix))), width, right=False)


def table_lines(tab: Table, width: int) -> list[str]:
    """The lines of ``tab`` (title, header, rule, rows, a note on rows left out); each at most ``width`` cells."""
    if tab.empty is not None:
        return wrap_text(f"{tab.title}: {tab.empty}", width)
    cols = [_safe(c) for c in tab.columns]
    cols, notes = _footnotes(cols, width, tab.indent)
    out = wrap_text(tab.title, width)
    blocks = _blocks(cols, width, tab.indent)
    for b, (bcols, widths) in enumerate(blocks):
        if b:
            cont = f"(continued, {b + 1}/{len(blocks)})"
            out.append(elide(f"{term(tab.title)} {cont}" if tab.title else cont, width))
        out.append(GAP.join(_pad(elide(c.header, w), w, c.numeric) for c, w in zip(bcols, widths)).rstrip())
        out.append(GAP.join("─" * w for w in widths))
        for r in range(tab.shown_rows):
            depth = tab.indent[r] if tab.indent else 0
            cells = [
                _cell(c, c.cells[r], w, depth if (tab.indent and c is bcols[0] and c is cols[0]) else 0)
                for c, w in zip(bcols, widths)
            ]
            out.append(GAP.join(cells).rstrip())
    for n, text in enumerate(notes, 1):
        out.extend(wrap_text(f"[{n}] {text}", width))
    if tab.total_rows > tab.shown_rows:
        left = tab.total_rows - tab.shown_rows
        out.append(elide(f"({plural(left, 'more row')}: {tab.more})", width))
    return out


def _footnotes(cols: list[Column], width: int, indent: list[int] | None) -> tuple[list[Column], list[str]]:
    """Note columns (sentences) that would be elided become ``[n]`` markers with the sentences below the table."""
    widths = _fit(cols, width, indent)
    out: list[Column] = []
    notes: list[str] = []
    for i, c in enumerate(cols):
        if is_note(c) and not c.numeric and (widths is None or widths[i] < c.natural_width()):
            nums = [footnote(notes, v) for v in c.cells]
            marks = [f"[{n}]" if n else "" for n in nums]
            c = Column(c.name, c.header, c.kind, marks, declared=c.declared)
        out.append(c)
    return out, notes


#: A number and the unit after it ("3.66 ms", "24.9 %", "1,198 launches" is not: only units) stay on one line.
_NUM_UNIT = re.compile(
    r"(?<![\w.])([-+]?[\d][\d,]*(?:\.\d+)?) (ns|us|µs|ms|s|min|h|%|x|GB|MB|KB|B|GiB|MiB|KiB|TFLOP/s|GB/s|TB/s)(?![\w/])"
)
_GLUE = "\u00a0"
_CODE_SPAN = re.compile(r"`[^`\n]+`")


def _split_long(word: str, room: int) -> list[str]:
    """A word longer than a line (a config hint) is split only after a top-level ``=`` or ``,`` (outside
    brackets), so ``experimental_config=torch.profiler._ExperimentalConfig(enable_cuda_sync_events=True)``
    breaks after ``experimental_config=`` and its call stays whole; a piece with no such point is kept
    whole and may run past the width (an identifier is never cut)."""
    pieces: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(word):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif ch in "=," and depth == 0 and cell_len(word[start:]) > room:
            pieces.append(word[start : i + 1])
            start = i + 1
    pieces.append(word[start:])
    out: list[str] = []
    for p in pieces:  # join pieces back while they fit
        if out and cell_len(out[-1]) + cell_len(p) <= room:
            out[-1] += p
        else:
            out.append(p)
    return [p for p in out if p]


def wrap_text(text: str, width: int, indent: str = "") -> list[str]:
    """Word-wrap a sentence (verdicts, notes) at ``width``. A number stays on the line of its unit; a word
    longer than a line is split only where :func:`_split_long` allows, never inside an identifier. A
    `quoted name` that fits on a line stays whole (``## forward ##`` split after ``## forward`` reads as two
    names)."""
    words: list[str] = []
    room = max(8, width - len(indent) - 2)
    glued = _NUM_UNIT.sub(lambda m: m.group(1) + _GLUE + m.group(2), term(text))
    glued = _CODE_SPAN.sub(
        lambda m: m.group(0).replace(" ", _GLUE) if cell_len(m.group(0)) <= room else m.group(0), glued
    )
    for w in glued.split(" "):
        words.extend(_split_long(w, room) if cell_len(w) > room else [w])
    lines: list[str] = []
    cur = indent
    for w in words:
        if not w:
            continue
        if cur.strip() and cell_len(cur) + 1 + cell_len(w) > width:
            lines.append(cur.rstrip())
            cur = indent + "  " + w
        else:
            cur = (cur + " " + w) if cur.strip() else cur + w
    if cur.strip():
        lines.append(cur.rstrip())
    return [ln.replace(_GLUE, " ") for ln in lines]


def join_lines(parts: Iterable[Sequence[str]]) -> list[str]:
    """Blocks separated by one blank line."""
    out: list[str] = []
    for p in parts:
        if not p:
            continue
        if out:
            out.append("")
        out.extend(p)
    return out


def report_lines(
    results: Mapping[str, Any], width: int = 80, sections: Sequence[str] = (), full: bool = False, limit: int = 25
) -> list[str]:
    """The terminal report as lines of at most ``width`` cells.

    Default: notes and warnings first, then per trace and step kind the verdicts, the per-step table
    and the phase tree (and, for a trace with communication kernels, its exposed communication per GPU), the
    slow-rank sentence when several ranks' collectives matched, then one line on what else there is. ``sections`` picks result tables by
    name; ``full`` prints every table. Raises ValueError for an unknown section name. ``results``: Rows
    or DataFrames (converted once here).
    """
    results = all_rows(results)
    many = len(sec.traces(results)) > 1  # once: it scans every result's trace column
    blocks: list[list[str]] = []
    ns = sec.notes(results)
    if ns:
        lines = []
        for n in ns:
            tr = f"[{n.trace}] " if many else ""
            lines.extend(wrap_text(f"{n.severity}: {tr}{n.source}: {n.message}", width))
        blocks.append(lines)
    if sections or full:
        keys = sec.select(results, sections) if sections else sec.section_keys(results)
        for k in keys:
            blocks.append(table_lines(sec.result_table(results, k, limit=limit, many=many), width))
        return join_lines(blocks)
    gs = sec.groups(results)
    for gi, g in enumerate(gs):
        head = f"== {g.trace} · {g.step_kind} · {sec.counted(g.step_kind, g.steps)} "
        head = elide(term(head), width - 2)
        blocks.append([head + "=" * max(2, width - cell_len(head))])
        if g.verdicts:
            vl: list[str] = []
            for i, v in enumerate(g.verdicts, 1):
                vl.extend(wrap_text(f"{i}. {v}", width))
            blocks.append(vl)
        if g.headline is not None:
            blocks.append(table_lines(g.headline, width))
        if g.tree is not None:
            blocks.append(table_lines(g.tree, width))
        if g.categories:
            blocks.append(wrap_text(g.categories, width))
        if gi + 1 == len(gs) or gs[gi + 1].trace != g.trace:  # the trace's last step kind: its GPUs' block
            blocks.append(gpus_lines(results, g.trace, width))
    if not gs:
        for t in sec.fallback(results):
            blocks.append(table_lines(t, width))
        for tr in sec.traces(results):
            blocks.append(gpus_lines(results, tr, width))
    slow = sec.straggler(results)
    if slow:
        blocks.append(
            wrap_text(f"several GPUs, slowest rank: {slow}", width)
            + wrap_text(f"({sec.ALIGN_TEXT[sec.alignment(results)]})", width)
        )
    blocks.append(wrap_text(sec.more_line(results, ()), width))
    return join_lines(blocks)


def gpus_lines(results: Mapping[str, Any], trace: str, width: int) -> list[str]:
    """The trace's "several GPUs" block (only when it ran communication kernels): exposed communication per GPU."""
    lines = sec.comm_lines(results, trace)
    if not lines:
        return []
    out = [f"several GPUs ({elide(term(trace), max(8, width - 20))}):"]
    for ln in lines:
        out.extend(wrap_text(f"- {ln}", width))
    return out


def print_report(
    results: Mapping[str, Any],
    width: int | None = None,
    sections: Sequence[str] = (),
    full: bool = False,
    limit: int = 25,
) -> None:
    """Print :func:`report_lines` at the terminal's width (80 when piped, ``width`` to override)."""
    w = terminal_width(width)
    sys.stdout.write("\n".join(report_lines(results, w, sections, full, limit)) + "\n")
