"""Untrusted text on its way to a terminal or a page.

Kernel, range, GPU and file names come from trace files that anyone can write. A name holding
``\\x1b]0;title\\x07\\x1b[2J`` would set the terminal's title and clear the screen if printed raw,
and ``[bold]`` would be read as rich markup. Every terminal output of tracekit passes names through
:func:`term` (and prints with ``markup=False`` or :func:`markup`); HTML goes through
:func:`html_text`. CSV and JSON outputs stay exact: they are data, not a screen.
"""

from __future__ import annotations

import html
import re

# C0 controls (tab and newline included: a cell is one line), DEL, C1 controls, and the Unicode
# bidirectional overrides/isolates that reorder what a reader sees ("Trojan Source").
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _escape_char(m: re.Match[str]) -> str:
    c = ord(m[0])
    return f"\\x{c:02x}" if c <= 0xFF else f"\\u{c:04x}"


def term(text: object) -> str:
    """``text`` with every control or bidi character shown as an escape (``\\x1b``, ``\\u202e``)."""
    s = text if isinstance(text, str) else str(text)
    return _UNSAFE.sub(_escape_char, s)


def markup(text: object) -> str:
    """:func:`term`, then rich markup escaped, for strings printed through a markup-enabled console."""
    from rich.markup import escape  # deferred: ~0.01 s, only for a markup console (convert's progress)

    return escape(term(text))


def html_text(text: object) -> str:
    """:func:`term`, then HTML-escaped (quotes included): safe in element text and attribute values."""
    return html.escape(term(text), quote=True)
