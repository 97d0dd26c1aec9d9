"""Bad input: one clear error or a salvage, never a crash and never a half-written Parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.errors import TraceError
from tracekit.ingest import convert
from tracekit.store import connect, read_metadata


def _events(n: int) -> list[dict]:
    return [{"ph": "X", "cat": "cpu_op", "name": f"op{i}", "pid": 1, "tid": 1, "ts": 10 * i, "dur": 5,
             "args": {"External id": i}} for i in range(n)]


def _no_output(d: Path) -> None:
    assert [p.name for p in d.iterdir() if p.suffix != ".json" and not p.name.endswith((".gz", ".txt"))] == []


@pytest.mark.parametrize("content, problem", [
    (b"", "empty file"),
    (b"   \n", "empty file"),
    (b"hello world", "not a Kineto JSON or nsys SQLite file"),
    (b'{"foo": 1}', "JSON without `traceEvents`"),
    (b'{"schemaVersion": 1, "traceEvents": []}', "no events"),
    (b'{"a": [1, 2', "JSON without `traceEvents`"),
])
def test_unusable_files(tmp_path: Path, content: bytes, problem: str) -> None:
    src = tmp_path / "bad.json"
    src.write_bytes(content)
    with pytest.raises(TraceError) as e:
        convert(src, tmp_path / "out.parquet")
    assert problem in str(e.value) and str(src) in str(e.value)
    assert "\n" not in str(e.value)
    _no_output(tmp_path)


def test_truncated_file_salvages_complete_events(tmp_path: Path) -> None:
    """A run that crashed mid-export: 57 events written, the 58th cut in half."""
    parts = [json.dumps(e) for e in _events(100)]
    head = '{"schemaVersion": 1, "traceEvents": [\n'
    text = head + ",\n".join(parts[:57]) + ",\n" + parts[57][:30]
    src = tmp_path / "cut.json"
    src.write_text(text)
    out = tmp_path / "cut.parquet"
    meta = convert(src, out)
    assert meta["events"] == 57
    assert connect(out).execute("SELECT count(*), max(name) FROM events").fetchone() == (57, "op9")  # names sort as text
    assert connect(out).execute("SELECT max(seq) FROM events").fetchone()[0] == 56
    notes = read_metadata(out)["cut"]["notes"]
    assert notes == ["1 truncated file: 30 bytes after the last complete event were lost"]


def test_truncated_gzip(tmp_path: Path) -> None:
    body = json.dumps({"traceEvents": _events(5000)}).encode()
    gz = gzip.compress(body)
    src = tmp_path / "cut.json.gz"
    src.write_bytes(gz[: len(gz) // 2])
    meta = convert(src, tmp_path / "cut.parquet")
    assert 0 < meta["events"] < 5000
    assert any("truncated" in n for n in meta["notes"])


def test_wrong_types_negative_durations_bad_utf8(tmp_path: Path) -> None:
    ev = _events(4)
    ev[0]["ts"] = "not a number"
    ev[1]["pid"] = "Spans"
    ev[2]["dur"] = -3
    ev[3]["extra_field"] = {"k": 1}
    src = tmp_path / "odd.json"
    raw = json.dumps({"traceEvents": ev}).encode().replace(b"op3", b"op\xff3")
    src.write_bytes(raw)
    out = tmp_path / "odd.parquet"
    meta = convert(src, out)
    assert meta["events"] == 4
    con = connect(out)
    rows = {r[0]: r[1:] for r in con.execute("SELECT seq, ts_ns, pid, dur_ns, args, name FROM events").fetchall()}
    assert json.loads(rows[0][3])["@ts"] == "not a number" and rows[0][0] is None
    assert rows[1][1] is None and json.loads(rows[1][3])["@pid"] == "Spans"
    assert rows[2][2] == 0 and json.loads(rows[2][3])["@dur"] == -3
    assert json.loads(rows[3][3])["@extra_field"] == {"k": 1} and rows[3][4] == "op\ufffd3"
    notes = " | ".join(meta["notes"])
    assert "negative duration" in notes and "invalid UTF-8" in notes and "non-numeric `ts`" in notes


def test_bare_event_array_and_compact_layout(tmp_path: Path) -> None:
    src = tmp_path / "arr.json"
    src.write_text(json.dumps(_events(10), separators=(",", ":")))
    assert convert(src, tmp_path / "arr.parquet")["events"] == 10


_value = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                   st.text(max_size=5), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
_event = st.dictionaries(st.sampled_from(["ph", "cat", "name", "pid", "tid", "ts", "dur", "args", "id", "bp", "s", "zz"]), _value, max_size=9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=st.lists(_event, max_size=12), cut=st.one_of(st.none(), st.integers(0, 400)))
def test_fuzz_only_clear_errors(tmp_path: Path, events: list, cut: int | None) -> None:
    text = json.dumps({"traceEvents": events})
    if cut is not None:
        text = text[:cut]
    src = tmp_path / "fuzz.json"
    src.write_text(text)
    out = tmp_path / "fuzz.parquet"
    out.unlink(missing_ok=True)
    try:
        meta = convert(src, out)
    except TraceError as e:
        assert "\n" not in str(e)
        assert not out.exists()
    else:
        assert out.exists() and meta["events"] >= 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
