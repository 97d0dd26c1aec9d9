"""The C writer of Chrome-trace events (tracekit/_chrome.c) gives the bytes of the Python one (render_event).

Expected bytes: hand-written for a few rows (the JSON rules the Python renderer follows: msgspec's string escapes,
exact decimal microseconds); then the C and Python renderers compared on rows built from the same pieces at random
(every value kind, NULLs, control and non-ASCII characters, ``@`` keys that go back to the Python path, ints at the
int64 ends and past them).
"""

from __future__ import annotations

import random

import pytest

from tracekit import export_chrome as ec

pytestmark = pytest.mark.skipif(ec._chrome is None, reason="tracekit._chrome is not built")


def _python(rows: list[tuple]) -> bytes:
    return b",\n".join(ec.render_event(*r) for r in rows)


HAND = [
    # a Kineto cpu_op: ts/dur as exact microseconds, trailing zeros cut
    (("X", "cpu_op", "aten::mm", 7, 8, 1_234_567_000, 25_500, None, '{"External id": 3}'),
     b'{"ph":"X","cat":"cpu_op","name":"aten::mm","pid":7,"tid":8,"ts":1234567,"dur":25.5,'
     b'"args":{"External id": 3}}'),
    # dur only for ph X; a flow id; NULLs left out
    (("s", "ac2g", "ac2g", 1, 2, 5, 9, 42, None), b'{"ph":"s","cat":"ac2g","name":"ac2g","pid":1,"tid":2,"ts":0.005,"id":42}'),
    ((None, None, None, None, None, None, None, None, None), b"{}"),
    # escapes as msgspec writes them: quote, backslash, the short ones, \u00xx lowercase; DEL and UTF-8 kept
    (("i", None, 'a"b\\c\n\t\r\x08\x0c\x01\x1f\x7fé😀', -3, None, -1500, None, None, None),
     b'{"ph":"i","name":"a\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\xc3\xa9\xf0\x9f\x98\x80","pid":-3,"ts":-1.5}'),
    # int64's ends
    (("X", None, "n", 2**63 - 1, -(2**63), -(2**63), 2**63 - 1, None, None),
     b'{"ph":"X","name":"n","pid":9223372036854775807,"tid":-9223372036854775808,"ts":-9223372036854775.808,'
     b'"dur":9223372036854775.807}'),
]


@pytest.mark.parametrize(("row", "want"), HAND)
def test_hand_written_rows(row: tuple, want: bytes) -> None:
    assert ec._chrome.render([row], ec.render_event) == want
    assert ec.render_event(*row) == want  # the Python path writes the same: the two are held to one rule


def test_hoisted_and_odd_rows_go_to_the_python_path() -> None:
    """``@`` keys (re-encoded by the Python path: key order, number text), floats, bools and ints past int64."""
    rows = [
        ("X", "cpu_op", "f", 1, 2, 1000, 2000, None, '{"@id": 5, "x": 1.50}'),
        ("X", "cpu_op", "f", 1.5, 2, 1000, 2000, None, None),
        ("X", "cpu_op", "f", True, 2, 1000, 2000, None, None),
        ("X", "cpu_op", "f", 2**64, 2, 1000, 2000, None, None),
    ]
    assert ec._chrome.render(rows, ec.render_event) == _python(rows)
    assert b'"id":5' in ec._chrome.render(rows[:1], ec.render_event)  # hoisted out of args


def test_a_failing_fallback_raises_and_a_non_bytes_one_is_refused() -> None:
    hoisted = [("X", None, "f", 1, 2, 3, 4, None, '{"@a": 1}')]

    def boom(*_: object) -> bytes:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        ec._chrome.render(hoisted, boom)
    with pytest.raises(TypeError):
        ec._chrome.render(hoisted, lambda *_: "text")
    with pytest.raises(TypeError):
        ec._chrome.render([["X", None, "f", 1, 2, 3, 4, None, None]], ec.render_event)  # a list, not a tuple
    assert ec._chrome.render([], ec.render_event) == b""


PIECES = ["", "a", "aten::mm", '"', "\\", "\n", "\x00", "\x1f", "\x7f", "é", "名", "😀", '"@', "@", " ", "{}", "/"]


def _text(rnd: random.Random) -> str:
    return "".join(rnd.choice(PIECES) for _ in range(rnd.randrange(0, 6)))


def _int(rnd: random.Random) -> int:
    return rnd.choice([0, 1, -1, 999, 1000, 1001, -999, -1000, -1001, 2**63 - 1, -(2**63), 2**63, 2**64 - 1,
                       rnd.randrange(-(10**15), 10**15)])


def test_random_rows_give_the_python_bytes() -> None:
    rnd = random.Random(25)
    for _ in range(200):
        rows = []
        for _ in range(rnd.randrange(0, 40)):
            ph = rnd.choice([None, "X", "i", "s", "f", "M", "x", _text(rnd)])
            args = rnd.choice([None, '{"k": 1}', '{"@pid": "7", "v": [1, 2]}', "[1]", '{"s": "' + "a" * 3 + '"}'])
            rows.append(
                (ph, rnd.choice([None, _text(rnd)]), rnd.choice([None, _text(rnd)]),
                 *(rnd.choice([None, _int(rnd)]) for _ in range(5)), args)
            )
        assert ec._chrome.render(rows, ec.render_event) == _python(rows), rows
