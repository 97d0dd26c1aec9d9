"""The trace id a conversion gets when none is given.

Why a module of its own: both readers (tracekit.ingest.kineto, tracekit.ingest.nsys) name their trace with it,
and the package's ``__init__`` loads those readers; from the ``__init__`` it made each reader and the package
import each other (tests/test_layers.py).
"""

from __future__ import annotations

import os
from pathlib import Path


def default_trace_name(path: str | os.PathLike[str]) -> str:
    """Trace id used when none is given: the file name without trace extensions."""
    name = Path(path).name
    for suf in (".gz", ".json", ".trace", ".pt", ".sqlite", ".nsys-rep", ".qdrep", ".parquet"):
        if name.endswith(suf):
            name = name[: -len(suf)]
    return name
