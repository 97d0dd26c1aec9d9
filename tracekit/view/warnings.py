"""The report's warnings, collected from result rows (the terminal's notes, the page's and ``--json``'s ``warnings``).

Why in the view: the warnings are themselves rows of ``headline.sql``, ``trust.sql`` and ``lm_head.sql``;
this only picks and orders them for display, so it needs no SQL (tests/test_layers.py: the view never
runs SQL, and the engine never imports the view).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracekit.rows import all_rows, missing


def warnings_of(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The report's warnings: the converter's notes and unmatched steps (``headline.notes``), trust
    flags of severity ``warn`` and analyses that abstained.

    These rows are themselves outputs of ``headline.sql``, ``trust.sql`` and ``lm_head.sql``; this only
    collects them, converter notes first (a truncated trace explains every number after it).
    ``results``: DataFrames or :class:`Rows`.
    """
    res = all_rows({k: results[k] for k in ("headline.notes", "trust", "lm_head") if k in results})
    warns: list[dict[str, Any]] = []
    for r in res["headline.notes"].records() if "headline.notes" in res else []:
        if r["severity"] == "warn":
            warns.append({"trace": r["trace"], "analysis": "headline", "flag": r["source"], "message": r["message"]})
    for r in res["trust"].records() if "trust" in res else []:
        if r["severity"] == "warn":
            warns.append({"trace": r["trace"], "analysis": "trust", "flag": r["flag"], "message": r["message"]})
    lm = res.get("lm_head")
    if lm is not None and len(lm):
        recs = lm.records()
        used = {r["trace"] for r in recs if not missing(r["used"]) and bool(r["used"])}
        for r in recs:  # lm_head.sql: one per trace
            warn = r["severity"] == "warn" if "severity" in lm else r["status"] == "abstain"
            if warn and r["trace"] not in used:
                warns.append({"trace": r["trace"], "analysis": "lm_head", "flag": r["method"], "message": r["note"]})
    return warns
