"""``tracekit info TRACE``: metadata, events per kind, time span."""

from __future__ import annotations

import json

import click

from tracekit.render import print_result
from tracekit.safe import term
from tracekit.store import connect, read_metadata
from tracekit.view.model import elide
from tracekit.view.terminal import terminal_width, wrap_text

SUMMARY_SQL = """
SELECT trace, kind, count(*) AS events,
       min(ts_ns) AS first_ts_ns, max(ts_ns + dur_ns) AS last_end_ns
FROM events GROUP BY ALL ORDER BY trace, events DESC
"""
SPANS_SQL = (
    "SELECT trace, count(*) AS events, min(ts_ns) AS start_ns, max(ts_ns + dur_ns) AS end_ns, "
    "(max(ts_ns + dur_ns) - min(ts_ns)) / 1e6 AS span_ms FROM events WHERE kind NOT IN ('meta') GROUP BY trace ORDER BY trace"
)


@click.command("info")
@click.argument("trace", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def command(trace: str, as_json: bool) -> None:
    """Show a trace's metadata, its event count per kind and its time span."""
    con = connect(trace)
    meta = read_metadata(trace)
    if as_json:  # pandas only here (its records are the --json format); the table path prints DuckDB rows
        df = con.execute(SUMMARY_SQL).df()
        spans = con.execute(SPANS_SQL).df()
        out = {
            "traces": meta,
            "kinds": df.to_dict(orient="records"),
            "spans": spans.to_dict(orient="records"),
        }
        click.echo(json.dumps(out, indent=2, default=str))
        return
    w = terminal_width()
    lines: list[str] = []
    agents: dict[str, list[tuple[int, int | None]]] = {}
    for t, dev, idx in con.execute(
        "SELECT trace, device, gpu_index FROM trace_devices WHERE id_source = 'gpu_op' ORDER BY trace, device"
    ).fetchall():
        agents.setdefault(str(t), []).append((dev, idx))
    for name, m in meta.items():  # the footer's values are data: shown whatever their types (a hostile file's too)
        events = m.get("events", 0)
        events = f"{events:,}" if isinstance(events, int) else term(str(events))
        lines += wrap_text(f"trace {name}  (source {m.get('source')}, {events} events)", w)
        if m.get("source_file"):  # a path is cut in the middle, never folded (its ends say which file)
            lines.append("  file " + elide(term(str(m["source_file"])), max(w - 7, 10)))
        devs = m.get("devices") or []
        devs = [d for d in devs if isinstance(d, dict)] if isinstance(devs, list) else []
        if devs:
            for d in devs:
                lines += wrap_text(
                    "GPU "
                    + ", ".join(
                        f"{k}={d[k]}"
                        for k in (
                            "id",
                            "name",
                            "numSms",
                            "multiProcessorCount",
                            "totalGlobalMem",
                            "smCount",
                            "totalMemory",
                        )
                        if k in d
                    ),
                    w,
                    "  ",
                )
        else:
            lines.append("  GPU: not stated in the trace")
        for dev, idx in agents.get(name, []) if devs else ():  # op ids no listed GPU has (ROCm HSA agent ids)
            to = (
                f"GPU {idx}"
                if idx is not None
                else "which listed GPU cannot be told (the CPU agent count is not in the trace)"
            )
            lines += wrap_text(f"GPU ops on device id {dev} (an HSA agent id, not a listed id): {to}", w, "  ")
        for k in ("profiler_version", "rank", "world_size", "base_time_ns"):
            if m.get(k) is not None:
                lines += wrap_text(f"{k}: {m[k]}", w, "  ")
        notes = m.get("notes") or []
        for n in notes if isinstance(notes, list) else [notes]:
            lines += wrap_text(f"note: {n}", w, "  ")
    if lines:
        click.echo("\n".join(lines) + "\n")
    print_result(con.execute(SPANS_SQL), title="time span (events other than meta rows)")
    click.echo()
    print_result(con.execute(SUMMARY_SQL), title="events per kind", drop=("first_ts_ns", "last_end_ns"))
