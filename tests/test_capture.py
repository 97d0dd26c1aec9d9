"""``tracekit capture`` end to end on the samples, on the CPU.

Range counts are asserted exactly from the Parquet: per decode step the sample
runs 1 draft, 1 verify, 1 candidate, K lm_head+sampler inside draft and 1
lm_head+sampler inside verify (see samples/spec_decode.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tracekit.capture import CaptureOptions, bootstrap_dir, capture_env

REPO = Path(__file__).resolve().parents[1]
SPEC = str(REPO / "samples" / "spec_decode.py")
SERVE = str(REPO / "samples" / "serve.py")


def run_capture(out: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tracekit", "capture", "--out", str(out), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def range_counts(parquet_dir: Path) -> dict[tuple[str, str], int]:
    """(trace, phase_path) -> number of ranges, read back with DuckDB."""
    from tracekit.store import connect

    con = connect([str(parquet_dir)])
    return {(t, p): n for t, p, n in con.sql("SELECT trace, phase_path, count(*) FROM ranges GROUP BY ALL").fetchall()}


def expected_per_trace(trace: str, steps: int, k: int) -> dict[tuple[str, str], int]:
    return {
        (trace, "step"): steps,
        (trace, "step/draft"): steps,
        (trace, "step/draft/lm_head"): steps * k,
        (trace, "step/draft/sampler"): steps * k,
        (trace, "step/verify"): steps,
        (trace, "step/verify/lm_head"): steps,
        (trace, "step/verify/sampler"): steps,
        (trace, "step/candidate"): steps,
    }


def step_counts(counts: dict[tuple[str, str], int], trace: str) -> dict[tuple[str, str], int]:
    return {k: v for k, v in counts.items() if k[0] == trace and k[1].startswith("step")}


def test_capture_env_keeps_user_settings(tmp_path: Path) -> None:
    base = {"PYTHONPATH": "/a:/b", "SGLANG_PLUGINS": "mine", "PATH": os.environ["PATH"]}
    env = capture_env(CaptureOptions(steps=3), tmp_path / "raw", base=base)
    assert env["PYTHONPATH"].split(os.pathsep) == [str(bootstrap_dir()), "/a", "/b"]
    assert env["SGLANG_PLUGINS"] == "mine,tracekit"  # a whitelist: the user's entries stay, ours is added
    assert "SGLANG_PLUGINS" not in capture_env(CaptureOptions(), tmp_path / "raw", base={"PATH": "/bin"})
    cfg = json.loads(env["TRACEKIT_CAPTURE"])
    assert cfg["steps"] == 3 and cfg["raw"] == str((tmp_path / "raw").resolve())


def test_missing_command_exits_127(tmp_path: Path) -> None:
    r = run_capture(tmp_path / "c", "--", "no-such-command-tracekit")
    assert r.returncode == 127
    assert r.stderr.strip().splitlines() == ["tracekit: error: command not found: no-such-command-tracekit"]


def test_user_sitecustomize_pythonpath_and_plugins_preserved(tmp_path: Path) -> None:
    user = tmp_path / "usersite"
    user.mkdir()
    (user / "sitecustomize.py").write_text("import builtins\nbuiltins.USER_SITECUSTOMIZE_RAN = True\n")
    code = ("import builtins, os, sys, json; print(json.dumps({'ran': getattr(builtins, 'USER_SITECUSTOMIZE_RAN', False), "
            "'path': os.environ['PYTHONPATH'], 'plugins': os.environ.get('SGLANG_PLUGINS'), 'torch': 'torch' in sys.modules}))")
    env = dict(os.environ, PYTHONPATH=str(user), SGLANG_PLUGINS="myplugin")
    r = run_capture(tmp_path / "c", "--", sys.executable, "-c", code, env=env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.splitlines()[0])
    assert got == {"ran": True, "path": f"{bootstrap_dir()}{os.pathsep}{user}", "plugins": "myplugin,tracekit", "torch": False}
    assert "no process imported torch" in r.stdout
    # outside a capture the bootstrap is inert but still chains
    env2 = dict(os.environ, PYTHONPATH=f"{bootstrap_dir()}{os.pathsep}{user}")
    env2.pop("TRACEKIT_CAPTURE", None)
    r2 = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env2)
    assert json.loads(r2.stdout)["ran"] is True and "tracekit_bootstrap" not in r2.stdout


def test_spec_decode_parent_exact_ranges(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "c"
    steps, k = 3, 3
    r = run_capture(out, "--", sys.executable, SPEC, "--steps", str(steps), "--draft-len", str(k))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == f"next: tracekit report {out / 'parquet'}"
    files = list((out / "parquet").glob("*.parquet"))
    assert len(files) == 1
    trace = files[0].stem
    assert trace.endswith("-spec_decode")
    counts = range_counts(out / "parquet")
    assert step_counts(counts, trace) == expected_per_trace(trace, steps, k)
    # record_shapes is on: the lm_head matmul carries the vocabulary size
    from tracekit.store import connect

    dims = connect([str(out / "parquet")]).sql(
        "SELECT DISTINCT input_dims FROM events WHERE kind = 'cpu_op' AND name = 'aten::mm' AND phase = 'lm_head'").fetchall()
    assert dims and all("32000" in d[0] for d in dims)
    # the trace says tracekit capture made it, with which activities: this CPU torch has no CUDA, so a CPU-only
    # run is said in one line without advice to turn on CUDA activity
    import torch

    acts = connect([str(out / "parquet")]).sql("SELECT activities FROM trace_capture").fetchall()
    assert acts == [("CPU,CUDA" if torch.cuda.is_available() else "CPU",)]
    if not torch.cuda.is_available():
        from tracekit import report
        from tracekit.view.warnings import warnings_of

        res = report.run([out / "parquet"], analyses=["trust", "headline"])
        warns = [w for w in warnings_of(res) if w["analysis"] == "trust"]
        assert [w["flag"] for w in warns] == ["no_gpu_activity"]
        assert "a CPU-only run (tracekit capture: this torch has no CUDA support)" in warns[0]["message"]
        assert "activities=[CPU, CUDA]" not in warns[0]["message"]


def test_steps_window_and_exit_code_passthrough(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "c"
    r = run_capture(out, "--steps", "2", "--", sys.executable, SPEC, "--steps", "4", "--draft-len", "2", "--exit-code", "3")
    assert r.returncode == 3, r.stderr
    trace = next((out / "parquet").glob("*.parquet")).stem
    assert step_counts(range_counts(out / "parquet"), trace) == expected_per_trace(trace, 2, 2)
    proc = json.loads(next((out / "raw").glob("*.proc.json")).read_text())
    assert proc["state"] == "exported (2 steps)"


PROFILER_STEP_PROG = """
import torch
from torch.autograd.profiler import record_function
from torch.profiler import profile
prof = profile()            # never started: the program only marks its iterations with step()
for i in range(6):
    with record_function("iter"):
        torch.ones(4) * 2
    prof.step()
