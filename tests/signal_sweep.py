"""Send SIGINT to a `tracekit convert` at each line of the code that makes, registers, opens and drops its
temporary files, one conversion per line, and print what each left: ``python -m tests.signal_sweep TRACE``.

Why a sweep at line granularity: a real Ctrl-C lands at a random bytecode, so a test that signals after a sleep
hits a narrow window once in many runs (issue 24: "cannot write ... No such file or directory", exit 2, once
under load). Python runs a signal's handler between two bytecodes of the main thread; a trace function that
sends the signal at the k-th line of the functions below makes the handler run exactly there, for every k.

Run in a process of its own (tests/test_cli_safety.py): it installs signal handlers and changes folder.
Prints one JSON object: ``{"points": [[function, line, exit code, [files left]], ...]}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import Any

from tracekit.cli import cli

#: Where the temporary files are made, registered, opened and read back, and where the lock they share is held.
TARGETS = {"make_temp", "_create_registered", "drop_temp", "note_input", "refuse_read", "remove_stale",
           "_spill_beside", "_parquet_out", "atomic_path", "converting"}


def _run(src: Path, k: int) -> tuple[int, str | None, int | str, list[str]]:
    """Convert ``src`` in a fresh folder, sending SIGINT at the k-th target line: (lines seen, where, exit, left)."""
    work = Path(tempfile.mkdtemp(prefix="sweep"))
    shutil.copy(src, work / "t.json")
    seen, where = 0, None

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal seen, where
        if frame.f_code.co_name not in TARGETS or "tracekit" not in frame.f_code.co_filename:
            return None
        if event == "line":
            seen += 1
            if seen == k:
                where = f"{frame.f_code.co_name}:{frame.f_lineno}"
                # at the main thread (os.kill may land on a worker thread, and the handler then runs a little later)
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # runs before the next bytecode
        return trace

    cwd = os.getcwd()
    os.chdir(work)
    rc: int | str
    try:
        sys.settrace(trace)
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            try:
                cli.main(["convert", "t.json", "-o", "t.parquet", "-q"], prog_name="tracekit")
                rc = 0
            except SystemExit as e:
                rc = e.code if isinstance(e.code, int) else str(e.code)
            except KeyboardInterrupt:
                rc = "KeyboardInterrupt"
    finally:
        sys.settrace(None)
        os.chdir(cwd)
    left = sorted(n for n in os.listdir(work) if n != "t.json")
    shutil.rmtree(work)
    return seen, where, rc, left


def main() -> None:
    src = Path(sys.argv[1]).resolve()
    _run(src, 0)  # imports everything once: the next runs see the same lines
    total = _run(src, 0)[0]
    points = []
    for k in range(1, total + 1):
        _, where, rc, left = _run(src, k)
        points.append([where, rc, left])
    print(json.dumps({"lines": total, "points": points}))


if __name__ == "__main__":
    main()
