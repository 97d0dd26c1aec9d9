"""The C block scanner (tracekit.ingest._kscan via kscan.scan_block): exact unit cases, and equivalence
with the msgspec + DuckDB path on every real Kineto trace under ../shared.

Known, intended differences from the msgspec path (kineto.py), checked as such below:
* ``args`` is compacted (whitespace outside strings removed) and ``@bp``/``@s``/``@id`` come first;
  the msgspec path keeps the raw text (or DuckDB's re-serialisation when it merges): compared as JSON;
* ``dur_ns`` (and ``ts_ns``) are NULL when the event has none (the msgspec path writes 0);
* ``ts_ns``/``dur_ns`` are compared with an exact Decimal conversion of the raw JSON, not with the
  msgspec path (which rounds through float64 below 4.5e12 us and can be 1 ns off there).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.ingest import kineto, kscan
from tracekit.ingest.kineto_kinds import TEXT_ID_NOTES

SHARED = Path(__file__).resolve().parents[2] / "shared"
KINETO = SHARED / "traces" / "kineto"

pytestmark = pytest.mark.skipif(not kscan.AVAILABLE, reason="tracekit.ingest._kscan is not built")


def one(event: str | bytes, col: str | None = None) -> Any:
    """Scan a single event; the row as a dict (or one column's value), None if unsupported."""
    body = event.encode() if isinstance(event, str) else event
    c = kscan.scan_block(body)
    if c is None:
        return None
    assert {len(a) for a in c.values()} == {1}
    row = {k: a[0].as_py() for k, a in c.items()}
    return row if col is None else row[col]


# -- strings ------------------------------------------------------------------------------------


def test_string_escapes_and_surrogate_pairs() -> None:
    ev = r'{"name": "a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00 é€😀", "ph": "X"}'
    assert one(ev, "name") == 'a"b\\c/d\b\f\n\r\t\u00e9\u20ac\U0001F600 é€😀'


@pytest.mark.parametrize("bad", [
    rb'{"name": "\ud83d"}',          # lone high surrogate
    rb'{"name": "\ude00x"}',         # lone low surrogate
    rb'{"name": "\ud83d\u0041"}',    # high surrogate + non-low
    rb'{"name": "\x"}',              # bad escape
    rb'{"name": "\u12G4"}',          # bad hex
    b'{"name": "a\xffb"}',           # invalid UTF-8
    b'{"name": "a\xc0\xafb"}',       # overlong
    b'{"name": "a\xed\xa0\x80b"}',   # UTF-8-encoded surrogate
    b'{"name": "a\tb"}',             # raw control character
    b'{"args": {"k": "a\xffb"}}',    # invalid UTF-8 inside args
])
def test_bad_strings_are_unsupported(bad: bytes) -> None:
    assert kscan.scan_block(bad) is None


def test_null_and_absent_strings() -> None:
    row = one('{"ph": null, "name": "n"}')
    assert row["ph"] is None and row["cat"] is None and row["name"] == "n" and row["args"] is None


def test_raw_bp_s_id_columns() -> None:
    """The C module itself also returns bp, s (unescaped) and id."""
    import pyarrow as pa

    raw = kscan._kscan.scan(rb'{"bp": "e", "s": "\u0074", "id": 7}, {"bp": null}')
    assert raw["n"] == 2
    cols = {k: kscan._array(t, 2, raw[k]).to_pylist() for k, t in (("bp", pa.string()), ("s", pa.string()), ("id", pa.int64()))}
    assert cols == {"bp": ["e", None], "s": ["t", None], "id": [7, None]}


def test_columns_are_the_base_columns() -> None:
    from tracekit import schema

    c = kscan.scan_block(b'{"ph": "X"}')
    base = set(schema.COLUMN_NAMES) - set(schema.LINK_COLUMNS) - set(schema.SINK_COLUMNS) - {"trace", "source", "seq"}
    assert set(c) == base
    for name, arr in c.items():
        assert arr.type == schema.ARROW_SCHEMA.field(name).type, name


# -- timestamps -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, ns", [
    ("45", 45000),
    ("0", 0),
    ("1.5", 1500),
    ("1.0005", 1000),       # 1000.5 ns -> even
    ("1.0015", 1002),       # 1001.5 ns -> even
    ("1.0025", 1002),
    ("1.00050001", 1001),   # above half
    ("1.00049999", 1000),
    ("-1.0005", -1000),
    ("-1.0015", -1002),
    ("0.0005", 0),
    ("1712195495519689.047", 1712195495519689047),
    ("4458676522690.655", 4458676522690655),
    ("9223372036854775.807", 9223372036854775807),
    ("1.000000000000000000000000001", 1000),
])
def test_ts_exact_half_even(text: str, ns: int) -> None:
    assert one(f'{{"ph": "X", "ts": {text}}}', "ts_ns") == ns


