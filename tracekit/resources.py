"""Where the shipped SQL (``queries/``) and the capture bootstrap (``capture/``) are, in every install mode.

Why a module: both folders live at the repository root (they are read and
edited as plain files: the SQL by users, the bootstrap by being put on a
profiled program's ``PYTHONPATH``), so the package cannot find them beside
itself once installed. The wheel therefore ships them as the data-only
subpackages ``tracekit._queries`` and ``tracekit._capture`` (pyproject's
``package-dir`` maps them to the root folders), and this module answers
"which folder" for:

- a wheel / ``pip install .``: ``site-packages/tracekit/_queries`` (found
  through ``importlib.resources``);
- an editable install or a source checkout: ``<repo>/queries`` beside the
  ``tracekit`` package (setuptools' editable finder does not resolve the
  mapped folders, which have no ``__init__.py``, so the checkout is looked at
  directly).

Both callers need a real directory, not a resource reader: DuckDB and the
profiled interpreter read the files by path.
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path

from tracekit.errors import TraceError

#: subpackage -> (folder at the repository root, a file that must be there)
_FOLDERS = {"_queries": ("queries", "lib/gpu_activity.sql"), "_capture": ("capture", "tracekit_bootstrap.py")}


@functools.cache
def _folder(sub: str) -> Path:
    root, marker = _FOLDERS[sub]
    cands: list[Path] = []
    try:
        res = importlib.resources.files(f"tracekit.{sub}")
        if isinstance(res, Path):
            cands.append(res)
    except (ModuleNotFoundError, TypeError):  # editable install or checkout: the mapped package is not importable
        pass
    here = Path(__file__).resolve().parent
    cands += [here / sub, here.parent / root]
    for c in cands:
        if (c / marker).is_file():
            return c
    raise TraceError(
        here.parent / root,
        f"tracekit's {root}/ folder is missing from this install ({marker} not found); "
        "reinstall tracekit (pip install .)",
    )


def queries_dir() -> Path:
    """The folder of the analyses (``steps.sql``, ``lib/gpu_activity.sql``, ...)."""
    return _folder("_queries")


def capture_dir() -> Path:
    """The folder put first on a profiled program's ``PYTHONPATH`` (``sitecustomize.py``, ``tracekit_bootstrap.py``)."""
    return _folder("_capture")


def redact_module() -> Path:
    """``tracekit/redact.py`` as a file: the capture bootstrap loads it by path (it cannot import tracekit)."""
    return Path(__file__).resolve().parent / "redact.py"
