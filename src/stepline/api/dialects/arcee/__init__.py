"""Arcee Orchestra's workflow API under `/arcee` (seeds 000 and 001; ../shared/seeds/SHAPES.md):
list workflows, execute one, its execution history, one run, a run's steps and the
workflow's diagram, in Arcee's bare JSON with FastAPI's `{"detail": ...}` errors.
docs/dialects/arcee.md has the status and kind mappings and what is not served."""

from __future__ import annotations

from stepline.api.dialects.arcee.envelope import envelope
from stepline.api.dialects.arcee.routes import router

PREFIX = "/arcee"

__all__ = ["PREFIX", "envelope", "router"]