@pytest.mark.parametrize("text", ["2.5e0", "1E3", "9223372036854775.808", "99999999999999999999", "01", "1.", ".5", "+1",
                                  '"1"', "true"])
def test_ts_unsupported(text: str) -> None:
    assert kscan.scan_block(f'{{"ph": "X", "ts": {text}}}'.encode()) is None


def test_dur() -> None:
    assert one('{"ts": 1, "dur": 2.0015}', "dur_ns") == 2002
    assert one('{"ts": 1}', "dur_ns") is None
    assert one('{"ts": 1, "dur": null}', "dur_ns") is None
    assert one('{"ts": 1, "dur": -0.0001}', "dur_ns") == 0   # rounds to 0 ns: not negative
    assert kscan.scan_block(b'{"ts": 1, "dur": -1}') is None
    assert kscan.scan_block(b'{"ts": 1, "dur": -0.002}') is None
    assert one('{"ph": "M"}', "ts_ns") is None


# -- top-level integers and keys ------------------------------------------------------------------


def test_pid_tid_id() -> None:
    row = one('{"pid": -3, "tid": 9223372036854775807, "id": -9223372036854775808}')
    assert (row["pid"], row["tid"], row["correlation"]) == (-3, 9223372036854775807, -9223372036854775808)
    assert one('{"pid": null}', "pid") is None


@pytest.mark.parametrize("body", [
    b'{"pid": "012"}',                         # numeric text beyond plain decimal: the Python path decides
    b'{"tid": "stream 07"}',
    b'{"tid": "Stream 7"}',
    b'{"pid": "stream 7"}',                    # `stream N` is a tid only
    b'{"tid": "+7"}',
    b'{"pid": 1.0}',
    b'{"id": 9223372036854775808}',
    b'{"pid": 1e3}',
    b'{"ph": "X", "foo": 1}',                  # unknown key
    b'{"ph": "X", "ph": "B"}',                 # duplicate key
    b'{"p\\u0069d": 1}',                       # escaped key
    b'{"ph": 1}',                              # non-string ph
    b'{"cat": ["x"]}',
    b'{"args": [1]}',                          # non-object args
    b'{"args": null}',
    b'[1]',                                    # non-object element
    b'{"ph": "X"},',                           # trailing comma
    b'{"ph": "X"} {"ph": "X"}',                # missing comma
    b'{"ph": "X"',                             # truncated
    b'{"ph": "X", "args": {"a": tru}}',        # bad literal
    b'{"ph": "X", "args": {"a": [1,]}}',       # trailing comma inside args
    b'{"ph": "X", "args": {"a" 1}}',
])
def test_unsupported_blocks(body: bytes) -> None:
    assert kscan.scan_block(body) is None
    # one bad event spoils the whole block
    assert kscan.scan_block(b'{"ph": "X"},\n' + body) is None


def test_empty_body_and_whitespace() -> None:
    c = kscan.scan_block(b" \n ")
    assert c is not None and all(len(a) == 0 for a in c.values())
    c = kscan.scan_block(b'\n  {\n "ph" : "X" ,\t"pid":1\r\n}\n ,\n {"ph":"B"}  ')
    assert c["ph"].to_pylist() == ["X", "B"] and c["pid"].to_pylist() == [1, None]


