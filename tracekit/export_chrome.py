"""Write a slice of a converted trace as Chrome / Perfetto trace JSON.

Why: a whole decode loop is too big to look at; a few steps of one phase open
instantly in https://ui.perfetto.dev or chrome://tracing. Which rows belong to
the slice is decided by ``queries/export_chrome.sql`` (steps as defined by
``step_instances`` in ``lib/step_instances.sql``, phases by ``phase_path``); this module only sets
its variables, runs it, and streams the rows out as JSON.

Exactness: times are integer ns in the schema and go out as decimal
microseconds written from the integer (``1234567 ns`` -> ``1234.567``), never
through a float, so converting the export again gives the same ns. Each event
is rebuilt from the typed columns plus ``args``; ``@``-prefixed args keys are
the source's other top-level fields (``@bp``, ``@s``, ``@id``, ``@pid`` ...) and
go back to the top level.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import msgspec

from tracekit import report
from tracekit.atomic import atomic_path
from tracekit.errors import TraceError
from tracekit.store import connect, read_metadata

if TYPE_CHECKING:
    import duckdb

try:
    from tracekit import _chrome  # type: ignore[attr-defined]  # the C extension ships no stub
except ImportError:  # extension not built: render_event in Python gives the same bytes
    _chrome = None

SQL_NAME = "export_chrome"  # queries/export_chrome.sql
_BATCH = 20_000
_enc = msgspec.json.encode
_dec = msgspec.json.decode
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


@dataclass(frozen=True)
class Steps:
    """A 1-based inclusive range of step instances; ``last`` None = to the last step."""

    first: int
    last: int | None

    @classmethod
    def parse(cls, text: str) -> Steps:
        """``"3:5"``, ``"3"`` (one step), ``"3:"`` (3 to the end) or ``":5"`` (1 to 5)."""
        m = re.fullmatch(r"\s*(\d*)\s*(?::\s*(\d*)\s*)?", text)
        if not m or (not m.group(1) and not m.group(2)):
            raise ValueError(f"steps {text!r}: expected A:B, A, A: or :B (1-based, inclusive)")
        first = int(m.group(1)) if m.group(1) else 1
        if ":" not in text:
            last: int | None = first
        else:
            last = int(m.group(2)) if m.group(2) else None
        if first < 1 or (last is not None and last < first):
            raise ValueError(f"steps {text!r}: need 1 <= A <= B")
        return cls(first, last)

    def __str__(self) -> str:
        return f"{self.first}:{'' if self.last is None else self.last}"


def us_text(ns: int) -> bytes:
    """Exact decimal microseconds of integer ns: 1234567 -> b"1234.567", 5000 -> b"5"."""
    ns = int(ns)
    q, r = divmod(-ns if ns < 0 else ns, 1000)
    text = b"%d" % q if r == 0 else (b"%d.%03d" % (q, r)).rstrip(b"0")
    return b"-" + text if ns < 0 else text


def _value(key: str, v: Any) -> bytes:
    """JSON of a top-level value; numeric text kept raw for ts/dur (Kineto's exact digits)."""
    if key in ("ts", "dur") and isinstance(v, str) and _NUMBER.fullmatch(v):
        return v.encode()
    return _enc(v)


def render_event(
    ph: str | None,
    cat: str | None,
    name: str | None,
    pid: int | None,
    tid: int | None,
    ts_ns: int | None,
    dur_ns: int | None,
    flow_id: int | None,
    args: str | None,
) -> bytes:
    """One Chrome trace event as JSON bytes, from one row of the ``export_chrome`` output."""
    if args is not None and '"@' in args:
        return _render_hoisted(ph, cat, name, pid, tid, ts_ns, dur_ns, flow_id, args)
    # the common case: no ``@`` key to hoist, so the keys are known and in this order (the bytes of
    # _render_hoisted's without its dict; a third of the export's time on a median step, issue 25)
    parts = [
        key + _enc(v)
        for key, v in ((b'"ph":', ph), (b'"cat":', cat), (b'"name":', name), (b'"pid":', pid), (b'"tid":', tid))
        if v is not None
    ]
    if ts_ns is not None:
        parts.append(b'"ts":' + us_text(ts_ns))
    if ph == "X" and dur_ns is not None:
        parts.append(b'"dur":' + us_text(dur_ns))
    if flow_id is not None:
        parts.append(b'"id":' + _enc(flow_id))
    if args is not None:
        parts.append(b'"args":' + args.encode())
    return b"{" + b",".join(parts) + b"}"


def render_rows(rows: list[tuple[Any, ...]]) -> bytes:
    """The events of ``rows`` (``export_chrome`` output rows) joined by ``,\\n``: :func:`render_event` of each, by the
    C extension (``tracekit/_chrome.c``) where it is built, which hands back to :func:`render_event` the rows it does
    not render itself (``@`` keys to hoist, unexpected types). Why: the Python renderer was ~0.1 s of the page's
    median-step export (39k events), its largest part after the SQL (issue 25 item 3)."""
    if _chrome is not None:
        return _chrome.render(rows, render_event)
    return b",\n".join(render_event(*row) for row in rows)


def _render_hoisted(
    ph: str | None,
    cat: str | None,
    name: str | None,
    pid: int | None,
    tid: int | None,
    ts_ns: int | None,
    dur_ns: int | None,
    flow_id: int | None,
    args: str,
) -> bytes:
    """:func:`render_event` of a row whose ``args`` may hold ``@`` keys: they go back to the top level
    (replacing a typed column's value in its place), the rest stays under ``args``."""
    top: dict[str, bytes] = {
        k: _enc(v) for k, v in (("ph", ph), ("cat", cat), ("name", name), ("pid", pid), ("tid", tid)) if v is not None
    }
    if ts_ns is not None:
        top["ts"] = us_text(ts_ns)
    if ph == "X" and dur_ns is not None:
        top["dur"] = us_text(dur_ns)
    if flow_id is not None:
        top["id"] = _enc(flow_id)
    args_out: bytes | None
    obj = _dec(args)
    if isinstance(obj, dict):
        for k in [k for k in obj if isinstance(k, str) and k.startswith("@")]:
            top[k[1:]] = _value(k[1:], obj.pop(k))
        args_out = _enc(obj) if obj else None
    else:
        args_out = args.encode()
    if args_out is not None and "args" not in top:
        top["args"] = args_out
    return b"{" + b",".join(_enc(k) + b":" + v for k, v in top.items()) + b"}"


def _trace_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """Top-level keys Kineto readers (HTA, Perfetto) look for, from the converted trace's metadata."""
    doc: dict[str, Any] = {}
    if meta.get("profiler_version") is not None:
        doc["schemaVersion"] = meta["profiler_version"]
    if meta.get("devices"):
        doc["deviceProperties"] = meta["devices"]
    if meta.get("rank") is not None:
        doc["distributedInfo"] = {k: meta[k] for k in ("rank", "world_size") if meta.get(k) is not None}
    if meta.get("base_time_ns") is not None:
        doc["baseTimeNanoseconds"] = meta["base_time_ns"]
    return doc


def _batches(reader: Any) -> Iterator[list[tuple[Any, ...]]]:
    for batch in reader:
        cols = [batch.column(i).to_pylist() for i in range(batch.num_columns)]
        yield list(zip(*cols))


def _fetched(cur: duckdb.DuckDBPyConnection) -> Iterator[list[tuple[Any, ...]]]:
    """The pending result's rows in batches of :data:`_BATCH`, as DuckDB's own Python tuples (the same values
    as the Arrow path's: VARCHAR and BIGINT columns only)."""
    while rows := cur.fetchmany(_BATCH):
        yield rows


def export_chrome(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    trace: str | None = None,
    phase: str | None = None,
    steps: Steps | str | None = None,
    step_pattern: str | None = None,
    con: duckdb.DuckDBPyConnection | None = None,
    arrow: bool = True,
    gzip_level: int = 6,
) -> dict[str, Any]:
    """Write the slice of ``trace`` (steps and/or phase) to ``out`` (.json or .json.gz).

    ``con``: a connection over exactly ``paths`` on which :func:`tracekit.report.prepare` already ran
    with this ``step_pattern`` (``report --html`` passes the report's own): the slice reads its
    ``queries/lib/`` tables instead of opening the traces and building them a second time (a quarter
    of the export's time on a median step, issue 25). It gets the slice's ``_ec_*`` temp tables.
    ``arrow``: read the rows through an Arrow reader (faster on many rows); False reads DuckDB's tuples
    and imports no pyarrow (whose import costs more than one step's rows): ``report --html`` for its
    one median step. ``gzip_level``: zlib's level for a .gz ``out`` (``report --html`` takes 1 for its median step:
    a third of the compression's time for a third more bytes, issue 25).

    Returns counts: ``events`` written, ``flows`` (flow rows), ``trace``, ``steps`` (of the trace),
    ``steps_selected``. Raises :class:`TraceError` when the slice is empty or the selection is
    invalid; ``out`` is then left untouched.
    """
    if isinstance(steps, str):
        try:
            steps = Steps.parse(steps)
        except ValueError as e:
            raise TraceError(out, str(e)) from None
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    paths = list(paths)
    label = ", ".join(str(p) for p in paths)
    prepared = con is not None
    if con is None:
        con = connect(paths)
        con.execute("SET enable_progress_bar = false")
    names = [r[0] for r in con.execute("SELECT DISTINCT trace FROM events ORDER BY 1").fetchall()]
    if trace is None:
        if len(names) != 1:
            raise TraceError(
                label,
                f"holds {len(names)} traces ({', '.join(names[:5])}{' ...' if len(names) > 5 else ''}); pick one with --trace",
            )
        trace = names[0]
    elif trace not in names:
        raise TraceError(
            label, f"no trace named {trace!r} (traces: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''})"
        )
    con.execute("SET VARIABLE ec_trace = ?", [trace])
    con.execute("SET VARIABLE ec_phase = CAST(? AS VARCHAR)", [phase])
    con.execute("SET VARIABLE ec_step_first = CAST(? AS BIGINT)", [steps.first if steps else None])
    con.execute("SET VARIABLE ec_step_last = CAST(? AS BIGINT)", [steps.last if steps else None])
    # the report's connection already holds every lib/ module (its analyses require them all): only the slice's own
    # set-up runs there; else the modules export_chrome.sql requires are built first
    done = report.modules_under(SQL_NAME) - {SQL_NAME} if prepared else report.prepare(con, step_pattern=step_pattern)
    sf = report.setup_file(con, SQL_NAME, done)
    sections = dict(sf.outputs)
    n_steps, n_sel, _, _ = con.execute(sections["slice"]).fetchall()[0]
    where = f"trace {trace!r}"
    if steps is not None:
        if n_steps == 0:
            raise TraceError(
                label, f"{where} has no step ranges matching the step pattern; drop --steps or give --step-pattern"
            )
        if n_sel == 0 or (steps.last is not None and steps.last > n_steps):
            raise TraceError(label, f"steps {steps} out of range: {where} has {n_steps} steps (1-based)")

    out = Path(out)
    meta = read_metadata(paths[0]) if len(paths) == 1 else {}
    for p in paths[1:] if len(paths) > 1 else ():
        meta.update(read_metadata(p))
    head = {
        "displayTimeUnit": "ns",
        **_trace_meta(meta.get(trace, {})),
        "tracekit": {"trace": trace, "phase": phase, "steps": str(steps) if steps else None},
    }
    batches = (
        _batches(con.sql(sections["export_chrome"]).to_arrow_reader(_BATCH))
        if arrow
        else _fetched(con.execute(sections["export_chrome"]))
    )
    n = flows = 0
    with atomic_path(out) as tmp:
        gz = out.name.endswith(".gz")
        fh: IO[bytes] | gzip.GzipFile = gzip.open(tmp, "wb", compresslevel=gzip_level) if gz else open(tmp, "wb")  # noqa: SIM115
        with fh:
            # json.dumps writes '"rank": 0' with a space: HTA's rank sniffing regex needs it
            fh.write(json.dumps(head, default=str)[:-1].encode() + b', "traceEvents": [\n')
            for rows in batches:  # one write per batch: gzip's per-call cost was a fifth of the export
                if rows:
                    fh.write((b",\n" if n else b"") + render_rows(rows))
                n += len(rows)
                flows += sum(row[0] in ("s", "f", "t") for row in rows)
            fh.write(b"\n]}\n")
        if n == 0:
            sel = " and ".join(x for x in (f"phase {phase!r}" if phase else "", f"steps {steps}" if steps else "") if x)
            raise TraceError(label, f"the slice ({sel or 'everything'}) of {where} selects no events")
    return {
        "out": str(out),
        "trace": trace,
        "events": n,
        "flows": flows,
        "steps": n_steps,
        "steps_selected": n_sel if steps else None,
        "phase": phase,
    }
