"""SGLang auto-annotation: tracekit phase ranges around SGLang's sampler, lm_head, EAGLE stages, graph replays.

Loaded by SGLang itself (>= 0.5.12) through the ``sglang.srt.plugins`` entry
point declared in ``capture/tracekit_sglang-0.1.dist-info`` (found because
``tracekit capture`` puts ``capture/`` on ``PYTHONPATH``; nothing is
installed). SGLang calls ``load_plugins()`` in the main process *and* in every
spawned scheduler, then applies the hooks registered here through its own
``HookRegistry`` (AROUND hooks), which also re-points ``from X import f``
copies. So no SGLang source is edited and every scheduler gets the ranges.

Why a version-keyed table: SGLang renames these internals between releases
(EAGLEWorker v1 is gone by 0.5.17, ``_compute_lm_head`` replaced
``_get_logits`` as the matmul site, graph runners moved). A target missing in
the installed version is skipped, and all skipped targets are listed in one
warning.

Inert unless ``TRACEKIT_CAPTURE`` is set (and ``TRACEKIT_SGLANG`` is not ``0``).
Caveat (SGLang's, not ours): ranges around code that a CUDA graph replays are
only emitted at capture time; the replay itself is covered by the graph
runner targets.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Iterable

# (first version, last version or None, dotted target, tracekit phase name)
# Versions are inclusive; ranges come from the 0.5.9 / 0.5.12 / 0.5.17 / 0.5.23 wheels (see docs/notes on SGLang).
TARGETS: list[tuple[tuple[int, ...], tuple[int, ...] | None, str, str]] = [
    # lm_head matmul: `_compute_lm_head` (the matmul alone) where it exists, else `_get_logits` ("a|b": first that resolves)
    ((0, 5, 0), None, "sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head"
                      "|sglang.srt.layers.logits_processor.LogitsProcessor._get_logits", "lm_head"),
    ((0, 5, 0), None, "sglang.srt.layers.sampler.Sampler.forward", "sampler"),
    # EAGLE v2 (overlap scheduler): 0.5.12+ (the default there), the only one from 0.5.17
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker.draft", "draft"),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker._draft_extend_for_decode", "draft_extend"),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker._draft_extend_for_prefill", "draft_extend"),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EAGLEWorkerV2.verify", "verify"),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EAGLEWorkerV2._forward_prefill_batch", "extend"),
    # EAGLE v1 (no overlap, topk > 1): up to 0.5.12
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.draft", "draft"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.verify", "verify"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_draft_extend_after_decode", "draft_extend"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_draft_extend", "draft_extend"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_target_extend", "extend"),
    # candidate / tree building (0.5.23 defines build_eagle_verify_input in eagle_worker_common, not eagle_utils;
    # HookRegistry also re-points eagle_worker_v2's `from ... import build_eagle_verify_input` copy)
    ((0, 5, 17), None, "sglang.srt.speculative.eagle_worker_common.build_eagle_verify_input"
                       "|sglang.srt.speculative.eagle_utils.build_eagle_verify_input", "candidate"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_utils.build_tree_kernel_efficient", "candidate"),
    # CUDA graph replays (decode / target verify; the EAGLE draft runners subclass this in 0.5.17+)
    ((0, 5, 17), None, "sglang.srt.model_executor.runner.decode_cuda_graph_runner.DecodeCudaGraphRunner.execute", "decode_graph"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.model_executor.cuda_graph_runner.CudaGraphRunner.replay", "decode_graph"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_draft_cuda_graph_runner.EAGLEDraftCudaGraphRunner.replay", "draft_graph"),
    ((0, 5, 17), None, "sglang.srt.speculative.eagle_draft_cuda_graph_runner.EAGLEDraftCudaGraphRunner.execute", "draft_graph"),
]

#: Entry-point name; SGLANG_PLUGINS (a whitelist) must contain it for SGLang to load us.
PLUGIN_NAME = "tracekit"


def parse_version(v: str) -> tuple[int, ...]:
    """``0.5.12.post1`` -> (0, 5, 12); non-numeric tails are dropped (good enough to key the table)."""
    out: list[int] = []
    for part in v.split("."):
        digits = ""
        for c in part:  # leading digits only: "23rc1" -> 23
            if not c.isdigit():
                break
            digits += c
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def targets_for(version: tuple[int, ...], table: Iterable[tuple[tuple[int, ...], tuple[int, ...] | None, str, str]] = TARGETS) -> list[tuple[str, str]]:
    """(target, phase) pairs the table lists for ``version``."""
    v = version[:3]
    return [(t, name) for lo, hi, t, name in table if lo <= v and (hi is None or v <= hi)]


def resolve(targets: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split into (targets that resolve in this interpreter, dotted paths that do not).

    A target ``a|b`` names alternatives: the first that resolves is used.
    """
    import pkgutil

    ok, missing = [], []
    for alts, name in targets:
        for t in alts.split("|"):
            try:
                pkgutil.resolve_name(t)
            except Exception:
                continue
            ok.append((t, name))
            break
        else:
            missing.append(alts)
    return ok, missing


def _range_factory() -> Callable[[str], Any]:
    """tracekit.phase when the profiled Python has tracekit, else an equivalent minimal range."""
    try:
        from tracekit.annotate import phase

        return phase
    except Exception:
        pass
    import contextlib

    @contextlib.contextmanager
    def rng(name: str) -> Any:
        boot = sys.modules.get("tracekit_bootstrap")
        if boot is not None and boot.S.recording:
            from torch.autograd.profiler import record_function

            with record_function(name):
                yield
        else:
            yield

    return rng


def around(name: str) -> Callable[..., Any]:
    """An AROUND hook for SGLang's HookRegistry: ``fn(original, *args, **kwargs)`` inside a range."""
    rng = _range_factory()

    def hook(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with rng(name):
            return original(*args, **kwargs)

    hook.__name__ = f"tracekit_{name}"
    return hook


def active() -> bool:
    return bool(os.environ.get("TRACEKIT_CAPTURE")) and os.environ.get("TRACEKIT_SGLANG", "1") != "0"


def register() -> list[tuple[str, str]]:
    """SGLang plugin entry point: register AROUND hooks for every target of this version; returns them."""
    if not active():
        return []
    try:
        import sglang

        version = parse_version(getattr(sglang, "__version__", "0"))
        from sglang.srt.plugins.hook_registry import HookRegistry, HookType
    except Exception as e:
        print(f"tracekit: SGLang auto-annotation off: needs sglang >= 0.5.12 with its plugin framework ({e!r})", file=sys.stderr)
        return []
    ok, missing = resolve(targets_for(version))
    for target, name in ok:
        HookRegistry.register(target, around(name), HookType.AROUND)
    if missing:
        print(f"tracekit: sglang {'.'.join(map(str, version))}: skipped {len(missing)} annotation target(s) missing in this version: "
              + ", ".join(missing), file=sys.stderr)
    return ok