# -- typed args -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, want", [
    ("7", 7), ('"0x1F"', 31), ('"0X1f"', 31), ('"0x0"', 0), ('"-0x1F"', None), ('"12"', 12), ('"-12"', -12),
    ('"007"', 7), ('"abc"', None), ('" 1"', None), ('"+1"', None), ('""', None), ('"0x"', None),
    ("1.5", None), ("1.0", None), ("1e3", None), ("true", None), ("null", None), ("[1]", None), ("{}", None),
    ("9223372036854775807", 9223372036854775807), ("9223372036854775808", None),
    ('"0x7FFFFFFFFFFFFFFF"', 9223372036854775807), ('"0x8000000000000000"', None),
    ('"9223372036854775808"', None), ('"-9223372036854775808"', -9223372036854775808),
])
def test_int_args(value: str, want: int | None) -> None:
    row = one(f'{{"ph": "X", "cat": "kernel", "args": {{"stream": {value}, "External id": {value}, "bytes": {value},'
              f' "shared memory": {value}, "graph id": {value}}}}}')
    assert (row["stream"], row["external_id"], row["bytes"], row["shared_mem_bytes"], row["graph_id"]) == (want,) * 5


def test_int32_args_and_dims() -> None:
    row = one('{"args": {"device": 2, "registers per thread": "0x10", "grid": [1, 2], "block": [1, "2", 3.0]}}')
    assert (row["device"], row["registers"]) == (2, 16)
    assert (row["grid_x"], row["grid_y"], row["grid_z"]) == (1, 2, None)
    assert (row["block_x"], row["block_y"], row["block_z"]) == (1, None, None)
    row = one('{"args": {"device": 3000000000, "grid": [3000000000, -2147483648, [1], 4], "block": 5}}')
    assert row["device"] is None
    assert (row["grid_x"], row["grid_y"], row["grid_z"]) == (None, -2147483648, None)
    assert (row["block_x"], row["block_y"], row["block_z"]) == (None, None, None)
    row = one('{"args": {"grid": [{"a": [1, "]"]}, "x,]", 7]}}')
    assert (row["grid_x"], row["grid_y"], row["grid_z"]) == (None, None, 7)


def test_escaped_args_keys_and_strings() -> None:
    row = one(r'{"args": {"str\u0065am": "\u0030x1f", "\u0061": 1, "device": "\u0037"}}')
    assert (row["stream"], row["device"]) == (31, 7)
    assert row["args"] == r'{"str\u0065am":"\u0030x1f","\u0061":1,"device":"\u0037"}'


def test_first_key_wins() -> None:
    row = one('{"args": {"stream": "x", "stream": 7, "device": 1, "device": 2}}')
    assert (row["stream"], row["device"]) == (None, 1)


def test_flops_and_raw_json_args() -> None:
    row = one('{"args": {"flops": 1.5e3, "Input Dims": [[1, 2], [], [3]], "Input type": ["float", "c10::Half", ""]}}')
    assert row["flops"] == 1500.0
    assert row["input_dims"] == "[[1,2],[],[3]]"
    assert row["input_types"] == '["float","c10::Half",""]'
    assert one('{"args": {"flops": 12}}', "flops") == 12.0
    assert one('{"args": {"flops": "12"}}', "flops") is None
    assert one('{"args": {"flops": 0.1}}', "flops") == 0.1
    assert one('{"args": {"nested": {"flops": 1}}}', "flops") is None


# -- args text and extras -------------------------------------------------------------------------


def test_args_compacted_escapes_kept() -> None:
    ev = '{"args": {\n  "k" : "a b\\u00e9\\/\\n" ,\n  "l": [ 1 , { "m" : null } , true, false, -1.5e-3 ] ,"e":{},"f":[] } }'
    assert one(ev, "args") == '{"k":"a b\\u00e9\\/\\n","l":[1,{"m":null},true,false,-1.5e-3],"e":{},"f":[]}'
    assert one('{"args": { }}', "args") == "{}"
    assert one('{"ph": "X"}', "args") is None


