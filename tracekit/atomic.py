"""Atomic output: every file tracekit writes appears complete or not at all, and never over an input.

Why one helper: Parquet from a conversion, a remapped graph trace, an HTML report and a Chrome
export all promise "no half-written output". Each is written under a temporary name in the
destination's folder (same file system, so the final rename is atomic), given the mode a plain
``open`` would have (``mkstemp`` makes it 0600), and renamed into place only when the writer
finished without an error; otherwise the temporary file is removed.

Temporary files (``.<name>.<pid>@<host>.<random>.tmp`` here, the conversion's ``.arrow`` spill in
:mod:`tracekit.ingest.sink`) carry the writer's pid and host, for the two ways a process can die
before its ``finally`` runs:

- SIGTERM / SIGINT: :func:`cleanup_on_signals` (installed by the CLI) removes every live temporary
  file, then lets the signal act as it would have (the process dies by it);
- SIGKILL (or a crash, a power cut): nothing can run, so the next write into the same folder
  removes the temporary files of this host whose pid is no longer alive (:func:`remove_stale`).

A live process's files are never touched; a pid reused by another process keeps the stale file
until that process ends (harmless: it is hidden and costs only disk). The host name keeps a run on
one machine from removing the live files of another writing into the same network folder.

Never over an input: ``tracekit.cli._inputs.refuse_input`` checks a verb's output against the inputs it was given,
before any work; under it, while a CLI verb runs (:func:`guarding_inputs`), every file opened as an input is remembered
(:func:`note_input`, called by tracekit.store) and :func:`make_temp`, which every writer goes through, refuses
to write one (:func:`refuse_read`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import os
import re
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from tracekit.errors import TraceError, refuse_special

#: A temporary file of ours: ``.<dest name>.<pid>@<host>.<mkstemp random>.<tmp|arrow>``.
_TEMP_RE = re.compile(r"^\..+\.(\d+)@([A-Za-z0-9-]*)\.[A-Za-z0-9_]+\.(?:tmp|arrow)$")


def _host() -> str:
    """This machine's name, reduced to what is safe in a file name (and in :data:`_TEMP_RE`)."""
    if hasattr(os, "uname"):  # gethostname() itself on POSIX, without importing socket (a few ms of every start)
        name = os.uname().nodename
    else:  # pragma: no cover - Windows
        import socket  # Windows only

        name = socket.gethostname()
    return re.sub(r"[^A-Za-z0-9-]", "", name)[:40]


_live: set[Path] = set()
#: Re-entrant: the signal handler runs on the main thread between two bytecodes, possibly inside a ``with
#: _live_lock`` of that same thread (make_temp, note_input); a plain Lock deadlocked the Ctrl-C there.
_live_lock = threading.RLock()


def make_temp(dest: Path, suffix: str) -> Path:
    """Create an empty temporary file beside ``dest`` named with our pid, registered for signal cleanup.

    Stale temporary files of dead processes in that folder are removed first. ``dest`` may not be a file
    this process read as an input (:func:`note_input`): every writer comes through here. Refused (a
    KeyboardInterrupt) once a signal of :func:`install_signal_cleanup` was received: see :func:`_stop_if_signalled`.
    """
    refuse_read(dest)
    for up in (dest.parent, *dest.parent.parents):
        if up.exists() and not up.is_dir():
            raise TraceError(dest, f"cannot write here: {up} is a file, not a folder")
    _stop_if_signalled()
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        remove_stale(dest.parent)
        tmp = _create_registered(dest, suffix)
    except OSError as e:
        raise TraceError(dest, f"cannot write here: {e.strerror or e}") from None
    _stop_if_signalled(tmp)
    return tmp


def _create_registered(dest: Path, suffix: str) -> Path:
    """Create ``.<dest name>.<pid>@<host>.<random><suffix>`` beside ``dest``, registered *before* it exists.

    Why not ``mkstemp`` then register: a signal whose handler ran between the two left the new file behind
    (the handler removes registered files only). Registered first, the handler removes it if it exists by then;
    if it is created after the handler ran (another thread), :func:`make_temp` removes it itself.
    """
    prefix = f".{dest.name}.{os.getpid()}@{_host()}."
    for _ in range(100):
        tmp = dest.parent / f"{prefix}{os.urandom(6).hex()}{suffix}"  # = secrets.token_hex(6), without its import
        with _live_lock:
            _live.add(tmp)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600))
        except FileExistsError:
            with _live_lock:
                _live.discard(tmp)
            continue
        except BaseException:
            with _live_lock:
                _live.discard(tmp)
            raise
        return tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(dest))


