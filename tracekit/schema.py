"""The one Parquet event schema of tracekit.

Every ingest (Kineto JSON, nsys SQLite) writes exactly these columns, in this
order, one row per input event. Queries in ``queries/`` and users' ad-hoc SQL
depend on the names and meanings below; ``docs/schema.md`` is generated from
this module (``python -m tracekit.schema``) and a test keeps the two in step.

Why one flat table: DuckDB scans a single wide Parquet with dictionary-encoded
strings faster than it joins normalised tables, and users can write
``SELECT ... FROM events`` without learning a star schema.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pyarrow as pa

SCHEMA_VERSION = "2"  # 2: row_id

#: Values of the ``kind`` column.
KINDS: dict[str, str] = {
    "kernel": "a GPU kernel execution (also kernels replayed from a CUDA graph)",
    "memcpy": "a GPU memory copy",
    "memset": "a GPU memory set",
    "gpu_sync": "a GPU-side synchronisation record (Kineto `cuda_sync`, nsys `CUPTI_ACTIVITY_KIND_SYNCHRONIZATION`)",
    "runtime": "a CUDA/HIP runtime or driver API call on a CPU thread (cudaLaunchKernel, cudaMemcpyAsync, cudaStreamSynchronize, ...)",
    "range": "a CPU-side range: torch `record_function` / `user_annotation`, `ProfilerStep#N`, NVTX push/pop or start/end",
    "gpu_range": "Kineto's projection of a CPU annotation onto the GPU timeline (`gpu_user_annotation`)",
    "cpu_op": "a PyTorch operator on a CPU thread (`aten::mm`, ...)",
    "python": "a Python function frame (with_stack=True)",
    "flow": "a flow event (Kineto `ac2g` CPU->GPU arrows, `fwdbwd` links)",
    "instant": "an instant event (memory events, NVTX marks, ...)",
    "counter": "a counter sample",
    "meta": "a metadata event (process / thread names and sort order)",
    "other": "anything else, kept so that nothing is lost (OS runtime calls from nsys, profiler-internal ranges, ...)",
}

#: Kinds that run on a GPU stream.
GPU_KINDS = ("kernel", "memcpy", "memset")


@dataclasses.dataclass(frozen=True)
class Column:
    """One column of the event table: name, Arrow type and meaning."""

    name: str
    type: pa.DataType
    doc: str


_DICT_STR = pa.string()  # Parquet dictionary-encodes these on disk

COLUMNS: tuple[Column, ...] = (
    Column(
        "trace",
        _DICT_STR,
        "Which capture this row came from (default: input file name without extensions). A dataset can hold many traces.",
    ),
    Column("source", _DICT_STR, "`kineto` or `nsys`."),
    Column("kind", _DICT_STR, "Normalised event kind, one of the values listed under *Kinds*."),
    Column(
        "cat",
        _DICT_STR,
        "The source's own category: Kineto `cat` (e.g. `kernel`, `cuda_runtime`, `user_annotation`), or the nsys table the row came from.",
    ),
    Column(
        "ph",
        _DICT_STR,
        "Chrome-trace phase letter (`X` complete, `i` instant, `s`/`f` flow, `M` metadata, `C` counter); nsys rows use `X` or `i`.",
    ),
    Column(
        "name",
        _DICT_STR,
        "Event name: kernel name (demangled where the source has it), API name, range text, operator name. nsys NVTX ranges written by PyTorch `emit_nvtx` lose their per-call suffixes (`, seq = N`, `, op_id = N`, `, sizes = [...]`, `, input_op_ids = [...]`) so that phases aggregate; the raw text is then in `args` as `raw_name`.",
    ),
    Column(
        "ts_ns",
        pa.int64(),
        "Start time in integer nanoseconds, one clock for CPU and GPU rows of a trace. Kineto's microseconds (integer or decimal text) are converted exactly from the digits and rounded to the nearest ns, half to even (never truncated, never through a float that cannot hold them).",
    ),
    Column(
        "dur_ns",
        pa.int64(),
        "Duration in nanoseconds, converted and rounded like `ts_ns`; 0 for instants, flows and metadata, and for negative source durations (the raw value is kept as `@dur` in `args`).",
    ),
    Column(
        "pid",
        pa.int64(),
        "Process id. Kineto GPU rows carry the device index here, as Kineto writes them; use `device` for the GPU.",
    ),
    Column(
        "tid",
        pa.int64(),
        "Thread id on the CPU side; for Kineto GPU rows the stream (as Kineto writes it). Written as text (torch 1.8/1.9): numeric text is the number, `stream N` is N (the text kept as args.@tid), other text NULL (kept as args.@tid); trace_notes counts each.",
    ),
    Column(
        "device",
        pa.int32(),
        "GPU index of GPU rows (and of runtime rows when the source says) as the source records it "
        "(Kineto: args.device); NULL on pure CPU rows. On ROCm roctracer traces it is the HSA agent id, which numbers the "
        "CPU agents first (GPU 0 is 2 on a two-socket host), not the deviceProperties id: the `trace_devices` view "
        "(tracekit.store) has a row for every id GPU ops use, so joins on `device` always find the GPU and its name, "
        "and its `gpu_index` is the listed GPU that id stands for, the one numbering `tracekit info` and the HTML "
        "timeline print (NULL when the trace cannot tell: tracekit.store documents the rule).",
    ),
    Column("stream", pa.int64(), "GPU stream id of GPU rows; NULL elsewhere."),
    Column(
        "correlation",
        pa.int64(),
        "Links a runtime call to the GPU ops it launched: equal values within one trace. Unique within the trace (nsys: process-qualified). For Kineto flow rows, the flow id.",
    ),
    Column(
        "external_id",
        pa.int64(),
        "Kineto `External id` (torch 1.8/1.9: `external id` on runtime and GPU rows, read where `External id` gives no integer): links cpu_ops, their runtime calls and GPU ops; NULL when absent.",
    ),
    Column(
        "phase",
        _DICT_STR,
        "Innermost `range` that encloses the event on its thread (runtime, cpu_op, python, range rows; a range's own name for range rows); GPU rows take the phase of the runtime call that launched them, kernels replayed by a graph launch take the launch's phase. "
        "A CPU event with no range open on its own thread, on a thread other than its process's main thread, borrows one (`phase_rule` says which rule gave it): "
        "the range open on the main thread at its start when that range says more than the step (not a `ProfilerStep#N`); else the phase of the forward op linked to the backward op enclosing it "
        "(Kineto `fwdbwd` flows, else the cpu_op with the same `Sequence number` in args that is a forward op: `Fwd thread id` 0 or absent and no backward name); "
        "else the main thread's range (the step). The main thread of a process is its thread with the most `ProfilerStep#N` ranges, else with the most ranges (ties: smallest tid); "
        "it never borrows, so its events outside every range stay NULL. Why: the autograd engine runs backward on a thread of its own, without ranges, while the loop's thread sits in "
        "`backward`-like ranges. NULL when none.",
    ),
    Column(
        "phase_path",
        _DICT_STR,
        "All enclosing range names, outermost first, joined by `/` (for a range row, ending with its own name); a borrowed phase brings its path. "
        "A root range of a thread other than its process's main thread (none of its thread's ranges open at its start) is nested under the main thread's path open at its start "
        "(DDP's `nccl:all_reduce` on the autograd thread: `ProfilerStep#4/## backward ##/nccl:all_reduce`), and what runs inside it inherits that path; its `phase` stays its own name. "
        "NULL when none.",
    ),
    Column(
        "phase_rule",
        _DICT_STR,
        "Which rule gave `phase`: `thread` (a range open on the event's own thread; range and gpu_range rows themselves; also where `phase_path` starts with the main thread's path, see `phase_path`: the phase itself is the thread's own), "
        "`main_thread` (borrowed from the main thread's range at the event's start), `forward_op` (borrowed from the linked forward op); "
        "GPU rows take their launching call's. NULL when `phase` is NULL. nsys has no forward-op links: `thread` or `main_thread` there.",
    ),
    Column(
        "launch_name",
        _DICT_STR,
        "GPU rows: name of the runtime call that launched them (e.g. `cudaLaunchKernel`, `cudaGraphLaunch`); NULL if no launch was found (e.g. trimmed trace window).",
    ),
    Column("launch_ts_ns", pa.int64(), "GPU rows: start of the launching runtime call (ns)."),
    Column("launch_dur_ns", pa.int64(), "GPU rows: duration of the launching runtime call (ns)."),
    Column("launch_tid", pa.int64(), "GPU rows: CPU thread of the launching runtime call."),
    Column("grid_x", pa.int32(), "Kernel grid size, x."),
    Column("grid_y", pa.int32(), "Kernel grid size, y."),
    Column("grid_z", pa.int32(), "Kernel grid size, z."),
    Column("block_x", pa.int32(), "Kernel block size, x."),
    Column("block_y", pa.int32(), "Kernel block size, y."),
    Column("block_z", pa.int32(), "Kernel block size, z."),
    Column("registers", pa.int32(), "Kernel registers per thread."),
    Column(
        "shared_mem_bytes",
        pa.int64(),
        "Kernel shared memory per block in bytes (static + dynamic where the source separates them).",
    ),
    Column("bytes", pa.int64(), "Bytes copied (memcpy) or set (memset)."),
    Column(
        "copy_kind", _DICT_STR, "Memcpy direction: `HtoD`, `DtoH`, `DtoD`, `HtoH`, `PtoP`, ... as the source names it."
    ),
    Column(
        "input_dims",
        pa.string(),
        "cpu_op input shapes as JSON text (Kineto `Input Dims`, torch 1.8 `Input dims`; recorded with record_shapes=True).",
    ),
    Column("input_types", pa.string(), "cpu_op input dtypes as JSON text (Kineto `Input type`)."),
    Column("flops", pa.float64(), "Floating-point operations, when the source records them (Kineto with_flops)."),
    Column("graph_id", pa.int64(), "CUDA graph id of kernels replayed from a graph, when the source records it."),
    Column(
        "args",
        pa.string(),
        "Everything else, as JSON text: for Kineto the event's `args` object verbatim, plus top-level fields that have no column under `@`-prefixed keys (`@id`, `@bp`, `@s`, ...); for nsys the row's remaining columns. Typed columns above are parsed copies, so nothing is lost.",
    ),
    Column(
        "seq",
        pa.int64(),
        "Position of the event in its source (Kineto: index in `traceEvents`; nsys: row order per table), for stable ordering and to find the raw event again.",
    ),
    Column(
        "row_id",
        pa.int64(),
        "Row number of the event in its trace, 0 to events - 1 in the converter's output order, written by the "
        "converter. Unique per trace (unlike `seq`, which nsys numbers per table) and carried with the row, so it is every "
        "analysis's last tie-breaker (arg_max, ASOF joins, window order): a result does not depend on the order an engine "
        "reads the rows in or on how a dataset is split. Files written before schema version 2 lack it; `tracekit.store` "
        "then uses the row's position in its file, which is the same number.",
    ),
)

ARROW_SCHEMA: pa.Schema = pa.schema([pa.field(c.name, c.type) for c in COLUMNS])
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COLUMNS)

#: Columns computed after ingest by :mod:`tracekit.ingest.link` (phase sweep and launch join).
LINK_COLUMNS = ("phase", "phase_path", "phase_rule", "launch_name", "launch_ts_ns", "launch_dur_ns", "launch_tid")
#: Columns the sink writes itself when it writes the Parquet file (never handed over by a reader).
SINK_COLUMNS = ("row_id",)

#: Parquet key-value metadata keys.
META_SCHEMA_VERSION = b"tracekit.schema_version"
META_TRACES = b"tracekit.traces"

#: Documented keys of the per-trace metadata object (value of ``tracekit.traces``, a JSON object keyed by trace).
TRACE_META_KEYS: dict[str, str] = {
    "source": "`kineto` or `nsys`",
    "source_file": "path of the input file as given (`convert -o FOLDER`: its absolute path or URL)",
    "profiler_version": "Kineto `schemaVersion` / torch version when known; nsys product version",
    "base_time_ns": "Kineto `baseTimeNanoseconds` or nsys session start (UTC epoch ns); NULL when absent",
    "devices": "list of GPU property objects (name, memory, SM count, compute capability, clock) as the source states them",
    "rank": "distributed rank when stated",
    "world_size": "distributed world size when stated",
    "events": "number of rows written for this trace",
    "notes": "list of strings: what the converter had to skip, salvage or abstain on",
    "extra": "other top-level facts of the source, with secret-looking values redacted and environments dropped",
    "table_rows": "nsys only: rows read per source table (each equals `count(*)` of that table in the export)",
    "converter_version": "version of tracekit that wrote the file",
    "source_sha256": "sha256 of the input file's bytes, when converted as part of a dataset (`tracekit convert -o FOLDER`): "
    "a rerun skips inputs whose hash is already there",
}


#: Columns of a dataset's sidecar table ``_tracekit/traces.parquet`` (tracekit.dataset), one row per trace: (name, Arrow type, meaning). JSON text where the value has no fixed shape.
SIDECAR_COLUMNS: tuple[tuple[str, pa.DataType, str], ...] = (
    ("trace", pa.string(), "trace id: equals the `trace` column of the event rows"),
    ("file", pa.string(), "event file, relative to the dataset folder"),
    ("source", pa.string(), "`kineto` or `nsys`"),
    (
        "source_file",
        pa.string(),
        "the input file as given to the converter; in a dataset its absolute path or URL, which tells a rerun from another input",
    ),
    ("source_sha256", pa.string(), "sha256 of the input's bytes (NULL when converted outside a dataset run)"),
    ("schema_version", pa.string(), "event schema version of the file"),
    ("converter_version", pa.string(), "tracekit version that wrote the file (NULL for files before it was recorded)"),
    ("profiler_version", pa.string(), "Kineto schemaVersion / torch version, or the nsys version"),
    ("base_time_ns", pa.int64(), "the source's epoch base (UTC ns), NULL when absent"),
    ("rank", pa.int64(), "distributed rank when the trace states it"),
    ("world_size", pa.int64(), "distributed world size when the trace states it"),
    ("events", pa.int64(), "rows of the trace"),
    ("device_count", pa.int32(), "GPUs the trace lists"),
    ("gpu_names", pa.list_(pa.string()), "their names, in listed order"),
    ("devices_json", pa.string(), "the listed GPUs' property objects as JSON text"),
    ("notes", pa.list_(pa.string()), "what the converter skipped, salvaged or abstained on"),
    ("extra_json", pa.string(), "other top-level facts of the source as JSON text"),
)


def schema_metadata(traces: dict[str, dict[str, Any]]) -> dict[bytes, bytes]:
    """Parquet key-value metadata for a file holding ``traces`` (trace -> facts)."""
    return {
        META_SCHEMA_VERSION: SCHEMA_VERSION.encode(),
        META_TRACES: json.dumps(traces, sort_keys=True, default=str).encode(),
    }


def markdown() -> str:
    """Render the schema as the Markdown of ``docs/schema.md``."""
    out = [
        "# The tracekit event schema",
        "",
        "<!-- generated by `python -m tracekit.schema > docs/schema.md`; tests/test_schema.py checks it -->",
        "",
        f"Schema version {SCHEMA_VERSION}. One row per input event, in every source; one Parquet file per trace",
        "(or one file with many `trace` values). Strings are dictionary-encoded. Views registered by",
        "`tracekit sql`: `events` (all rows), `kernels` (kind in kernel/memcpy/memset), `runtime`, `ranges` (kind range,",
        "without the token-count events `tracekit.count key=value ...` that `tracekit.count()` records: Kineto range rows,",
        "nsys NVTX marks; `queries/tokens.sql` reads them).",
        "",
        "## Columns",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    for c in COLUMNS:
        t = "string" if c.type == _DICT_STR else str(c.type)
        out.append(f"| `{c.name}` | {t} | {c.doc} |")
    out += ["", "## Kinds", "", "| kind | what |", "|---|---|"]
    out += [f"| `{k}` | {v} |" for k, v in KINDS.items()]
    out += [
        "",
        "## Trace metadata",
        "",
        "Parquet key-value metadata: `tracekit.schema_version` and `tracekit.traces`, a JSON object keyed by",
        "`trace` whose values hold these keys (read them with `tracekit.read_metadata(path)` or `tracekit info`):",
        "",
        "| key | meaning |",
        "|---|---|",
    ]
    out += [f"| `{k}` | {v} |" for k, v in TRACE_META_KEYS.items()]
    out += [
        "",
        "## Datasets: the sidecar table",
        "",
        "`tracekit convert ... -o FOLDER` writes one Parquet file per trace and `FOLDER/_tracekit/traces.parquet`,",
        "one row per trace with the facts above as columns (rebuilt from the footers after every run), for",
        "engines that do not expose Parquet key-value metadata (Spark, Polars, Trino). Paths under `_` are",
        "skipped by Spark's and tracekit's readers, so the folder still reads as the event table.",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    out += [f"| `{n}` | {t} | {d} |" for n, t, d in SIDECAR_COLUMNS]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