"""

OWN_PROFILER_PROG = """
import torch
from torch.autograd.profiler import record_function
from torch.profiler import profile
with record_function("before_own"):
    torch.ones(4) * 2
with profile() as prof:      # the program's own profiler: one Kineto session per process
    with record_function("inside_own"):
        torch.ones(4) * 3
prof.export_chrome_trace({own!r})
"""


def test_steps_counted_from_program_profiler_steps(tmp_path: Path) -> None:
    """--steps 3 with a loop that marks iterations only through torch.profiler's step(): 6 iterations
    run, the window closes after the 3rd step() call, so exactly iter ranges 1..3 are in the trace."""
    pytest.importorskip("torch")
    out = tmp_path / "c"
    r = run_capture(out, "--steps", "3", "--", sys.executable, "-c", PROFILER_STEP_PROG)
    assert r.returncode == 0, r.stderr
    from tracekit.store import connect

    con = connect([str(out / "parquet")])
    names = [n for (n,) in con.sql("SELECT name FROM ranges ORDER BY ts_ns").fetchall()]
    assert names.count("iter") == 3, names
    proc = json.loads(next((out / "raw").glob("*.proc.json")).read_text())
    assert proc["state"] == "exported (3 steps)" and proc["steps"] == 3


def test_program_starting_its_own_profiler_keeps_ours(tmp_path: Path) -> None:
    """A second torch.profiler in the program would end our Kineto session; ours is exported first."""
    pytest.importorskip("torch")
    out, own = tmp_path / "c", tmp_path / "own.json"
    r = run_capture(out, "--", sys.executable, "-c", OWN_PROFILER_PROG.format(own=str(own)))
    assert r.returncode == 0, r.stderr
    from tracekit.store import connect

    names = {n for (n,) in connect([str(out / "parquet")]).sql("SELECT name FROM ranges").fetchall()}
    assert "before_own" in names and "inside_own" not in names, names
    proc = json.loads(next((out / "raw").glob("*.proc.json")).read_text())
    assert proc["state"] == "exported (program's own torch.profiler started)"
    assert any("its own torch.profiler" in n for n in proc["notes"])
    ranges = [e["name"] for e in json.loads(own.read_text())["traceEvents"] if e.get("cat") == "user_annotation"]
    assert ranges == ["inside_own"]  # the program's own profiler still works


PROG_TEMPLATE = """
import os, signal, sys, time, torch
sys.path.insert(0, {repo!r})
from tracekit.annotate import phase
for i in range(3):
    with phase("step"):
        torch.ones(4) * 2
{tail}
"""


@pytest.mark.parametrize("tail, rc, reason", [
    ("os.kill(os.getpid(), signal.SIGTERM)\ntime.sleep(5)", 128 + signal.SIGTERM, "SIGTERM"),
    ("raise RuntimeError('crash')", 1, "unhandled exception"),
    ("pid = os.fork()\nif pid == 0:\n    torch.ones(2) + 1\n    os._exit(0)\nos.waitpid(pid, 0)", 0, "exit"),
])
def test_exports_on_term_exception_and_survives_fork(tmp_path: Path, tail: str, rc: int, reason: str) -> None:
    pytest.importorskip("torch")
    prog = tmp_path / "prog.py"
    prog.write_text(PROG_TEMPLATE.format(repo=str(REPO), tail=tail))
    out = tmp_path / "c"
    r = run_capture(out, "--", sys.executable, str(prog), timeout=120)
    assert r.returncode == rc, r.stderr
    docs = {d["pid"]: d for d in (json.loads(p.read_text()) for p in (out / "raw").glob("*.proc.json"))}
    parent = [d for d in docs.values() if not d["forked"]]
    assert len(parent) == 1 and parent[0]["state"] == f"exported ({reason})"
    trace = f"{parent[0]['pid']}-prog"
    assert range_counts(out / "parquet")[(trace, "step")] == 3
    if "fork" in tail:  # the forked child is reported, not profiled, and nothing hangs
        assert any(d["forked"] for d in docs.values())


def test_duration_window_closes_before_exit(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    prog = tmp_path / "prog.py"
    prog.write_text(PROG_TEMPLATE.format(repo=str(REPO), tail="t = time.time()\nwhile time.time() - t < 4:\n    time.sleep(0.05)"))
    out = tmp_path / "c"
    r = run_capture(out, "--duration", "1.5", "--", sys.executable, str(prog))
    assert r.returncode == 0, r.stderr
    proc = json.loads(next((out / "raw").glob("*.proc.json")).read_text())
    assert proc["state"] == "exported (duration)"


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=120) as r:
        return json.loads(r.read())


def _post(url: str, obj: object) -> object:
    req = urllib.request.Request(url, data=json.dumps(obj).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())


def test_spawned_workers_exact_ranges_and_sigkill_of_one(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out, port_file = tmp_path / "c", tmp_path / "port"
    steps, k = 2, 3
    cap = subprocess.Popen([sys.executable, "-m", "tracekit", "capture", "--out", str(out), "--", sys.executable, SERVE,
                            "--workers", "2", "--port-file", str(port_file)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        deadline = time.time() + 120
        while not port_file.exists():
            assert cap.poll() is None, cap.communicate()
            assert time.time() < deadline, "server did not start"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port_file.read_text()}"
        workers = _get(f"{url}/workers")
        pids = [w["pid"] for w in workers]  # type: ignore[index]
        for _ in range(2):  # round-robin: one request each
            assert "error" not in _post(f"{url}/generate", {"steps": steps, "draft_len": k})  # type: ignore[operator]
        os.kill(pids[0], signal.SIGKILL)  # mid-window: worker0's trace is lost
        while any(w["alive"] for w in _get(f"{url}/workers") if w["pid"] == pids[0]):  # type: ignore[union-attr]
            time.sleep(0.05)
        for _ in range(2):  # both go to the survivor
            res = _post(f"{url}/generate", {"steps": steps, "draft_len": k})
            assert res["pid"] == pids[1]  # type: ignore[index]
        _post(f"{url}/shutdown", {})
        stdout, stderr = cap.communicate(timeout=120)
    finally:
        if cap.poll() is None:
            cap.kill()
    assert cap.returncode == 0, stderr
    counts = range_counts(out / "parquet")
    survivor = f"{pids[1]}-worker1"
    assert step_counts(counts, survivor) == expected_per_trace(survivor, 3 * steps, k)
    assert {t for t, _ in counts} == {survivor}  # the HTTP parent never imports torch: no trace, as in SGLang
    assert f"processes that produced nothing: {pids[0]} (worker0)" in stdout
    assert f"pid {pids[0]} (worker0): produced nothing" in stdout
    assert stdout.strip().splitlines()[-1] == f"next: tracekit report {out / 'parquet'}"


def test_nsys_missing_one_line_error(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # no nsys here
    r = run_capture(tmp_path / "c", "--backend", "nsys", "--", sys.executable, "-c", "pass", env=env)
    assert r.returncode == 127
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nsys not found on PATH" in lines[0] and "nsight-systems" in lines[0]


def test_nsys_command_line(tmp_path: Path) -> None:
    from tracekit.capture import nsys_command

    argv = nsys_command(["python", "x.py"], CaptureOptions(backend="nsys", delay=2, duration=5.5), tmp_path / "rep")
    assert argv[:5] == ["nsys", "profile", "--trace=cuda,nvtx,osrt", "--cuda-graph-trace=node", "--trace-fork-before-exec=true"]
    assert "--delay=2" in argv and "--duration=5.5" in argv and argv[-2:] == ["python", "x.py"]


def test_toggle_signal_opens_and_closes_window(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    prog = tmp_path / "prog.py"
    prog.write_text(PROG_TEMPLATE.format(repo=str(REPO), tail=(
        "t = time.time()\nwhile time.time() - t < 60 and not os.path.exists(os.environ['STOP_FILE']):\n"
        "    with phase('step'):\n        torch.ones(4) * 2\n    time.sleep(0.01)")))
    out, stop = tmp_path / "c", tmp_path / "stop"
    env = dict(os.environ, STOP_FILE=str(stop))
    cap = subprocess.Popen([sys.executable, "-m", "tracekit", "capture", "--wait-signal", "--out", str(out), "--", sys.executable, str(prog)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        deadline = time.time() + 60
        while not list((out / "raw").glob("*.proc.json")):  # armed: torch imported, waiting for the signal
            assert cap.poll() is None and time.time() < deadline, cap.communicate()
            time.sleep(0.05)
        cap.send_signal(signal.SIGUSR2)  # tracekit forwards to every armed process: open
        procf = next((out / "raw").glob("*.proc.json"))
        while json.loads(procf.read_text())["state"] != "recording":
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        cap.send_signal(signal.SIGUSR2)  # close: the trace is written now, while the program still runs
        while not list((out / "raw").glob("*[0-9].json")):
            assert time.time() < deadline
            time.sleep(0.05)
        stop.touch()
        stdout, stderr = cap.communicate(timeout=60)
    finally:
        if cap.poll() is None:
            cap.kill()
    assert cap.returncode == 0, stderr
    proc = json.loads(next((out / "raw").glob("*.proc.json")).read_text())
    assert proc["state"] == "exported (toggle signal)"
    counts = range_counts(out / "parquet")
    assert 0 < sum(n for (_, p), n in counts.items() if p == "step")  # only the steps inside the window


def test_sglang_url_start_profile_protocol(tmp_path: Path) -> None:
    """--sglang-url against a local HTTP endpoint speaking SGLang's /start_profile protocol (not SGLang itself).

    The endpoint writes what an SGLang scheduler writes: ``{profile_id}-TP-0.trace.json.gz``
    into the requested output_dir, here a real torch.profiler trace.
    """
    torch = pytest.importorskip("torch")
    import gzip
    import shutil
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from torch.profiler import ProfilerActivity, profile

    src = tmp_path / "src.json"
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        with torch.autograd.profiler.record_function("lm_head"):
            torch.randn(2, 8) @ torch.randn(8, 32000)
    prof.export_chrome_trace(str(src))
    requests: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a: object) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            requests.append({"path": self.path, **body})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")
            dst = Path(body["output_dir"]) / f"{body['profile_id']}-TP-0.trace.json.gz"
            with open(src, "rb") as fi, gzip.open(dst, "wb") as fo:
                shutil.copyfileobj(fi, fo)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "c"
        r = run_capture(out, "--sglang-url", f"http://127.0.0.1:{srv.server_address[1]}", "--steps", "5")
    finally:
        srv.shutdown()
    assert r.returncode == 0, r.stderr
    assert requests[0]["path"] == "/start_profile" and requests[0]["num_steps"] == 5 and requests[0]["record_shapes"] is True
    assert requests[0]["output_dir"] == str((out / "raw").resolve())
    (pq,) = (out / "parquet").glob("*.parquet")
    assert pq.stem.endswith("-TP-0")
    assert "TP-0" in r.stdout and r.stdout.strip().splitlines()[-1] == f"next: tracekit report {out / 'parquet'}"
    rng = range_counts(out / "parquet")
    assert rng[(pq.stem, "lm_head")] == 1


def test_sglang_url_unreachable(tmp_path: Path) -> None:
    r = run_capture(tmp_path / "c", "--sglang-url", "http://127.0.0.1:9", "--steps", "2")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines()[-1].startswith("tracekit: error: http://127.0.0.1:9: cannot reach the SGLang server")


@pytest.mark.skipif(__import__("shutil").which("nsys") is None, reason="nsys not on PATH (Debian non-free `nsight-systems`)")
def test_nsys_backend_end_to_end_on_cpu(tmp_path: Path) -> None:
    """nsys 2022.4 (Debian) on a CPU-only program: runs, imports, exports SQLite, converts; exit code passes through.

    What 2022.4.2 records here (checked by hand): OS-runtime calls, processes, threads and the
    NVTX *domain creation* of `tracekit`, but no NVTX push/pop ranges from the `nvtx` package
    (default or custom domain), so ranges are not asserted.
    """
    prog = tmp_path / "prog.py"
    prog.write_text(f"import sys, time\nsys.path.insert(0, {str(REPO)!r})\nfrom tracekit.annotate import phase\n"
                    "for _ in range(3):\n    with phase('step'):\n        time.sleep(0.01)\nsys.exit(4)\n")
    out = tmp_path / "c"
    r = run_capture(out, "--backend", "nsys", "--", sys.executable, str(prog))
    assert r.returncode == 4, r.stderr
    assert (out / "parquet" / "nsys.parquet").exists(), r.stdout + r.stderr
    from tracekit.store import connect

    con = connect([str(out / "parquet")])
    ((osrt,),) = con.sql("SELECT count(*) FROM events WHERE source = 'nsys' AND cat = 'osrt'").fetchall()
    assert osrt > 0
    assert r.stdout.strip().splitlines()[-1] == f"next: tracekit report {out / 'parquet'}"
