"""SGLang auto-annotation (capture/tracekit_sglang.py): table, plugin discovery, and the real sglang when installed.

The real-sglang test never uses a stand-in: it runs only where the actual
``sglang`` wheel is importable (install it ``--no-deps`` beside the CPU torch,
see docs/notes on SGLang), and is skipped with that reason otherwise.
"""

from __future__ import annotations

import json
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


def test_real_sglang_plugin_wraps_lm_head(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    sglang = pytest.importorskip("sglang", reason="the real sglang wheel is not installed (pip install --no-deps sglang beside CPU torch)")
    try:
        from sglang.srt.plugins import load_plugins
        from sglang.srt.layers.logits_processor import LogitsProcessor
    except Exception as e:  # pragma: no cover - depends on the installed sglang and its deps
        pytest.skip(f"sglang {getattr(sglang, '__version__', '?')} has no plugin framework or does not import here: {e!r}")
    monkeypatch.setenv("TRACEKIT_CAPTURE", json.dumps({"raw": str(tmp_path)}))
    monkeypatch.delenv("SGLANG_PLUGINS", raising=False)
    monkeypatch.syspath_prepend(str(bootstrap_dir()))
    load_plugins()  # SGLang's own loader: discovers our entry point and applies the hooks
    version = tks.parse_version(sglang.__version__)
    ok, missing = tks.resolve(tks.targets_for(version))
    assert missing == [], f"targets missing in sglang {sglang.__version__}: {missing}"
    target = dict((n, t) for t, n in ok)["lm_head"]
    assert hasattr(LogitsProcessor.__dict__[target.rsplit(".", 1)[1]], "__wrapped__")

    import tracekit.annotate as P
    from torch.profiler import ProfilerActivity, profile

    vocab, hidden = 32000, 64
    lp = LogitsProcessor.__new__(LogitsProcessor)
    torch.nn.Module.__init__(lp)
    lp.use_fp32_lm_head = False
    head = torch.nn.Linear(hidden, vocab, bias=False)
    prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    prof.start()
    P.set_recording(True)
    try:
        LogitsProcessor._compute_lm_head(lp, torch.randn(4, hidden), head)
    finally:
        P.set_recording(False)
        prof.stop()
    out = tmp_path / "t.json"
    prof.export_chrome_trace(str(out))
    from tracekit.ingest import convert
    from tracekit.store import connect

    convert(out, tmp_path / "t.parquet")
    rows = connect([str(tmp_path / "t.parquet")]).sql(
        "SELECT input_dims FROM events WHERE kind = 'cpu_op' AND name IN ('aten::mm', 'aten::matmul') AND phase = 'lm_head'").fetchall()
    assert rows and any(str(vocab) in r[0] for r in rows)
