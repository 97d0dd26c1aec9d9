"""Keep secrets out of everything tracekit writes or prints: the one list of what counts as a secret.

Where secrets come from:

- Real traces carry the profiled process's environment: Kineto's top-level
  ``metadata.system.env`` (a published H100 trace had a live Hugging Face
  token there) and nsys's ``META_DATA_CAPTURE`` / ``TARGET_INFO_SYSTEM_ENV``.
  tracekit never copies environments, and redacts secret-looking values in
  whatever top-level facts it does keep (:func:`scrub`).
- Command lines: ``tracekit capture -- python serve.py --api-key S`` records
  the command (``capture.json``), each process's ``sys.argv``
  (``raw/<pid>.proc.json``, written by the capture bootstrap), prints them in
  its summary, and nsys stores the command in its export. Every one goes
  through :func:`redact_argv` (argument lists) or :func:`redact_text` (one
  string).

What is redacted: the value of a flag or ``KEY=VALUE`` whose name looks like a
secret (``--api-key S``, ``--api_key=S``, ``--hf_token T``, ``--x-key V``,
``HF_TOKEN=T``, ``"password": "P"``), URL credentials (``https://user:pass@host``
keeps ``https://<redacted>@host``) and credential-shaped values whatever their
name (``hf_...``, ``ghp_...``, ``sk-...``, AWS key ids, JWTs). Names are judged
word by word (``max_tokens``, ``tokenizer_path``, ``--tp-size`` are not
secrets; ``token``, ``api_key``, ``aws_secret_access_key`` are).

This module must import only the standard library: the capture bootstrap
(``capture/tracekit_bootstrap.py``) loads it by path inside the profiled
process, which may run a Python without tracekit (a test checks this).
"""

from __future__ import annotations

import re
from typing import Any

REDACTED = "<redacted>"

#: Last word of a name that makes it a secret: ``HF_TOKEN``, ``x_key``, ``db-pass``, ``authToken``.
_SECRET_LAST = re.compile(
    r"^(?:[a-z0-9]*token|[a-z0-9]*secret|[a-z0-9]*passw(?:or)?d|pwd|pass|passphrase|[a-z0-9]*apikey|accesskey|"
    r"secretkey|privatekey|key|credentials?|auth|authorization|cookie|signature|bearer)$"
)
#: A word that makes a name secret wherever it stands: ``SECRET_NAME``, ``password_file``.
_SECRET_ANY = frozenset({"secret", "password", "passwd", "credential", "credentials", "apikey", "private"})
#: Keys that hold a whole environment: dropped entirely.
ENV_KEY = re.compile(r"(^env$|environ|^environment$|_env$|system_env)", re.IGNORECASE)
#: Values that look like credentials whatever their key (known token prefixes, AWS key ids, JWTs).
SECRET_VALUE = re.compile(
    r"(hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|sk-[A-Za-z0-9_-]{20,}|"
    r"xox[bpars]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|eyJ[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_.-]*)"
)
#: ``scheme://userinfo@``: the userinfo (user, user:password or a token) is replaced.
_URL_CRED = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)([^/\s@'\"]+)@")
#: ``--name VALUE`` / ``--name=VALUE`` / ``-name=VALUE`` inside one string (a shell command line).
_FLAG = re.compile(r"(?<![^\s'\"])(--?[A-Za-z][A-Za-z0-9_.-]*)(=|[ \t]+)(\"[^\"]*\"|'[^']*'|[^\s'\"]+)")
#: ``NAME=VALUE`` (environment assignment, Python/CLI key=value) not preceded by a dash.
_KV = re.compile(r"(?<![\w.-])([A-Za-z_][A-Za-z0-9_.-]*)=(\"[^\"]*\"|'[^']*'|[^\s,;&]+)")
#: ``"name": "value"`` (JSON or a Python dict literal inside an argument).
_JSON_KV = re.compile(r"([\"'])([A-Za-z_][A-Za-z0-9_.-]*)\1(\s*:\s*)([\"'])(.*?)\4")


def _words(name: str) -> list[str]:
    """``--hfToken`` -> ``['hf', 'token']``; ``AWS_SECRET_ACCESS_KEY`` -> ``['aws', 'secret', 'access', 'key']``."""
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name.lstrip("-"))
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def is_secret_key(key: str) -> bool:
    """True for names such as ``HF_TOKEN``, ``--api-key``, ``AWS_SECRET_ACCESS_KEY``, ``password``; not ``max_tokens``."""
    words = _words(key)
    if not words:
        return False
    if _SECRET_LAST.match(words[-1]) or any(w in _SECRET_ANY for w in words):
        return True
    # cluster job facts that Kineto copies from the environment (PMI_*, SLURM_JOB_*): identify the job, not needed
    return words[0].startswith("pmi") or words[:2] == ["slurm", "job"]


def _flag_sub(m: re.Match[str]) -> str:
    name, sep, value = m[1], m[2], m[3]
    if not is_secret_key(name) or (sep != "=" and value.startswith("-")):
        return m[0]
    return f"{name}{sep}{REDACTED}"


def redact_text(text: str) -> str:
    """One string (a shell command line, a URL, a metadata value) with its secrets replaced by ``<redacted>``.

    ``HF_TOKEN=abc python serve.py --api-key k`` becomes
    ``HF_TOKEN=<redacted> python serve.py --api-key <redacted>``. A secret flag
    followed by another option (``--auth --port 1``) redacts nothing.
    """
    text = _URL_CRED.sub(lambda m: f"{m[1]}{REDACTED}@", text)
    text = _FLAG.sub(_flag_sub, text)
    text = _KV.sub(lambda m: f"{m[1]}={REDACTED}" if is_secret_key(m[1]) else m[0], text)
    text = _JSON_KV.sub(
        lambda m: f"{m[1]}{m[2]}{m[1]}{m[3]}{m[4]}{REDACTED}{m[4]}" if is_secret_key(m[2]) else m[0], text
    )
    return SECRET_VALUE.sub(REDACTED, text)


def redact_argv(argv: list[Any]) -> list[Any]:
    """An argument list (``sys.argv``, a capture command) with secrets redacted, same length.

    Besides what :func:`redact_text` finds inside each element, the element
    after a secret flag is the value (``["--api-key", "S"]``), unless it is
    itself an option (starts with ``--``) or the flag already has ``=VALUE``.
    """
    out: list[Any] = []
    take_next = False
    for a in argv:
        if not isinstance(a, str):
            out.append(a)
            take_next = False
            continue
        if take_next and not a.startswith("--"):
            out.append(REDACTED)
            take_next = False
            continue
        take_next = a.startswith("-") and "=" not in a and " " not in a and len(a) > 1 and is_secret_key(a)
        out.append(redact_text(a))
    return out


def scrub(value: Any, key: str = "") -> Any:
    """Copy of a JSON-like value with environments dropped and secret-looking values redacted.

    Lists of strings are treated as argument lists (:func:`redact_argv`): a
    ``["--token", "T"]`` in trace metadata loses ``T``.
    """
    if key and ENV_KEY.search(key):
        return REDACTED
    if key and is_secret_key(key):
        return REDACTED
    if isinstance(value, dict):
        return {k: scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in redact_argv(value)]
    if isinstance(value, str):
        return redact_text(value)
    return value
