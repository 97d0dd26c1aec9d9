"""The C cut of torch emit_nvtx suffixes (``kscan.emit_nvtx_cut``) gives the regex's text, row for row.

``tracekit.ingest.nsys`` strips ``, seq = N``, ``, op_id = N``, ``, sizes = [...]`` and ``, input_op_ids = [...]``
from range names with :data:`~tracekit.ingest.nsys.EMIT_NVTX_SUFFIX` (RE2 through pyarrow). The C extension
reads that regex byte by byte, 15x faster. These tests hold the two to the same output on hand-picked edge
cases (expected values written out here) and on random strings built from the regex's own pieces, and check
that text the C cut leaves to RE2 (bytes >= 0x80 after a comma) comes back as None.
"""

from __future__ import annotations

import random

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from tracekit.ingest import kscan
from tracekit.ingest.nsys import EMIT_NVTX_SUFFIX, _emit_nvtx_base

pytestmark = pytest.mark.skipif(not kscan.AVAILABLE, reason="tracekit.ingest._kscan is not built")

CASES = [  # (name, what the regex leaves), worked out from the pattern by hand
    ("aten::mul, op_id = 317177", "aten::mul"),
    ("aten::linear, seq = 12, op_id = 34, sizes = [[1, 2], [3, 4]], input_op_ids = [(33,0)]", "aten::linear"),
    ("aten::add, seq = 7", "aten::add"),
    ("aten::add, sizes = [[1]]", "aten::add"),
    ("aten::add, input_op_ids = [(1,0), (2,1)]", "aten::add"),
    ("aten::add, op_id = 5, seq = 7", "aten::add, op_id = 5"),  # out of order: only the tail matches
    ("a, seq = , op_id = 5", "a, seq = "),  # seq without digits: the match starts at op_id
    ("a, op_id = 5x", "a, op_id = 5x"),  # digits must run to the end
    ("a, sizes = [x\ny]", "a, sizes = [x\ny]"),  # `.` stops at a newline
    ("a\n, sizes = [x]", "a\n"),  # a newline before the suffix is fine
    ("a, sizes = [", "a, sizes = ["),  # no closing bracket
    ("a, sizes = []", "a"),
    ("a, sizes = [1], sizes = [2]", "a"),  # .* spans the second group
    ("a, b, op_id = 1", "a, b"),
    ("plain", "plain"),
    ("", ""),
    ("ünï, op_id = 3", "ünï"),  # UTF-8 before the first comma is the C cut's too
]


def _regex(a: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(a, pattern=EMIT_NVTX_SUFFIX, replacement="")


def test_cases_by_hand() -> None:
    names = pa.array([c[0] for c in CASES] + [None])
    cut = kscan.emit_nvtx_cut(names)
    assert cut is not None
    assert cut.to_pylist() == [c[1] for c in CASES] + [None]
    assert _regex(names).to_pylist() == [c[1] for c in CASES] + [None]  # the expectations are the regex's


def test_slices_and_nulls() -> None:
    names = pa.array([None, "x, op_id = 1", None, "y, seq = 2", "z"] * 3)
    for start in range(6):
        part = names.slice(start, 7)
        cut = kscan.emit_nvtx_cut(part)
        assert cut is not None
        assert cut.to_pylist() == _regex(part).to_pylist()
        assert cut.null_count == part.null_count


def test_random_strings_match_the_regex() -> None:
    pieces = [", seq = ", ", op_id = ", ", sizes = [", ", input_op_ids = [", "]", "[", "12", "0", ",", ", ",
              " = ", "\n", "aten::mul", "x", "(1,0)", ")", " "]
    groups = [lambda r: ", seq = " + str(r.randrange(100)), lambda r: ", op_id = " + str(r.randrange(10**6)),
              lambda r: ", sizes = [[" + r.choice(["1, 2", "", "x\ny"]) + "]]",
              lambda r: ", input_op_ids = [(" + r.choice(["1,0", "", "\n"]) + ")]"]
    rng = random.Random(25)

    def name() -> str:
        junk = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 9)))
        if rng.random() < 0.5:
            return junk
        tail = "".join(rng.choice(groups)(rng) for _ in range(rng.randrange(1, 4)))
        return rng.choice(["aten::mul", junk]) + tail + rng.choice(["", "", junk])

    names = [name() for _ in range(20_000)]
    arr = pa.array(names)
    cut = kscan.emit_nvtx_cut(arr)
    assert cut is not None
    want = _regex(arr).to_pylist()
    bad = [(n, c, w) for n, c, w in zip(names, cut.to_pylist(), want) if c != w]
    assert not bad, bad[:5]
    assert sum(c != n for c, n in zip(want, names)) > 5_000  # the pieces do make suffixes


def test_non_ascii_after_a_comma_goes_to_the_regex() -> None:
    names = pa.array(["a, op_id = 1", "b, sizes = [é]"])
    assert kscan.emit_nvtx_cut(names) is None
    assert _emit_nvtx_base(names).to_pylist() == ["a", "b"]
    assert kscan.emit_nvtx_cut(pa.array(["a", "b"], pa.large_string())) is None  # other types too
