"""What each input of ``tracekit convert -o FOLDER`` is called in the dataset: its trace id and its file.

Why a rule of its own: the file name is how a dataset tells its traces apart, and every reader skips
some names. Two inputs given the same name silently replaced one another (``a/trace.json`` then
``b/trace.json``), and ``_rank0.json.gz`` or ``.json.gz`` became hidden files that tracekit, pyarrow and
Spark skip (DuckDB's ``*.parquet`` glob does not), while convert counted them (issue 24). The rule:

1. The trace id is ``--trace`` (one input), else the input's file name without its trace suffixes
   (tracekit.ingest.default_trace_name) made safe (:func:`safe_name`). The file is ``<trace>.parquet``.
2. Inputs of one command whose names are equal (case-insensitively: macOS and Windows folders are) get
   their folder names put in front, joined by ``__`` (the separator report uses for nested files), one
   folder more at a time for every input that still shares its name: ``run/rank0/trace.json`` and
   ``run/rank1/trace.json`` are ``rank0__trace`` and ``rank1__trace``. The same inputs always give the
   same names; two inputs still equal when their folders run out are refused, naming both.
3. An input the dataset already holds (a file whose footer's ``source_file`` is this path) is a rerun: it
   keeps its file and trace id, and replaces that file. With ``--trace`` it takes the new name, and the
   old file is removed once the new one is written: an input is in a dataset at most once.
4. Any other name the dataset already holds (a file of that name, or a trace of that id in any file) came
   from another input: refused, naming both inputs, unless ``--force`` (then the new trace replaces it).

Only names of letters, digits and ``. - + = @ ,`` (``_`` inside) are written: no path separator, no
control character, nothing a reader hides (a leading ``.`` or ``_``), never empty, at most
:data:`NAME_MAX` bytes. A ``--trace`` outside that is refused, never rewritten behind the user's back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re

from tracekit.errors import TraceError
from tracekit.ingest.names import default_trace_name

SEP = "__"
#: bytes of a name, far below the 255 of a file name: the writer's temporary name adds about 70 (tracekit.atomic)
NAME_MAX = 150
_UNSAFE = re.compile(r"[^\w.+=@,-]+")  # \w: Unicode letters, digits and _; nothing else survives (no / \ or controls)
_HIDDEN = "._"


def safe_name(text: str) -> str:
    """``text`` as a visible file name: each run of other characters one ``_``; leading ``.``/``_`` and trailing
    ``.`` dropped (a reader would hide the file; Windows drops the dot); cut to NAME_MAX bytes with a hash of
    the whole (so two long names stay apart). ``""`` when nothing is left."""
    s = _UNSAFE.sub("_", text).lstrip(_HIDDEN).rstrip(".")
    if len(s.encode()) <= NAME_MAX:
        return s
    tail = "-" + hashlib.sha256(s.encode()).hexdigest()[:12]
    return s.encode()[: NAME_MAX - len(tail)].decode(errors="ignore").rstrip(".") + tail


def check_trace(name: str) -> str:
    """``--trace`` for a dataset: it becomes a file name, so it must already be one :func:`safe_name` keeps."""
    if not name or safe_name(name) != name:
        raise TraceError(
            "--trace",
            f"{name!r} cannot name a dataset file: use letters, digits and . - + = @ , "
            f"(and _ inside), at most {NAME_MAX} bytes, not starting with . or _",
        )
    return name


def source_id(src: str) -> str:
    """What says "the same input" across commands: a local input's absolute path (``file://`` URLs too), a URL as given."""
    if src.startswith("file://"):
        from tracekit import dataset  # pyarrow.fs: not for `convert IN -o OUT` (one file, no dataset)

        return dataset.resolve(src)[1]
    return src if "://" in src else os.path.abspath(src)


def _parts(src: str) -> tuple[list[str], str]:
    """(folder names from the root down, file name) of an input path or URL."""
    path = src.split("://", 1)[1] if "://" in src else source_id(src).replace(os.sep, "/")
    bits = [b for b in path.split("/") if b]
    return bits[:-1], default_trace_name(bits[-1] if bits else "")


def _name_at(src: str, level: int) -> str:
    """The name of ``src`` with its ``level`` nearest folders in front (empty parts dropped)."""
    folders, stem = _parts(src)
    parts = [safe_name(p) for p in folders[len(folders) - level :]] if level else []
    return SEP.join(p for p in [*parts, safe_name(stem)] if p)


def _first_level(src: str) -> int:
    """The fewest folders that give ``src`` a non-empty name (a file called ``.json.gz`` takes its folder's)."""
    folders, _ = _parts(src)
    return next((k for k in range(len(folders) + 1) if _name_at(src, k)), len(folders))


