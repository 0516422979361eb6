"""Trigify's error envelope: `{"success": false, "error": {code, message, details?,
suggestion?}}`, with its codes, a 400 (not 422) for a request that does not validate, and
a suggestion of what to do for the errors a client can recover from."""

from __future__ import annotations

from typing import Any

from stepline.api.dialects.trigify.models import ErrorBody
from stepline.api.dialects.trigify.models import Failure as FailureBody
from stepline.api.errors import Failure

CODES: dict[int, str] = {
    400: "BAD_REQUEST",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
}

_SEND_KEY = "Send your API key in the x-api-key header, e.g. curl -H 'x-api-key: YOUR_API_KEY' ..."
_SUGGESTIONS: dict[str, str] = {
    "AUTH_REQUIRED": _SEND_KEY,
    "INVALID_API_KEY": "Check the key sent in x-api-key: it is mistyped, revoked or expired. "
    "An administrator makes a new one with `stepline keys create`.",
    "FORBIDDEN": "Use a key that holds the scope the message names (read to list and read "
    "executions).",
    "METHOD_NOT_ALLOWED": "The executions endpoints answer GET only.",
    "PAYLOAD_TOO_LARGE": "Send a smaller body.",
    "RATE_LIMITED": "Wait a moment, then retry.",
    "INTERNAL_ERROR": "Retry; if it persists, report it with the X-Request-Id header's value.",
}
_PAGING = "page starts at 1; page_size is 1 to 100 (default 20)."
_IDS = "Workflow and run ids are UUIDs, as stepline returns them (e.g. from GET /v1/workflows)."
_NO_RUN = (
    "List the workflow's executions with GET /v1/workflows/{id}/executions to find its "
    "runIds; runs of other organizations are not visible to this key."
)
_NO_WORKFLOW = "Check the workflow id; this key sees its own organization's workflows only."
_NO_ROUTE = (
    "Trigify's step API here is GET /v1/workflows/{id}/executions and "
    "GET /v1/workflows/{id}/executions/{runId}."
)


def envelope(failure: Failure) -> tuple[int, Any]:
    """The status and body Trigify answers `failure` with."""
    code = _code(failure)
    details = None
    if failure.details:
        details = {"errors": [f"{d.field}: {d.message}" for d in failure.details]}
    body = ErrorBody(
        code=code,
        message=failure.message,
        details=details,
        suggestion=_suggestion(code, failure),
    )
    status = 400 if failure.status == 422 else failure.status
    return status, FailureBody(error=body).model_dump(exclude_none=True)


def _code(failure: Failure) -> str:
    if failure.status == 401:
        # `api.auth` says "no API key" when none was sent at all.
        return "AUTH_REQUIRED" if failure.message.startswith("no API key") else "INVALID_API_KEY"
    return CODES.get(failure.status, failure.code.upper())


def _suggestion(code: str, failure: Failure) -> str | None:
    if code == "VALIDATION_ERROR":
        fields = {d.field for d in failure.details}
        if any(f.startswith("query.page") for f in fields):
            return _PAGING
        if any(f.startswith("path.") for f in fields):
            return _IDS
        return None
    if code == "NOT_FOUND":
        if failure.message.startswith("no route"):
            return _NO_ROUTE
        if failure.message.startswith("workflow"):
            return _NO_WORKFLOW
        return _NO_RUN
    return _SUGGESTIONS.get(code)
