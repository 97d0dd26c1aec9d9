"""Per-trace work on the engine the user already runs: local processes, Ray or Spark.

Every analysis is per trace (tests/test_determinism.py holds each to that), so a dataset of N traces is N
independent tasks: convert one input, or run the report on one converted file and write its rows as
result tables (tracekit.dataset). An :class:`Executor` runs tasks and hands back one :class:`Outcome`
per task as it finishes; nothing else differs between backends:

- ``local``: worker processes on this machine (``--jobs``; 1 runs in this process);
- ``ray``: a running cluster (``RAY_ADDRESS`` or ``--ray-address``) or, without one, a local cluster;
  one task per trace with ``num_cpus=1``;
- ``spark``: the active SparkSession or a new one (``--spark-master``, default ``local[2]``); one
  partition per trace through ``mapInPandas``.

Paths are whatever every worker can reach: a shared filesystem, or URLs ``pyarrow.fs`` opens (s3://,
gs://, hdfs://, file://, or any scheme fsspec knows; tracekit.dataset.resolve); a task copies a remote input to local scratch and uploads what it wrote. A task never
raises: its exception becomes a failed Outcome naming the trace, so one bad trace loses nothing else.
Ray and Spark are optional extras (``tracekit[ray]``, ``tracekit[spark]``), imported only when chosen.
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from tracekit import dataset, naming
from tracekit.atomic import converting, install_signal_cleanup
from tracekit.errors import TraceError, refuse_special, user_message
from tracekit.ingest import convert

EXECUTORS = ("local", "ray", "spark")


@dataclasses.dataclass
class Outcome:
    """What one task did: ``ok`` with the task's ``value``, or the one-line ``error``; its wall and CPU
    seconds and the peak resident memory of the process that ran it (MiB; for reused workers an upper
    bound: the worker's peak so far)."""

    key: str
    ok: bool
    value: dict[str, Any]
    error: str | None
    wall_s: float
    cpu_s: float
    peak_rss_mib: float

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)

    @staticmethod
    def from_json(text: str) -> Outcome:
        return Outcome(**json.loads(text))

    @staticmethod
    def lost(item: dict[str, Any], what: str, e: BaseException) -> Outcome:
        """The task's process died before it could report (``what`` happened): no value, no timings."""
        key = str(item.get("key"))
        return Outcome(key, False, {}, f"{key}: {what} ({type(e).__name__})", 0.0, 0.0, 0.0)


