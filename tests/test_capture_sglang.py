"""SGLang auto-annotation (capture/tracekit_sglang.py): table, plugin discovery, and the real sglang when installed.

The real-sglang test never uses a stand-in. It runs in a subprocess with the
python of the cached CPU-only venv that ``tests/sglang_env.sh`` builds (real
sglang 0.5.23 wheel ``--no-deps`` beside CPU torch 2.13.0, ~2.2 GB, kept out of
the dev venv), or with this interpreter when sglang is importable here, and is
skipped otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracekit.capture import bootstrap_dir

sys.path.insert(0, str(bootstrap_dir()))
import tracekit_sglang as tks  # noqa: E402


def test_version_parsing_and_table() -> None:
    assert tks.parse_version("0.5.12.post1") == (0, 5, 12)
    assert tks.parse_version("0.5.23rc1") == (0, 5, 23)
    new = dict((n, t) for t, n in tks.targets_for((0, 5, 23)) if "eagle_worker." in t)
    assert new == {}  # EAGLEWorker v1 is gone by 0.5.17
    names_23 = {n for _, n in tks.targets_for((0, 5, 23))}
    names_9 = {n for _, n in tks.targets_for((0, 5, 9))}
    for names in (names_23, names_9):
        assert {"lm_head", "sampler", "draft", "verify", "draft_extend", "extend", "candidate", "decode_graph"} <= names
    assert any(t.endswith("EAGLEWorker.verify") for t, _ in tks.targets_for((0, 5, 12)))
    assert any(t.endswith("EAGLEWorkerV2.verify") for t, _ in tks.targets_for((0, 5, 12)))


def test_resolve_skips_missing_and_takes_first_alternative() -> None:
    ok, missing = tks.resolve([("json.nope|json.dumps", "a"), ("json.loads", "b"), ("json.Missing", "c")])
    assert ok == [("json.dumps", "a"), ("json.loads", "b")] and missing == ["json.Missing"]


def test_entry_point_visible_only_through_capture_path(tmp_path: Path) -> None:
    code = "import importlib.metadata as m, json; print(json.dumps([e.value for e in m.entry_points(group='sglang.srt.plugins') if e.name == 'tracekit']))"
    env = {"PYTHONPATH": str(bootstrap_dir()), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(r.stdout) == ["tracekit_sglang:register"]


def test_register_is_inert_outside_capture(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACEKIT_CAPTURE", raising=False)
    assert tks.register() == []
    monkeypatch.setenv("TRACEKIT_CAPTURE", "{}")
    monkeypatch.setenv("TRACEKIT_SGLANG", "0")
    assert tks.register() == []


SGLANG_VENV = Path(os.environ.get("TRACEKIT_SGLANG_VENV") or Path.home() / ".cache" / "tracekit" / "sglang-venv")
REPO = Path(__file__).resolve().parents[1]
SKIP_NO_VENV = "run tests/sglang_env.sh to build the real-sglang environment (2+ GB, no CUDA)"


def _real_sglang_python() -> str | None:
    """The interpreter that has the real sglang: this one, else the cached venv's (complete builds only)."""
    if importlib.util.find_spec("sglang") is not None:
        return sys.executable
    py = SGLANG_VENV / "bin" / "python"
    if py.exists() and (SGLANG_VENV / ".tracekit-sglang-complete").exists():
        return str(py)
    return None


