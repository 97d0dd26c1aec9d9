"""Option checks shared by the verbs, so a bad value is one line naming the option, not a DuckDB traceback.

Not a verb (no ``command``): the ``_`` keeps it out of :data:`tracekit.cli.VERBS`' naming.
"""

from __future__ import annotations

import click
import duckdb

from tracekit.errors import TraceError


def regex(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """click callback: ``value`` must compile as the RE2 regex DuckDB's ``regexp_*`` functions use.

    Checked by DuckDB itself, not Python's ``re``: the two dialects differ (RE2 has no look-around),
    and the queries are what will run it.
    """
    if value is None:
        return None
    try:
        duckdb.connect().execute("SELECT regexp_full_match('', ?)", [value])
    except duckdb.Error as e:
        msg = str(e).splitlines()[0].removeprefix("Invalid Input Error: ")
        raise TraceError(f"--{param.name.replace('_', '-')}" if param.name else "regex",
                         f"invalid regular expression {value!r}: {msg}") from None
    return value
