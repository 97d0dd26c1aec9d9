"""The Spark tests skip, with the reason, when no Java 17+ is there (tests/conftest.py: require_spark).

Why a probe of our own: PySpark 4 starts a JVM; without Java 17+ it fails with a Java gateway error that says
nothing about tracekit. A newcomer's machine without Java should see a skip naming what is missing, and a
machine with Java whose Spark cannot start should still see the failure (require_spark does not catch it).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import SPARK_MIN_JAVA, java_executable, java_major, require_spark


@pytest.mark.parametrize("text, want", [
    ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)', 17),
    ('openjdk version "21" 2023-09-19', 21),
    ('java version "1.8.0_292"\nJava(TM) SE Runtime Environment', 8),
    ('openjdk version "11.0.2-ea" 2019-01-15', 11),
    ('openjdk version "25.0.1" 2025-10-21 LTS', 25),
    ("bash: java: command not found", None),
    ("", None),
])
def test_java_major_reads_both_version_schemes(text: str, want: int | None) -> None:
    assert java_major(text) == want


def _fake_java(folder: Path, version_line: str) -> Path:
    """A ``java`` that prints ``version_line`` on stderr, as ``java -version`` does."""
    bin_ = folder / "bin"
    bin_.mkdir(parents=True)
    exe = bin_ / "java"
    exe.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def _skip_reason(monkeypatch: pytest.MonkeyPatch) -> str | None:
    """require_spark()'s skip reason, or None when it lets the test run."""
    pytest.importorskip("pyspark", reason="PySpark is not installed: require_spark skips before it looks for Java")
    try:
        require_spark()
    except pytest.skip.Exception as e:
        return str(e)
    return None


def test_no_java_on_path_skips_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no java
    assert java_executable() is None
    assert _skip_reason(monkeypatch) == f"Spark needs Java {SPARK_MIN_JAVA}+: no java on PATH"


def test_java_home_without_java_skips_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert _skip_reason(monkeypatch) == f"Spark needs Java {SPARK_MIN_JAVA}+: $JAVA_HOME={tmp_path} has no bin/java"


def test_java_8_skips_naming_the_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_java(tmp_path, 'java version "1.8.0_292"')
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))
    assert _skip_reason(monkeypatch) == f"Spark needs Java {SPARK_MIN_JAVA}+: {exe} is 'java version \"1.8.0_292\"'"


def test_java_17_on_path_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = _fake_java(tmp_path, 'openjdk version "17.0.15" 2025-04-15')
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(exe.parent) + os.pathsep + os.environ.get("PATH", ""))
    assert java_executable() == str(exe)
    assert _skip_reason(monkeypatch) is None
