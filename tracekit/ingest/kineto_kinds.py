"""Kineto category and phase -> ``kind``: the one table both Kineto paths read.

The rules, in order: a ``ph`` in :data:`PH_KIND` decides; else a :data:`STEP_CATS` op named
``ProfilerStep#...`` is a ``range`` (torch.profiler's step marker, written as an op); else ``cat`` in
:data:`CAT_KIND`; else ``other``. :func:`tracekit.ingest.kineto.kind_case` writes them as the SQL CASE of the
msgspec path; :func:`tracekit.ingest.kscan.kind_of` applies them with pyarrow to the C scanner's ph/cat/name
columns (the C code reads the strings and maps nothing). tests/test_kineto_kinds.py runs both on every entry.
"""

from __future__ import annotations

#: Kineto ``cat`` -> kind, old and new category names (``Kernel``/``kernel``, ``Runtime``/``cuda_runtime``, ...).
CAT_KIND: dict[str, str] = {
    "kernel": "kernel",
    "Kernel": "kernel",
    "gpu_memcpy": "memcpy",
    "Memcpy": "memcpy",
    "gpu_memset": "memset",
    "Memset": "memset",
    "cuda_runtime": "runtime",
    "cuda_driver": "runtime",
    "Runtime": "runtime",
    "hip_runtime": "runtime",
    "cuda_sync": "gpu_sync",
    "user_annotation": "range",
    "gpu_user_annotation": "gpu_range",
    "cpu_op": "cpu_op",
    "Operator": "cpu_op",
    "python_function": "python",
    "ac2g": "flow",
    "async_cpu_to_gpu": "flow",
    "async_gpu": "flow",
    "fwdbwd": "flow",
    "cpu_instant_event": "instant",
}
#: Chrome-trace ``ph`` letters whose kind does not depend on ``cat``.
PH_KIND: dict[str, str] = {
    "M": "meta",
    "C": "counter",
    "s": "flow",
    "f": "flow",
    "t": "flow",
    "i": "instant",
    "I": "instant",
    "n": "instant",
}

#: Op categories whose ``ProfilerStep#N`` rows are the step's range, not an op (older torch wrote the step so).
STEP_CATS: tuple[str, ...] = ("cpu_op", "Operator")
STEP_PREFIX = "ProfilerStep#"
STEP_KIND = "range"
#: The kind of an event no rule names.
OTHER_KIND = "other"

#: trace_notes lines (after the count) for pid/tid written as JSON text, as torch 1.8/1.9 wrote every tid
#: (``"tid": "31383"``, GPU rows ``"tid": "stream 7"``), in the order of the C scanner's ``text_ids`` counts.
#: Numeric text is read as the number; ``stream N`` as N, the stream Kineto named the lane after. Other text
#: (Kineto's own "Spans" / "Traces" rows) stays NULL with the text in args, as always, and is not noted.
TEXT_ID_NOTES: tuple[str, str, str] = (
    "events with `pid` written as text holding a number (read as that number)",
    "events with `tid` written as text holding a number (read as that number)",
    "events with `tid` written as text `stream N` (read as N, the GPU stream; the text kept as @tid in args)",
)
