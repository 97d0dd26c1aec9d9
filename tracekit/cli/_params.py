"""The query options shared by the verbs, and their checks (a bad value is one line naming the option, not a
DuckDB traceback).

Not a verb (no ``command``): the ``_`` keeps it out of :data:`tracekit.cli.VERBS`' naming.

Why :func:`query_options`: ``--step-pattern`` and the other query parameters were spelled out in each verb with
its own help and default, a copy of what the SQL reads. Now the ``-- @param`` line of the file that reads the
variable is the one declaration: its name gives the option (or its ``--flag``), its type the click type, its
meaning the help, its default the help's default.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click
import duckdb

from tracekit import report
from tracekit.errors import TraceError

F = TypeVar("F", bound=Callable[..., Any])

#: click type of each @param type (REGEX: a string checked by :func:`regex`, BOOL: a flag).
_CLICK_TYPES: dict[str, Any] = {"TEXT": str, "REGEX": str, "COUNT": int, "DURATION": int, "NUMBER": float}


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
        raise TraceError(
            param.opts[0] if param.opts else "regex", f"invalid regular expression {value!r}: {msg}"
        ) from None
    return value


def _help(p: report.Param) -> str:
    text = p.meaning[:1].upper() + p.meaning[1:]
    if p.default is None or p.default is False:
        return text + "."
    shown = p.default if isinstance(p.default, str) else report._sql_literal(p.default)
    return f"{text}. Default: {shown}"


def query_option(name: str) -> Callable[[F], F]:
    """The click option of query parameter ``name`` (report.PARAMS: its ``-- @param`` line); its value reaches
    the command as ``name``, None when not given (the SQL's default then holds)."""
    p = report.PARAMS[name]
    kw: dict[str, Any] = {"help": _help(p)}
    if p.type == "BOOL":
        kw.update(is_flag=True, default=None)
    elif p.type == "CHOICE":
        kw["type"] = click.Choice(list(p.choices))
    else:
        kw["type"] = _CLICK_TYPES[p.type]
    if p.type == "REGEX":
        kw["callback"] = regex
    if p.type in ("COUNT", "DURATION") and p.flag:
        kw["metavar"] = "N"
    return click.option(p.option, name, **kw)


def query_options(*names: str) -> Callable[[F], F]:
    """Decorate a verb with the options of query parameters ``names``, in that order in ``--help``."""

    def wrap(f: F) -> F:
        for name in reversed(names):
            f = query_option(name)(f)
        return f

    return wrap
