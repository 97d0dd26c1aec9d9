"""What the capture bootstrap and the SGLang plugin share, inside the profiled program (stdlib only).

Why a module of its own: tracekit_bootstrap arms the SGLang plugin (tracekit_sglang) and the plugin wrapped
modules with the bootstrap's import hook, so the two imported each other (tests/test_layers.py). Both import
this instead. Like them it must not import tracekit: the profiled program may run another Python, and it is
found on ``sys.path`` through the ``PYTHONPATH`` entry ``tracekit capture`` puts first (capture/).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any


def warn(msg: str) -> None:
    """One line on stderr naming the process: the profiled program's own output stays as it was."""
    print(f"tracekit capture [{os.getpid()}]: {msg}", file=sys.stderr, flush=True)


def run_after_exec(spec: Any, after: Callable[[Any], None], what: str) -> Any:
    """``spec`` with its loader extended: once the module body has run, ``after(module)``.

    Shared by the torch import hook (tracekit_bootstrap) and SGLang's import-time patch (tracekit_sglang). An
    error in ``after`` is reported on stderr, never raised into the profiled program's import.
    """
    if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
        return spec
    orig: Callable[[Any], None] = spec.loader.exec_module

    def exec_module(module: Any) -> None:
        orig(module)
        try:
            after(module)
        except Exception as e:
            warn(f"{what} failed: {e!r}")

    try:
        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
    except Exception:
        pass
    return spec
