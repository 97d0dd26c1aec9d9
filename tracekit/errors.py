"""The one error type users see: a file and a problem, printed on one line."""

from __future__ import annotations


class TraceError(Exception):
    """Bad or unusable input. ``str(err)`` is the one-line message: ``<file>: <problem>``."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Exceptions pickle as cls(*self.args) by default, i.e. with the one formatted message: that
        # breaks this two-argument __init__ and, with it, `convert --jobs N` (a worker's error crosses
        # a process boundary by pickle and came back as BrokenProcessPool).
        return (type(self), (self.path, self.problem))
