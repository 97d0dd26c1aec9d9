"""Shared fixtures: where the real traces live, and a tiny Kineto trace builder."""

from __future__ import annotations

import gzip
import json
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
