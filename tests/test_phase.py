"""tracekit.phase: free when inactive, real torch ranges when recording, step hooks, torch stays optional."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tracekit.annotate as P
from tracekit.annotate import mark, phase


@pytest.fixture
def restore_flags():
    """Each test may flip the module flags; put them back."""
    saved = (P._ACTIVE, P._RECORDING, list(P._STEP_HOOKS))
    yield
    P._ACTIVE, P._RECORDING = saved[0], saved[1]
    P._STEP_HOOKS[:] = saved[2]


def test_import_does_not_import_torch() -> None:
    code = "import sys, tracekit, tracekit.annotate, tracekit.capture; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_inactive_is_a_no_op(restore_flags) -> None:
    P._ACTIVE = False
    P._RECORDING = False
    calls: list[int] = []
    P.add_step_hook(lambda: calls.append(1))

    @phase("sampler", bs=2)
    def f(x: int) -> int:
        return x + 1

    with phase("step") as p:
        assert f(1) == 2
        mark("x")
    assert p._open_rf is None
    assert calls == []  # step hooks count captured steps only
    assert f.__name__ == "f"


def test_exception_propagates_and_closes(restore_flags) -> None:
    P.enable(True)
    with pytest.raises(ValueError):
        with phase("verify") as p:
            raise ValueError("boom")
    assert p._open_rf is None


def test_step_hook_runs_on_step_exit_when_active(restore_flags) -> None:
    P.enable(True)
    calls: list[int] = []
    P.add_step_hook(lambda: calls.append(1))
    for _ in range(3):
        with phase("step"):
            with phase("draft"):
                pass
    assert calls == [1, 1, 1]


def test_recorded_ranges_are_user_annotations(restore_flags, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from torch.profiler import ProfilerActivity, profile

    prof = profile(activities=[ProfilerActivity.CPU], record_shapes=True)
    prof.start()
    P.set_recording(True)
    try:
        with phase("step"):
            with phase("lm_head", vocab=32000):
                torch.randn(2, 8) @ torch.randn(8, 16)

            @phase("sampler")
            def s() -> int:
                return int(torch.tensor([3]).item())

            assert s() == 3
            mark("accepted")
    finally:
        P.set_recording(False)
        prof.stop()
    out = tmp_path / "t.json"
    prof.export_chrome_trace(str(out))
    names = [e["name"] for e in json.loads(out.read_text())["traceEvents"] if e.get("cat") == "user_annotation"]
    # attrs stay out of the range name, so `phase` values are the plain names
    assert sorted(names) == ["accepted", "lm_head", "sampler", "step"]
