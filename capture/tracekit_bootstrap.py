"""Per-process torch.profiler driver injected by ``tracekit capture`` (via ``sitecustomize``).

Configured by the JSON in ``TRACEKIT_CAPTURE`` (written by ``tracekit.capture``):
``raw`` (folder for traces), ``backend``, ``t0`` (capture start, epoch s),
``delay``/``duration`` (s, relative to ``t0`` so that every process, including
schedulers spawned late, shares one window), ``steps`` (close after N
``tracekit.phase("step")`` exits or N ``torch.profiler.profile.step()`` calls), ``wait_signal`` (idle until the toggle
signal), ``with_stack``, ``with_flops``.

Design choices, and why:

- The profiler starts when the process imports torch (an import hook), not at
  start-up: a Python child that never uses torch (a tokenizer helper, pip) is
  not slowed by a torch import, and produces no trace.
- The profiler is started and stopped on the main thread: Kineto records
  ``record_function`` ranges of the thread that enabled it (threads are only
  all covered with ``profile_all_threads``). Timers therefore deliver a
  real-time signal to the main thread instead of touching the profiler.
- Each process writes ``<raw>/<pid>.json`` as soon as its window closes (SGLang
  kills schedulers with SIGKILL, so exit hooks alone lose everything), and on
  normal exit, SIGTERM, SIGINT and unhandled exceptions. Writes go to a
  temporary name and are renamed, so a kill mid-write leaves no half file.
- ``<raw>/<pid>.proc.json`` is written when profiling starts (argv, parent,
  state): a process that has it but no trace was killed or crashed; the
  capture summary names it. Its argv is redacted first (``--api-key S``,
  ``HF_TOKEN=T``, URL credentials) with ``tracekit/redact.py``, loaded by the
  path in the config (``redact``): the rules live in that one module, which
  needs only the standard library. Without it, only the program name is kept.
- fork without exec: Kineto's state does not survive ``fork()`` (stopping the
  inherited profiler in the child hangs), so a forked child stops recording
  and says so in its ``.proc.json``; spawn/forkserver/subprocess children are
  fresh interpreters and are profiled.

This module must not import tracekit (the target may run another Python).
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from tracekit_hooks import run_after_exec
from tracekit_hooks import warn as _warn

NAME = "tracekit_bootstrap"
TOGGLE_SIGNAL = signal.SIGUSR2
_TIMER_SIGNAL = getattr(signal, "SIGRTMIN", signal.SIGUSR1) + 7 if hasattr(signal, "SIGRTMIN") else signal.SIGUSR1


class _State:
    """Everything this process knows about its capture; one instance, module-global."""

    def __init__(self) -> None:
        self.cfg: dict[str, Any] = {}
        self.raw = ""
        self.prof: Any = None
        self.recording = False
        self.window_done = False  # the configured window has closed: later toggles may reopen
        self.windows = 0
        self.steps = 0  # steps counted in the current window: the max over step_counts
        self.step_counts: dict[
            str, int
        ] = {}  # per source: "phase" (tracekit.phase("step")), "profiler" (profile.step())
        self.forked = False
        self.phase_mod: Any = None
        self.open_at: float | None = None
        self.close_at: float | None = None
        self.exported: list[str] = []
        self.notes: list[str] = []
        self.lock = threading.RLock()
        # Signal handlers run between bytecodes of the main thread, so a toggle can arrive while a
        # previous start()/stop is still inside torch (profile.start() takes ~0.5 s on a busy CPU).
        # Window actions therefore go through _dispatch, which defers nested ones instead of re-entering.
        self.busy = False
        self.pending: list[Callable[[], Any]] = []
        self.main_ident = threading.main_thread().ident
        self.redact_argv: Callable[[list], list] | None = None  # tracekit.redact.redact_argv, loaded by path


S = _State()


def _label() -> str:
    """A short, file-name-safe label of this process: multiprocessing name or script name."""
    mp = sys.modules.get("multiprocessing")
    name = ""
    try:
        if mp is not None:
            n = mp.current_process().name
            if n != "MainProcess":
                name = n
    except Exception:
        pass
    if not name:
        argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
        if argv0 == "-c":
            name = "python-c"
        elif argv0 == "-m" or (len(sys.argv) > 1 and argv0.endswith("__main__.py")):
            name = os.path.basename(os.path.dirname(argv0)) or "module"
        else:
            name = os.path.splitext(os.path.basename(argv0))[0] or "python"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:40]


def _load_redact(path: str) -> None:
    """Load ``redact_argv`` from tracekit's ``redact.py`` by file path (this process may not have tracekit)."""
    try:
        import importlib.util  # deferred: every process of the profiled program runs this at start-up

        spec = importlib.util.spec_from_file_location("_tracekit_redact", path)
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        S.redact_argv = mod.redact_argv
    except Exception as e:
        S.redact_argv = None
        S.notes.append(f"argv not recorded: cannot load the redaction rules ({type(e).__name__})")