def path_names(inputs: list[str], out: str = "") -> list[str]:
    """Rules 1-2: one distinct name per input, from the paths alone; TraceError naming two inputs it cannot part."""
    seen: dict[str, str] = {}
    for src in inputs:
        if source_id(src) in seen:
            also = "" if seen[source_id(src)] == src else f" (also as {seen[source_id(src)]})"
            raise TraceError(src, f"is given twice{also}: each input is one trace of the dataset")
        seen[source_id(src)] = src
    levels = [_first_level(s) for s in inputs]
    base = [_name_at(s, k) or "trace" for s, k in zip(inputs, levels)]
    while True:
        names = [_name_at(s, k) or "trace" for s, k in zip(inputs, levels)]
        groups: dict[str, list[int]] = {}
        for i, n in enumerate(names):
            groups.setdefault(n.casefold(), []).append(i)
        clash = [g for g in groups.values() if len(g) > 1]
        if not clash:
            return names
        for g in clash:
            if any(levels[i] >= len(_parts(inputs[i])[0]) for i in g):
                a, b = inputs[g[0]], inputs[g[1]]
                raise TraceError(
                    out or a,
                    f"{a} and {b} both give the trace name {base[g[0]]!r}: convert them into "
                    "different folders, or one of them alone with --trace NAME",
                )
            for i in g:
                levels[i] += 1


@dataclasses.dataclass
class Held:
    """One event file already in the dataset: its name there and, per trace in it, that trace's source id."""

    rel: str
    traces: dict[str, str | None]

    def source(self) -> str:
        srcs = sorted({s for s in self.traces.values() if s})
        return srcs[0] if srcs else "an unknown input"


def held(out: str) -> list[Held]:
    """The event files of the dataset ``out`` with where each trace came from (their footers; none for a new folder)."""
    from tracekit import dataset  # pyarrow.fs: not for `convert IN -o OUT` (one file, no dataset)

    found = []
    for rel in dataset.event_files(out):
        try:
            traces = dataset.footer_meta(dataset.join(out, rel))["traces"]
        except Exception:  # noqa: BLE001  (not a readable tracekit file: its name is still taken)
            traces = {}
        found.append(Held(rel, {t: _recorded(m.get("source_file")) for t, m in traces.items()}))
    return found


def _recorded(source_file: object) -> str | None:
    """A footer's ``source_file`` as a source id (files from before absolute paths hold the path as given)."""
    return None if not source_file else source_id(str(source_file))


@dataclasses.dataclass
class Planned:
    """Where one input goes: ``rel`` in the dataset as trace ``trace``; ``removes``: files it supersedes."""

    src: str
    rel: str
    trace: str
    removes: list[str]


def plan(inputs: list[str], out: str, trace: str | None = None, force: bool = False) -> list[Planned]:
    """Rules 1-4 for ``inputs`` converted into ``out``; TraceError (naming both inputs) on a collision."""
    if trace is not None and len(inputs) != 1:
        raise TraceError(out, "a trace name (--trace) names one input")
    names = [check_trace(trace)] if trace is not None else path_names(inputs, out)
    files = held(out)
    planned = [_place(src, name, trace is not None, files, out, force) for src, name in zip(inputs, names)]
    _refuse_twice(planned, out)
    return planned


def _place(src: str, name: str, named: bool, files: list[Held], out: str, force: bool) -> Planned:
    """Rules 3-4 for one input against the files already in the dataset."""
    sid = source_id(src)
    own = [h for h in files if sid in h.traces.values()]
    if own and not named:  # a rerun: the file and trace id it has
        h = own[0]
        return Planned(src, h.rel, next(t for t, s in h.traces.items() if s == sid), [o.rel for o in own[1:]])
    rel, key = f"{name}.parquet", name.casefold()
    removes = [o.rel for o in own if o.rel != rel]
    for h in files:
        if h in own or not (h.rel.casefold() == rel.casefold() or any(t.casefold() == key for t in h.traces)):
            continue
        if not force:
            raise TraceError(
                out,
                f"{src} and {h.source()} (converted there before, {h.rel}) both give the trace name "
                f"{name!r}: name this one with --trace NAME, or give --force to replace that trace",
            )
        if h.rel.casefold() != rel.casefold():
            removes.append(h.rel)
    return Planned(src, rel, name, removes)


def _refuse_twice(planned: list[Planned], out: str) -> None:
    """Kept names (rule 3) and new names may still meet inside one command: refuse, naming both inputs."""
    seen: dict[str, Planned] = {}
    for p in planned:
        for key in {p.rel.casefold(), f"{p.trace.casefold()}.parquet"}:
            if key in seen and seen[key] is not p:
                q = seen[key]
                raise TraceError(
                    out,
                    f"{q.src} and {p.src} both give the trace name {p.trace!r} (one of them is in "
                    "the dataset under that name already): convert them into different folders",
                )
            seen[key] = p
