"""The real traces shipped in tests/data/real are the shared set's bytes, listed with their source (issue 24 item 6).

Why: without ../shared the real-trace tests run on these copies (tests/conftest.py: real_trace); they must be the
very files the shared set holds (same sha256), each named in SOURCES.md with its source, licence and hash, and
small enough to ship.
"""

from __future__ import annotations

import hashlib
import lzma
from pathlib import Path

import pytest

from tests.conftest import SHARED, SHIPPED, _unpacked, shipped_sha256


def _stored(rel: str) -> Path:
    """The file as stored in the repository: ``rel`` itself, or ``rel.xz``."""
    p = SHIPPED / rel
    return p if p.is_file() else SHIPPED / f"{rel}.xz"


def _bytes(rel: str) -> bytes:
    p = _stored(rel)
    return lzma.decompress(p.read_bytes()) if p.suffix == ".xz" else p.read_bytes()


SUMS = shipped_sha256()


def test_the_shipped_set_covers_the_shapes_named_in_the_issue() -> None:
    """An H100 inference trace, training with an autograd thread, ROCm, CUDA graphs and event syncs, nsys exports."""
    assert {"kineto/tracelens/h100__Qwen_Qwen1.5-0.5B-Chat__1016005.json.gz",
            "kineto/hta/ns_resolution_trace/rank-0.Apr_03_18_51_38.1102.pt.trace.json.gz",
            "kineto/hta/amd_trace/mi250_minitoy_train_ROCm6_2_kineto.json.gz",
            "kineto/hta/negative_queue_length_values_check/rank0.json.gz",
            "kineto/hta/critical_path/cuda_event_sync/event_sync_trace.json.gz",
            "nsys/sqlite/nsys-ai/mock.sqlite", "nsys/sqlite/nsightful/power_iteration__baseline.sqlite"} <= set(SUMS)


@pytest.mark.parametrize("rel", sorted(SUMS))
def test_shipped_bytes_have_the_listed_sha256(rel: str) -> None:
    assert hashlib.sha256(_bytes(rel)).hexdigest() == SUMS[rel]


@pytest.mark.parametrize("rel", sorted(SUMS))
def test_shipped_bytes_are_the_shared_sets(rel: str) -> None:
    shared = SHARED / "traces" / rel
    if not shared.exists():
        pytest.skip("../shared/traces is absent: nothing to compare the shipped copy with")
    assert hashlib.sha256(shared.read_bytes()).hexdigest() == SUMS[rel]


@pytest.mark.parametrize("rel", sorted(SUMS))
def test_the_copy_tests_open_is_the_listed_bytes(rel: str) -> None:
    """What real_trace() gives without ../shared: a copy (the .xz decompressed) in a folder named by the hash."""
    p = _unpacked(_stored(rel), rel)
    assert p.parent.name == Path(rel).parent.name and p.name == Path(rel).name  # <origin>/<file>, as nsys tests key it
    assert hashlib.sha256(p.read_bytes()).hexdigest() == SUMS[rel]


def test_sources_names_every_shipped_file_with_its_hash_source_and_licence() -> None:
    text = (SHIPPED / "SOURCES.md").read_text()
    rows = {ln.split("`")[1]: ln for ln in text.splitlines() if ln.startswith("| `")}
    assert set(rows) == {_stored(rel).relative_to(SHIPPED).as_posix() for rel in SUMS}
    for rel, sha in SUMS.items():
        row = rows[_stored(rel).relative_to(SHIPPED).as_posix()]
        assert f"`{sha}`" in row and "https://github.com/" in row and ("MIT" in row or "BSD-3-Clause" in row)


def test_the_shipped_set_stays_small() -> None:
    """A few MB in the repository (issue 24: "a few MB"): 5 MB at most, goldens and notes included."""
    total = sum(p.stat().st_size for p in SHIPPED.rglob("*") if p.is_file() and not p.name.endswith(".tracekit.parquet"))
    assert total <= 5_000_000
