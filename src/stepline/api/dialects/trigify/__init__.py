"""Trigify's workflow executions API (seed 003) under `/trigify`: a Trigify client works by
setting its base URL to `http://HOST:PORT/trigify` and sending `x-api-key`.

`routes` are the endpoints, `shapes` the canonical records in Trigify's fields,
`envelope` its error body; docs/dialects/trigify.md has the mappings.
"""

from __future__ import annotations

from stepline.api.dialects.trigify.envelope import envelope
from stepline.api.dialects.trigify.routes import router

PREFIX = "/trigify"

__all__ = ["PREFIX", "envelope", "router"]