# Runs inside the real-sglang interpreter: SGLang's own load_plugins() must find our entry point
# (capture/ on sys.path, as under `tracekit capture`), wrap every target of the table, and the real
# LogitsProcessor._compute_lm_head must then run inside an `lm_head` range under torch.profiler.
_CHILD = r"""
import json, os, sys
capture, trace_out = sys.argv[1], sys.argv[2]
sys.path.insert(0, capture)   # only capture/'s dist-info + plugin; its sitecustomize stays out (no bootstrap here)
import pkgutil
import torch
import sglang
from sglang.srt.plugins import load_plugins
from sglang.srt.layers.logits_processor import LogitsProcessor
import tracekit_sglang as tks
import tracekit.annotate as P
from torch.profiler import ProfilerActivity, profile

assert "+cpu" in torch.__version__ or not torch.cuda.is_available(), torch.__version__
version = tks.parse_version(sglang.__version__)
load_plugins()   # SGLang's loader: entry point group sglang.srt.plugins -> tracekit_sglang:register -> apply_hooks
ok, missing = tks.resolve(tks.targets_for(version))
wrapped = {t: hasattr(pkgutil.resolve_name(t), "__wrapped__") for t, _ in ok}

vocab, hidden, tokens = 32000, 64, 4
lp = LogitsProcessor.__new__(LogitsProcessor)   # __init__ needs a model config and the TP group
torch.nn.Module.__init__(lp)
lp.use_fp32_lm_head = False
lp.use_fp32_lm_head_output = False
lp.rl_on_policy_target = None
head = torch.nn.Linear(hidden, vocab, bias=False)
prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
prof.start()
P.set_recording(True)
try:
    with torch.no_grad():
        logits = LogitsProcessor._compute_lm_head(lp, torch.randn(tokens, hidden), head)
finally:
    P.set_recording(False)
    prof.stop()
prof.export_chrome_trace(trace_out)
print("RESULT " + json.dumps({
    "sglang": sglang.__version__, "torch": torch.__version__, "ok": ok, "missing": missing,
    "wrapped": wrapped, "logits_shape": list(logits.shape),
    "lm_head_fn": LogitsProcessor.__dict__["_compute_lm_head"].__qualname__,
}))
"""


def _run_in_real_sglang(child: str, tmp_path: Path) -> tuple[dict, str]:
    """Run ``child`` (a script printing ``RESULT <json>``) in the cached real-SGLang venv under the capture
    bootstrap; its parsed RESULT and its stderr. Skips when the venv could not be built."""
    py = _real_sglang_python()
    if py is None:
        pytest.skip(SKIP_NO_VENV)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SGLANG_PLUGINS", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(PYTHONPATH=str(REPO), TRACEKIT_CAPTURE=json.dumps({"raw": str(tmp_path)}), TRACEKIT_SGLANG="1",
               PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES="")
    trace = tmp_path / "t.json"
    r = subprocess.run([py, "-c", child, str(bootstrap_dir()), str(trace)], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=900)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, f"real-sglang check failed (rc={r.returncode}, {py}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    return json.loads(lines[-1][len("RESULT "):]), r.stderr


def test_real_sglang_plugin_wraps_lm_head(tmp_path: Path) -> None:
    res, stderr = _run_in_real_sglang(_CHILD, tmp_path)
    trace = tmp_path / "t.json"
    print(f"sglang {res['sglang']} / torch {res['torch']}: resolved {[t for t, _ in res['ok']]}, missing {res['missing']}")

    assert res["missing"] == [], f"targets missing in sglang {res['sglang']}: {res['missing']}"
    assert len(res["ok"]) == len(tks.targets_for(tks.parse_version(res["sglang"])))
    assert all(res["wrapped"].values()), f"not wrapped by load_plugins(): {[t for t, w in res['wrapped'].items() if not w]}"
    assert dict((n, t) for t, n in res["ok"])["lm_head"].endswith("LogitsProcessor._compute_lm_head")
    assert res["logits_shape"] == [4, 32000]
    assert "skipped" not in stderr  # the one 'missing targets' warning is not printed when none are missing

    from tracekit.ingest import convert
    from tracekit.store import connect

    convert(trace, tmp_path / "t.parquet")
    con = connect([str(tmp_path / "t.parquet")])
    ranges = con.sql("SELECT name, ts_ns, dur_ns, tid FROM events WHERE kind = 'range' AND name = 'lm_head'").fetchall()
    assert len(ranges) == 1, ranges
    rows = con.sql("""
        SELECT o.name, o.input_dims, o.phase FROM events o JOIN events r
          ON r.kind = 'range' AND r.name = 'lm_head' AND o.tid = r.tid
         AND o.ts_ns >= r.ts_ns AND o.ts_ns + o.dur_ns <= r.ts_ns + r.dur_ns
        WHERE o.kind = 'cpu_op' AND o.name IN ('aten::mm', 'aten::matmul', 'aten::linear')""").fetchall()
    assert rows, con.sql("SELECT kind, name, phase, input_dims FROM events WHERE kind IN ('range', 'cpu_op')").fetchall()
    assert all(phase == "lm_head" for _, _, phase in rows), rows
    assert any("32000" in dims for _, dims, _ in rows if dims), rows


