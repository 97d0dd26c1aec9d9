"""Shared fixtures: where the real traces live, and a tiny Kineto trace builder."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KINETO_DIR = SHARED / "traces" / "kineto"
NSYS_DIR = SHARED / "traces" / "nsys"


def kineto_files() -> list[Path]:
    """Every real Kineto trace under ../shared/traces/kineto (empty when ../shared is absent)."""
    return sorted(KINETO_DIR.rglob("*.json.gz")) if KINETO_DIR.exists() else []


needs_shared = pytest.mark.skipif(not KINETO_DIR.exists(), reason="../shared/traces is absent: real-trace tests need the shared traces beside the repo")


#: The oldest Java PySpark 4 runs on (pyproject's ``spark`` extra allows pyspark 4).
SPARK_MIN_JAVA = 17


def java_major(version_text: str) -> int | None:
    """The major Java version in ``java -version``'s output (``"17.0.15"`` -> 17, the old ``"1.8.0_292"`` -> 8), else None."""
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_text)
    if m is None:
        return None
    major = int(m[1])
    return int(m[2] or 0) if major == 1 else major


def java_executable() -> str | None:
    """The ``java`` Spark would start: ``$JAVA_HOME/bin/java`` when JAVA_HOME is set (as spark-class does), else PATH's."""
    home = os.environ.get("JAVA_HOME")
    if home:
        exe = Path(home) / "bin" / "java"
        return str(exe) if exe.is_file() and os.access(exe, os.X_OK) else None
    return shutil.which("java")


def require_spark() -> None:
    """Skip the calling test, with the reason, when PySpark is not installed or no Java >= SPARK_MIN_JAVA is there.

    Why skip only then: a newcomer without Java cannot run Spark at all, which says nothing about tracekit; with
    Java present, a Spark that cannot start is a failure the test must show (it is not caught here).
    """
    pytest.importorskip("pyspark", reason="PySpark is not installed (pip install 'tracekit[spark]')")
    exe = java_executable()
    if exe is None:
        where = f"$JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME") else "no java on PATH"
        pytest.skip(f"Spark needs Java {SPARK_MIN_JAVA}+: {where}")
    try:
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=60)
        text = out.stderr + out.stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        pytest.skip(f"Spark needs Java {SPARK_MIN_JAVA}+: {exe} -version failed ({e})")
    major = java_major(text)
    if major is None or major < SPARK_MIN_JAVA:
        first = text.strip().splitlines()[0] if text.strip() else "no output"
        pytest.skip(f"Spark needs Java {SPARK_MIN_JAVA}+: {exe} is {first!r}")


def load_json(path: Path) -> dict[str, Any]:
    """The raw JSON of a (possibly gzipped) trace, parsed with the standard library (independent of tracekit)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture
def write_trace(tmp_path: Path) -> Callable[..., Path]:
    """Write a Kineto-style trace ``{"traceEvents": events, **top}`` and return its path."""

    def _write(events: list[dict[str, Any]], name: str = "t.json", **top: Any) -> Path:
        p = tmp_path / name
        doc = {"schemaVersion": 1, **top, "traceEvents": events}
        p.write_text(json.dumps(doc, indent=1))
        return p

    return _write
