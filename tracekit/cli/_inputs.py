"""Never over an input: a verb's output path is checked against the inputs it was given, before any work.

Why in the CLI layer: the verbs are its only callers, and it needs the conversion cache's file names
(:mod:`tracekit.rawcache`, the store layer). In :mod:`tracekit.atomic`, which the converter imports, it made
store -> ingest -> atomic -> rawcache a circle (tests/test_layers.py). The guard for files opened while a
verb runs stays in tracekit.atomic (:func:`tracekit.atomic.refuse_read`): every writer goes through it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from tracekit.errors import TraceError
from tracekit.rawcache import RAW_SUFFIXES, cache_path  # not tracekit.store: no DuckDB for convert


def _same(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_input(out: str | os.PathLike[str] | None, inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise :class:`TraceError` when writing ``out`` would replace one of ``inputs``.

    "One of the inputs" is a file given, a Parquet or raw trace file inside a folder given (a dataset), the cached
    conversion of a raw trace (``<file>.tracekit.parquet``, see :func:`tracekit.rawcache.cache_path`).
    Same file means the same inode (hard links, symlinks) or, when ``out`` does not exist yet, the
    same resolved path.
    """
    if out is None:
        return
    o = Path(out)
    if o.is_dir():  # before the work, in one line (click's dir_okay=False printed its three-line usage error)
        raise TraceError(out, "is a folder: give a file name")
    for i in inputs:
        p = Path(i)
        cands: list[Path] = [p]
        if p.is_dir():
            inside = os.path.realpath(o).startswith(os.path.realpath(p) + os.sep)
            if inside and o.is_file() and o.name.endswith((".parquet", *RAW_SUFFIXES)):
                cands.append(o)  # a file of the dataset the folder stands for
        elif p.is_file():
            with contextlib.suppress(OSError):
                cands.append(cache_path(p, create=False))
        for c in cands:
            if _same(o, c):
                raise TraceError(out, f"is an input ({i}); writing it would destroy it: choose another output path")
