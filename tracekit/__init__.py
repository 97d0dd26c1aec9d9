"""tracekit: where one LLM decode step's time goes, from Kineto and Nsight Systems traces.

Layers, in the order the data flows; a module imports only its own layer and those before it
(tests/test_layers.py checks every import, those inside functions included):

- base: ``errors``, ``safe``, ``atomic``, ``resources``, ``redact``, ``schema`` (the Parquet contract);
- capture: inside the profiled program: ``capture/`` (bootstrap, SGLang plugin) and ``annotate``;
- ingest: ``tracekit.ingest``, Kineto / Nsight Systems -> Parquet;
- store: ``store``, ``rawcache``, ``dataset``, ``naming``, and the ``capture`` driver (runs, then converts);
- engine: parse the query files, set their parameters, run them: ``report``, ``rows``, ``compare``,
  ``graphmap``, ``export_chrome``, ``executors``, ``noise``, ``demangle``;
- view: ``tracekit.view``, ``render`` and ``querydoc``: terminal, HTML, JSON, warnings, docs/queries.md;
  it never runs SQL;
- cli: ``tracekit.cli``, the verbs.
"""

from __future__ import annotations

__version__ = "0.1.0"

from tracekit.annotate import count, mark, phase  # no torch import: the fast path is a flag check

__all__ = ["__version__", "count", "mark", "phase"]
