"""Retab's error envelope: FastAPI's own, as Retab's API is a FastAPI app.

`{"detail": "<message>"}` with the status, and for a request that is not valid (422)
`{"detail": [{"loc": ["query", "limit"], "msg": "...", "type": "..."}]}`, one item per
bad field (one with an empty `loc` when the failure names no field).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from stepline.api.errors import Failure

_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def location(field: str) -> list[str | int]:
    """'body.nodes[2].id' -> ['body', 'nodes', 2, 'id']."""
    parts: list[str | int] = []
    for name, index in _PART.findall(field):
        parts.append(int(index) if index else name)
    return parts


class ValidationItem(BaseModel):
    loc: list[str | int] = Field(description="Where: ['query', 'limit'], ['body', ...].")
    msg: str
    type: str


class RetabError(BaseModel):
    """Retab's (FastAPI's) error body."""

    detail: str | list[ValidationItem]


_DESCRIPTIONS = {
    400: "The body cannot be parsed (not UTF-8 JSON).",
    401: "No API key, or not a valid one.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such record in the key's organization.",
    413: "The request body is larger than the server accepts.",
    422: "A parameter or field is not valid: `detail` lists each one.",
    500: "The server failed.",
}


def error_docs(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries: each status answered with Retab's error body."""
    return {
        status: {"model": RetabError, "description": _DESCRIPTIONS[status]} for status in statuses
    }


def envelope(failure: Failure) -> tuple[int, Any]:
    if failure.status == 422:
        detail = [
            {"loc": location(item.field), "msg": item.message, "type": failure.code}
            for item in failure.details
        ] or [{"loc": [], "msg": failure.message, "type": failure.code}]
        return 422, {"detail": detail}
    return failure.status, {"detail": failure.message}
