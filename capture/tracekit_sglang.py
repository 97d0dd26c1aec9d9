"""SGLang auto-annotation: tracekit phase ranges around SGLang's sampler, lm_head, EAGLE stages, graph replays.

Two ways in, one table:

- SGLang >= 0.5.12 loads us itself through the ``sglang.srt.plugins`` entry
  point declared in ``capture/tracekit_sglang-0.1.dist-info`` (found because
  ``tracekit capture`` puts ``capture/`` on ``PYTHONPATH``; nothing is
  installed). SGLang calls ``load_plugins()`` in the main process *and* in every
  spawned scheduler, then applies the hooks registered here through its own
  ``HookRegistry`` (AROUND hooks), which also re-points ``from X import f``
  copies.
- Older SGLang has no plugin framework: the capture bootstrap (which runs in
  every Python process of a capture) installs :class:`ImportPatcher`, a
  meta-path finder that wraps each target right after its module has executed
  and before any other module can ``from X import f`` a copy of it. It stands
  down when the installed SGLang is >= 0.5.12 (the plugin does the work).

So no SGLang source is edited and every scheduler gets the ranges.

Why a version-keyed table: SGLang renames these internals between releases
(EAGLEWorker v1 is gone by 0.5.17, ``_compute_lm_head`` replaced
``_get_logits`` as the matmul site, graph runners moved). A target missing in
the installed version is skipped, and all skipped targets are listed in one
warning.

Token counts: the ``verify`` targets also record, right after verify returns and in every
scheduler process, ``tracekit.count(accepted=, drafted=, batch_size=, tokens=)`` from the real
verify output (:func:`verify_counts`): EAGLE v2's ``GenerationBatchResult.accept_lens`` (per
request, bonus token included) or v1's ``EagleVerifyOutput.accept_length_per_req_cpu`` (bonus
excluded). ``drafted`` = requests x (``speculative_num_draft_tokens`` - 1), the draft tokens
verified. v2 keeps ``accept_lens`` on the GPU under the overlap scheduler: reading it would add a
device sync inside the profile, so there only ``batch_size`` and ``drafted`` are recorded unless
``TRACEKIT_SGLANG_ACCEPT_SYNC=1`` allows that sync (queries/tokens.sql then says which count is
missing instead of guessing). SGLang's own ``step[VERIFY bs=N]`` range ends inside verify, so
these events fall just after it; tokens.sql gives a count to the latest step begun before it.

Inert unless ``TRACEKIT_CAPTURE`` is set (and ``TRACEKIT_SGLANG`` is not ``0``).
Caveat (SGLang's, not ours): ranges around code that a CUDA graph replays are
only emitted at capture time; the replay itself is covered by the graph
runner targets.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import pkgutil
import sys
from collections.abc import Callable, Iterable
from typing import Any

from tracekit_hooks import run_after_exec

# (first version, last version or None, dotted target, tracekit phase name)
# Versions are inclusive; ranges come from the 0.5.9 / 0.5.12 / 0.5.17 / 0.5.23 wheels (see docs/notes on SGLang).
TARGETS: list[tuple[tuple[int, ...], tuple[int, ...] | None, str, str]] = [
    # lm_head matmul: `_compute_lm_head` (the matmul alone) where it exists, else `_get_logits` ("a|b": first that resolves)
    (
        (0, 5, 0),
        None,
        "sglang.srt.layers.logits_processor.LogitsProcessor._compute_lm_head"
        "|sglang.srt.layers.logits_processor.LogitsProcessor._get_logits",
        "lm_head",
    ),
    ((0, 5, 0), None, "sglang.srt.layers.sampler.Sampler.forward", "sampler"),
    # EAGLE v2 (overlap scheduler): 0.5.12+ (the default there), the only one from 0.5.17
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker.draft", "draft"),
    (
        (0, 5, 12),
        None,
        "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker._draft_extend_for_decode",
        "draft_extend",
    ),
    (
        (0, 5, 12),
        None,
        "sglang.srt.speculative.eagle_worker_v2.EagleDraftWorker._draft_extend_for_prefill",
        "draft_extend",
    ),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EAGLEWorkerV2.verify", "verify"),
    ((0, 5, 12), None, "sglang.srt.speculative.eagle_worker_v2.EAGLEWorkerV2._forward_prefill_batch", "extend"),
    # EAGLE v1 (no overlap, topk > 1): up to 0.5.12
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.draft", "draft"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.verify", "verify"),
    (
        (0, 5, 0),
        (0, 5, 16),
        "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_draft_extend_after_decode",
        "draft_extend",
    ),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_draft_extend", "draft_extend"),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_worker.EAGLEWorker.forward_target_extend", "extend"),
    # candidate / tree building (0.5.23 defines build_eagle_verify_input in eagle_worker_common, not eagle_utils;
    # HookRegistry also re-points eagle_worker_v2's `from ... import build_eagle_verify_input` copy)
    (
        (0, 5, 17),
        None,
        "sglang.srt.speculative.eagle_worker_common.build_eagle_verify_input"
        "|sglang.srt.speculative.eagle_utils.build_eagle_verify_input",
        "candidate",
    ),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.speculative.eagle_utils.build_tree_kernel_efficient", "candidate"),
    # CUDA graph replays (decode / target verify; the EAGLE draft runners subclass this in 0.5.17+)
    (
        (0, 5, 17),
        None,
        "sglang.srt.model_executor.runner.decode_cuda_graph_runner.DecodeCudaGraphRunner.execute",
        "decode_graph",
    ),
    ((0, 5, 0), (0, 5, 16), "sglang.srt.model_executor.cuda_graph_runner.CudaGraphRunner.replay", "decode_graph"),
    (
        (0, 5, 0),
        (0, 5, 16),
        "sglang.srt.speculative.eagle_draft_cuda_graph_runner.EAGLEDraftCudaGraphRunner.replay",
        "draft_graph",
    ),
    (
        (0, 5, 17),
        None,
        "sglang.srt.speculative.eagle_draft_cuda_graph_runner.EAGLEDraftCudaGraphRunner.execute",
        "draft_graph",
    ),
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


def targets_for(
    version: tuple[int, ...], table: Iterable[tuple[tuple[int, ...], tuple[int, ...] | None, str, str]] = TARGETS
) -> list[tuple[str, str]]:
    """(target, phase) pairs the table lists for ``version``."""
    v = version[:3]
    return [(t, name) for lo, hi, t, name in table if lo <= v and (hi is None or v <= hi)]


def resolve(targets: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """Split into (targets that resolve in this interpreter, dotted paths that do not).

    A target ``a|b`` names alternatives: the first that resolves is used.
    """
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
        from tracekit.annotate import phase  # optional: the profiled Python may lack tracekit

        return phase
    except Exception:
        pass

    @contextlib.contextmanager
    def rng(name: str) -> Any:
        boot = sys.modules.get("tracekit_bootstrap")
        if boot is not None and boot.S.recording:
            from torch.autograd.profiler import record_function  # torch: loaded by SGLang already

            with record_function(name):
                yield
        else:
            yield

    return rng


def _count_factory() -> Callable[..., None]:
    """tracekit.count when the profiled Python has tracekit, else the same event through record_function."""
    try:
        from tracekit.annotate import count  # optional: the profiled Python may lack tracekit

        return count
    except Exception:
        pass

    def cnt(**counts: Any) -> None:
        boot = sys.modules.get("tracekit_bootstrap")
        if boot is not None and boot.S.recording:
            from torch.autograd.profiler import record_function  # torch: loaded by SGLang already

            # the name format of tracekit.annotate.count_event_name (queries/tokens.sql parses it)
            with record_function("tracekit.count" + "".join(f" {k}={counts[k]!r}" for k in sorted(counts))):
                pass

    return cnt


def verify_counts(result: Any, worker: Any = None) -> dict[str, int]:
    """Token counts of one EAGLE verify call from its return value (v2 result or v1 tuple); {} if none.

    Never forces a GPU sync: a CUDA ``accept_lens`` is read only with TRACEKIT_SGLANG_ACCEPT_SYNC=1.
    """
    out: dict[str, int] = {}
    ndt = getattr(result, "speculative_num_draft_tokens", None) or getattr(worker, "speculative_num_draft_tokens", None)
    lens = getattr(result, "accept_lens", None)
    if lens is not None:  # v2: GenerationBatchResult, accept_lens per request, bonus token included
        bs = int(lens.shape[0]) if hasattr(lens, "shape") else len(lens)
        out["batch_size"] = bs
        if ndt:
            out["drafted"] = bs * (int(ndt) - 1)
        if not getattr(lens, "is_cuda", False) or os.environ.get("TRACEKIT_SGLANG_ACCEPT_SYNC") == "1":
            vals = [int(x) for x in (lens.tolist() if hasattr(lens, "tolist") else lens)]
            out["tokens"] = sum(vals)
            out["accepted"] = sum(vals) - bs
        return out
    if isinstance(result, tuple) and len(result) >= 2:  # v1: (logits_output, EagleVerifyOutput, batch, graph)
        per_req = getattr(result[1], "accept_length_per_req_cpu", None)
        if per_req is not None:  # accepted draft tokens per request on the CPU, bonus excluded
            vals = [int(x) for x in per_req]
            out.update(batch_size=len(vals), accepted=sum(vals), tokens=sum(vals) + len(vals))
            if ndt:
                out["drafted"] = len(vals) * (int(ndt) - 1)
    return out


def around(name: str) -> Callable[..., Any]:
    """An AROUND hook for SGLang's HookRegistry: ``fn(original, *args, **kwargs)`` inside a range.

    The ``verify`` hook also records the token counts of the call (:func:`verify_counts`).
    """
    rng = _range_factory()
    cnt = _count_factory() if name == "verify" else None

    def hook(original: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with rng(name):
            out = original(*args, **kwargs)
        if cnt is not None:
            try:
                counts = verify_counts(out, args[0] if args else None)
                if counts:
                    cnt(**counts)
            except Exception as e:  # never break the server for a count
                print(f"tracekit: sglang verify counts skipped: {e!r}", file=sys.stderr)
        return out

    hook.__name__ = f"tracekit_{name}"
    return hook


def _wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    """``fn`` inside a ``name`` range (the import-time patch's equivalent of an AROUND hook)."""
    hook = around(name)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return hook(fn, *args, **kwargs)

    return wrapper


def _installed_version() -> tuple[int, ...] | None:
    """SGLang's version from its (already imported) package, else its dist metadata; None if unknown."""
    mod = sys.modules.get("sglang")
    v = getattr(mod, "__version__", None) if mod is not None else None
    if not v:
        try:
            v = importlib.metadata.version("sglang")
        except Exception:
            return None
    return parse_version(str(v))


class ImportPatcher:
    """Meta-path finder that wraps table targets as their modules are imported (SGLang < 0.5.12).

    Only modules named in the table are intercepted; each is found by the other
    finders as usual and its loader's ``exec_module`` is extended by one step:
    after the module body has run, the targets it defines are wrapped in place
    (``Class.method`` or ``function``; for ``a|b`` alternatives, the first that
    exists in an imported module). Targets whose module was imported but that
    it does not define are listed in :attr:`missing`; modules never imported
    are not checked (that code did not run, so it needs no range).
    """

    PLUGIN_FROM = (0, 5, 12)

    def __init__(
        self,
        table: Iterable[tuple[tuple[int, ...], tuple[int, ...] | None, str, str]] = TARGETS,
        version: tuple[int, ...] | None = None,
    ) -> None:
        self.table = list(table)
        self.modules: dict[str, list[tuple[str, str]]] = {}  # module -> [(alternatives, phase)]
        for _, _, alts, name in self.table:
            for t in alts.split("|"):
                rows = self.modules.setdefault(self._split(t)[0], [])
                if (alts, name) not in rows:  # alternatives in one module: one row
                    rows.append((alts, name))
        self.patched: list[tuple[str, str]] = []
        self.missing: list[str] = []
        self._done: set[str] = set()  # table rows (alternatives text) already wrapped
        self._busy: set[str] = set()
        self._version = version  # None: read from the installed sglang at the first target module
        self._stood_down = False

    @staticmethod
    def _split(target: str) -> tuple[str, str, str]:
        """``pkg.mod.Class.method`` -> (module, owner path, attribute); owner '' for module functions."""
        parts = target.split(".")
        # The owner is a class when its name starts with an uppercase letter (SGLang's naming, and the table's).
        i = len(parts) - 1
        while i > 0 and parts[i - 1][:1].isupper():
            i -= 1
        return ".".join(parts[:i]), ".".join(parts[i:-1]), parts[-1]

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.modules or name in self._busy or self._stood_down:
            return None
        self._busy.add(name)
        try:
            spec = None
            for finder in sys.meta_path:
                if finder is self or not hasattr(finder, "find_spec"):
                    continue
                spec = finder.find_spec(name, path, target)
                if spec is not None:
                    break
        finally:
            self._busy.discard(name)
        return run_after_exec(spec, self.patch_module, f"SGLang import-time annotation of {name}")

    def patch_module(self, module: Any) -> list[tuple[str, str]]:
        """Wrap the targets defined in ``module`` (just executed); returns the (target, phase) pairs wrapped."""
        if self._version is None:
            self._version = _installed_version() or (0,)
        if self._version[:3] >= self.PLUGIN_FROM:
            self._stood_down = True  # the sglang.srt.plugins entry point annotates this version
            return []
        wanted = {alts for alts, _ in targets_for(self._version, self.table)}
        done: list[tuple[str, str]] = []
        missing: list[str] = []
        for alts, name in self.modules.get(module.__name__, []):
            if alts not in wanted or alts in self._done:
                continue
            for t in alts.split("|"):
                mod, owner_path, attr = self._split(t)
                if mod != module.__name__:
                    continue
                owner: Any = module
                for part in filter(None, owner_path.split(".")):
                    owner = getattr(owner, part, None)
                fn = getattr(owner, "__dict__", {}).get(attr)
                if fn is None:
                    continue
                if isinstance(fn, (staticmethod, classmethod)):
                    setattr(owner, attr, type(fn)(_wrap(fn.__func__, name)))
                else:
                    setattr(owner, attr, _wrap(fn, name))
                self._done.add(alts)
                done.append((t, name))
                break
            else:
                # Missing only once every alternative's module has been imported without defining it.
                if all(
                    self._split(t)[0] in sys.modules or self._split(t)[0] == module.__name__ for t in alts.split("|")
                ):
                    missing.append(alts)
        self.patched += done
        if missing:  # one warning per module, listing every target it lacks
            self.missing += missing
            print(
                f"tracekit: sglang {'.'.join(map(str, self._version))}: skipped {len(missing)} annotation target(s) "
                "missing in this version: " + ", ".join(missing),
                file=sys.stderr,
            )
        return done


def install_import_patch() -> ImportPatcher | None:
    """Arm the import-time patch for SGLang < 0.5.12 (bootstrap calls this in every captured process)."""
    if not active():
        return None
    for f in sys.meta_path:
        if isinstance(f, ImportPatcher):
            return f
    patcher = ImportPatcher()
    sys.meta_path.insert(0, patcher)
    return patcher


def active() -> bool:
    return bool(os.environ.get("TRACEKIT_CAPTURE")) and os.environ.get("TRACEKIT_SGLANG", "1") != "0"


def register() -> list[tuple[str, str]]:
    """SGLang plugin entry point: register AROUND hooks for every target of this version; returns them."""
    if not active():
        return []
    try:
        import sglang  # the host program: present only when SGLang runs us

        version = parse_version(getattr(sglang, "__version__", "0"))
        from sglang.srt.plugins.hook_registry import HookRegistry, HookType  # sglang >= 0.5.12 only
    except Exception as e:
        print(
            f"tracekit: SGLang auto-annotation off: needs sglang >= 0.5.12 with its plugin framework ({e!r})",
            file=sys.stderr,
        )
        return []
    ok, missing = resolve(targets_for(version))
    for target, name in ok:
        HookRegistry.register(target, around(name), HookType.AROUND)
    if missing:
        print(
            f"tracekit: sglang {'.'.join(map(str, version))}: skipped {len(missing)} annotation target(s) missing in this version: "
            + ", ".join(missing),
            file=sys.stderr,
        )
    return ok
