"""The view's name for the engine's result table (:mod:`tracekit.rows`).

Why here too: the engine (:mod:`tracekit.report`) fetches :class:`~tracekit.rows.Rows`, so the class lives
below the view (tests/test_layers.py); the view modules and older callers import it under this name.
"""

from tracekit.rows import (  # noqa: F401  (re-exported)
    EMPTY,
    FLOAT_TYPES,
    INTEGER_TYPES,
    Rows,
    all_rows,
    as_rows,
    from_cursor,
    from_frame,
    from_series,
    head_of_cursor,
    is_float,
    is_integer,
    is_numeric,
    missing,
    num,
)
