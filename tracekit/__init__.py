"""tracekit: where one LLM decode step's time goes, from Kineto and Nsight Systems traces."""

from __future__ import annotations

__version__ = "0.1.0"
