"""The native API's one error envelope, and the handlers that put every failure into it.

`{"error": {"code", "message", "details": [{"field", "message"}]}, "request_id"}`: a
client reads `code` to decide, `details` to point at the bad field, and quotes
`request_id` (also in the X-Request-Id header) when asking for help.

Every error stepline raises on purpose is a `stepline.errors.SteplineError`, which carries
its HTTP status, code and details: `stepline_error_response` is the one mapping of them to
HTTP. What is left here is FastAPI's and Starlette's own errors (a request that does not
match the route's parameters, an unknown route, a body that cannot be read).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from stepline.api.responses import json_response
from stepline.documents import DocumentError
from stepline.errors import Detail, InvalidRequest, NotFound, SteplineError, TooLarge
from stepline.store.paging import InvalidCursor

log = logging.getLogger("stepline.api")

CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
}

_DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be parsed (a JSON body is not UTF-8 JSON, a form is malformed).",
    401: "No API key, or the key is unknown, revoked or expired.",
    403: "The API key lacks the scope this operation needs.",
    404: "No such record in the key's organization.",
    409: "The request conflicts with the record's current state.",
    413: "The request body is larger than the server accepts.",
    422: "A field of the request is not valid; `details` names each one.",
    500: "The server failed; the log has the details under the request id.",
}


class ErrorDetail(BaseModel):
    field: str = Field(description="Where: path.run_id, query.limit, body.inputs.amount...")
    message: str


class ErrorBody(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. not_found.")
    message: str
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorEnvelope(BaseModel):
    error: ErrorBody
    request_id: str | None = None


class BodyTooLarge(TooLarge):
    """The body grew past the limit while being read (no Content-Length, or a false one)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than the limit of {limit} bytes")
        self.limit = limit


class ApiError(SteplineError):
    """An answer of a status the kinds of `stepline.errors` do not name (or with headers)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Sequence[ErrorDetail] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message, details=[Detail(d.field, d.message) for d in details or []])
        self.status = status
        self.code = code or CODES.get(status, "error")
        self.headers = headers


def not_found(what: str, ident: object) -> NoReturn:
    raise NotFound(f"{what} {ident} not found")


def invalid(field: str, message: str) -> NoReturn:
    """A 422 naming one bad field."""
    raise InvalidRequest(f"{field}: {message}", details=[Detail(field, message)])


def one_direction(after: object, before: object) -> None:
    """A 422 unless a page is asked for in one direction at most (`after` or `before`)."""
    if after is not None and before is not None:
        invalid("query.before", "give at most one of after and before")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries documenting the envelope for each status."""
    return {
        status: {"model": ErrorEnvelope, "description": _DESCRIPTIONS.get(status, CODES[status])}
        for status in statuses
    }


def error_response_doc(status: int) -> dict[str, Any]:
    """The OpenAPI response object of `status` answered with the envelope."""
    return {
        "description": _DESCRIPTIONS.get(status, CODES[status]),
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }


@dataclass(frozen=True, slots=True)
class Failure:
    """A failure before any envelope: what a vendor's dialect words in its own."""

    status: int
    code: str
    message: str
    details: Sequence[ErrorDetail]
    request_id: str | None


VendorEnvelope = Callable[[Failure], tuple[int, Any]]
"""A dialect's error envelope: the status (a vendor may answer 400 where stepline says 422)
and the JSON body."""

_VENDOR_ENVELOPES: dict[str, VendorEnvelope] = {}


def use_envelope(prefix: str, envelope: VendorEnvelope) -> None:
    """Answer every failure under `prefix` (a dialect's mount, e.g. /onepin) in `envelope`:
    route errors, unknown paths, bodies too large, unhandled errors alike."""
    _VENDOR_ENVELOPES[prefix.rstrip("/")] = envelope


def _vendor_envelope(path: str | None) -> VendorEnvelope | None:
    if not path:
        return None
    for prefix, envelope in _VENDOR_ENVELOPES.items():
        if path == prefix or path.startswith(prefix + "/"):
            return envelope
    return None


def error_response(
    request_id: str | None,
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Sequence[ErrorDetail] = (),
    headers: dict[str, str] | None = None,
    path: str | None = None,
) -> Response:
    """The failure in the native envelope, or in the vendor's when `path` is under a
    dialect's mount."""
    code = code or CODES.get(status, "error")
    vendor = _vendor_envelope(path)
    if vendor is not None:
        vendor_status, vendor_body = vendor(Failure(status, code, message, details, request_id))
        return json_response(vendor_body, vendor_status, headers=headers)
    body = ErrorEnvelope(
        error=ErrorBody(code=code, message=message, details=list(details)),
        request_id=request_id,
    )
    return json_response(body, status, headers=headers)


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def field_path(location: Sequence[int | str]) -> str:
    """('body', 'nodes', 2, 'id') -> 'body.nodes[2].id'."""
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def stepline_error_response(request: Request, exc: SteplineError) -> Response:
    """The one mapping of stepline's errors to HTTP: the status, code and details the error's
    kind (or the error itself) carries, in the envelope."""
    if exc.status >= 500:  # the server's fault (its secrets key...): the operator's to see
        log.error("%s: %s", exc.code, exc, exc_info=exc)
    details = [ErrorDetail(field=d.field, message=d.message) for d in exc.details]
    if isinstance(exc, InvalidCursor) and not details:
        # Where the cursor came from is the request's to say.
        field = "query.before" if "before" in request.query_params else "query.after"
        details = [ErrorDetail(field=field, message=str(exc))]
    return error_response(
        _request_id(request),
        exc.status,
        str(exc),
        code=exc.code,
        details=details,
        headers=getattr(exc, "headers", None),
        path=request.url.path,
    )


def _unparseable_body(cause: BaseException) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return f"the body is not UTF-8 text, as JSON must be ({cause.reason} at byte {cause.start})"
    return f"the body cannot be parsed: {cause}"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SteplineError)
    async def stepline_error(request: Request, exc: SteplineError) -> Response:
        return stepline_error_response(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        details = [
            ErrorDetail(field=field_path(error.get("loc", ())), message=error.get("msg", ""))
            for error in exc.errors()
        ]
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
        if len(details) > 3:
            summary += f" (and {len(details) - 3} more)"
        return error_response(
            _request_id(request),
            422,
            f"invalid request: {summary}",
            details=details,
            path=request.url.path,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        cause = exc.__cause__
        # FastAPI wraps any failure while reading the body in a 400.
        if isinstance(cause, DocumentError):
            # The JSON body is too deep or not exact JSON (`api.documents`).
            return stepline_error_response(request, cause.at("body"))
        if isinstance(cause, SteplineError):  # too large, or refused while parsed (storable_text)
            return stepline_error_response(request, cause)
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "")
        if exc.status_code == 400 and cause is not None:
            message = _unparseable_body(cause)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        return error_response(
            _request_id(request),
            exc.status_code,
            message,
            headers=getattr(exc, "headers", None),
            path=request.url.path,
        )
