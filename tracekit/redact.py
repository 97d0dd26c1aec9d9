"""Keep secrets out of Parquet metadata and reports.

Real traces carry the profiled process's environment: Kineto's top-level
``metadata.system.env`` (a published H100 trace had a live Hugging Face token
there) and nsys's ``META_DATA_CAPTURE`` / ``TARGET_INFO_SYSTEM_ENV``. tracekit
never copies environments, and redacts secret-looking values in whatever
top-level facts it does keep.
"""

from __future__ import annotations

import re
from typing import Any

#: Key names whose values are never kept.
SECRET_KEY = re.compile(
    r"(token|secret|passw|pwd|api[_-]?key|access[_-]?key|private|credential|auth|session|cookie|signature|"
    r"^key$|_key$|-key$|pmi|slurm_job_|bearer|cert)",
    re.IGNORECASE,
)
#: Keys that hold a whole environment: dropped entirely.
ENV_KEY = re.compile(r"(^env$|environ|^environment$|_env$|system_env)", re.IGNORECASE)
#: Values that look like credentials whatever their key (long hex/base64 runs, known token prefixes).
SECRET_VALUE = re.compile(r"(hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|xox[bpars]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{20,}\.)")
REDACTED = "<redacted>"


def is_secret_key(key: str) -> bool:
    """True for key names such as ``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``, ``password``."""
    return bool(SECRET_KEY.search(key))


def scrub(value: Any, key: str = "") -> Any:
    """Copy of a JSON-like value with environments dropped and secret-looking values redacted."""
    if key and ENV_KEY.search(key):
        return REDACTED
    if key and is_secret_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


_KV = re.compile(r"(?P<k>[A-Za-z_][A-Za-z0-9_.-]*)=(?P<v>\"[^\"]*\"|'[^']*'|\S+)")


def redact_text(text: str) -> str:
    """Redact ``KEY=VALUE`` pairs with secret-looking keys and credential-shaped tokens in free text.

    Used on command lines: ``HF_TOKEN=abc python serve.py`` becomes ``HF_TOKEN=<redacted> python serve.py``.
    """
    text = _KV.sub(lambda m: f"{m['k']}={REDACTED}" if is_secret_key(m["k"]) else m[0], text)
    text = re.sub(r"(--[A-Za-z0-9-]*(?:token|secret|password|api-key|key)[= ])(\S+)", lambda m: m[1] + REDACTED, text, flags=re.IGNORECASE)
    return SECRET_VALUE.sub(REDACTED, text)
