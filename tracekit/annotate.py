"""Phase annotations: ``with phase("verify"): ...`` / ``@phase("lm_head")`` / ``mark("x")``.

One annotation opens a range that both profilers see: an NVTX range in the
``tracekit`` domain (Nsight Systems) and a torch.profiler ``record_function``
(Kineto ``user_annotation``; after ``tracekit convert`` a ``kind='range'`` row
whose name becomes the ``phase`` of every op, runtime call and kernel inside).

Why the flags: decode loops call these thousands of times per second, and an
annotation must cost nothing measurable outside a capture (target: <= 1 us).
So the hot path reads two module globals and returns:

- ``_ACTIVE``: this process runs under ``tracekit capture`` (the env var
  ``TRACEKIT_CAPTURE`` is set; also ``TRACEKIT_PHASE=1`` or :func:`enable`).
  Only then is NVTX touched.
- ``_RECORDING``: a torch.profiler is recording right now (set by the capture
  bootstrap when its window opens/closes, or by :func:`set_recording`). Only
  then is ``record_function`` entered: even a disabled ``record_function``
  costs ~10 us on CPU, and NVTX without an attached tool is ~1 us.
  (See bench/bench_phase.py for the measured numbers.)

torch is optional: it is imported lazily, only once recording starts.

Step counting (``tracekit capture --steps N``): each exit of ``phase("step")``
calls the hooks in :data:`_STEP_HOOKS` (the bootstrap registers one).

Token accounting (:func:`count`, numeric keyword args of :class:`phase`): a
trace does not know how many tokens a step drafted, accepted or processed, so
the program says it. Each call records one event named
``tracekit.count accepted=3 drafted=4`` (keys sorted): an NVTX mark (nsys:
``kind='instant'``) and a zero-length torch range (Kineto has no user
instants; these rows stay out of the ``ranges`` view, so they are never a
phase). Why in the name and not in ``args``: torch's ``record_function``
drops string arguments, and scalar ones only survive with
``record_shapes=True``; the name survives every profiler setting. No JSON
in it: torch writes range names into its JSON without escaping quotes.
``queries/tokens.sql`` reads them (the step they fall in, the phase they were
recorded in).
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

#: Names the reports know; any other name works too.
STANDARD_NAMES = (
    "step",
    "prefill",
    "decode",
    "extend",
    "draft",
    "draft_extend",
    "verify",
    "candidate",
    "sampler",
    "lm_head",
)

#: NVTX domain of every tracekit range.
DOMAIN = "tracekit"

#: Name prefix of the token-count events (:func:`count`); queries/tokens.sql parses the ``key=value`` pairs after it.
COUNT_EVENT = "tracekit.count"
#: The counts queries/tokens.sql knows; as keyword args of :class:`phase` these are recorded as counts.
COUNT_NAMES = ("drafted", "accepted", "batch_size", "tokens")
_COUNT_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

#: Name of the sys.modules entry of the capture bootstrap (capture/tracekit_bootstrap.py); it must not import tracekit.
BOOTSTRAP_MODULE = "tracekit_bootstrap"

_ACTIVE: bool = bool(os.environ.get("TRACEKIT_CAPTURE")) or os.environ.get("TRACEKIT_PHASE", "") not in ("", "0")
_RECORDING: bool = False
_STEP_HOOKS: list[Callable[[], None]] = []

_nvtx_push: Callable[..., Any] | None = None
_nvtx_pop: Callable[..., Any] | None = None
_nvtx_mark: Callable[..., Any] | None = None
_rf_enter: Callable[..., Any] | None = None
_rf_exit: Callable[..., Any] | None = None


def _load_nvtx() -> None:
    """Bind the NVTX functions once; a missing/broken ``nvtx`` package just disables NVTX ranges."""
    global _nvtx_push, _nvtx_pop, _nvtx_mark
    if _nvtx_push is not None:
        return
    try:
        import nvtx  # optional, and only for the nvtx backend

        dom = nvtx.get_domain(DOMAIN)

        cache: dict[str, Any] = {}

        def attrs(msg: str) -> Any:
            a = cache.get(msg)
            if a is None:
                a = cache[msg] = dom.get_event_attributes(message=msg)
            return a

        _nvtx_push = lambda msg: dom.push_range(attrs(msg))  # noqa: E731
        _nvtx_pop = dom.pop_range
        _nvtx_mark = lambda msg: dom.mark(attrs(msg))  # noqa: E731
    except Exception:  # pragma: no cover - nvtx is a dependency, but never let annotation break a program
        _nvtx_push = lambda msg: None  # noqa: E731
        _nvtx_pop = lambda: None  # noqa: E731
        _nvtx_mark = lambda msg: None  # noqa: E731


def _load_torch() -> bool:
    """Bind torch's ``record_function`` (imported lazily: torch stays optional); False without torch."""
    global _rf_enter, _rf_exit
    if _rf_enter is not None:
        return True
    if sys.modules.get("torch") is None:
        try:
            import torch  # noqa: F401  (deferred: a mark outside a profile never loads torch; only to know that the import below can work)
        except Exception:
            return False
    # torch.autograd.profiler.record_function is the entry that Kineto writes as `user_annotation`
    # (the `range` kind). torch._C._profiler._RecordFunctionFast is ~10x cheaper but lands as
    # `cpu_op`, which the phase sweep does not treat as a range, so it is not used.
    from torch.autograd.profiler import record_function  # torch is loaded by now (above)

    def enter(name: str, args: str | None) -> Any:
        r = record_function(name, args)
        r.__enter__()
        return r

    _rf_enter, _rf_exit = enter, lambda r: r.__exit__(None, None, None)
    return True


