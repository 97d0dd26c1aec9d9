"""tracekit: where one LLM decode step's time goes, from Kineto and Nsight Systems traces."""

from __future__ import annotations

__version__ = "0.1.0"

from tracekit.annotate import count, mark, phase  # no torch import: the fast path is a flag check

__all__ = ["__version__", "count", "mark", "phase"]