@pytest.mark.parametrize("ev, args, corr", [
    ('{"ph": "f", "id": 5, "bp": "e", "s": "t", "args": { "correlation": 7 , "x" : [1, 2] }}',
     '{"@bp":"e","@s":"t","@id":5,"correlation":7,"x":[1,2]}', 7),
    ('{"ph": "s", "id": 5, "args": {"x": 1}}', '{"x":1}', 5),           # id becomes correlation
    ('{"ph": "s", "id": 5}', None, 5),
    ('{"ph": "s", "id": 5, "args": {}}', "{}", 5),
    ('{"ph": "f", "bp": "e"}', '{"@bp":"e"}', None),
    ('{"ph": "f", "bp": "e", "args": {}}', '{"@bp":"e"}', None),
    ('{"ph": "f", "s": "g", "bp": null}', '{"@s":"g"}', None),
    ('{"ph": "f", "s": "\\u0067"}', '{"@s":"\\u0067"}', None),
    ('{"args": {"correlation": 9}, "id": 3}', '{"@id":3,"correlation":9}', 9),
    ('{"args": {"correlation": "x"}, "id": 3}', '{"@id":3,"correlation":"x"}', 3),  # not convertible -> id
    ('{"args": {"correlation": null}, "id": 3}', '{"@id":3,"correlation":null}', 3),
    ('{"args": {"correlation": 9}}', '{"correlation":9}', 9),
    ('{"args": {"correlation": "0x10"}, "id": null}', '{"correlation":"0x10"}', 16),
])
def test_args_extras(ev: str, args: str | None, corr: int | None) -> None:
    row = one(ev)
    assert row["args"] == args and row["correlation"] == corr


# -- kind / copy_kind -----------------------------------------------------------------------------


def test_kind_and_copy_kind_match_duckdb_rules() -> None:
    import duckdb
    import pyarrow as pa

    phs = ["X", "M", "C", "s", "f", "t", "i", "I", "n", "B", None]
    cats = [*kscan.CAT_KIND, "other_cat", None]
    names = ["ProfilerStep#3", "Memcpy HtoD (Pageable -> Device)", "Memcpy DtoD", "aten::copy_", "memcpyHtoD", None]
    rows = [(p, c, n) for p in phs for c in cats for n in names]
    ph, cat, name = (pa.array(list(x), pa.string()) for x in zip(*rows))
    kind = kscan.kind_of(ph, cat, name)
    copy = kscan.copy_kind_of(kind, name)
    c = pa.table({"ph": ph, "cat": cat, "name": name})  # noqa: F841  (read by DuckDB by name)
    con = duckdb.connect()
    want = con.execute(f"""SELECT {kineto._kind_case()} AS kind FROM c""").fetchall()
    assert kind.to_pylist() == [w[0] for w in want]
    t = pa.table({"kind": kind, "name": name})  # noqa: F841  (read by DuckDB by name)
    want = con.execute("SELECT CASE WHEN kind = 'memcpy' THEN regexp_extract(name, "
                       "'(?:Memcpy|memcpy|Copy)\\s*([A-Za-z]+to[A-Za-z]+)', 1) END FROM t").fetchall()
    assert copy.to_pylist() == [w[0] for w in want]
    assert "HtoD" in copy.to_pylist() and "" in copy.to_pylist()


# -- buffers, threads, prefix ---------------------------------------------------------------------


def test_bytes_like_inputs_and_validity() -> None:
    body = b'{"pid": 1}, {"ph": "X"}, ' * 5 + b'{"pid": 2}'
    for b in (body, bytearray(body), memoryview(body)):
        c = kscan.scan_block(b)
        assert c["pid"].to_pylist() == [1, None] * 5 + [2]
        c["pid"].validate(full=True)
        c["ph"].validate(full=True)


