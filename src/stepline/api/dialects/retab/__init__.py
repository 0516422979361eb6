"""Retab (seed 004, and Retab's current SDK) under `/retab`: `client.workflows.runs...` and
`client.workflows.steps...` work with `base_url="http://HOST:PORT/retab"`.

See docs/dialects/retab.md for the paths, the mappings and what is not supported.
"""

from __future__ import annotations

from stepline.api.dialects.retab.errors import envelope
from stepline.api.dialects.retab.routes import router

PREFIX = "/retab"

__all__ = ["PREFIX", "envelope", "router"]
