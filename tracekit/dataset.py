"""A multi-trace dataset any engine reads: event files, a sidecar table of per-trace facts, result tables.

Layout (every part plain Parquet)::

    DATASET/<trace>.parquet              one file per trace, the event schema (docs/schema.md)
    DATASET/_tracekit/traces.parquet     the sidecar: one row per trace (SIDECAR_COLUMNS)
    RESULTS/<output>/<trace>.parquet     `tracekit report ... --out RESULTS`: one table per analysis output

Why a sidecar: the per-trace facts (devices, rank, notes, source file, versions) live in each file's
Parquet key-value metadata, which Spark's, Polars' and Trino's table readers do not expose. The
sidecar is rebuilt from those footers (never edited by hand), so it cannot disagree with the files.
It sits in a folder whose name starts with ``_``: Spark and Hive-style readers skip such paths, so
``spark.read.parquet(DATASET)`` reads the events only; so does :func:`tracekit.store.parquet_files`.

Why one folder per result table with one file per trace: each trace's task writes its own part (no
coordination between workers, a rerun replaces exactly its parts) and every engine reads a folder
of Parquet files as one table.

Paths may be local or URLs that ``pyarrow.fs`` resolves (``s3://``, ``gs://``, ``hdfs://``, ``file://``).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import posixpath
import shutil
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from tracekit import schema
from tracekit.atomic import atomic_path
from tracekit.errors import TraceError

SIDECAR = "_tracekit/traces.parquet"

SIDECAR_COLUMNS = schema.SIDECAR_COLUMNS
SIDECAR_SCHEMA = pa.schema([pa.field(n, t) for n, t, _ in SIDECAR_COLUMNS])


def resolve(uri: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """(filesystem, path) for a local path or a URL ``pyarrow.fs`` knows, else one ``fsspec`` knows.

    pyarrow opens file://, s3://, gs://, hdfs:// (and abfs:// in recent versions) itself; a scheme it
    does not know (memory://, az://, gcs:// of gcsfs, ...) goes through fsspec when fsspec and that
    scheme's package are installed, wrapped as a pyarrow filesystem so every caller stays the same.
    """
    s = str(uri)
    if "://" in s:
        try:
            return pafs.FileSystem.from_uri(s)
        except (pa.ArrowInvalid, OSError) as e:  # unknown scheme, missing credentials, ...
            if "nrecognized" in str(e) and (via := _fsspec(s)) is not None:
                return via
            raise TraceError(s, f"cannot open: {str(e).strip()}") from None
    return pafs.LocalFileSystem(), str(Path(s).absolute())


def _fsspec(uri: str) -> tuple[pafs.FileSystem, str] | None:
    """``uri`` through fsspec as a pyarrow filesystem; None when fsspec or the scheme's package is missing."""
    try:
        import fsspec  # deferred: only for a URL pyarrow cannot open itself (~0.04 s)
    except ImportError:
        return None
    try:
        fs, path = fsspec.core.url_to_fs(uri)
    except Exception:  # noqa: BLE001  (unknown protocol, its package missing, arguments a URL cannot give)
        return None
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(base: str, *parts: str) -> str:
    """``base``/parts for a local path or a URL (always ``/``)."""
    return posixpath.join(str(base), *parts) if "://" in str(base) else str(Path(base).joinpath(*parts))


def is_local(uri: str | os.PathLike[str]) -> bool:
    return "://" not in str(uri) or str(uri).startswith("file://")


def sha256(uri: str) -> str:
    """sha256 of a file's bytes, streamed (1 GB: about 0.6 s on one core)."""
    fs, path = resolve(uri)
    h = hashlib.sha256()
    with fs.open_input_stream(path) as f:
        while chunk := f.read(8 << 20):
            h.update(chunk)
    return h.hexdigest()


def fetch(uri: str, tmpdir: str) -> str:
    """A local path holding ``uri``'s bytes: the path itself when local, else a copy in ``tmpdir``."""
    fs, path = resolve(uri)
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    dst = os.path.join(tmpdir, posixpath.basename(path))
    pafs.copy_files(path, dst, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return dst


def _fetch_as(uri: str, local: str) -> str:
    """Copy ``uri`` to the local path ``local`` (its folder is created); returns ``local``."""
    fs, path = resolve(uri)
    os.makedirs(os.path.dirname(local), exist_ok=True)
    pafs.copy_files(path, local, source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return local


def put(local: str, uri: str) -> None:
    """Move a local file to ``uri`` so that the destination appears complete (a reader never sees half of it)."""
    fs, path = resolve(uri)
    fs.create_dir(posixpath.dirname(path), recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        # the one writer of local files (tracekit.atomic): an input is refused, a failed copy (a full disk) leaves
        # no temporary file and names the destination
        with atomic_path(path) as tmp:
            shutil.copyfile(local, tmp)
        return
    pafs.copy_files(local, path, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)


def footer_meta(uri: str) -> dict[str, Any]:
    """``{"schema_version": ..., "traces": {trace: facts}}`` from one event file's footer."""
    fs, path = resolve(uri)
    with fs.open_input_file(path) as f:
        md = pq.read_schema(f).metadata or {}
    from tracekit.store import parse_traces_meta  # deferred: DuckDB, which `convert` never loads

    traces = parse_traces_meta(md[schema.META_TRACES], uri) if schema.META_TRACES in md else {}
    return {"schema_version": md.get(schema.META_SCHEMA_VERSION, b"").decode() or None, "traces": traces}


def event_files(folder: str) -> list[str]:
    """The event files of a dataset folder, sorted: ``*.parquet`` below it, none under ``_``/``.`` paths."""
    fs, path = resolve(folder)
    sel = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    out = []
    for info in fs.get_file_info(sel):
        rel = posixpath.relpath(info.path, path) if "://" in folder else os.path.relpath(info.path, path)
        parts = rel.replace(os.sep, "/").split("/")
        if info.type == pafs.FileType.File and rel.endswith(".parquet") and not any(p[:1] in ("_", ".") for p in parts):
            out.append(rel.replace(os.sep, "/"))
    return sorted(out)


def _int(v: Any) -> int | None:
    try:
        return int(v) if v is not None and v != "" else None
    except (TypeError, ValueError):
        return None


def sidecar_rows(folder: str) -> list[dict[str, Any]]:
    """One row per trace of the dataset's event files, from their footers (see SIDECAR_COLUMNS)."""
    return [r for rel in event_files(folder) for r in file_rows(join(folder, rel), rel)]


def file_rows(uri: str, rel: str) -> list[dict[str, Any]]:
    """The sidecar rows of one event file (``rel``: its name in the dataset)."""
    rows = []
    fm = footer_meta(uri)
    for trace, m in sorted(fm["traces"].items()):
        devs = m.get("devices") if isinstance(m.get("devices"), list) else []
        rows.append(
            {
                "trace": trace,
                "file": rel,
                "source": m.get("source"),
                "source_file": m.get("source_file"),
                "source_sha256": m.get("source_sha256"),
                "schema_version": fm["schema_version"],
                "converter_version": m.get("converter_version"),
                "profiler_version": None if m.get("profiler_version") is None else str(m.get("profiler_version")),
                "base_time_ns": _int(m.get("base_time_ns")),
                "rank": _int(m.get("rank")),
                "world_size": _int(m.get("world_size")),
                "events": _int(m.get("events")),
                "device_count": len(devs),
                "gpu_names": [
                    str(d.get("name")) if isinstance(d, dict) and d.get("name") is not None else None for d in devs
                ],
                "devices_json": json.dumps(devs, sort_keys=True, default=str),
                "notes": [str(n) for n in (m.get("notes") or [])]
                if isinstance(m.get("notes") or [], list)
                else [str(m["notes"])],
                "extra_json": json.dumps(m.get("extra") or {}, sort_keys=True, default=str),
            }
        )
    return rows


def write_sidecar(folder: str) -> str:
    """(Re)write ``folder/_tracekit/traces.parquet`` from the event files' footers; returns its path."""
    table = pa.Table.from_pylist(sidecar_rows(folder), schema=SIDECAR_SCHEMA)
    dst = join(folder, SIDECAR)
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, "traces.parquet")
        pq.write_table(table, local)
        put(local, dst)
    return dst


def read_sidecar(folder: str) -> pa.Table:
    """The sidecar table of a dataset folder (TraceError when it has none)."""
    fs, path = resolve(join(folder, SIDECAR))
    if fs.get_file_info(path).type != pafs.FileType.File:
        raise TraceError(
            folder,
            f"no {SIDECAR}: not a dataset written by `tracekit convert -o FOLDER` (or run "
            "`python -m tracekit.dataset FOLDER` to build it from the files)",
        )
    with fs.open_input_file(path) as f:
        return pq.read_table(f)


def result_part(out: str, output: str, part: str) -> str:
    """Where one trace's rows of one analysis output go: ``OUT/<output>/<part>.parquet``."""
    return join(out, output, f"{part}.parquet")


def result_tables(out: str) -> dict[str, list[str]]:
    """``{output: [part files]}`` of a results folder."""
    fs, path = resolve(out)
    tables: dict[str, list[str]] = {}
    for info in fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True)):
        rel = (posixpath.relpath(info.path, path) if "://" in out else os.path.relpath(info.path, path)).replace(
            os.sep, "/"
        )
        parts = rel.split("/")
        if (
            info.type == pafs.FileType.File
            and len(parts) == 2
            and rel.endswith(".parquet")
            and parts[1][:1] not in "._"
        ):
            tables.setdefault(parts[0], []).append(join(out, rel))
    return {k: sorted(v) for k, v in sorted(tables.items())}


def main(argv: Iterable[str] | None = None) -> None:
    """``python -m tracekit.dataset FOLDER``: rebuild the sidecar of a folder of converted traces."""
    args = list(sys.argv[1:] if argv is None else argv)
    for folder in args:
        print(write_sidecar(folder))


if __name__ == "__main__":
    main()


def connect_results(out: str, con: Any = None) -> Any:
    """DuckDB connection with one view per result table of ``out`` (``gpu_idle.causes`` -> ``gpu_idle_causes``).

    A URL's tables are copied to a local scratch folder first (removed when the process exits): DuckDB reads
    object stores only through its httpfs extension, which tracekit does not download at run time (Spark,
    Trino or Polars read the same folders from s3:// as they are).
    """
    import duckdb  # deferred: `convert` writes datasets without loading DuckDB

    tables = result_tables(out)
    if not tables:
        raise TraceError(out, "no result tables: write them with `tracekit report DATASET --out " + out + "`")
    if not isinstance(resolve(out)[0], pafs.LocalFileSystem):
        scratch = tempfile.mkdtemp(prefix="tracekit-results-")
        atexit.register(shutil.rmtree, scratch, True)
        tables = {
            name: [_fetch_as(f, os.path.join(scratch, name, posixpath.basename(resolve(f)[1]))) for f in files]
            for name, files in tables.items()
        }
    from tracekit.store import files_sql, ident  # deferred: DuckDB (see above)

    views: dict[str, str] = {}
    for name in tables:  # `a.b` and `a_b` would be one view: say so rather than let one replace the other
        view = name.replace(".", "_")
        if view in views:
            raise TraceError(
                out, f"result folders {views[view]!r} and {name!r} both give the view {view!r}: remove one"
            )
        views[view] = name
    con = con or duckdb.connect()
    for view, name in views.items():
        # Folder names are data (results folders travel): the view name is quoted and the paths are literals
        # read literally (no glob), never SQL text (issue 23).
        lst = files_sql(resolve(f)[1] for f in tables[name])
        con.execute(f"CREATE OR REPLACE VIEW {ident(view)} AS SELECT * FROM read_parquet({lst}, union_by_name = true)")
    return con
