#!/usr/bin/env bash
# Build (or reuse) the cached CPU-only venv with the REAL sglang wheel, for tests/test_capture_sglang.py.
#
#   bash tests/sglang_env.sh            # build or reuse; prints the venv's python
#   TRACEKIT_SGLANG_VENV=/some/dir bash tests/sglang_env.sh
#   bash tests/sglang_env.sh --rebuild  # delete the cached venv first
#
# Location: ${TRACEKIT_SGLANG_VENV:-$HOME/.cache/tracekit/sglang-venv} (outside the repo; ~2.2 GB).
# Why not `pip install sglang`: sglang 0.5.23 requires torch==2.14.1 (CUDA build on PyPI) plus ~20
# nvidia-*/cu13 kernel wheels. So: CPU torch 2.13.0 first (the only install WITH dependency
# resolution; checked beforehand with --dry-run to pull no nvidia-* wheel), then sglang, triton and
# the pure-Python modules that `import sglang.srt.plugins, sglang.srt.layers.logits_processor` and
# the tracekit annotation targets need, all --no-deps, then a stub torchvision (the PyPI torchvision
# does not load on the CPU torch: "operator torchvision::nms does not exist").
# tracekit itself is not installed there: the test puts the repo (and capture/) on PYTHONPATH.
# Set TRACEKIT_SGLANG_TORCH_INDEX=https://download.pytorch.org/whl/cpu where no local CPU torch
# 2.13.0 wheel is configured for pip (e.g. via find-links).
set -euo pipefail

VENV="${TRACEKIT_SGLANG_VENV:-$HOME/.cache/tracekit/sglang-venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="torch==2.13.0"
SGLANG_SPEC="sglang==0.5.23"
# An SGLang from before the plugin framework (0.5.12), for the import-time patch: its wheel alone
# (--no-deps, ~50 MB) in a --target folder that the test puts first on PYTHONPATH, so it runs on
# the dependencies installed for 0.5.23.
SGLANG_OLD_SPEC="sglang==0.5.9"
# Found by iterating the import check below and adding what was missing; where sglang 0.5.23's
# metadata pins a version (apache-tvm-ffi, compressed-tensors, openai, sentencepiece, tokenizers,
# transformers) that pin is used.
DEPS=(
  triton==3.7.0
  aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 annotated-doc==0.0.7 annotated-types==0.8.0
  anyio==4.16.0 apache-tvm-ffi==0.1.11 attrs==26.1.0 certifi==2026.10.18 click==8.5.1
  compressed-tensors==0.18.0 dill==0.4.1 distro==1.9.0 einops==0.8.2 fastapi==0.165.0 frozenlist==1.8.0 gguf==0.19.0
  h11==0.16.0 httpcore2==2.16.2 httpx==0.28.1 httpx2==2.16.2 huggingface-hub==2.4.0 idna==3.20 ipython==9.18.1
  loguru==0.7.3 msgspec==0.22.0 multidict==7.2.1 numpy==2.4.6 openai==2.8.0 opentelemetry-api==1.45.2
  orjson==3.13.0 packaging==26.3 partial-json-parser==0.2.1.1.post7 pillow==13.0.0 propcache==0.5.4
  psutil==7.2.2 pybase64==1.5.1 pydantic==2.14.3 pydantic-core==2.50.4 pygments==2.21.0 pyyaml==6.0.3
  pyzmq==27.3.0 regex==2026.11.15 requests==2.34.2 safetensors==0.8.0 sentencepiece==0.2.1
  setproctitle==1.3.8 sniffio==1.3.1 starlette==1.10.0 tokenizers==0.23.2 tqdm==4.70.1 traitlets==5.16.1
  transformers==5.19.0 truststore==0.10.5 typing-inspection==0.4.5 urllib3==2.8.0 uvicorn==0.54.0
  yarl==1.25.1
)
CHECK_IMPORTS="import sglang.srt.plugins, sglang.srt.layers.logits_processor, sglang.srt.layers.sampler, \
sglang.srt.speculative.eagle_worker_v2, sglang.srt.speculative.eagle_worker_common, \
sglang.srt.model_executor.runner.decode_cuda_graph_runner, sglang.srt.speculative.eagle_draft_cuda_graph_runner"

OWNER_MARK=".tracekit-sglang-venv"      # written right after `python -m venv`: only such a dir is ever deleted
DONE_MARK=".tracekit-sglang-complete"   # written last, holds the spec hash: present + matching = reuse
SPEC_HASH=$(printf '%s\n' "$TORCH_SPEC" "$SGLANG_SPEC" "$SGLANG_OLD_SPEC" "${DEPS[@]}" stub-v1 | sha256sum | cut -c1-16)
OLD_DIR="$VENV/sglang-old"

