"""The one error type users see: a file and a problem, printed on one line."""

from __future__ import annotations


class TraceError(Exception):
    """Bad or unusable input. ``str(err)`` is the one-line message: ``<file>: <problem>``."""

    def __init__(self, path: object, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