def enable(on: bool = True) -> None:
    """Turn NVTX emission on/off in this process (e.g. when running under ``nsys`` without ``tracekit capture``)."""
    global _ACTIVE
    _ACTIVE = on
    if on:
        _load_nvtx()


def set_recording(on: bool) -> None:
    """Tell the annotations whether a torch.profiler is recording (the bootstrap calls this at window edges).

    Call it yourself when you drive ``torch.profiler`` by hand and want tracekit ranges in that trace.
    """
    global _RECORDING
    if on and not _load_torch():
        on = False
    _RECORDING = on
    if on:
        enable(True)


def add_step_hook(fn: Callable[[], None]) -> None:
    """Call ``fn()`` after every ``phase("step")`` exits (used by ``--steps N``)."""
    if fn not in _STEP_HOOKS:
        _STEP_HOOKS.append(fn)


class phase:
    """A named range around a block or function; free unless a capture is active.

    ``with phase("verify"):`` or ``@phase("sampler")``. Keyword attributes
    (``phase("decode", bs=8)``) are appended to the NVTX message as JSON and
    kept out of the torch range name, so ``phase`` values stay the plain name
    that queries group by. Those named in :data:`COUNT_NAMES` are also
    recorded as counts inside the range (``phase("step", batch_size=8)`` =
    ``count(batch_size=8)`` as the step's first event), so the per-token
    analyses see them in Kineto too; other attributes (``vocab=32000``) stay
    descriptive and add no event.
    """

    __slots__ = ("_open_rf", "attrs", "name")

    def __init__(self, name: str, **attrs: Any) -> None:
        self.name = name
        self.attrs = attrs
        # None: not opened (the fast path); False: NVTX only; else the torch record_function handle.
        self._open_rf: Any = None

    def __enter__(self) -> phase:
        if _ACTIVE:
            self._open()
        return self

    def _open(self) -> None:
        if _nvtx_push is None:
            _load_nvtx()
        msg = self.name if not self.attrs else f"{self.name} {json.dumps(self.attrs, default=str, sort_keys=True)}"
        _nvtx_push(msg)  # type: ignore[misc]
        self._open_rf = _rf_enter(self.name, None) if _RECORDING else False  # type: ignore[misc]
        if self.attrs:
            nums = {k: v for k, v in self.attrs.items() if k in COUNT_NAMES and _is_count(v)}
            if nums:
                _emit_count(nums)

    def __exit__(self, t: Any, v: Any, tb: Any) -> None:
        if self._open_rf is not None:
            self._close()

    def _close(self) -> None:
        rf, self._open_rf = self._open_rf, None
        if rf is not False:
            try:
                _rf_exit(rf)  # type: ignore[misc]
            except Exception:  # profiler stopped inside the range: the handle is stale, nothing to record
                pass
        _nvtx_pop()  # type: ignore[misc]
        if self.name == "step":
            for hook in tuple(_STEP_HOOKS):
                hook()

    def __call__(self, fn: F) -> F:
        """Decorator form: a fresh range per call (re-entrant, thread-safe)."""
        name, attrs = self.name, self.attrs

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not _ACTIVE:
                return fn(*args, **kwargs)
            with phase(name, **attrs):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