def drop_temp(tmp: Path) -> None:
    """Remove ``tmp`` if it is still there, then forget it (in this order: a signal between the two still finds it)."""
    tmp.unlink(missing_ok=True)
    with _live_lock:
        _live.discard(tmp)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove temporary files left in ``folder`` by tracekit processes that are no longer alive."""
    removed: list[Path] = []
    host = _host()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        m = _TEMP_RE.match(e.name)
        if m and m[2] == host and int(m[1]) != os.getpid() and not _pid_alive(int(m[1])):
            try:
                if e.is_file(follow_symlinks=False):
                    os.unlink(e.path)
                    removed.append(Path(e.path))
            except OSError:
                pass
    return removed


def _remove_live() -> None:
    with _live_lock:
        for p in list(_live):
            with contextlib.suppress(OSError):
                p.unlink()
        _live.clear()


#: Signals :func:`install_signal_cleanup`'s handler received. Why remember: a Ctrl-C inside a DuckDB query
#: surfaces as ``RuntimeError: Query interrupted``, and during DuckDB's lazy pandas import as "'pandas' is
#: required"; the CLI reads this to say "interrupted" (exit 130) instead (issue 23).
_received: set[int] = set()
#: The same signals, while their handlers are installed (cleared when :func:`cleanup_on_signals` ends): after one,
#: no temporary file is made and none renamed into place (:func:`_stop_if_signalled`). Why: the KeyboardInterrupt
#: a handler raises can be lost (raised inside a finalizer, a C callback, a ``finally`` that raises anew), and the
#: work then went on over the files the handler had just removed: "cannot write ...: No such file or directory",
#: exit 2, or a new output written after the Ctrl-C (issue 24).
_stopping: set[int] = set()


def interrupted() -> bool:
    """Whether SIGINT reached :func:`install_signal_cleanup`'s handler in this process."""
    return signal.SIGINT in _received


def _stop_if_signalled(tmp: Path | None = None) -> None:
    """Raise KeyboardInterrupt (after removing ``tmp``) when a handled SIGTERM/SIGINT came: the work is over."""
    if _stopping:
        if tmp is not None:
            drop_temp(tmp)
        raise KeyboardInterrupt(f"signal {min(_stopping)} received: no more output is written")


