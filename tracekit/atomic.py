"""Atomic output: every file tracekit writes appears complete or not at all.

Why one helper: Parquet from a conversion, a remapped graph trace, an HTML report and a Chrome
export all promise "no half-written output". Each is written under a temporary name in the
destination's folder (same file system, so the final rename is atomic), given the mode a plain
``open`` would have (``mkstemp`` makes it 0600), and renamed into place only when the writer
finished without an error; otherwise the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tracekit.errors import TraceError


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed onto ``dest`` when the block ends without an exception."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) atomically; an OS error is a one-line :class:`TraceError` naming the file."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        raise TraceError(path, f"cannot write: {e.strerror or e}") from None
