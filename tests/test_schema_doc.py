"""docs/schema.md is generated from tracekit/schema.py and must stay in step with it."""

from __future__ import annotations

from pathlib import Path

from tracekit import schema

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def test_schema_doc_is_current() -> None:
    assert DOC.read_text() == schema.markdown(), "run: python -m tracekit.schema > docs/schema.md"


def test_every_column_documented_once() -> None:
    names = [c.name for c in schema.COLUMNS]
    assert len(names) == len(set(names))
    text = DOC.read_text().split("## Columns")[1].split("## Kinds")[0]
    for c in schema.COLUMNS:
        assert text.count(f"| `{c.name}` |") == 1
    assert set(schema.LINK_COLUMNS) <= set(names)