def _argv() -> list:
    """``sys.argv`` with secrets redacted; only the program name when the rules could not be loaded (fail closed)."""
    argv = list(sys.argv)
    if S.redact_argv is not None:
        try:
            return list(S.redact_argv(argv))
        except Exception:
            pass
    return [os.path.basename(argv[0])] if argv else []


def _write_proc(**extra: Any) -> None:
    """Write/refresh ``<pid>.proc.json``: who this process is and what it exported (read by the summary)."""
    if not S.raw:
        return
    doc = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "argv": _argv(),
        "label": _label(),
        "updated_ns": time.time_ns(),
        "exported": S.exported,
        "steps": S.steps,
        "forked": S.forked,
        "notes": S.notes,
        **extra,
    }
    path = os.path.join(S.raw, f"{os.getpid()}.proc.json")
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)
    except OSError as e:
        _warn(f"cannot write {path}: {e}")


# --- profiler -----------------------------------------------------------------------------------


def _make_profiler() -> Any:
    import torch  # the program's own import of torch got us here; we never load it first
    from torch.profiler import ProfilerActivity, profile

    try:
        supported = set(torch.profiler.supported_activities())
    except Exception:
        supported = {ProfilerActivity.CPU}
    acts = [a for a in (ProfilerActivity.CPU, ProfilerActivity.CUDA) if a in supported]
    kw: dict[str, Any] = {}
    if ProfilerActivity.CUDA in acts:
        try:  # CUDA sync events (cudaStreamSynchronize, .item() waits): torch >= 2.2 has the flag
            kw["experimental_config"] = torch._C._profiler._ExperimentalConfig(enable_cuda_sync_events=True)
        except Exception:
            S.notes.append("this torch has no enable_cuda_sync_events")
    return profile(
        activities=acts,
        record_shapes=True,
        with_stack=bool(S.cfg.get("with_stack")),
        with_flops=bool(S.cfg.get("with_flops")),
        **kw,
    )


def _mark_capture(prof: Any) -> None:
    """Say in the trace that ``tracekit capture`` made it and with which activities (top-level key
    ``tracekit_capture``, e.g. ``CPU,CUDA``), so that a CPU-only run is reported as one (no advice to turn on
    CUDA activity that was on). Best effort: an old torch without ``add_metadata`` just leaves it out."""
    try:
        acts = sorted(str(a).rsplit(".", 1)[-1] for a in prof.activities)
        prof.add_metadata("tracekit_capture", ",".join(acts))
    except Exception:
        pass


def _set_phase_recording(on: bool) -> None:
    mod = S.phase_mod or sys.modules.get("tracekit.annotate")
    if mod is not None:
        try:
            mod.set_recording(on)
        except Exception:
            pass


def start() -> bool:
    """Open a recording window now (main thread); False when already recording or impossible."""
    with S.lock:
        if S.recording or S.forked or "torch" not in sys.modules:
            return False
        try:
            S.prof = _make_profiler()
            S.prof.start()
            _mark_capture(S.prof)
        except Exception as e:
            _warn(f"cannot start torch.profiler: {e!r}")
            S.prof = None
            return False
        S.recording = True
        S.steps = 0
        S.step_counts = {}
        S.windows += 1
        _set_phase_recording(True)
        _write_proc(state="recording")
        return True


def stop_and_export(reason: str) -> str | None:
    """Close the window and write the trace; returns its path (None when nothing was recording)."""
    with S.lock:
        if not S.recording or S.forked:
            return None
        S.recording = False
        _set_phase_recording(False)
        prof, S.prof = S.prof, None
        suffix = "" if S.windows == 1 else f".w{S.windows}"
        path = os.path.join(S.raw, f"{os.getpid()}{suffix}.json")
        tmp = os.path.join(S.raw, f".{os.getpid()}{suffix}.json.tmp")
        try:
            prof.stop()
            prof.export_chrome_trace(tmp)
            os.replace(tmp, path)
        except Exception as e:
            _warn(f"cannot export trace ({reason}): {e!r}")
            S.notes.append(f"export failed ({reason}): {e!r}")
            _write_proc(state="failed")
            return None
        S.exported.append(os.path.basename(path))
        _write_proc(state=f"exported ({reason})")
        return path