def install_signal_cleanup(signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> dict[int, Any]:
    """Make ``signals`` first remove every live temporary file, then act as before; returns the old handlers.

    "As before": the handler that was installed is restored and called, or the signal re-sent when
    it was the default, so the process ends the way it would have without tracekit (SIGTERM kills
    it; SIGINT raises KeyboardInterrupt in Python, whose ``finally`` blocks run too). Main thread
    only (signal's rule): elsewhere nothing is installed.
    """
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    _received.clear()  # a new command (CliRunner runs several in one process)
    _stopping.clear()

    def act(signum: int, frame: FrameType | None) -> None:
        prev = previous.get(signum, signal.SIG_DFL)
        signal.signal(signum, prev)
        if callable(prev):
            prev(signum, frame)
        elif prev != signal.SIG_IGN:
            os.kill(os.getpid(), signum)

    def handler(signum: int, frame: FrameType | None) -> None:
        _received.add(signum)
        _stopping.add(signum)
        _remove_live()
        if _deferring:
            _deferred.append(functools.partial(act, signum, None))
            return
        act(signum, frame)

    for s in signals:
        previous[s] = signal.signal(s, handler)
    return previous


#: Depth of :func:`signals_deferred` blocks (main thread) and the signal actions they hold back.
_deferring = 0
_deferred: list[Callable[[], None]] = []


def stop_requested() -> bool:
    """Whether a handled SIGTERM/SIGINT came: work inside :func:`signals_deferred` polls this to end early."""
    return bool(_stopping)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """While the block runs, a SIGTERM/SIGINT removes the temporary files at once but acts (KeyboardInterrupt,
    death by the signal) only when the block ends; the block should poll :func:`stop_requested` to end early.

    Why: a thread of ours may be inside a C++ writer (the Parquet writer thread of tracekit.ingest.sink); a
    KeyboardInterrupt raised anywhere in the main thread, even in the code that waits for that thread, closed the
    writer under it and the process aborted (SIGABRT/SIGSEGV instead of exit 130, issue 24).
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
        if not _deferring and _deferred:
            pending = list(_deferred)
            _deferred.clear()
            for act in pending:
                act()


@contextlib.contextmanager
def cleanup_on_signals(signals: Iterable[int] = (signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """:func:`install_signal_cleanup` while the block runs; the previous handlers come back after it."""
    previous = install_signal_cleanup(signals)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _stopping.clear()  # a library caller's next write in this process is not refused


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path beside ``dest``, renamed onto ``dest`` when the block ends without an exception."""
    dest = Path(dest)
    if dest.is_dir():
        raise TraceError(dest, "is a folder: give a file name")
    tmp = make_temp(dest, ".tmp")
    try:
        yield tmp
        _stop_if_signalled()  # never rename into place after a Ctrl-C/SIGTERM: the command is over
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, dest)
    except OSError as e:
        if e.filename is not None:
            raise  # names its file already (tracekit.cli.one_line prints it)
        # pyarrow's and gzip's write errors (a full disk, a quota) name no file: name the output
        raise TraceError(dest, f"cannot write: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    finally:
        drop_temp(tmp)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) atomically; an OS error is a one-line :class:`TraceError` naming the file."""
    try:
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    except OSError as e:
        raise TraceError(path, f"cannot write: {e.strerror or e}") from None


@dataclasses.dataclass
class Inputs:
    """What the running command read: ``files`` (resolved path -> (device, inode)) and ``given``, the paths
    as the user gave them (tracekit.store), which a DuckDB error is then attributed to (tracekit.cli)."""

    files: dict[str, tuple[int, int] | None] = dataclasses.field(default_factory=dict)
    given: list[str] = dataclasses.field(default_factory=list)


#: The running command's inputs; None outside :func:`guarding_inputs` (a library caller's long-lived
#: process: re-converting a file read an hour ago is fine).
_inputs: Inputs | None = None


@contextlib.contextmanager
def guarding_inputs() -> Iterator[Inputs]:
    """While the block runs, every input opened is remembered and no tracekit write may replace it.

    The CLI runs each verb inside this (tracekit.cli), so the rule holds for every writer, also one whose
    verb did not list its inputs (issue 23: `report --html`'s median-step file replaced the trace it came from).
    """
    global _inputs
    previous, _inputs = _inputs, Inputs()
    try:
        yield _inputs
    finally:
        _inputs = previous


def _inode(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def note_input(path: str | os.PathLike[str], given: bool = False) -> None:
    """Remember ``path`` as an input (tracekit.store opens Parquet and raw traces through here): see :func:`refuse_read`.

    ``given``: a path as the user gave it (a file or a folder), kept in order for messages.
    """
    inputs = _inputs
    if inputs is not None:
        with _live_lock:
            inputs.files[os.path.realpath(path)] = _inode(path)
            if given and str(path) not in inputs.given:
                inputs.given.append(str(path))


def refuse_read(dest: str | os.PathLike[str]) -> None:
    """Raise :class:`TraceError` when ``dest`` is an input of the running command (:func:`note_input`):
    the same resolved path, or the same file (hard link) while that input is still there."""
    inputs = _inputs
    if inputs is None or not inputs.files:
        return
    with _live_lock:
        noted = dict(inputs.files)
    hit = os.path.realpath(dest) in noted
    ino = None if hit else _inode(dest)
    if ino is not None:
        hit = any(i == ino and _inode(p) == ino for p, i in noted.items())
    if hit:
        raise TraceError(dest, "is an input; writing it would destroy it: choose another output path")


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


@contextlib.contextmanager
def converting(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Iterator[None]:
    """The boundary of one conversion ``src`` -> ``dest`` (tracekit.ingest.convert's callers).

    ``src`` is refused when it is not a regular file, noted as an input (:func:`note_input`), and ``dest``
    refused when it is one (a stale cached conversion is not: it is noted only once read); a write error that
    names no file (a full disk: ENOSPC from the spill or Parquet writer, a quota, EFBIG) becomes a one-line
    :class:`TraceError` naming ``dest``. The writers have removed their temporary files by then.
    """
    refuse_special(src)  # a FIFO would block the reader's open forever
    note_input(src)
    refuse_read(dest)
    try:
        yield
    except OSError as e:
        if e.filename is not None or e.errno not in _WRITE_ERRNOS:
            raise
        raise TraceError(dest, f"cannot write: {os.strerror(e.errno)}") from e
