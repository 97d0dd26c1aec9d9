"""``tracekit capture``: run a command under a profiler, then convert every process's trace.

Backends:

- ``torch`` (default): the bootstrap in ``capture/`` is put first on
  ``PYTHONPATH`` as ``sitecustomize`` and armed through ``TRACEKIT_CAPTURE``
  (JSON config). Every Python process of the command (fork+exec, spawn,
  subprocess) starts torch.profiler when it imports torch and writes
  ``<out>/raw/<pid>.json`` when its window closes; see
  ``capture/tracekit_bootstrap.py``. Why the environment and not a wrapper
  around the parent: servers like SGLang run all GPU work in *spawned*
  scheduler processes that a parent-side profiler never sees.
- ``nsys``: runs ``nsys profile`` around the command (which follows forks and
  execs itself), exports SQLite and converts it.

Afterwards every raw trace is converted to ``<out>/parquet/<trace>.parquet``
(one ``trace`` value per process: ``<pid>-<label>``) and a summary says which
processes produced what, and which armed a profiler but wrote nothing (killed,
crashed).

The capture folder: a given ``--out`` must be empty or absent (a re-used one
would mix two runs' traces into one dataset); ``force`` deletes a previous
capture's ``raw/``, ``parquet/`` and ``capture.json`` there first and nothing
else. A capture that fails before anything is recorded (command not found, no
nsys, server unreachable) removes the folders it made. Command lines and argv
are redacted (:mod:`tracekit.redact`) before they reach any file or the screen.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tracekit import resources
from tracekit.atomic import converting, write_text
from tracekit.errors import TraceError
from tracekit.ingest import convert
from tracekit.redact import redact_argv, redact_text
from tracekit.safe import term

ENV_CONFIG = "TRACEKIT_CAPTURE"
NSYS_INSTALL_HINT = (
    "nsys not found on PATH: install Nsight Systems (Debian/Ubuntu: enable the non-free archive and "
    "`apt-get install nsight-systems`, or NVIDIA's installer from https://developer.nvidia.com/nsight-systems), "
    "or use --backend torch"
)


@dataclasses.dataclass
class CaptureOptions:
    """What to record and when; times in seconds, relative to the capture start."""

    out: Path | None = None
    backend: str = "torch"
    delay: float | None = None
    duration: float | None = None
    steps: int | None = None
    with_stack: bool = False
    with_flops: bool = False
    wait_signal: bool = False
    grace: float = 10.0  # how long to wait for orphaned profiled processes to write their traces
    sglang: bool = True  # annotate SGLang internals when the command loads sglang (capture/tracekit_sglang.py)
    force: bool = False  # replace a previous capture in ``out`` instead of refusing


@dataclasses.dataclass
class ProcessTrace:
    """One profiled process (or, for nsys, the whole run) and what became of its trace."""

    pid: int | None
    label: str
    argv: list[str]
    raw: list[str]
    parquet: list[str] = dataclasses.field(default_factory=list)
    traces: list[str] = dataclasses.field(default_factory=list)
    events: int = 0
    state: str = ""
    error: str | None = None

    @property
    def produced_nothing(self) -> bool:
        return not self.parquet


@dataclasses.dataclass
class CaptureResult:
    """Outcome of one capture: the command's exit code and the per-process traces."""

    out: Path
    returncode: int
    processes: list[ProcessTrace]
    message: str | None = None

    @property
    def parquet_dir(self) -> Path:
        return self.out / "parquet"

    @property
    def conversion_failed(self) -> bool:
        return any(p.error for p in self.processes)


def bootstrap_dir() -> Path:
    """The folder holding ``sitecustomize.py`` + ``tracekit_bootstrap.py`` (``capture/``, or ``tracekit/_capture`` in a wheel)."""
    d = resources.capture_dir()
    if not (d / "sitecustomize.py").is_file():
        raise TraceError(d, "tracekit capture bootstrap not found (sitecustomize.py)")
    return d


#: What a capture writes into its folder; ``force`` removes exactly these.
CAPTURE_OUTPUTS = ("raw", "parquet", "capture.json")