# Runs under the real capture bootstrap (capture/ first on PYTHONPATH, TRACEKIT_CAPTURE set) with the
# pre-plugin SGLang 0.5.9 wheel first on the path: no load_plugins() exists, so the ranges can only come
# from the bootstrap's import-time patch. The trace is exported by the bootstrap at exit.
_CHILD_OLD = r"""
import importlib.util, json, types
import torch
import sglang
import sglang.srt.layers.logits_processor as lpm
from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.sampler import Sampler
from sglang.srt.speculative import eagle_utils

lpm.get_global_server_args = lambda: types.SimpleNamespace(rl_on_policy_target=None)  # normally set by the server
lp = LogitsProcessor.__new__(LogitsProcessor)   # __init__ needs a model config and the TP group
torch.nn.Module.__init__(lp)
lp.use_fp32_lm_head = False
head = torch.nn.Linear(64, 32000, bias=False)
with torch.no_grad():
    logits = LogitsProcessor._compute_lm_head(lp, torch.randn(4, 64), head)
print("RESULT " + json.dumps({
    "sglang": sglang.__version__,
    "has_plugin_framework": importlib.util.find_spec("sglang.srt.plugins") is not None,
    "wrapped": {"lm_head": hasattr(LogitsProcessor.__dict__["_compute_lm_head"], "__wrapped__"),
                "sampler": hasattr(Sampler.__dict__["forward"], "__wrapped__"),
                "candidate": hasattr(eagle_utils.build_tree_kernel_efficient, "__wrapped__")},
    "logits_shape": list(logits.shape),
}))
"""


