"""Runs: the store's largest repository, in a package of its own.

`sql` holds the statements of a run's life; `lifecycle`, `listings`, `cancel` and
`control` each hold one topic's verbs (and the transactions' helpers), which
`repository.RunRepository` brings together as `store.runs`.
"""

from __future__ import annotations

from stepline.store.runs.control import ReviewDecision
from stepline.store.runs.listings import RunSummary
from stepline.store.runs.repository import RunRepository

__all__ = ["ReviewDecision", "RunRepository", "RunSummary"]