def prepare_out(opts: CaptureOptions) -> tuple[Path, list[Path]]:
    """The capture folder, created; returns it and the folders this call created (outermost first).

    Why refuse a non-empty ``--out``: the conversion takes every trace under
    ``raw/``, so a second run into the same folder reports both runs as one.
    """
    out = Path(opts.out) if opts.out else default_out()
    if out.exists() and not out.is_dir():
        raise TraceError(out, "--out exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        ours = [out / n for n in CAPTURE_OUTPUTS if (out / n).exists()]
        others = sorted(p.name for p in out.iterdir() if p not in ours)
        if not opts.force:
            raise TraceError(
                out,
                "--out is not empty (a previous capture would be mixed into this one's report); "
                "pass --force to replace the capture there, or choose a new folder",
            )
        if others:
            raise TraceError(
                out,
                f"--out holds files that are not a capture ({', '.join(others[:3])}); "
                "--force only replaces raw/, parquet/ and capture.json: choose a new folder",
            )
        for p in ours:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    created = [a for a in reversed([out, *out.parents]) if not a.exists()]
    raw = out / "raw"  # absent here: out is new or empty, or force removed it
    raw.mkdir(parents=True)
    return out, [*created, raw]


def remove_if_empty(out: Path, created: list[Path]) -> None:
    """Undo :func:`prepare_out` after a capture that recorded nothing: the folders it made go, innermost first, if empty."""
    for d in (out / "parquet", *reversed(created)):
        try:
            d.rmdir()  # only succeeds when empty
        except OSError:
            pass


def default_out(base: str | os.PathLike[str] = "tracekit-runs") -> Path:
    """``tracekit-runs/<UTC timestamp>/``, made unique with a suffix when two captures start in one second."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    p = Path(base) / stamp
    n = 1
    while p.exists():
        n += 1
        p = Path(base) / f"{stamp}-{n}"
    return p


def capture_env(
    opts: CaptureOptions, raw: Path, base: dict[str, str] | None = None, t0: float | None = None
) -> dict[str, str]:
    """The environment of the profiled command: bootstrap first on PYTHONPATH, config in TRACEKIT_CAPTURE.

    The user's PYTHONPATH follows ours (their sitecustomize is chained by ours);
    SGLANG_PLUGINS keeps the user's entries (``tracekit`` is appended when it is set);
    everything else is passed through unchanged.
    """
    env = dict(os.environ if base is None else base)
    cfg = {
        "raw": str(raw.resolve()),
        "backend": opts.backend,
        "t0": time.time() if t0 is None else t0,
        "delay": opts.delay,
        "duration": opts.duration,
        "steps": opts.steps,
        "with_stack": opts.with_stack,
        "with_flops": opts.with_flops,
        "wait_signal": opts.wait_signal,
        "redact": str(resources.redact_module()),  # the bootstrap redacts sys.argv with it before writing .proc.json
    }
    env[ENV_CONFIG] = json.dumps(cfg)
    boot = str(bootstrap_dir())
    old = env.get("PYTHONPATH", "")
    parts = [p for p in old.split(os.pathsep) if p and os.path.abspath(p) != boot] if old else []
    env["PYTHONPATH"] = os.pathsep.join([boot, *parts])
    # SGLang auto-annotation: capture/ holds a dist-info declaring the `sglang.srt.plugins` entry point
    # `tracekit`. SGLANG_PLUGINS is a whitelist when set, so ours is appended to the user's list.
    if not opts.sglang:
        env["TRACEKIT_SGLANG"] = "0"
    elif env.get("SGLANG_PLUGINS"):
        names = [n.strip() for n in env["SGLANG_PLUGINS"].split(",") if n.strip()]
        if "tracekit" not in names:
            env["SGLANG_PLUGINS"] = ",".join([*names, "tracekit"])
    return env


def _exit_code(rc: int) -> int:
    """Shell convention: a child killed by signal N gives 128+N."""
    return 128 - rc if rc < 0 else rc


def _run(
    cmd: Sequence[str], env: dict[str, str], on_toggle: Callable[[], object] | None = None
) -> tuple[int, str | None]:
    """Run ``cmd`` in our process group; SIGINT reaches it from the terminal, SIGTERM/SIGUSR2 are forwarded."""
    try:
        proc = subprocess.Popen(list(cmd), env=env)
    except FileNotFoundError:
        return 127, f"command not found: {term(redact_text(cmd[0]))}"
    except PermissionError:
        return 126, f"permission denied: {term(redact_text(cmd[0]))}"
    except OSError as e:
        return 126, f"cannot run {term(redact_text(cmd[0]))}: {e.strerror or e}"

    def fwd(signum: int, frame: Any) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    def toggle(signum: int, frame: Any) -> None:
        if on_toggle is not None:
            on_toggle()

    old: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():  # signal.signal only works there
        old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the child gets it from the terminal
        old[signal.SIGTERM] = signal.signal(signal.SIGTERM, fwd)
        old[signal.SIGUSR2] = signal.signal(signal.SIGUSR2, toggle)
    try:
        rc = proc.wait()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return _exit_code(rc), None


def _proc_docs(raw: Path) -> dict[int, dict[str, Any]]:
    docs: dict[int, dict[str, Any]] = {}
    for p in sorted(raw.glob("*.proc.json")):
        try:
            d = json.loads(p.read_text())
            docs[int(d["pid"])] = d
        except (OSError, ValueError, KeyError):
            continue
    return docs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def toggle_all(raw: Path) -> int:
    """Send the toggle signal to every live profiled process of a capture; returns how many."""
    n = 0
    for pid in _proc_docs(raw):
        if _alive(pid):
            try:
                os.kill(pid, signal.SIGUSR2)
                n += 1
            except OSError:
                pass
    return n


def _wait_orphans(raw: Path, grace: float) -> list[int]:
    """Wait up to ``grace`` s for profiled processes that outlived the command; returns those still alive."""
    deadline = time.time() + grace
    while True:
        alive = [
            pid for pid, d in _proc_docs(raw).items() if not d.get("exported") and not d.get("forked") and _alive(pid)
        ]
        if not alive or time.time() >= deadline:
            return alive
        time.sleep(0.1)


def _convert_one(src: Path, dst: Path, trace: str) -> tuple[int, str | None]:
    try:
        with converting(src, dst):
            meta = convert(src, dst, trace=trace)
        return int(meta.get("events") or 0), None
    except Exception as e:  # noqa: BLE001  (report, keep converting the others)
        return 0, f"{type(e).__name__}: {e}"


def convert_raw(out: Path) -> list[ProcessTrace]:
    """Convert ``<out>/raw/<pid>[.wN].json`` to ``<out>/parquet/<pid>-<label>[.wN].parquet``."""
    raw, pq_dir = out / "raw", out / "parquet"
    pq_dir.mkdir(parents=True, exist_ok=True)
    docs = _proc_docs(raw)
    files: dict[int, list[Path]] = {}
    for f in sorted(raw.glob("*.json")):
        if f.name.endswith(".proc.json"):
            continue
        head = f.name.split(".", 1)[0]
        if head.isdigit():
            files.setdefault(int(head), []).append(f)
    result: list[ProcessTrace] = []
    for pid in sorted(set(docs) | set(files)):
        d = docs.get(pid, {})
        label = d.get("label") or "python"
        pt = ProcessTrace(
            pid=pid,
            label=label,
            argv=redact_argv(d.get("argv", [])),
            raw=[str(f) for f in files.get(pid, [])],
            state=d.get("state", ""),
        )
        for f in files.get(pid, []):
            suffix = f.name[len(str(pid)) : -len(".json")]  # "" or ".w2"
            trace = f"{pid}-{label}{suffix}"
            dst = pq_dir / f"{trace}.parquet"
            n, err = _convert_one(f, dst, trace)
            if err:
                pt.error = f"{f.name}: {err}"
                continue
            pt.parquet.append(str(dst))
            pt.traces.append(trace)
            pt.events += n
        if d.get("forked") and not pt.raw:
            pt.state = "forked without exec: not profiled"
        result.append(pt)
    return result


def capture(cmd: Sequence[str], opts: CaptureOptions, log: Callable[[str], None] | None = None) -> CaptureResult:
    """Run ``cmd`` under the chosen backend, convert what it wrote, return the outcome."""
    if not cmd:
        raise TraceError("capture", "no command given (tracekit capture [options] -- cmd args...)")
    if opts.backend not in ("torch", "nsys"):
        raise TraceError("capture", f"unknown backend {opts.backend!r} (torch or nsys)")
    if opts.backend == "nsys":
        if opts.steps or opts.wait_signal:
            raise TraceError(
                "capture", "--steps and --wait-signal need --backend torch (nsys windows: --delay/--duration)"
            )
        nsys = shutil.which("nsys")
        if nsys is None:  # before any folder is made: a failed capture leaves none
            return CaptureResult(
                out=Path(opts.out) if opts.out else Path("tracekit-runs"),
                returncode=127,
                processes=[],
                message=NSYS_INSTALL_HINT,
            )
    out, created = prepare_out(opts)
    raw = out / "raw"
    if opts.backend == "nsys":
        assert nsys is not None  # found above, or returned
        res = _capture_nsys(nsys, cmd, opts, out)
    else:
        env = capture_env(opts, raw)
        rc, msg = _run(cmd, env, on_toggle=lambda: toggle_all(raw))
        alive = _wait_orphans(raw, opts.grace) if msg is None else []
        procs = [] if msg else convert_raw(out)
        for pt in procs:
            if pt.pid in alive and pt.produced_nothing:
                pt.state = "still running after the command exited; no trace yet"
        res = CaptureResult(out=out, returncode=rc, processes=procs, message=msg)
    if res.message and not res.processes:  # nothing ran (not found, not executable): leave no folder behind
        remove_if_empty(out, created)
        return res
    write_capture_json(res, cmd, opts)
    return res


def write_capture_json(res: CaptureResult, cmd: Sequence[str], opts: CaptureOptions) -> None:
    """``<out>/capture.json``: the (redacted) command, its exit code, the options and every process."""
    doc = {
        "cmd": redact_argv(list(cmd)),
        "returncode": res.returncode,
        "message": res.message,
        "options": dataclasses.asdict(opts) | {"out": str(res.out)},
        "processes": [dataclasses.asdict(p) | {"argv": redact_argv(p.argv)} for p in res.processes],
    }
    write_text(res.out / "capture.json", json.dumps(doc, indent=1, default=str))


def nsys_command(cmd: Sequence[str], opts: CaptureOptions, rep: Path) -> list[str]:
    """The ``nsys profile`` command line for a capture (the window maps to --delay/--duration)."""
    # --sample=none/--cpuctxsw=none: CPU IP sampling is not in the event schema and makes the raw file ~40 MB/5 s
    argv = [
        "nsys",
        "profile",
        "--trace=cuda,nvtx,osrt",
        "--cuda-graph-trace=node",
        "--trace-fork-before-exec=true",
        "--sample=none",
        "--cpuctxsw=none",
        f"--output={rep}",
        "--force-overwrite=true",
    ]
    if opts.delay:
        argv.append(f"--delay={opts.delay:g}")
    if opts.duration:
        argv.append(f"--duration={opts.duration:g}")
    return argv + list(cmd)  # no "--": nsys 2022.4 rejects it as an ambiguous option


def _import_qdstrm(nsys: str, raw: Path) -> None:
    """Turn ``.qdstrm`` leftovers into ``.nsys-rep`` with the QdstrmImporter shipped beside nsys.

    Why: Debian's ``nsight-systems`` 2022.4 CLI cannot find its own importer
    ("The importer binary and its dependencies were not found") and stops at the
    raw ``.qdstrm``; the importer is in ``<prefix>/host-linux-x64/``.
    """
    qs = [q for q in sorted(raw.glob("nsys*.qdstrm")) if not q.with_suffix(".nsys-rep").exists()]
    if not qs:
        return
    # every hop of the nsys symlink chain (Debian: /usr/bin/nsys -> /usr/lib/nsight-systems/bin/nsys -> ...)
    hops, p = [], Path(nsys)
    for _ in range(8):
        hops.append(p)
        if not p.is_symlink():
            break
        p = Path(os.path.normpath(p.parent / os.readlink(p)))  # one hop only (resolve() would follow them all)
    cands = [h.parent.parent / "host-linux-x64" / "QdstrmImporter" for h in hops]
    which = shutil.which("QdstrmImporter")
    cands += [Path(which)] if which else []
    cands += sorted(Path("/opt/nvidia").glob("nsight-systems*/*/host-linux-x64/QdstrmImporter"))
    importer = next((c for c in cands if c.is_file() and os.access(c, os.X_OK)), None)
    if importer is None:
        return
    for q in qs:
        r = subprocess.run([str(importer), "-i", str(q)], capture_output=True, text=True, check=False)
        if r.returncode == 0 and q.with_suffix(".nsys-rep").exists():
            q.unlink()


def _capture_nsys(nsys: str, cmd: Sequence[str], opts: CaptureOptions, out: Path) -> CaptureResult:
    rep = out / "raw" / "nsys"
    env = capture_env(opts, out / "raw")  # tracekit.phase emits NVTX when TRACEKIT_CAPTURE is set
    rc, msg = _run(nsys_command(cmd, opts, rep), env)
    if msg:
        return CaptureResult(out=out, returncode=rc, processes=[], message=msg)
    _import_qdstrm(nsys, out / "raw")
    reps = sorted((out / "raw").glob("nsys*.nsys-rep"))
    pt = ProcessTrace(pid=None, label="nsys", argv=redact_argv(list(cmd)), raw=[str(r) for r in reps])
    for r in reps:
        sqlite = r.with_suffix(".sqlite")
        ex = subprocess.run(
            [nsys, "export", "--type=sqlite", f"--output={sqlite}", "--force-overwrite=true", str(r)],
            capture_output=True,
            text=True,
            check=False,
        )
        if ex.returncode != 0 or not sqlite.exists():
            pt.error = f"nsys export failed: {(ex.stderr or ex.stdout).strip().splitlines()[-1:]}"
            continue
        trace = "nsys" if len(reps) == 1 else r.stem
        dst = out / "parquet" / f"{trace}.parquet"
        dst.parent.mkdir(parents=True, exist_ok=True)
        n, err = _convert_one(sqlite, dst, trace)
        if err:
            pt.error = f"{sqlite.name}: {err}"
            continue
        pt.parquet.append(str(dst))
        pt.traces.append(trace)
        pt.events += n
    return CaptureResult(out=out, returncode=rc, processes=[pt])


def summary(res: CaptureResult) -> list[str]:
    """Human summary lines: one per process, who produced nothing, then the next command."""
    lines: list[str] = []
    if res.message:
        lines.append(f"tracekit: error: {res.message}")
    made = [p for p in res.processes if p.parquet]
    lines.append(
        f"captured {len(made)} process trace(s), {sum(p.events for p in made):,} events, command exit code {res.returncode}"
    )
    for p in res.processes:
        who = f"pid {p.pid} ({term(p.label)})" if p.pid is not None else term(p.label)
        argv = term(" ".join(redact_argv(p.argv)))[:80]
        if p.parquet:
            lines.append(f"  {who}: {p.events:,} events -> {', '.join(Path(x).name for x in p.parquet)}  [{argv}]")
        elif p.error:
            lines.append(f"  {who}: conversion failed: {p.error}")
        else:
            why = p.state or "no trace written"
            if why.startswith("recording"):
                why = "killed or crashed while recording (no exit hook ran)"
            elif why == "armed":
                why = "its window never opened (or it was killed before it did)"
            lines.append(f"  {who}: produced nothing: {why}  [{argv}]")
    nothing = [p for p in res.processes if not p.parquet]
    if nothing:
        lines.append("processes that produced nothing: " + ", ".join(f"{p.pid} ({p.label})" for p in nothing))
    if not res.processes and not res.message:
        lines.append("  no process imported torch, so nothing was profiled")
    if made:
        lines.append(f"next: tracekit report {res.parquet_dir}")
    return lines


def _gzip_complete(p: Path) -> bool:
    """True when ``p`` is a complete gzip stream (SGLang writes traces in place, not via a rename)."""
    try:
        with gzip.open(p, "rb") as f:
            while f.read(1 << 20):
                pass
        return True
    except (OSError, EOFError, zlib.error):
        return False


#: Bounds on talking to an SGLang server (it is another program, possibly not SGLang at all, issue 23):
#: seconds to open the connection, bytes of a response body read (SGLang's answers are a few hundred
#: bytes), same-origin redirects followed (another origin is refused), seconds between progress lines.
HTTP_CONNECT_S = 10.0
HTTP_MAX_BODY = 1 << 20
HTTP_MAX_REDIRECTS = 3
PROGRESS_EVERY_S = 10.0


class ServerError(Exception):
    """What went wrong talking to the server, in words (the caller puts the URL in front)."""


def _origin(parts: Any) -> tuple[str, str, int]:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.scheme, (parts.hostname or "").lower(), port


def http_post(
    url: str, payload: dict[str, Any], deadline_s: float, log: Callable[[str], None], connect_s: float = HTTP_CONNECT_S
) -> bytes:
    """POST ``payload`` as JSON to ``url``; the response body (at most :data:`HTTP_MAX_BODY` bytes).

    Bounded in every way a server can hold a client: connecting takes at most ``connect_s``, the whole
    exchange (redirects included) at most ``deadline_s`` (a watchdog shuts the socket down then, so a silent
    or trickling server cannot hold a read), a body past the size bound is refused, and a redirect must
    stay on the same scheme, host and port. While waiting, ``log`` gets a line every
    :data:`PROGRESS_EVERY_S` seconds. Credentials in the URL are sent as HTTP basic auth.
    Raises :class:`ServerError` (a one-line reason) for anything but a 2xx answer.
    """
    import http.client  # deferred: only `capture --sglang-url` talks HTTP (~6 ms)

    start = time.monotonic()
    first = urllib.parse.urlsplit(url)
    if first.scheme not in ("http", "https") or not first.hostname:
        raise ServerError("not an http:// or https:// URL")
    try:
        _ = first.port  # raises ValueError on a bad port
    except ValueError as e:
        raise ServerError(str(e)) from None
    body = json.dumps(payload).encode()
    current = url
    for _hop in range(HTTP_MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(current)
        scheme, host, port = _origin(parts)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), "Connection": "close"}
        if first.username is not None:
            cred = f"{urllib.parse.unquote(first.username)}:{urllib.parse.unquote(first.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(cred.encode()).decode()
        remaining = deadline_s - (time.monotonic() - start)
        if remaining <= 0:
            raise ServerError(f"no answer within {deadline_s:.0f} s")
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=min(connect_s, remaining))
        done = threading.Event()
        expired = threading.Event()

        # The watchdog reads this hop's done/expired/conn/parts: the hop's `finally` stops it before the next hop.
        def watchdog() -> None:  # progress lines, and the deadline: shut the socket so any blocked call returns
            t0 = time.monotonic()
            while not done.wait(min(PROGRESS_EVERY_S, max(0.0, deadline_s - (time.monotonic() - start)))):  # noqa: B023
                if time.monotonic() - start >= deadline_s:
                    expired.set()  # noqa: B023
                    with contextlib.suppress(OSError, AttributeError):
                        conn.sock.shutdown(socket.SHUT_RDWR)  # noqa: B023
                    return
                log(
                    f"waiting for the server's answer to {parts.path or '/'} ({time.monotonic() - t0:.0f} s; "  # noqa: B023
                    f"giving up after {deadline_s:.0f} s)"
                )

        dog = threading.Thread(target=watchdog, daemon=True)
        dog.start()
        try:
            try:
                conn.connect()
            except TimeoutError:
                raise ServerError(
                    f"cannot reach the SGLang server (no connection within {min(connect_s, remaining):.0f} s)"
                ) from None
            except OSError as e:
                raise ServerError(f"cannot reach the SGLang server ({e.strerror or e})") from None
            if conn.sock is not None:
                conn.sock.settimeout(max(0.1, remaining))
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read(HTTP_MAX_BODY + 1) if resp.status < 300 or resp.status >= 400 else b""
            except (OSError, http.client.HTTPException) as e:
                if expired.is_set() or isinstance(e, (socket.timeout, TimeoutError)):
                    raise ServerError(f"no answer within {deadline_s:.0f} s") from None
                raise ServerError(
                    f"the connection failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                ) from None
            if expired.is_set():
                raise ServerError(f"no answer within {deadline_s:.0f} s")
        finally:
            done.set()
            conn.close()
        if 300 <= resp.status < 400 and resp.status != 304:
            loc = resp.getheader("Location")
            if not loc:
                raise ServerError(f"answered {resp.status} without a Location")
            nxt = urllib.parse.urljoin(current, loc)
            np = urllib.parse.urlsplit(nxt)
            if np.scheme not in ("http", "https") or _origin(np) != _origin(parts):
                shown = term(redact_text(f"{np.scheme}://{np.netloc}"))
                raise ServerError(f"redirected to another origin ({shown}): refused")
            current = nxt
            continue
        if len(data) > HTTP_MAX_BODY:
            raise ServerError(f"answered with a body larger than {HTTP_MAX_BODY >> 20} MiB: not an SGLang server?")
        if not 200 <= resp.status < 300:
            text = term(data[:200].decode("utf-8", "replace").strip().splitlines()[0] if data.strip() else "")
            raise ServerError(f"answered {resp.status} {term(resp.reason)}" + (f": {text}" if text else ""))
        return data
    raise ServerError(f"more than {HTTP_MAX_REDIRECTS} redirects")


def capture_sglang_url(
    url: str,
    opts: CaptureOptions,
    timeout: float = 600.0,
    settle: float = 3.0,
    log: Callable[[str], None] | None = None,
) -> CaptureResult:
    """Ask a running SGLang server for a profile window through ``/start_profile``, then convert its traces.

    Why this route: users who launch SGLang themselves cannot restart it under
    ``tracekit capture -- ...``; SGLang's own profiler then runs in every
    scheduler and writes ``{profile_id}-TP-{n}...trace.json.gz`` into
    ``output_dir``. That folder is ``<out>/raw``, so the server must share this
    machine's file system. ``--steps N`` -> ``num_steps`` (auto-stop); otherwise
    ``--duration S`` then ``/stop_profile``.
    """
    say = log or (lambda line: print(f"tracekit: {line}", file=sys.stderr, flush=True))
    shown = term(redact_text(url.rstrip("/")))  # a URL may carry credentials (https://user:pass@host)
    if not (opts.steps or opts.duration):
        raise TraceError(shown, "--sglang-url needs --steps N or --duration S to bound the window")
    out, created = prepare_out(opts)
    raw = out / "raw"
    profile_id = f"tracekit-{int(time.time())}"
    body: dict[str, Any] = {
        "output_dir": str(raw.resolve()),
        "activities": ["CPU", "GPU"],
        "record_shapes": True,
        "with_stack": bool(opts.with_stack),
        "profile_id": profile_id,
    }
    if opts.steps:
        body["num_steps"] = int(opts.steps)
    base = url.rstrip("/")

    def post(path: str, payload: dict[str, Any] | None) -> None:
        http_post(base + path, payload or {}, deadline_s=timeout, log=say)

    try:
        if opts.delay:
            time.sleep(opts.delay)
        post("/start_profile", body)
        if not opts.steps:
            time.sleep(float(opts.duration or 0))
            post("/stop_profile", None)
    except ServerError as e:
        remove_if_empty(out, created)
        return CaptureResult(out=out, returncode=1, processes=[], message=f"{shown}: {term(redact_text(str(e)))}")
    seen: dict[Path, int] = {}
    deadline, stable_since = time.time() + timeout, time.time()
    next_note = time.time() + PROGRESS_EVERY_S
    while time.time() < deadline:  # wait until the set of complete files stops changing
        if time.time() >= next_note:
            say(f"waiting for the server's traces in {raw} ({len(seen)} so far; giving up after {timeout:.0f} s)")
            next_note = time.time() + PROGRESS_EVERY_S
        files = {p: p.stat().st_size for p in raw.glob(f"*{profile_id}*.trace.json*")}
        if files != seen:
            seen, stable_since = files, time.time()
        elif (
            files
            and time.time() - stable_since >= settle
            and all(_gzip_complete(p) or p.suffix == ".json" for p in files)
        ):
            break
        time.sleep(0.2)
    procs: list[ProcessTrace] = []
    for src in sorted(seen):
        trace = src.name.split(".trace.json")[0]
        label = trace.replace(f"{profile_id}-", "") or trace
        pt = ProcessTrace(pid=None, label=label, argv=[redact_text(base)], raw=[str(src)])
        dst = out / "parquet" / f"{trace}.parquet"
        dst.parent.mkdir(parents=True, exist_ok=True)
        n, err = _convert_one(src, dst, trace)
        if err:
            pt.error = err
        else:
            pt.parquet, pt.traces, pt.events = [str(dst)], [trace], n
        procs.append(pt)
    msg = None if procs else f"the server wrote no trace into {raw} within {timeout:.0f} s (is it on this machine?)"
    res = CaptureResult(out=out, returncode=0 if procs else 1, processes=procs, message=msg)
    if procs:
        write_capture_json(res, [base], opts)
    else:
        remove_if_empty(out, created)
    return res