# --- window control ----------------------------------------------------------------------------


def _dispatch(action: Callable[[], Any]) -> None:
    """Run a window action now, or after the one in progress (never nested: see _State.busy)."""
    if S.busy:
        S.pending.append(action)
        return
    S.busy = True
    try:
        action()
        while S.pending:
            S.pending.pop(0)()
    finally:
        S.busy = False


def _tick() -> None:
    """Apply the time window (runs on the main thread, from the timer signal or directly)."""
    now = time.time()
    if S.close_at is not None and now >= S.close_at:
        if S.recording:
            stop_and_export("duration")
        S.window_done = True
        return
    if S.open_at is not None and now >= S.open_at and not S.recording and not S.window_done:
        start()


def _schedule(at: float) -> None:
    """Wake the main thread at ``at`` (epoch s) through the timer signal."""

    def fire() -> None:
        try:
            signal.pthread_kill(S.main_ident, _TIMER_SIGNAL)  # type: ignore[arg-type]
        except Exception:
            pass

    t = threading.Timer(max(0.0, at - time.time()), fire)
    t.daemon = True
    t.start()


def _count_step(source: str) -> None:
    """One step ended, as told by ``source``; closes the window after N steps.

    Sources are counted apart and the window closes when any reaches N (as torch's
    KinetoStepTracker takes the max over requesters): a loop that both calls
    ``prof.step()`` and runs inside ``phase("step")`` is not counted twice.
    """
    if not S.recording:
        return
    S.step_counts[source] = S.step_counts.get(source, 0) + 1
    S.steps = max(S.step_counts.values())
    n = S.cfg.get("steps")
    if n and S.steps >= int(n):

        def close() -> None:
            stop_and_export(f"{n} steps")
            S.window_done = True

        _dispatch(close)


def _on_step() -> None:
    """Hook run by tracekit.phase after each ``phase("step")``."""
    _count_step("phase")


def _patch_torch_profiler() -> None:
    """Count the program's own profiler steps, and keep its own profiler from ending ours unseen.

    - ``torch.profiler.profile.step()`` called by the program (its training or
      decode loop marking iterations) counts as a step for ``--steps``; it also
      emits ``ProfilerStep#N`` ranges into our trace (torch's ``record_steps``).
    - Kineto has one session per process: a program that starts its own
      ``torch.profiler.profile`` while ours records ends our session when it
      stops (measured on torch 2.13: our trace comes back empty). So before its
      start, our window is closed and exported, and the summary says why.
    """
    try:
        from torch.profiler import profiler as tp  # torch: loaded by the program already
    except Exception:
        return
    cls = tp.profile
    if getattr(cls, "_tracekit_patched", False):
        return
    orig_step, orig_start = cls.step, cls.start

    def step(self: Any, *a: Any, **k: Any) -> Any:
        r = orig_step(self, *a, **k)
        if self is not S.prof:
            _count_step("profiler")
        return r

    def start(self: Any, *a: Any, **k: Any) -> Any:
        if self is not S.prof and S.recording and threading.get_ident() == S.main_ident:
            S.notes.append(
                "the program started its own torch.profiler: tracekit's window closed first "
                "(one Kineto session per process)"
            )
            _dispatch(lambda: stop_and_export("program's own torch.profiler started"))
            S.window_done = True
        return orig_start(self, *a, **k)

    cls.step, cls.start = step, start
    cls._tracekit_patched = True


def attach_phase_module(mod: Any) -> None:
    """Called by tracekit.phase on import: share the recording flag and count steps."""
    S.phase_mod = mod
    mod.enable(True)
    mod.add_step_hook(_on_step)
    if S.recording:
        mod.set_recording(True)


def _on_torch_imported() -> None:
    """torch is now importable in this process: set up the window and maybe start recording."""
    if S.forked:
        return
    _patch_torch_profiler()
    _write_proc(state="armed")
    if S.cfg.get("wait_signal"):
        return
    t0 = float(S.cfg.get("t0") or time.time())
    delay = S.cfg.get("delay")
    duration = S.cfg.get("duration")
    S.open_at = t0 + float(delay) if delay else time.time()
    S.close_at = S.open_at + float(duration) if duration else None
    if S.close_at is not None:
        _schedule(S.close_at)
    if time.time() >= S.open_at:
        if threading.get_ident() == S.main_ident:
            _dispatch(_tick)
        else:
            _schedule(0)
    else:
        _schedule(S.open_at)


