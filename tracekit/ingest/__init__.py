"""Ingest: source traces (Kineto JSON, nsys SQLite) -> the one Parquet schema.

:func:`convert` picks the reader from the file's first bytes, not its name:
gzip or ``{``/``[`` -> Kineto; ``SQLite format 3`` -> nsys; ``.nsys-rep`` /
``.qdrep`` -> exported to SQLite by the ``nsys`` CLI first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracekit.errors import TraceError
from tracekit.ingest.names import default_trace_name  # noqa: F401  (the verbs' name for it)

SQLITE_MAGIC = b"SQLite format 3\x00"


def detect(path: str | os.PathLike[str]) -> str:
    """``kineto``, ``nsys`` or ``nsys-rep`` for a trace file; raises TraceError otherwise."""
    p = Path(path)
    if not p.exists():
        raise TraceError(p, "no such file")
    if p.is_dir():
        raise TraceError(p, "is a directory, expected a trace file")
    if p.suffix in (".nsys-rep", ".qdrep"):
        return "nsys-rep"
    with open(p, "rb") as f:
        head = f.read(64).removeprefix(b"\xef\xbb\xbf")  # a UTF-8 BOM is skipped (issue 23 item 17, hostile-cli)
    if head.startswith(SQLITE_MAGIC):
        return "nsys"
    if not head.strip():
        raise TraceError(p, "empty file")
    if head[:2] == b"\x1f\x8b" or head.lstrip()[:1] in (b"{", b"["):
        return "kineto"
    if not head.strip():
        raise TraceError(p, "empty file")
    raise TraceError(p, f"not a Kineto JSON or nsys SQLite file (starts with {head[:16]!r})")


def convert(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    trace: str | None = None,
    progress: Callable[[int], None] | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Convert one trace file to one Parquet file ``out``; returns the trace metadata written.

    ``extra_meta`` is merged into the trace's metadata (tracekit.dataset passes ``source_sha256``, the
    content hash a rerun compares to skip traces already converted).
    """
    if extra_meta:
        from tracekit.ingest.sink import EXTRA_META  # deferred: pyarrow; `detect` callers need none of it

        token = EXTRA_META.set(dict(extra_meta))
        try:
            return convert(path, out, trace=trace, progress=progress)
        finally:
            EXTRA_META.reset(token)
    kind = detect(path)
    if kind == "kineto":
        from tracekit.ingest.kineto import convert_kineto  # deferred: each reader loads for its format only

        return convert_kineto(path, out, trace=trace, progress=progress)
    from tracekit.ingest import nsys  # deferred as above (tests/test_startup.py)

    return nsys.convert_nsys(path, out, trace=trace, progress=progress)
