"""Onepin's envelopes: `{"data", "meta"}` for an answer (lists add `pagination`), and
`{"error": {"code", "message", "details"?}, "meta"}` for every failure under /onepin."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from stepline.api.dialects.onepin.shapes import timestamp
from stepline.api.errors import Failure
from stepline.api.responses import json_response
from stepline.records import utcnow

CODES: dict[int, str] = {
    401: "INVALID_API_KEY",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}
"""Onepin's error code of each status stepline answers with."""


def meta(request_id: str | None) -> dict[str, Any]:
    return {"request_id": request_id, "timestamp": timestamp(utcnow())}


def envelope(failure: Failure) -> tuple[int, Any]:
    """A failure in Onepin's error envelope. A body that cannot be parsed (stepline's 400)
    is a 422, as Onepin answers every bad input."""
    status = 422 if failure.status == 400 else failure.status
    error: dict[str, Any] = {
        "code": CODES.get(status, "ERROR"),
        "message": failure.message,
    }
    if failure.details:
        error["details"] = [{"field": d.field, "message": d.message} for d in failure.details]
    return status, {"error": error, "meta": meta(failure.request_id)}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def answer(
    request: Request,
    data: Any,
    status: int = 200,
    *,
    pagination: dict[str, Any] | None = None,
) -> Response:
    """`data` in the success envelope (with `pagination` for a list)."""
    body: dict[str, Any] = {"data": data}
    if pagination is not None:
        body["pagination"] = pagination
    body["meta"] = meta(_request_id(request))
    return json_response(body, status)


def pagination(request: Request, *, offset: int, limit: int, total: int) -> dict[str, Any]:
    """Counted offset paging: the URLs of the next and previous pages (None at either end)."""
    following = offset + limit
    return {
        "next": (
            str(request.url.include_query_params(offset=following, limit=limit))
            if following < total
            else None
        ),
        "prev": (
            str(request.url.include_query_params(offset=max(offset - limit, 0), limit=limit))
            if offset > 0
            else None
        ),
        "limit": limit,
        "total": total,
    }