def test_real_old_sglang_import_time_patch(tmp_path: Path) -> None:
    """SGLang 0.5.9 (before sglang.srt.plugins): lm_head, sampler and candidate are wrapped at import."""
    py = _real_sglang_python()
    old = SGLANG_VENV / "sglang-old"
    if py is None or not (old / "sglang" / "__init__.py").exists():
        pytest.skip(SKIP_NO_VENV)
    from tracekit.capture import CaptureOptions, capture_env

    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SGLANG_PLUGINS", "PYTHONHOME", "VIRTUAL_ENV")}
    base.update(PYTHONPATH=f"{old}:{REPO}", PYTHONWARNINGS="ignore", CUDA_VISIBLE_DEVICES="")
    env = capture_env(CaptureOptions(), tmp_path / "raw", base=base)
    r = subprocess.run([py, "-c", _CHILD_OLD], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    assert r.returncode == 0 and lines, f"old-sglang check failed (rc={r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-6000:]}"
    res = json.loads(lines[-1][len("RESULT "):])
    assert tks.parse_version(res["sglang"]) < (0, 5, 12) and not res["has_plugin_framework"], res
    assert res["wrapped"] == {"lm_head": True, "sampler": True, "candidate": True}, res
    assert res["logits_shape"] == [4, 32000]

    from tracekit.ingest import convert
    from tracekit.store import connect

    traces = sorted((tmp_path / "raw").glob("*.json"))
    traces = [t for t in traces if not t.name.endswith(".proc.json")]
    assert len(traces) == 1, traces
    convert(traces[0], tmp_path / "t.parquet")
    con = connect([str(tmp_path / "t.parquet")])
    assert con.sql("SELECT count(*) FROM events WHERE kind = 'range' AND name = 'lm_head'").fetchall() == [(1,)]
    dims = con.sql("SELECT input_dims FROM events WHERE kind = 'cpu_op' AND phase = 'lm_head' "
                   "AND name IN ('aten::mm', 'aten::matmul')").fetchall()
    assert dims and any("32000" in d for (d,) in dims if d), dims


def test_import_patcher_wraps_at_import_before_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """The import-time patch on a toy package: a target is wrapped before another module copies it with
    `from X import f`, a class method is wrapped in place, a missing target is named in one warning, and
    the patcher stands down for versions that have SGLang's plugin loader."""
    pkg = tmp_path / "tkpatchtoy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "core.py").write_text("def build(x):\n    return x + 1\n\nclass Head:\n    def logits(self, x):\n        return x * 2\n")
    (pkg / "user.py").write_text("from tkpatchtoy.core import build\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("TRACEKIT_CAPTURE", "{}")
    calls: list[str] = []
    monkeypatch.setattr(tks, "around", lambda name: (lambda orig, *a, **k: (calls.append(name), orig(*a, **k))[1]))
    table = [((0, 5, 0), None, "tkpatchtoy.core.build", "candidate"),
             ((0, 5, 0), None, "tkpatchtoy.core.Head.logits", "lm_head"),
             ((0, 5, 0), None, "tkpatchtoy.core.Head.gone|tkpatchtoy.core.gone", "sampler"),
             ((0, 5, 10), None, "tkpatchtoy.core.later", "draft")]  # not in 0.5.9's rows: never reported
    patcher = tks.ImportPatcher(table, version=(0, 5, 9))
    monkeypatch.setattr(sys, "meta_path", [patcher, *sys.meta_path])
    for m in ("tkpatchtoy", "tkpatchtoy.core", "tkpatchtoy.user"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    import tkpatchtoy.user as user  # imports core first: wrapped before user's copy is taken

    from tkpatchtoy.core import Head

    assert user.build(1) == 2 and Head().logits(3) == 6
    assert calls == ["candidate", "lm_head"]
    assert patcher.patched == [("tkpatchtoy.core.build", "candidate"), ("tkpatchtoy.core.Head.logits", "lm_head")]
    assert patcher.missing == ["tkpatchtoy.core.Head.gone|tkpatchtoy.core.gone"]
    err = capsys.readouterr().err
    assert err.count("skipped 1 annotation target(s) missing in this version: tkpatchtoy.core.Head.gone") == 1

    new = tks.ImportPatcher(table, version=(0, 5, 12))
    for m in ("tkpatchtoy", "tkpatchtoy.core", "tkpatchtoy.user"):
        monkeypatch.delitem(sys.modules, m, raising=False)
    monkeypatch.setattr(sys, "meta_path", [new, *[f for f in sys.meta_path if f is not patcher]])
    calls.clear()
    import tkpatchtoy.core as core2

    assert core2.build(1) == 2 and calls == [] and new.patched == []


# Runs inside the real-sglang interpreter: SGLang's load_plugins() wraps the real EAGLEWorkerV2.verify;
# calling it runs the real method body, whose one collaborator run_eagle_verify (a module global) is
# replaced by a function returning a REAL GenerationBatchResult with accept_lens [3, 1, 4] (CPU tensor,
# bonus token included) and speculative_num_draft_tokens 4. The count must land in the trace.
_CHILD_VERIFY = r"""
import json, sys, types
capture, trace_out = sys.argv[1], sys.argv[2]
sys.path.insert(0, capture)
import torch
import sglang
from sglang.srt.plugins import load_plugins
import sglang.srt.speculative.eagle_worker_v2 as ew2
from sglang.srt.managers.utils import GenerationBatchResult
import tracekit.annotate as P
from torch.profiler import ProfilerActivity, profile

load_plugins()
res = GenerationBatchResult(accept_lens=torch.tensor([3, 1, 4], dtype=torch.int32), speculative_num_draft_tokens=4)
calls = []
def fake_run_eagle_verify(batch, **kw):
    calls.append(kw["num_draft_tokens"])
    return res
ew2.run_eagle_verify = fake_run_eagle_verify
worker = types.SimpleNamespace(target_worker=None, req_to_token_pool=None, token_to_kv_pool_allocator=None,
                               plan_stream=None, plan_stream_ctx=None, topk=1, speculative_num_draft_tokens=4,
                               device="cpu")
prof = profile(activities=[ProfilerActivity.CPU])
prof.start()
P.set_recording(True)
try:
    with P.phase("step"):
        out = ew2.EAGLEWorkerV2.verify(worker, None)
finally:
    P.set_recording(False)
    prof.stop()
prof.export_chrome_trace(trace_out)
print("RESULT " + json.dumps({"sglang": sglang.__version__, "same": out is res, "calls": calls,
                              "wrapped": hasattr(ew2.EAGLEWorkerV2.__dict__["verify"], "__wrapped__")}))
"""


def test_real_sglang_verify_records_token_counts(tmp_path: Path) -> None:
    res, stderr = _run_in_real_sglang(_CHILD_VERIFY, tmp_path)
    trace = tmp_path / "t.json"
    assert res == {"sglang": res["sglang"], "same": True, "calls": [4], "wrapped": True}, res
    assert "verify counts skipped" not in stderr

    from tracekit import report as rep
    from tracekit.ingest import convert
    from tracekit.store import connect

    convert(trace, tmp_path / "t.parquet")
    con = connect([str(tmp_path / "t.parquet")])
    rows = con.sql("SELECT name, phase_path FROM events WHERE starts_with(name, 'tracekit.count')").fetchall()
    # accept_lens 3+1+4 = 8 tokens (bonus included) for 3 requests: 5 accepted drafts of 3 * (4 - 1) = 9 verified
    assert rows == [("tracekit.count accepted=5 batch_size=3 drafted=9 tokens=8", "step/tracekit.count accepted=5 batch_size=3 drafted=9 tokens=8")], rows
    assert con.sql("SELECT count(*) FROM ranges WHERE name = 'verify' AND phase_path = 'step/verify'").fetchall() == [(1,)]
    s = rep.run(tmp_path / "t.parquet", analyses=["steps", "flops", "tokens"])["tokens.summary"].iloc[0]
    assert (s["accepted"], s["drafted"], s["tokens"]) == (5, 9, 8)
    assert s["acceptance_rate"] == pytest.approx(5 / 9) and s["mean_accept_len"] == pytest.approx(5 / 3)


def test_verify_counts_v1_and_cuda_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    """v1 tuples (accept_length_per_req_cpu excludes the bonus) and the no-sync rule for CUDA accept_lens."""
    import types

    v1 = (None, types.SimpleNamespace(accept_length_per_req_cpu=[2, 0, 3]), None, False)
    assert tks.verify_counts(v1, types.SimpleNamespace(speculative_num_draft_tokens=4)) == {
        "batch_size": 3, "accepted": 5, "tokens": 8, "drafted": 9}

    class CudaLens:
        shape = (2,)
        is_cuda = True

        def tolist(self) -> list[int]:
            raise AssertionError("a CUDA accept_lens must not be read without TRACEKIT_SGLANG_ACCEPT_SYNC=1")

    res = types.SimpleNamespace(accept_lens=CudaLens(), speculative_num_draft_tokens=3)
    monkeypatch.delenv("TRACEKIT_SGLANG_ACCEPT_SYNC", raising=False)
    assert tks.verify_counts(res) == {"batch_size": 2, "drafted": 4}
    assert tks.verify_counts(object()) == {}
