"""Where a raw trace's conversion is cached, and which file names are raw traces: no DuckDB here.

Why a module of its own: ``tracekit convert`` asks :func:`cache_path` whether its output would replace an input's
cached conversion (tracekit.cli._inputs.refuse_input), and importing it from tracekit.store loaded DuckDB (0.07 s) into
a process that never queries (issue 25 item 4). tracekit.store re-exports both names.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

RAW_SUFFIXES = (".json", ".json.gz", ".gz", ".sqlite", ".nsys-rep", ".qdrep")


def cache_path(src: Path, create: bool = True) -> Path:
    """Where the conversion of raw trace ``src`` is cached (``create``: make the cache folder if needed)."""
    beside = src.with_name(src.name + ".tracekit.parquet")
    # Root passes os.access everywhere: also honour the folder's write bits (a read-only trace archive stays clean).
    if os.access(src.parent, os.W_OK) and src.parent.stat().st_mode & 0o200:
        return beside
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tracekit"
    if create:
        base.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(str(src.resolve()).encode()).hexdigest()[:12]
    return base / f"{src.name}.{digest}.tracekit.parquet"