def test_two_threads_same_result() -> None:
    ev = b'{"ph": "X", "cat": "kernel", "name": "k\\u00e9", "pid": 1, "tid": 7, "ts": 1.0015, "dur": 3,' \
         b' "args": {"stream": 7, "grid": [1, 2, 3], "correlation": 4}}'
    body = b",\n".join([ev] * 20000)
    ref = {k: v.to_pylist() for k, v in kscan.scan_block(body).items()}
    out: list[Any] = []

    def work() -> None:
        for _ in range(5):
            out.append({k: v.to_pylist() for k, v in kscan.scan_block(body).items()})

    ts = [threading.Thread(target=work) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert len(out) == 10 and all(o == ref for o in out)


def test_scan_runs() -> None:
    body = b'{"ph": "X", "pid": 1},\n  {"pid": 2},\n  {"pid": "s1"}, {"pid": "s2"} ,{"pid": 3},{"tid": "0x1"}'
    got = kscan.scan_runs(body)
    assert [r if isinstance(r, bytes) else r["pid"].to_pylist() for r in got] == [
        [1, 2], b'{"pid": "s1"}, {"pid": "s2"}', [3], b'{"tid": "0x1"}']
    assert [(body[a:b], c is None) for a, b, c in kscan.runs(body)][1] == (b'{"pid": "s1"}, {"pid": "s2"}', True)
    got = kscan.scan_runs(b'{"pid": 1}, {"pid": "05", "a": [}, {"pid": 2}')   # malformed: the rest is one run
    assert got[0]["pid"].to_pylist() == [1] and got[1] == b'{"pid": "05", "a": [}, {"pid": 2}'
    assert kscan.scan_runs(b'{"pid": "05"}') == [b'{"pid": "05"}']
    assert len(kscan.scan_runs(b'{"pid": 1}')) == 1


def test_scan_block_prefix() -> None:
    body = b'{"ph": "X", "pid": 1},\n  {"ph": "X", "pid": 2},\n  {"pid": "s1"}, {"pid": 3}'
    cols, stop = kscan.scan_block_prefix(body)
    assert cols["pid"].to_pylist() == [1, 2] and body[stop:] == b'{"pid": "s1"}, {"pid": 3}'
    cols, stop = kscan.scan_block_prefix(body[: body.index(b",\n  {\"pid\": \"s")])
    assert cols["pid"].to_pylist() == [1, 2] and stop == len(body[: body.index(b",\n  {\"pid\": \"s")])
    assert kscan.scan_block_prefix(b'{"pid": "05"}, {"pid": 1}') == (None, 0)


def test_text_ids_of_old_torch() -> None:
    """torch 1.8/1.9 wrote tids as text: plain decimal text is the number (no args entry: the text is its
    spelling), a tid `stream N` is N with the text kept as @tid; each counted for the trace's notes."""
    counts: Counter[str] = Counter()
    body = b'{"pid": "12", "tid": "stream 7"}, {"tid": "0"}, {"pid": 3, "tid": "31383", "args": {"a": 1}}'
    (cols,) = kscan.scan_runs(body, counts)
    assert cols["pid"].to_pylist() == [12, None, 3] and cols["tid"].to_pylist() == [7, 0, 31383]
    assert [a and json.loads(a) for a in cols["args"].to_pylist()] == [{"@tid": "stream 7"}, None, {"a": 1}]
    assert counts == {TEXT_ID_NOTES[0]: 1, TEXT_ID_NOTES[1]: 2, TEXT_ID_NOTES[2]: 1}


def test_alternating_block_goes_whole_to_python() -> None:
    """Past MAX_RAW_RUNS runs the scanner cannot take, the block is one run for the generic path."""
    one = b'{"pid": 1}, {"pid": "05"}'
    body = b", ".join([one] * (kscan.MAX_RAW_RUNS + 1))
    assert kscan.scan_runs(body + b" ,\n") == [body]
    assert len(kscan.scan_runs(b", ".join([one] * kscan.MAX_RAW_RUNS))) == 2 * kscan.MAX_RAW_RUNS


def test_named_pid_tid_become_null_plus_args() -> None:
    """Kineto's own rows name their pid/tid ("Spans", "PyTorch Profiler"): NULL ids, raw names kept in args."""
    cols = kscan.scan_block(b'{"ph": "M", "pid": "Spans", "tid": "PyTorch Profiler", "args": {"name": "x"}}, {"ph": "i", "tid": ""}')
    assert cols["pid"].to_pylist() == [None, None] and cols["tid"].to_pylist() == [None, None]
    assert [json.loads(a) for a in cols["args"].to_pylist()] == [
        {"@pid": "Spans", "@tid": "PyTorch Profiler", "name": "x"}, {"@tid": ""}]


# -- equivalence on real traces -------------------------------------------------------------------


def _ns(x: Any) -> int | None:
    if x is None:
        return None
    return int((Decimal(x) * 1000).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _blocks(body: bytes, size: int = kineto.BLOCK) -> list[bytes]:
    out = []
    while len(body) > size:
        cut = kineto.KinetoReader._last_boundary(body[:size])
        assert cut is not None
        out.append(body[: cut[0]])
        body = body[cut[1]:]
    out.append(body)
    return out


def _files() -> list[Path]:
    return sorted(KINETO.rglob("*.json.gz")) if KINETO.exists() else []


@pytest.mark.skipif(not KINETO.exists(), reason="../shared/traces/kineto is absent: real-trace equivalence needs it")
@pytest.mark.parametrize("path", _files(), ids=[f.name for f in _files()])
def test_equivalent_to_msgspec_path(path: Path) -> None:
    import gzip

    data = gzip.decompress(path.read_bytes())
    m = kineto._START.search(data)
    body = data[m.end():]
    body = body[: kineto.KinetoReader._events_end(body)]
    reader = kineto.KinetoReader(path)
    cols = kineto._Columns("t", reader.notes)
    scanned = 0
    for blk in _blocks(body):
        for a, b, got in kscan.runs(blk):
            part = blk[a:b]
            if got is None:
                # what the scanner leaves to the generic path: only the profiler's own events with string pid/tid
                left = json.loads(b"[" + part + b"]")
                assert all(isinstance(e.get("pid"), str) or isinstance(e.get("tid"), str) for e in left), part[:300]
                continue
            _compare_run(part, got, reader, cols)
            scanned += len(part)
    # the bulk of every file goes through the scanner
    assert scanned >= 0.9 * len(body) or len(body) - scanned < 2048, (scanned, len(body))


def _compare_run(part: bytes, got: dict[str, Any], reader: kineto.KinetoReader, cols: kineto._Columns) -> None:
    """One run of supported events: C columns vs the msgspec path and an exact Decimal reading."""
    raw = json.loads(b"[" + part + b"]", parse_float=Decimal)
    n = len(raw)
    assert len(got["ph"]) == n
    py = cols.build(*reader._decode(part))
    assert set(got) <= set(py)
    for name, arr in got.items():
        c = arr.to_pylist()
        if name in ("ts_ns", "dur_ns"):
            key = name[:-3]
            assert c == [_ns(e.get(key)) for e in raw], name
            continue
        p = py[name].cast(arr.type).to_pylist()
        if name == "args":
            p = [json.loads(x) if x is not None else None for x in p]
            c = [json.loads(x) if x is not None else None for x in c]
        assert c == p, name
    # the C args text is the raw args, compacted, with the @-keys first
    for e, a in zip(raw, got["args"].to_pylist()):
        extra = {f"@{k}": e[k] for k in ("bp", "s") if e.get(k) is not None}
        if e.get("id") is not None and "correlation" in e.get("args", {}):
            extra["@id"] = e["id"]
        for k in ("pid", "tid"):
            if isinstance(e.get(k), str):
                extra[f"@{k}"] = e[k]
        if not extra and "args" not in e:
            assert a is None
        else:
            assert list(json.loads(a)) == list(extra) + list(e.get("args", {}))


# -- property test against a Python reading of the rules --------------------------------------------


_I64 = 1 << 63
_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
_INT = st.one_of(st.integers(-_I64, _I64 - 1), st.integers(-(1 << 40), 1 << 40), st.integers(-5, 5))
_NUM_TEXT = st.builds(lambda neg, i, f: ("-" if neg else "") + str(i) + (("." + f) if f else ""),
                      st.booleans(), st.integers(0, 10 ** 16), st.text("0123456789", max_size=7))
_ARG_VAL = st.one_of(
    _INT.map(str), st.integers(_I64, 1 << 70).map(str), _NUM_TEXT, st.sampled_from(["1.5e3", "-2E-2", "true", "null"]),
    st.one_of(_INT.map(str), _INT.map(hex), st.sampled_from(["0X1f", "-0x5", "007", "", " 1", "abc", "0x"]), _TEXT)
    .map(lambda s: json.dumps(s)),
    st.lists(st.one_of(_INT.map(str), st.just('"2"'), st.just("1.5"), st.just("[1]")), max_size=4)
    .map(lambda xs: "[" + ", ".join(xs) + "]"),
)
_ARG_KEYS = st.sampled_from(["correlation", "stream", "External id", "shared memory", "bytes", "graph id", "device",
                             "registers per thread", "grid", "block", "flops", "Input Dims", "Input type", "other", "é"])


def _ref_int(tok: str) -> int | None:
    v = json.loads(tok)
    if isinstance(v, bool) or tok.lstrip("-")[:1].isdigit() and not isinstance(v, int):
        return None
    if isinstance(v, str):
        import re

        if re.fullmatch(r"-?[0-9]+", v):
            v = int(v)
        elif re.fullmatch(r"0[xX][0-9a-fA-F]+", v):
            v = int(v, 16)
        else:
            return None
    if isinstance(v, int) and -_I64 <= v < _I64:
        return v
    return None


def _compact(tok: str) -> str:
    """Whitespace outside strings removed, everything else as written."""
    out, in_str, esc = [], False, False
    for ch in tok:
        if in_str:
            esc = not esc and ch == "\\"
            in_str = esc or ch != '"'
        elif ch == '"':
            in_str = True
        elif ch in " \t\r\n":
            continue
        out.append(ch)
    return "".join(out)


def _respelled_by_duckdb(text: str) -> bool:
    """Whether DuckDB's JSON re-serialisation would write this value differently (then the scanner declines it):
    a string with an escape, a number with a fraction or exponent, -0, an integer outside int64."""
    import re

    for tok in re.findall(r'"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*', text):
        if tok.startswith('"'):
            if "\\" in tok:
                return True
        elif re.search(r"[.eE]", tok) or tok == "-0" or not -_I64 <= int(tok) < _I64:
            return True
    return False


@st.composite
def _events(draw: Any) -> tuple[str, dict[str, Any]]:
    """(event JSON text, expected row)"""
    members: list[tuple[str, str]] = []
    want: dict[str, Any] | None = {k: None for k in kscan.COLUMNS}
    respelled = False
    for k in draw(st.permutations(["ph", "cat", "name", "pid", "tid", "ts", "dur", "args", "id", "bp", "s"])):
        if draw(st.booleans()):
            continue
        if k in ("ph", "cat", "name", "bp", "s"):
            v = draw(st.one_of(st.none(), _TEXT, st.sampled_from(["X", "kernel", "cpu_op", "gpu_memcpy", "i"])))
            members.append((k, json.dumps(v, ensure_ascii=draw(st.booleans()))))
            want[k] = v
        elif k in ("pid", "tid", "id"):
            v = draw(st.one_of(st.none(), _INT))
            members.append((k, json.dumps(v)))
            want[k] = v
        elif k in ("ts", "dur"):
            t = draw(_NUM_TEXT)
            if k == "dur":
                t = t.lstrip("-")
            members.append((k, t))
            want[k + "_ns"] = _ns(t)
        else:
            keys = draw(st.lists(_ARG_KEYS, max_size=6))
            vals = [draw(_ARG_VAL) for _ in keys]
            asc = draw(st.booleans())
            members.append((k, "{" + ", ".join(f"{json.dumps(a, ensure_ascii=asc)} : {v}" for a, v in zip(keys, vals)) + "}"))
            want["_args"] = (keys, vals)
            first = {a: v for a, v in reversed(list(zip(keys, vals)))}
            if any(_respelled_by_duckdb(first.get(a, "")) for a in ("Input Dims", "Input type")):
                respelled = True
    if want.get("ts_ns") is not None and abs(want["ts_ns"]) >= _I64 or want.get("dur_ns") is not None and want["dur_ns"] >= _I64:
        want = None  # out of range: the block is unsupported
    if respelled:
        want = None
    text = "{" + ",\n ".join(f'"{k}":  {v}' for k, v in members) + "}"
    return text, want


def _expected_row(want: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in want.items() if k in kscan.COLUMNS}
    keys, vals = want.get("_args", ([], []))
    first: dict[str, str] = {}
    for k, v in zip(keys, vals):
        first.setdefault(k, v)
    ints = {"correlation": "correlation", "stream": "stream", "External id": "external_id",
            "shared memory": "shared_mem_bytes", "bytes": "bytes", "graph id": "graph_id"}
    for key, col in ints.items():
        row[col] = _ref_int(first[key]) if key in first else None
    for key, col in (("device", "device"), ("registers per thread", "registers")):
        v = _ref_int(first[key]) if key in first else None
        row[col] = v if v is not None and -(1 << 31) <= v < (1 << 31) else None
    for key in ("grid", "block"):
        xs = json.loads(first[key]) if key in first else None
        toks = [] if not isinstance(xs, list) else [t.strip() for t in first[key][1:-1].split(",")] if xs else []
        for i, axis in enumerate("xyz"):
            v = None
            if i < len(toks) and toks[i].lstrip("-").isdigit():
                v = int(toks[i])
            row[f"{key}_{axis}"] = v if v is not None and -(1 << 31) <= v < (1 << 31) else None
    f = first.get("flops")
    row["flops"] = float(f) if f is not None and (f[:1] == "-" or f[:1].isdigit()) else None
    row["input_dims"] = _compact(first["Input Dims"]) if "Input Dims" in first else None
    row["input_types"] = _compact(first["Input type"]) if "Input type" in first else None
    if row["correlation"] is None:
        row["correlation"] = want.get("id")
    pre = {}
    if want.get("bp") is not None:
        pre["@bp"] = want["bp"]
    if want.get("s") is not None:
        pre["@s"] = want["s"]
    if want.get("id") is not None and "correlation" in keys:
        pre["@id"] = want["id"]
    if "_args" in want or pre:
        row["args"] = [*pre.items(), *[(k, json.loads(v)) for k, v in zip(keys, vals)]]
    return row


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_events(), min_size=1, max_size=5))
def test_matches_reference_rules(evs: list[tuple[str, dict[str, Any] | None]]) -> None:
    body = ",\n  ".join(t for t, _ in evs).encode()
    got = kscan.scan_block(body)
    if any(w is None for _, w in evs):
        assert got is None
        return
    assert got is not None, body
    for i, (_, want) in enumerate(evs):
        exp = _expected_row(want)
        row = {k: got[k][i].as_py() for k in exp}
        if row["args"] is not None:
            row["args"] = list(json.loads(row["args"], object_pairs_hook=list))
        assert row == exp, body


