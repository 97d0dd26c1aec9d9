"""Shared fixtures: where the real traces live, and a tiny Kineto trace builder."""

from __future__ import annotations

import gzip
import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Callable

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
KINETO_DIR = SHARED / "traces" / "kineto"
NSYS_DIR = SHARED / "traces" / "nsys"


#: A few real traces shipped in the repository (tests/data/real/SOURCES.md): what the real-trace tests run on when
#: ../shared is absent, so that a newcomer's first test run already touches real data.
SHIPPED = REPO / "tests" / "data" / "real"
SHARED_PRESENT = (SHARED / "traces").exists()


def shipped_sha256() -> dict[str, str]:
    """The shipped traces: path under traces/ (as in ../shared) -> sha256 of its bytes there (tests/data/real/SHA256SUMS)."""
    lines = (SHIPPED / "SHA256SUMS").read_text().splitlines()
    return {rel: sha for sha, rel in (ln.split("  ", 1) for ln in lines if ln.strip())}


def _unpacked(stored: Path, rel: str) -> Path:
    """The bytes of shipped ``stored`` (decompressed when it is ``.xz``) in a temporary folder named by their sha256
    (written once, atomically), as ``<folder>/<origin>/<file name>``.

    Why a copy: the SQLite exports are stored compressed (a fifth of their size), and a report on a raw trace
    caches its conversion beside it: the repository stays clean, as the read-only ../shared does. The hash in the
    name keeps an old copy from standing in for a changed file.
    """
    sha = shipped_sha256()[rel]
    dest = Path(tempfile.gettempdir()) / f"tracekit-real-{sha[:16]}" / Path(rel).parent.name / Path(rel).name
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
        data = stored.read_bytes()
        tmp.write_bytes(lzma.decompress(data) if stored.suffix == ".xz" else data)
        os.replace(tmp, dest)
    return dest


def real_trace(rel: str) -> Path:
    """The real trace ``rel`` (a path under traces/, e.g. ``kineto/hta/amd_trace/...json.gz``).

    ../shared/traces/<rel> when ../shared is there (the full set); else a temporary copy of the one shipped in
    tests/data/real; else the (absent) shared path, so that a test's ``skipif(not path.exists())`` skips it with
    its reason.
    """
    shared = SHARED / "traces" / rel
    if SHARED_PRESENT:
        return shared
    for stored in (SHIPPED / rel, SHIPPED / f"{rel}.xz"):
        if stored.is_file():
            return _unpacked(stored, rel)
    return shared


#: Where kineto_files() came from: ../shared/traces/kineto, else the shipped ones.
KINETO_BASE = KINETO_DIR if SHARED_PRESENT else SHIPPED / "kineto"


def kineto_files() -> list[Path]:
    """Every real Kineto trace under ../shared/traces/kineto, or, when ../shared is absent, the shipped ones."""
    return sorted(KINETO_BASE.rglob("*.json.gz")) if KINETO_BASE.exists() else []


def nsys_files() -> list[Path]:
    """Every real nsys export under ../shared/traces/nsys/sqlite, or, when ../shared is absent, the shipped ones."""
    if SHARED_PRESENT:
        return sorted((NSYS_DIR / "sqlite").glob("*/*.sqlite"))
    return sorted(real_trace(rel) for rel in shipped_sha256() if rel.startswith("nsys/sqlite/"))


#: Golden nsys 2022.4.2 outputs: ../shared's, else those shipped for the shipped exports.
NSYS_GOLDEN = (NSYS_DIR if SHARED_PRESENT else SHIPPED / "nsys") / "golden" / "nsys-2022.4.2"

needs_shared = pytest.mark.skipif(not KINETO_DIR.exists(), reason="../shared/traces is absent: real-trace tests need the shared traces beside the repo")
#: For tests that run on whichever real traces there are (the full shared set, else the shipped ones).
needs_real = pytest.mark.skipif(not kineto_files(), reason="no real Kineto traces: neither ../shared/traces nor tests/data/real")


def needs_traces(*paths: Path) -> pytest.MarkDecorator:
    """Skip unless every one of ``paths`` (from :func:`real_trace`) exists, naming the first missing one."""
    missing = [p for p in paths if not p.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"{missing[0] if missing else ''} is absent: neither ../shared/traces "
                              "nor tests/data/real holds it")


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
