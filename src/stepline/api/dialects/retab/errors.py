"""Retab's error envelope: FastAPI's own, as Retab's API is a FastAPI app.

`{"detail": "<message>"}` with the status, and for a request that is not valid (422)
`{"detail": [{"loc": ["query", "limit"], "msg": "...", "type": "..."}]}`, one item per
bad field.
"""

from __future__ import annotations

import re
from typing import Any

from stepline.api.errors import Failure

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def location(field: str) -> list[str | int]:
    """'body.nodes[2].id' -> ['body', 'nodes', 2, 'id']."""
    parts: list[str | int] = []
    for name, index in _PART.findall(field):
        parts.append(int(index) if index else name)
    return parts


def envelope(failure: Failure) -> tuple[int, Any]:
    if failure.status == 422 and failure.details:
        detail = [
            {"loc": location(item.field), "msg": item.message, "type": failure.code}
            for item in failure.details
        ]
        return 422, {"detail": detail}
    return failure.status, {"detail": failure.message}
