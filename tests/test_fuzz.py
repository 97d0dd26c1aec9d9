"""Fuzzing in CI (about 60 s together): the C scanner under ASan/UBSan with a differential check against the
msgspec path, and the nsys reader on damaged real exports. Each runs in a subprocess, so a crash (a sanitizer
abort, a segfault) fails the test with its report instead of killing pytest. Longer runs: BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import KINETO_DIR, NSYS_DIR, REPO
from tests.fuzz import build

KSCAN_SECONDS = float(os.environ.get("TRACEKIT_FUZZ_SECONDS", "22"))
NSYS_SECONDS = float(os.environ.get("TRACEKIT_FUZZ_SECONDS", "22"))


def _run(args: list[str], env: dict[str, str], tmp_path: Path, budget: float) -> dict:
    stats = tmp_path / "stats.json"
    r = subprocess.run([sys.executable, "-m", *args, "--stats", str(stats), "--findings", str(tmp_path / "findings")],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=budget + 120)
    assert r.returncode == 0, f"exit {r.returncode} (negative: killed by a signal)\n{r.stderr[-6000:]}"
    return json.loads(stats.read_text())


@pytest.mark.skipif(not KINETO_DIR.exists(), reason="../shared/traces is absent: the fuzz seeds are the real traces")
@pytest.mark.skipif(build.compiler() is None, reason="no C compiler for the sanitized _kscan build")
def test_fuzz_kscan_sanitized_differential(tmp_path: Path) -> None:
    try:
        so = build.build(tmp_path / "san")
        env = build.env(so)
    except (RuntimeError, subprocess.CalledProcessError) as e:
        pytest.skip(f"sanitized build not possible here: {e}")
    cur = tmp_path / "current.json"
    try:
        st = _run(["tests.fuzz.kscan_fuzz", "--seconds", str(KSCAN_SECONDS), "--current", str(cur)], env, tmp_path,
                  KSCAN_SECONDS)
    except AssertionError:
        print("input being run when it failed:", cur.read_bytes()[:2000] if cur.exists() else None)
        raise
    assert st["sanitized"] and st["findings"] == 0
    assert st["seeds"] >= 100 and st["execs"] > st["seeds"]  # every seed ran, then mutants
    assert st["edges"] > 500 and st["corpus"] > st["seeds"]  # the coverage map works and guided the corpus
    assert st["compared"] > 0  # the differential check ran on accepted inputs


@pytest.mark.skipif(not (NSYS_DIR / "sqlite").exists(), reason="../shared/traces/nsys/sqlite is absent: the seeds")
def test_fuzz_nsys_damaged_exports(tmp_path: Path) -> None:
    st = _run(["tests.fuzz.nsys_fuzz", "--seconds", str(NSYS_SECONDS), "--max-bytes", str(700_000)], dict(os.environ),
              tmp_path, NSYS_SECONDS)
    assert st["findings"] == 0 and st["cases"] >= 10
    assert st["ok"] > 0 and st["error"] > 0  # both outcomes were exercised
