"""Presentation: result tables -> a view model (:mod:`.model`) -> terminal (:mod:`.terminal`) or HTML (:mod:`.html`).

Nothing here computes an analysis; every number comes from ``queries/``.
"""
