"""The output step shared by the analysis verbs (report, diff, compare): HTML file, then JSON or tables.

Not a verb (no ``command``): the ``_`` keeps it out of :data:`tracekit.cli.VERBS`' naming.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from typing import Any

import click

from tracekit import atomic
from tracekit.safe import term

Results = Mapping[str, Any]  # result key -> DataFrame or tracekit.rows.Rows (no pandas import here)


def emit(
    results: Results,
    *,
    as_json: bool,
    html_out: str | None,
    title: str,
    to_json: Callable[[Results], Any],
    to_html: Callable[..., str],
    show: Callable[[Results], None],
    html_written: Callable[[], None] | None = None,
) -> None:
    """Write ``to_html(results, title=...)`` to ``html_out`` (atomically) if given; print JSON or ``show`` the tables.
    ``html_written`` is called once the page is in place: what the page links to must stay from then on, even when
    printing fails (a closed pipe, Ctrl-C)."""
    if html_out:
        atomic.write_text(html_out, to_html(results, title=title))
        if html_written is not None:
            html_written()
    if as_json:
        # dumps, then one write: json.dump streams through the pure-Python encoder, one write per token
        # (63k writes, a fifth of a small trace's --json run); the C encoder writes the same text (issue 25)
        sys.stdout.write(json.dumps(to_json(results), default=str) + "\n")
    else:
        show(results)
        if html_out:
            click.echo(term(f"wrote {html_out}"))