log() { echo "sglang_env: $*" >&2; }
pipq() {  # pip, minus the noise of this machine's unreadable extra index entries
  "$VENV/bin/python" -m pip "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
remove_venv() {
  if [ -d "$VENV" ]; then
    if [ -f "$VENV/$OWNER_MARK" ]; then rm -rf "$VENV"; else
      log "refusing to delete $VENV: not made by this script (no $OWNER_MARK)"; exit 2; fi
  fi
}

if [ "${1:-}" = "--rebuild" ]; then remove_venv; fi
if [ -f "$VENV/$DONE_MARK" ] && [ "$(head -1 "$VENV/$DONE_MARK")" = "$SPEC_HASH" ] \
   && (cd / && "$VENV/bin/python" -W ignore -c "$CHECK_IMPORTS") >/dev/null 2>&1; then
  log "reusing $VENV ($(sed -n 2p "$VENV/$DONE_MARK"))"
  echo "$VENV/bin/python"; exit 0
fi
remove_venv   # absent, incomplete or built from another spec: start over

t0=$(date +%s)
log "building $VENV"
mkdir -p "$(dirname "$VENV")"
"$PY" -m venv "$VENV"
touch "$VENV/$OWNER_MARK"

# 1. CPU torch, the only install with dependency resolution. Dry-run first: abort before
#    downloading anything big if the resolver would bring a CUDA torch or nvidia-* wheels.
TORCH_ARGS=("$TORCH_SPEC")
if [ -n "${TRACEKIT_SGLANG_TORCH_INDEX:-}" ]; then
  TORCH_ARGS+=(--extra-index-url "$TRACEKIT_SGLANG_TORCH_INDEX"); fi
pipq install -q --dry-run --ignore-installed --report "$VENV/torch-plan.json" "${TORCH_ARGS[@]}"
"$VENV/bin/python" - "$VENV/torch-plan.json" <<'EOF'
import json, sys
plan = json.load(open(sys.argv[1]))["install"]
names = {p["metadata"]["name"].lower(): p["metadata"]["version"] for p in plan}
bad = sorted(n for n in names if n.startswith(("nvidia-", "cuda-", "triton")))
if bad:
    sys.exit(f"sglang_env: refusing: torch install would pull a CUDA build ({names.get('torch')}, {bad}); "
             "set TRACEKIT_SGLANG_TORCH_INDEX=https://download.pytorch.org/whl/cpu")
print("sglang_env: torch plan:", ", ".join(f"{n}=={v}" for n, v in sorted(names.items())), file=sys.stderr)
EOF
rm -f "$VENV/torch-plan.json"
pipq install -q "${TORCH_ARGS[@]}"
"$VENV/bin/python" -W ignore -c "import torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(), torch.__version__"

# 2. sglang, triton and the pure-Python deps: never resolved.
pipq install -q --no-deps "$SGLANG_SPEC" "${DEPS[@]}"

# 2b. the pre-plugin SGLang, beside (not inside) site-packages.
pipq install -q --no-deps --target "$OLD_DIR" "$SGLANG_OLD_SPEC"

# 3. torchvision stub (sglang.srt.configs imports torchvision via multimodal/internvl_utils.py).
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
"$VENV/bin/python" - "$SITE" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1]) / "torchvision"
stub = '''"""tracekit's torchvision stub (the PyPI torchvision does not load on the CPU torch 2.13.0).

Names import; using any of them raises. Only what importing sglang needs.
"""
import enum


class InterpolationMode(enum.Enum):
    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


class Missing:
    def __init__(self, name):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Missing(f"{self._name}.{attr}")

    def __call__(self, *a, **k):
        raise RuntimeError(f"{self._name}: torchvision is a stub in this environment (tracekit sglang test venv)")

    def __mro_entries__(self, bases):
        return (object,)


def module_getattr(modname):
    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Missing(f"{modname}.{attr}")
    return __getattr__
'''
mods = {
    "__init__.py": '__version__ = "0.28.0"\n',
    "transforms/__init__.py": "from torchvision._stub import InterpolationMode\n",
    "transforms/functional.py": "from torchvision._stub import InterpolationMode\n",
    "transforms/v2/__init__.py": "",
    "transforms/v2/functional.py": "from torchvision._stub import InterpolationMode\n",
    "io/__init__.py": "",
    "ops/__init__.py": "",
}
(root / "transforms" / "v2").mkdir(parents=True, exist_ok=True)
(root / "io").mkdir(exist_ok=True)
(root / "ops").mkdir(exist_ok=True)
(root / "_stub.py").write_text(stub)
for rel, head in mods.items():
    (root / rel).write_text(head + "from torchvision._stub import module_getattr as _mg\n__getattr__ = _mg(__name__)\n")
EOF

# 4. Checks: CPU torch only, no nvidia-* / real torchvision, and sglang imports.
"$VENV/bin/python" -W ignore -c "import torch; assert '+cpu' in torch.__version__ or not torch.cuda.is_available(), torch.__version__"
if pipq list --format=freeze | grep -i -E '^(nvidia-|cuda-|torchvision=)'; then
  log "unexpected CUDA/torchvision packages installed (listed above)"; exit 1; fi
(cd / && "$VENV/bin/python" -W ignore -c "$CHECK_IMPORTS; import sglang; print('sglang', sglang.__version__)") >&2
(cd / && PYTHONPATH="$OLD_DIR" "$VENV/bin/python" -W ignore -c \
  "import sglang.srt.layers.logits_processor, sglang.srt.layers.sampler; import sglang; print('sglang (old)', sglang.__version__)") >&2

secs=$(( $(date +%s) - t0 ))
size=$(du -sh "$VENV" | cut -f1)
printf '%s\nbuilt %s in %ss, %s\n' "$SPEC_HASH" "$(date -u +%FT%TZ)" "$secs" "$size" > "$VENV/$DONE_MARK"
log "done in ${secs}s, $size"
echo "$VENV/bin/python"