def guarded(fn: Callable[[dict[str, Any]], dict[str, Any]], item: dict[str, Any]) -> str:
    """Run ``fn(item)`` and return its Outcome as JSON text (plain text crosses every backend)."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        value, ok, err = fn(item), True, None
    except Exception as e:  # noqa: BLE001  (reported per trace, never lost)
        value, ok, err = {}, False, task_error(e, str(item.get("key")))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Outcome(
        str(item.get("key")), ok, value, err, time.perf_counter() - t0, time.process_time() - c0, rss
    ).to_json()


def task_error(e: BaseException, key: str) -> str:
    """One line for a failed task: the user's error as the CLI words it (naming the trace when the
    message does not), or, for a tracekit bug, the exception type and where it was raised."""
    msg = user_message(e)
    if msg is None:
        tb = traceback.extract_tb(e.__traceback__)
        where = f" ({tb[-1].filename.rsplit('/', 1)[-1]}:{tb[-1].lineno})" if tb else ""
        msg = f"{key}: {type(e).__name__}: {e}{where}"
    elif key not in msg:
        msg = f"{key}: {msg}"
    return " ".join(msg.splitlines())


class Executor(Protocol):
    """Runs ``guarded(fn, item)`` for every item; calls ``on_done`` once per finished task."""

    name: str

    def run(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        items: list[dict[str, Any]],
        on_done: Callable[[Outcome], None],
    ) -> list[Outcome]: ...


def _worker_init() -> None:
    """In a local worker: die with the parent, removing this worker's temporary files on the way.

    A SIGTERM to ``tracekit convert`` kills the parent at once (see tracekit.atomic); without
    PR_SET_PDEATHSIG its workers would finish their file and write it after the user stopped the run.
    """
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    install_signal_cleanup()


class LocalExecutor:
    """Processes on this machine: ``jobs`` > 1, that many worker processes (spawned, so no DuckDB or Arrow
    thread state is forked), each running one task after another; 1: in this process.

    Workers are reused, as Ray's are: a fresh process per task cost 2.5x the wall time on 64 traces of
    35 MB (interpreter and import start-up per task; BENCHMARKS.md, "Past one machine")."""

    name = "local"

    def __init__(self, jobs: int = 1) -> None:
        self.jobs = max(1, jobs)

    def run(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        items: list[dict[str, Any]],
        on_done: Callable[[Outcome], None],
    ) -> list[Outcome]:
        out: list[Outcome] = []
        if self.jobs == 1 or len(items) <= 1:
            for it in items:
                o = Outcome.from_json(guarded(fn, it))
                on_done(o)
                out.append(o)
            return out
        import multiprocessing as mp  # deferred with the pool: only --jobs > 1 starts workers
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(
            max_workers=self.jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init
        ) as ex:
            futs = {ex.submit(guarded, fn, it): it for it in items}
            for f in as_completed(futs):
                try:
                    o = Outcome.from_json(f.result())
                except Exception as e:  # noqa: BLE001  (the worker died: BrokenProcessPool)
                    o = Outcome.lost(futs[f], "worker process died", e)
                on_done(o)
                out.append(o)
        return out


class RayExecutor:
    """One Ray task per trace on a running cluster (``address`` / ``RAY_ADDRESS``) or a local one."""

    name = "ray"

    def __init__(self, address: str | None = None, jobs: int | None = None) -> None:
        try:
            import ray  # noqa: F401  (optional, heavy: only --executor ray)
        except ImportError:
            raise TraceError("--executor ray", "Ray is not installed: pip install 'tracekit[ray]'") from None
        self.address = address or os.environ.get("RAY_ADDRESS") or None
        self.jobs = jobs

    def run(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        items: list[dict[str, Any]],
        on_done: Callable[[Outcome], None],
    ) -> list[Outcome]:
        import ray  # optional, heavy: only --executor ray

        if not ray.is_initialized():
            kw: dict[str, Any] = dict(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
                configure_logging=False,
            )
            if self.address is None:  # a local cluster: our interpreter, our CPU count
                kw.update(
                    num_cpus=self.jobs or os.cpu_count(),
                    runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(sys.path)}},
                )
            ray.init(**kw)
        remote = ray.remote(num_cpus=1, max_retries=0)(guarded)
        refs = {remote.remote(fn, it): it for it in items}
        out: list[Outcome] = []
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for r in done:
                try:
                    o = Outcome.from_json(ray.get(r))
                except Exception as e:  # noqa: BLE001  (the worker died)
                    o = Outcome.lost(refs[r], "Ray task failed", e)
                on_done(o)
                out.append(o)
        return out


def _spark_partition(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Iterable[Any]], Iterable[Any]]:
    """The ``mapInPandas`` function: each input row (one task) -> one row with its Outcome JSON."""

    def run(batches: Iterable[Any]) -> Iterable[Any]:
        import pandas as pd  # in the Spark worker (mapInPandas hands it DataFrames)

        for pdf in batches:
            res = [guarded(fn, json.loads(s)) for s in pdf["item"]]
            yield pd.DataFrame({"i": pdf["i"].to_numpy(), "outcome": res})

    return run


class SparkExecutor:
    """One Spark partition per trace: ``mapInPandas`` over the task descriptions (file paths)."""

    name = "spark"

    def __init__(self, master: str | None = None) -> None:
        try:
            import pyspark  # noqa: F401  (optional, heavy: only --executor spark)
        except ImportError:
            raise TraceError("--executor spark", "PySpark is not installed: pip install 'tracekit[spark]'") from None
        self.master = master

    def session(self) -> Any:
        from pyspark.sql import SparkSession  # optional, heavy: only --executor spark

        active = SparkSession.getActiveSession()
        if active is not None and self.master is None:
            return active
        # Local Python workers must run this interpreter (it has tracekit), not the first python3 on PATH.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        b = SparkSession.builder.appName("tracekit").master(self.master or "local[2]")
        spark = (
            b.config("spark.ui.enabled", "false")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(sys.path))
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        return spark

    def run(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        items: list[dict[str, Any]],
        on_done: Callable[[Outcome], None],
    ) -> list[Outcome]:
        if not items:
            return []
        spark = self.session()
        rows = [(i, json.dumps(it)) for i, it in enumerate(items)]
        rdd = spark.sparkContext.parallelize(rows, numSlices=len(rows))  # one partition = one trace
        df = spark.createDataFrame(rdd, "i long, item string").mapInPandas(
            _spark_partition(fn), "i long, outcome string"
        )
        # collect() runs the partitions in parallel (toLocalIterator would run them one after another); Spark's
        # own console bar shows tasks done / total meanwhile, and the outcomes arrive together at the end.
        out: list[Outcome] = []
        for row in sorted(df.collect(), key=lambda r: r["i"]):
            o = Outcome.from_json(row["outcome"])
            on_done(o)
            out.append(o)
        return out


def make(name: str, jobs: int = 1, ray_address: str | None = None, spark_master: str | None = None) -> Executor:
    """The executor called ``name`` (one of EXECUTORS)."""
    if name == "local":
        return LocalExecutor(jobs)
    if name == "ray":
        return RayExecutor(ray_address, jobs if jobs > 1 else None)
    if name == "spark":
        return SparkExecutor(spark_master)
    raise TraceError("--executor", f"unknown executor {name!r}; one of {', '.join(EXECUTORS)}")


# ---- the two per-trace tasks -------------------------------------------------------------------------


def convert_task(item: dict[str, Any]) -> dict[str, Any]:
    """Convert ``item['src']`` to ``item['dst']`` unless ``dst`` already holds a conversion of the same bytes
    (its footer's ``source_sha256``) and ``item['force']`` is false."""
    src, dst = item["src"], item["dst"]
    if dataset.is_local(src):
        refuse_special(dataset.resolve(src)[1])  # before the hash reads it: a FIFO blocks forever
    digest = dataset.sha256(src)
    if not item.get("force"):
        fs, path = dataset.resolve(dst)
        if fs.get_file_info(path).type == dataset.pafs.FileType.File:
            try:
                traces = dataset.footer_meta(dst)["traces"]
            except Exception:  # noqa: BLE001  (unreadable: convert again)
                traces = {}
            same_name = item.get("trace") is None or list(traces) == [item["trace"]]
            if traces and same_name and all(m.get("source_sha256") == digest for m in traces.values()):
                m = next(iter(traces.values()))
                return {
                    "skipped": True,
                    "trace": next(iter(traces)),
                    "events": m.get("events"),
                    "notes": m.get("notes") or [],
                    "dst": dst,
                }
    with tempfile.TemporaryDirectory(prefix="tracekit-") as tmp:
        local_src = dataset.fetch(src, tmp)
        local_dst = dataset.resolve(dst)[1] if dataset.is_local(dst) else os.path.join(tmp, "out.parquet")
        # the footer names the input as a later command can find it again (tracekit.naming, rule 3): a URL as
        # given (not the task's scratch copy), a local file by its absolute path (not relative to this cwd)
        extra = {"source_sha256": digest, "source_file": naming.source_id(src)}
        with converting(local_src, local_dst):
            meta = convert(local_src, local_dst, trace=item.get("trace"), extra_meta=extra)
        if not dataset.is_local(dst):
            dataset.put(local_dst, dst)
    return {
        "skipped": False,
        "trace": meta.get("trace"),
        "events": meta.get("events"),
        "notes": meta.get("notes") or [],
        "dst": dst,
    }


def report_task(item: dict[str, Any]) -> dict[str, Any]:
    """Run every report analysis on one converted file; write each output's rows to ``out/<output>/<part>.parquet``."""
    import duckdb  # deferred with report: `convert` (tasks of this module too) never loads DuckDB

    from tracekit import report

    with tempfile.TemporaryDirectory(prefix="tracekit-") as tmp:
        local = dataset.fetch(item["file"], tmp)
        con = duckdb.connect()
        if item.get("threads"):
            con.execute(f"SET threads = {int(item['threads'])}")
        results = report.run([local], con=con, arrow=True, **(item.get("params") or {}))
        rows = {}
        results["traces"] = pa.Table.from_pylist(
            dataset.file_rows(local, item["part"] + ".parquet"), schema=dataset.SIDECAR_SCHEMA
        )
        for name, table in results.items():
            part = os.path.join(tmp, f"{name}.parquet")
            pq.write_table(table, part)
            dataset.put(part, dataset.result_part(item["out"], name, item["part"]))
            rows[name] = table.num_rows
        con.close()
    return {"outputs": rows}


# ---- drivers: what `tracekit convert -o FOLDER` and `tracekit report --out` run -------------------------


def convert_many(
    inputs: list[str],
    out: str,
    executor: Executor,
    force: bool = False,
    trace: str | None = None,
    on_done: Callable[[Outcome], None] = lambda o: None,
    planned: list[naming.Planned] | None = None,
) -> list[Outcome]:
    """Convert each input to ``out/<trace>.parquet`` as one task, then rebuild the dataset's sidecar.

    Names follow tracekit.naming (``planned``: its plan, when the caller made it already); a collision is
    refused before anything is written. Inputs converted before from the same bytes under the same name are
    skipped (``force`` converts them again). A file an input supersedes (its own under an old name, or, with
    ``force``, another input's trace of the same name) is removed once that input's new file is written; the
    outcome's ``removed`` lists them. Failed inputs are in the returned outcomes; every other trace is
    written, and the sidecar lists what is there.
    """
    planned = planned if planned is not None else naming.plan(inputs, out, trace, force)
    items = [
        {"key": p.src, "src": p.src, "dst": dataset.join(out, p.rel), "force": force, "trace": p.trace} for p in planned
    ]
    fs, root = dataset.resolve(out)
    fs.create_dir(root, recursive=True)  # a file:// or object-store folder: the tasks write into it
    outcomes = executor.run(convert_task, items, on_done)
    by_src = {p.src: p for p in planned}
    for o in outcomes:
        if o.ok and o.key in by_src:
            o.value["removed"] = _remove(out, by_src[o.key].removes)
    dataset.write_sidecar(out)
    order = {s: i for i, s in enumerate(inputs)}
    return sorted(outcomes, key=lambda o: order.get(o.key, len(order)))


def _remove(out: str, rels: list[str]) -> list[str]:
    """Delete the dataset files ``rels`` (superseded by a file just written); the ones that were there."""
    gone = []
    for rel in rels:
        fs, path = dataset.resolve(dataset.join(out, rel))
        if fs.get_file_info(path).type == dataset.pafs.FileType.File:
            fs.delete_file(path)
            gone.append(rel)
    return gone


def event_files_of(paths: Iterable[str]) -> list[tuple[str, str]]:
    """(file, part name) of every converted event file behind ``paths`` (dataset folders, Parquet files, URLs)."""
    from tracekit.store import parquet_files  # deferred: DuckDB (see report_task)

    out: list[tuple[str, str]] = []
    for p in paths:
        if "://" in p:
            fs, path = dataset.resolve(p)
            if fs.get_file_info(path).type == dataset.pafs.FileType.Directory:
                out += [
                    (dataset.join(p, rel), rel[: -len(".parquet")].replace("/", "__")) for rel in dataset.event_files(p)
                ]
            else:
                out.append((p, p.rsplit("/", 1)[-1].removesuffix(".parquet")))
            continue
        for f in parquet_files([p], check=False):
            base = os.path.abspath(p) if os.path.isdir(p) else os.path.dirname(os.path.abspath(f))
            rel = os.path.relpath(os.path.abspath(f), base).replace(os.sep, "/")
            out.append((f, rel.removesuffix(".parquet").replace("/", "__")))
    parts = [x for _, x in out]
    if len(set(parts)) != len(parts):
        raise TraceError(", ".join(paths), "two event files have the same name: give them as one dataset folder")
    return out


def report_many(
    paths: list[str],
    out: str,
    executor: Executor,
    params: dict[str, Any] | None = None,
    threads: int | None = None,
    on_done: Callable[[Outcome], None] = lambda o: None,
) -> list[Outcome]:
    """Run the report on each event file as one task; each writes ``out/<output>/<part>.parquet`` and
    ``out/traces/<part>.parquet`` (the file's sidecar rows). ``threads``: DuckDB threads per task (default:
    1 on Ray and Spark, whose tasks hold one CPU; the cores divided by ``jobs`` locally)."""
    files = event_files_of(paths)
    if threads is None:  # DuckDB threads per task: the task's share of the cores, not all of them per task
        jobs = getattr(executor, "jobs", None)
        threads = (
            1
            if executor.name in ("ray", "spark")
            else (max(1, (os.cpu_count() or 1) // jobs) if jobs and jobs > 1 else None)
        )
    items = [
        {"key": f, "file": f, "part": part, "out": out, "params": params or {}, "threads": threads} for f, part in files
    ]
    outcomes = executor.run(report_task, items, on_done)
    order = {f: i for i, (f, _) in enumerate(files)}
    return sorted(outcomes, key=lambda o: order.get(o.key, len(order)))
