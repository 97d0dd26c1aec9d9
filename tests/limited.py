"""Run Python code in a child process bounded in memory and CPU time, so a regression in a hostile-input test
fails instead of taking the machine down (tests/test_kineto_hostile.py, tests/test_nsys_hostile.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

GIB = 1 << 30
REPO = Path(__file__).resolve().parents[1]


def limited(code: str, *, mem: int = 3 * GIB, cpu: int = 120, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run Python ``code`` in a child with an address-space and CPU-time limit (and a wall-clock timeout)."""
    pre = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({mem}, {mem}))
        resource.setrlimit(resource.RLIMIT_CPU, ({cpu}, {cpu}))
    """)
    return subprocess.run([sys.executable, "-c", pre + textwrap.dedent(code)], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