class _TorchImportHook:
    """One-shot meta-path finder: lets torch import normally, then calls :func:`_on_torch_imported`."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "torch":
            return None
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        import importlib.util  # deferred: every process of the profiled program runs this at start-up

        return run_after_exec(importlib.util.find_spec(name), lambda _m: _on_torch_imported(), "starting the profiler")


# --- exits and signals -------------------------------------------------------------------------


def _final(reason: str) -> None:
    if S.busy:  # interrupted inside start()/stop(): the profiler is mid-transition, nothing safe to export
        S.notes.append(f"{reason} arrived during a window transition; not exported")
        return
    try:
        stop_and_export(reason)
    except Exception as e:
        _warn(f"export at {reason} failed: {e!r}")


def _chain_signal(signum: int, prev: Any, frame: Any) -> None:
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_DFL:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _install_signal(signum: int, handler: Callable[[int, Any], None], only_if_default: bool = False) -> None:
    try:
        prev = signal.getsignal(signum)
        if only_if_default and prev not in (signal.SIG_DFL, None):
            return
        if prev == signal.SIG_IGN:
            return
        signal.signal(signum, handler)
        _PREV[signum] = prev
    except (ValueError, OSError):  # not the main thread, or a signal this OS lacks
        pass


_PREV: dict[int, Any] = {}


def _on_term(signum: int, frame: Any) -> None:
    _final(signal.Signals(signum).name)
    _chain_signal(signum, _PREV.get(signum, signal.SIG_DFL), frame)


def _on_int(signum: int, frame: Any) -> None:
    _final("SIGINT")
    prev = _PREV.get(signum)
    if callable(prev):
        prev(signum, frame)
    else:
        raise KeyboardInterrupt


def _on_toggle(signum: int, frame: Any) -> None:
    _dispatch(lambda: stop_and_export("toggle signal") if S.recording else start())


def _on_timer(signum: int, frame: Any) -> None:
    if S.open_at is None and not S.recording:
        return
    _dispatch(_tick)


def _excepthook_factory(prev: Callable[..., Any]) -> Callable[..., Any]:
    def hook(tp: Any, val: Any, tb: Any) -> None:
        _final("unhandled exception")
        prev(tp, val, tb)

    return hook


def _after_fork_child() -> None:
    """fork without exec: abandon the inherited profiler (stopping it in the child hangs Kineto)."""
    was = S.recording
    S.forked = True
    S.recording = False
    S.prof = None
    S.exported = []
    S.notes = ["forked without exec: not profiled (Kineto's profiler cannot follow fork)"]
    S.main_ident = threading.main_thread().ident
    _set_phase_recording(False)
    if was:
        _write_proc(state="not profiled (fork)")


def _arm_sglang_import_patch() -> None:
    """SGLang < 0.5.12 has no plugin loader: wrap its annotation targets at import (capture/tracekit_sglang.py)."""
    try:
        import tracekit_sglang  # deferred: only when the program imports SGLang

        tracekit_sglang.install_import_patch()
    except Exception as e:
        _warn(f"SGLang import-time annotation unavailable: {e!r}")


def install(cfg_json: str) -> None:
    """Arm this process: hooks for torch import, window timers, signals, exits and fork."""
    S.cfg = json.loads(cfg_json)
    S.raw = S.cfg.get("raw", "")
    sys.modules.setdefault(NAME, sys.modules[__name__])
    if S.raw:
        _load_redact(str(S.cfg.get("redact") or ""))
    _arm_sglang_import_patch()
    if S.cfg.get("backend", "torch") != "torch":
        return  # nsys records from outside; tracekit.phase emits NVTX because TRACEKIT_CAPTURE is set
    if not S.raw:
        return
    os.makedirs(S.raw, exist_ok=True)
    _install_signal(_TIMER_SIGNAL, _on_timer)
    _install_signal(TOGGLE_SIGNAL, _on_toggle, only_if_default=True)
    _install_signal(signal.SIGTERM, _on_term)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        _install_signal(signal.SIGINT, _on_int)
    atexit.register(_final, "exit")
    sys.excepthook = _excepthook_factory(sys.excepthook)
    os.register_at_fork(after_in_child=_after_fork_child)
    if "torch" in sys.modules:
        _on_torch_imported()
    else:
        sys.meta_path.insert(0, _TorchImportHook())
