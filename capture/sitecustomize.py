"""tracekit capture bootstrap, loaded by ``site`` in every Python process of a capture.

``tracekit capture`` puts this folder first on ``PYTHONPATH``; ``site`` imports
``sitecustomize`` at interpreter start-up (unless ``-S``/``-I``), and children
inherit the environment, so fork+exec, ``multiprocessing`` spawn (SGLang's
schedulers) and ``subprocess`` children all run this too.

Why so little here: outside a capture (``TRACEKIT_CAPTURE`` unset) this must do
nothing but hand over to the user's own ``sitecustomize`` (the one we shadow,
found further down ``sys.path``). The real work is in ``tracekit_bootstrap``,
which must not import tracekit: the profiled program may run another Python.
"""

import os
import sys


def _chain_user_sitecustomize() -> None:
    """Run the next ``sitecustomize`` on sys.path (the one this file shadows), as site would have."""
    import importlib.machinery  # deferred: every process of the profiled program runs this at start-up
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    paths = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", paths)
    if spec is None or spec.loader is None:
        return
    mod = importlib.util.module_from_spec(spec)
    ours = sys.modules.get("sitecustomize")
    sys.modules["sitecustomize"] = mod  # the user's module sees itself under its own name
    try:
        spec.loader.exec_module(mod)
    except Exception:
        sys.modules["sitecustomize"] = ours  # type: ignore[assignment]
        import traceback  # deferred: only when the user's sitecustomize failed

        # site itself prints and continues when sitecustomize fails; do the same
        print("Error in sitecustomize (chained by tracekit capture):", file=sys.stderr)
        traceback.print_exc()


def _start_capture() -> None:
    cfg = os.environ.get("TRACEKIT_CAPTURE")
    if not cfg:
        return
    try:
        import tracekit_bootstrap  # deferred: only under `tracekit capture` (TRACEKIT_CAPTURE set)

        tracekit_bootstrap.install(cfg)
    except Exception as e:  # never break the profiled program
        print(f"tracekit capture: bootstrap failed in pid {os.getpid()}: {e!r}", file=sys.stderr)


_chain_user_sitecustomize()
_start_capture()