def mark(name: str, **attrs: Any) -> None:
    """An instant: an NVTX mark, and a zero-length torch range (Kineto has no user instants)."""
    if not _ACTIVE:
        return
    if _nvtx_mark is None:
        _load_nvtx()
    _nvtx_mark(name if not attrs else f"{name} {json.dumps(attrs, default=str, sort_keys=True)}")  # type: ignore[misc]
    if _RECORDING:
        _rf_exit(_rf_enter(name, None))  # type: ignore[misc]


def _is_count(v: Any) -> bool:
    """A finite int/float (bools are not counts)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and v not in (float("inf"), float("-inf"))  # noqa: PLR0124  (v == v: not NaN; math.isfinite overflows on big ints)


def count_event_name(counts: dict[str, Any]) -> str:
    """``{"drafted": 4, "accepted": 3}`` -> ``tracekit.count accepted=3 drafted=4`` (what queries/tokens.sql parses)."""
    return COUNT_EVENT + "".join(f" {k}={counts[k]!r}" for k in sorted(counts))


def _emit_count(counts: dict[str, Any]) -> None:
    msg = count_event_name(counts)
    if _nvtx_mark is None:
        _load_nvtx()
    _nvtx_mark(msg)  # type: ignore[misc]
    if _RECORDING:
        _rf_exit(_rf_enter(msg, None))  # type: ignore[misc]


def count(name: str | None = None, n: float | None = None, /, **counts: float) -> None:
    """Record token counts with the step (and phase) this call falls in; free outside a capture.

    ``count("accepted", 3)`` or ``count(accepted=3, drafted=4, batch_size=1)``. Several calls in one
    step add up per name. Names the analyses know (queries/tokens.sql): ``drafted`` (draft tokens
    proposed), ``accepted`` (draft tokens the target accepted, bonus token excluded),
    ``batch_size`` (requests in the step), ``tokens`` (tokens the step processed or emitted). Any
    other name is kept and summed too. Values must be finite numbers (a TypeError otherwise: a
    count that cannot be summed would silently vanish from the tables).
    """
    if name is not None:
        counts[name] = n  # type: ignore[assignment]
    if not _ACTIVE:
        return
    bad = [k for k, v in counts.items() if not _is_count(v) or not _COUNT_KEY.match(k)]
    if bad:
        raise TypeError(
            f"tracekit.count: {', '.join(map(repr, bad))}: names must be identifiers and values finite numbers, "
            f"got {[counts[k] for k in bad]!r}"
        )
    if counts:
        _emit_count(counts)


def _sync_from_bootstrap() -> None:
    """Adopt the bootstrap's state when it was loaded before us (the usual order under capture)."""
    boot = sys.modules.get(BOOTSTRAP_MODULE)
    if boot is None:
        return
    try:
        boot.attach_phase_module(sys.modules[__name__])
    except Exception:  # never break the user's import
        pass


if _ACTIVE:
    _load_nvtx()
_sync_from_bootstrap()