# -- found by tests/fuzz/kscan_fuzz.py --------------------------------------------------------------


@pytest.mark.parametrize("dims, duckdb_text", [
    ("[[128, 1.5E-3]]", "[[128,0.0015]]"),   # DuckDB re-spells numbers with a fraction or exponent
    ("[[1.50]]", "[[1.5]]"),
    ("[[-0]]", "[[0]]"),
    (r'["\u0041"]', '["A"]'),                 # and strings with escapes
])
def test_input_dims_duckdb_would_respell_go_to_the_msgspec_path(dims: str, duckdb_text: str) -> None:
    """The C scanner copies Input Dims as written; where DuckDB's JSON re-serialisation (the msgspec path)
    spells the value differently, the event is left to that path, so both give ``duckdb_text``."""
    ev = f'{{"ph": "X", "args": {{"Input Dims": {dims}}}}}'.encode()
    assert kscan.scan_block(ev) is None
    assert kscan.scan_block(ev.replace(b"Input Dims", b"Input type")) is None
    reader = kineto.KinetoReader("x.json")
    got = kineto._Columns("t", reader.notes).build(*reader._decode(ev))
    assert got["input_dims"].to_pylist() == [duckdb_text]


def test_absent_ph_is_null_on_both_paths() -> None:
    ev = b'{"name": "n", "ts": 1}'
    assert one(ev, "ph") is None
    reader = kineto.KinetoReader("x.json")
    assert kineto._Columns("t", reader.notes).build(*reader._decode(ev))["ph"].to_pylist() == [None]
