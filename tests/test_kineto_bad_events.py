"""Lone bad events (issue 12): one NaN/Infinity literal, one lone ``\\ud800`` escape or a missing ``ts`` costs
that value, not the trace; files that are not traces say so. Every case goes through ``tracekit convert`` and
checks the exit code, the message, the files left in the folder and that the input is byte-for-byte unchanged;
salvaged traces are also converted with the C scanner off (``fast=False``) and must give the same rows.

The truth is planted: five events op0..op4 at ts 0, 10, 20, 30, 40 us, dur 5 us, ``External id`` 0..4, and one
of them damaged as each case says.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from tracekit.cli import cli
from tracekit.ingest import kscan
from tracekit.ingest.kineto import convert_kineto
from tracekit.store import connect, read_metadata

BASE = json.dumps({"schemaVersion": 1, "traceEvents": [
    {"ph": "X", "cat": "cpu_op", "name": f"op{i}", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 5,
     "args": {"External id": i}} for i in range(5)]})
NAN_NOTE = "events with NaN/Infinity values (replaced by null)"
SURR_NOTE = "events with lone UTF-16 surrogate escapes such as \\ud800 (replaced by U+FFFD)"
NO_TS = "events without a numeric `ts` (ts_ns NULL)"


def _edit(old: str, new: str, count: int = 1) -> str:
    assert BASE.count(old) == count, old
    return BASE.replace(old, new)


def _convert(tmp_path: Path, text: str | bytes) -> tuple[int, str, Path, Path]:
    """Run ``tracekit convert`` on ``text`` in a fresh folder; check the input is unchanged afterwards."""
    src = tmp_path / "t.json"
    data = text.encode() if isinstance(text, str) else text
    src.write_bytes(data)
    before = hashlib.sha256(data).hexdigest()
    out = tmp_path / "t.parquet"
    r = CliRunner().invoke(cli, ["convert", str(src), "-o", str(out)])
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before, "the input was modified"
    return r.exit_code, r.output, src, out


def _rows(path: Path) -> dict[int, tuple]:
    q = "SELECT seq, name, ts_ns, dur_ns, external_id, args FROM events ORDER BY seq"
    return {r[0]: r[1:] for r in connect(path).execute(q).fetchall()}


def _same_without_scanner(tmp_path: Path, src: Path, out: Path) -> None:
    """Differential: the msgspec path (C scanner off) gives the same rows and notes."""
    slow = tmp_path / "slow.parquet"
    convert_kineto(src, slow, trace="t", fast=False)
    q = "SELECT * EXCLUDE (args), args FROM events ORDER BY seq"
    fast_rows, slow_rows = connect(out).execute(q).fetchall(), connect(slow).execute(q).fetchall()
    # args: the C scanner compacts whitespace (tests/test_kscan.py), so compared as JSON
    assert [r[:-1] + (r[-1] and json.loads(r[-1]),) for r in fast_rows] == \
        [r[:-1] + (r[-1] and json.loads(r[-1]),) for r in slow_rows]
    assert read_metadata(out)["t"]["notes"] == read_metadata(slow)["t"]["notes"]
    slow.unlink()


def _salvaged(tmp_path: Path, text: str) -> tuple[dict[int, tuple], list[str]]:
    code, output, src, out = _convert(tmp_path, text)
    assert code == 0, output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.json", "t.parquet"]
    _same_without_scanner(tmp_path, src, out)
    return _rows(out), read_metadata(out)["t"]["notes"]


def _good(i: int) -> tuple:
    return (f"op{i}", 10_000 * i, 5_000, i, json.dumps({"External id": i}, separators=(",", ":")))


def _check_others(rows: dict[int, tuple], bad: int) -> None:
    assert sorted(rows) == [0, 1, 2, 3, 4]
    for i in range(5):
        if i != bad:
            name, ts, dur, ext, args = rows[i]
            assert (name, ts, dur, ext, json.loads(args)) == (f"op{i}", 10_000 * i, 5_000, i, {"External id": i})


def test_nan_ts_keeps_the_event_with_null_ts(tmp_path: Path) -> None:
    rows, notes = _salvaged(tmp_path, _edit('"ts": 20', '"ts": NaN'))
    _check_others(rows, 2)
    name, ts, dur, ext, args = rows[2]
    assert (name, ts, ext, json.loads(args)) == ("op2", None, 2, {"External id": 2})
    assert notes == [f"1 {NAN_NOTE}", f"1 {NO_TS}"]


@pytest.mark.parametrize("literal", ["1e400", "-2E+999"])
def test_ts_beyond_float_range_is_null(tmp_path: Path, literal: str) -> None:
    """Valid JSON, but no float holds it: the ts is dropped (as Infinity would be), the event kept."""
    rows, notes = _salvaged(tmp_path, _edit('"ts": 30', f'"ts": {literal}'))
    _check_others(rows, 3)
    assert rows[3][:4] == ("op3", None, 5_000, 3)
    assert notes == [f"1 {NAN_NOTE}", f"1 {NO_TS}"]


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "NaN"])
def test_non_finite_arg_becomes_null(tmp_path: Path, literal: str) -> None:
    rows, notes = _salvaged(tmp_path, _edit('"External id": 3', f'"External id": {literal}'))
    _check_others(rows, 3)
    assert rows[3][:4] == ("op3", 30_000, 5_000, None)
    assert json.loads(rows[3][4]) == {"External id": None}
    assert notes == [f"1 {NAN_NOTE}"]


def test_two_events_with_non_finite_values_counted_once_each(tmp_path: Path) -> None:
    text = _edit('"dur": 5, "args": {"External id": 1}', '"dur": Infinity, "args": {"External id": NaN, "x": -Infinity}')
    text = text.replace('"External id": 4', '"External id": NaN')
    rows, notes = _salvaged(tmp_path, text)
    assert rows[1][:4] == ("op1", 10_000, 0, None)  # no dur: 0, as for a missing dur
    assert json.loads(rows[1][4]) == {"External id": None, "x": None}
    assert rows[4][3] is None
    assert notes == [f"2 {NAN_NOTE}"]


@pytest.mark.parametrize("escape, want", [(r"\ud800", "op\ufffd"), (r"\udfffx", "op\ufffdx"),
                                          (r"\ud83d\u0041", "op\ufffdA"), (r"\ud83d\ude00", "op\U0001F600")])
def test_lone_surrogate_replaced(tmp_path: Path, escape: str, want: str) -> None:
    rows, notes = _salvaged(tmp_path, _edit('"op2"', f'"op{escape}"'))
    _check_others(rows, 2)
    assert rows[2][:4] == (want, 20_000, 5_000, 2)
    assert notes == ([] if want == "op\U0001F600" else [f"1 {SURR_NOTE}"])


def test_lone_surrogate_in_args_key_and_value(tmp_path: Path) -> None:
    rows, notes = _salvaged(tmp_path, _edit('"External id": 0}', r'"External id": 0, "k\udc00": "v\ud800"}'))
    assert json.loads(rows[0][4]) == {"External id": 0, "k\ufffd": "v\ufffd"}
    assert notes == [f"1 {SURR_NOTE}"]


@pytest.mark.parametrize("edit", [('"ts": 30, ', ""), ('"ts": 30', '"ts": null')])
def test_missing_or_null_ts_noted(tmp_path: Path, edit: tuple[str, str]) -> None:
    rows, notes = _salvaged(tmp_path, _edit(*edit))
    _check_others(rows, 3)
    assert rows[3][:4] == ("op3", None, 5_000, 3)
    assert notes == [f"1 {NO_TS}"]


@pytest.mark.skipif(not kscan.AVAILABLE, reason="tracekit.ingest._kscan is not built")
def test_missing_ts_noted_on_the_c_path() -> None:
    """The block really goes through the C scanner (one supported run), which must count it too."""
    body = _edit('"ts": 30, ', "").split("[", 1)[1].rsplit("]", 1)[0].encode()
    runs = kscan.scan_runs(body)
    assert len(runs) == 1 and not isinstance(runs[0], bytes) and runs[0]["ts_ns"].null_count == 1


def test_nan_in_the_last_event_and_in_the_header(tmp_path: Path) -> None:
    """NaN in the last event (the tail parse) and in a top-level key before traceEvents."""
    text = _edit('"ts": 40', '"ts": NaN').replace('{"schemaVersion": 1,', '{"schemaVersion": 1, "loss": NaN,')
    rows, notes = _salvaged(tmp_path, text)
    assert rows[4][1] is None and rows[3][1] == 30_000
    assert read_metadata(tmp_path / "t.parquet")["t"]["extra"]["loss"] is None
    assert notes == [f"1 {NAN_NOTE}", f"1 {NO_TS}",
                     "1 top-level values with NaN/Infinity or lone surrogates (replaced by null/U+FFFD)"]


def test_bad_utf8_and_nan_together(tmp_path: Path) -> None:
    text = _edit('"ts": 20', '"ts": NaN').encode().replace(b"op1", b"op\xff1")
    code, output, src, out = _convert(tmp_path, text)
    assert code == 0, output
    rows = _rows(out)
    assert rows[1][0] == "op\ufffd1" and rows[2][1] is None
    assert read_metadata(out)["t"]["notes"] == [
        "1 blocks with invalid UTF-8 (bad bytes replaced by U+FFFD)", f"1 {NAN_NOTE}", f"1 {NO_TS}"]
    _same_without_scanner(tmp_path, src, out)


@pytest.mark.parametrize("text, message", [
    ("[1,2,3]", "not a trace: none of the 3 entries of its event list is an event object"),
    ('{"traceEvents": [1, "a", null, []]}', "not a trace: none of the 4 entries of its event list is an event object"),
    ('{"traceEvents": 5}', "`traceEvents` is not a list (it is a number)"),
    ('{"traceEvents": {"ph": "X"}}', "`traceEvents` is not a list (it is an object)"),
    ('{"traceEvents": "x"}', "`traceEvents` is not a list (it is a string)"),
    ('{"traceEvents": null}', "`traceEvents` is not a list (it is null)"),
    ("[]", "no events in `traceEvents`"),
    ('{"traceEvents": [{"ph": "X", "ts": 1,, }, {"ph": "X", "ts": 2}]}', "not valid JSON inside traceEvents"),
])
def test_not_a_trace(tmp_path: Path, text: str, message: str) -> None:
    code, output, src, _ = _convert(tmp_path, text)
    assert code == 2
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tracekit: error: {src}: ") and message in lines[0], output
    assert "truncated" not in output
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_non_object_last_entry_keeps_the_events_before_it(tmp_path: Path) -> None:
    events = json.loads(BASE)["traceEvents"]
    rows, notes = _salvaged(tmp_path, json.dumps({"traceEvents": events + [7]}))
    _check_others(rows, -1)
    assert notes == ["1 non-object entries in traceEvents skipped"]


def test_bare_array_is_not_truncated(tmp_path: Path) -> None:
    """A bare event array ends in `]` without `}`: that is its end, not a truncation."""
    text = json.dumps(json.loads(BASE)["traceEvents"])
    rows, notes = _salvaged(tmp_path, text)
    _check_others(rows, -1)
    assert notes == []


_weird_text = st.text(st.one_of(st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), st.characters()), max_size=4)
_weird_num = st.one_of(st.floats(), st.integers(-10**6, 10**6))  # NaN and +-Infinity included
_weird_event = st.fixed_dictionaries(
    {"ph": st.sampled_from(["X", "i"]), "name": _weird_text, "pid": st.just(1), "tid": st.just(1)},
    optional={"ts": _weird_num, "dur": _weird_num, "args": st.dictionaries(_weird_text, st.one_of(_weird_num, _weird_text), max_size=3)})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_weird_event, min_size=1, max_size=8))
def test_python_json_dump_output_always_converts(tmp_path: Path, events: list[dict]) -> None:
    """What Python's ``json.dump`` writes (NaN/Infinity literals, ``\\udXXX`` escapes for lone surrogates) converts
    with every event kept, and the C scanner on/off agree."""
    for p in tmp_path.iterdir():
        p.unlink()
    text = json.dumps({"traceEvents": events})  # ensure_ascii: lone surrogates become \\udXXX escapes
    rows, notes = _salvaged(tmp_path, text)
    assert sorted(rows) == list(range(len(events)))
    def bad(v: object) -> bool:
        return isinstance(v, float) and not math.isfinite(v)

    n_bad = sum(bad(e.get("ts")) or bad(e.get("dur")) or any(map(bad, e.get("args", {}).values())) for e in events)
    assert [n for n in notes if NAN_NOTE in n] == ([f"{n_bad} {NAN_NOTE}"] if n_bad else [])
