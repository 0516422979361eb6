"""What the SDK raises: the kinds of `stepline.errors`, as the server's answer said them.

An error answer is decoded once (`error_from_response`) into the class of its status, and
each class is both an `ApiError` (status, envelope code, message, details, request id) and
the `stepline.errors` kind of that status, so a caller catches `stepline.errors.NotFound`
whether a run was looked up in-process or over HTTP. The SDK's own names stay as they were.

stepline.errors.SteplineError (also `stepline.sdk.SteplineError`)
├── ConfigurationError        Misconfigured   no server URL could be found
├── TransportError            Unavailable     no answer: unreachable, timed out, dropped
└── ApiError                                  the server answered with an error envelope
    ├── BadRequestError         400  InvalidRequest
    ├── AuthenticationError     401  Unauthenticated
    ├── PermissionDeniedError   403  Forbidden
    ├── NotFoundError           404  NotFound
    ├── ConflictError           409  Conflict
    ├── PayloadTooLargeError    413  TooLarge
    ├── ValidationError         422  InvalidRequest
    ├── RateLimitError          429  Unavailable
    └── ServerError             5xx
        ├── MisconfiguredError    500 with code `misconfigured`  Misconfigured
        └── UnavailableError      503  Unavailable
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from stepline.errors import (
    Conflict,
    Detail,
    Forbidden,
    InvalidRequest,
    Misconfigured,
    NotFound,
    SteplineError,
    TooLarge,
    Unauthenticated,
    Unavailable,
)

ErrorDetail = Detail
"""One problem of a request, e.g. field `body.inputs.amount` (the SDK's older name)."""


class ConfigurationError(Misconfigured):
    """The client was not told where the server is (argument, STEPLINE_SERVER, credentials)."""


class TransportError(Unavailable):
    """No HTTP answer: the server is unreachable, timed out, or dropped the connection."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class ApiError(SteplineError):
    """The server refused or failed the request; everything its error envelope said.

    `status` and `code` are the answer's own (a subclass's kind gives the CLI exit code).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Detail] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, details=details or ())
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        text = f"{self.status} {self.code}: {self.message}"
        if self.details:
            text += "".join(f"\n  {d.field}: {d.message}" for d in self.details)
        if self.request_id:
            text += f"\n  (request id {self.request_id})"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(ApiError, InvalidRequest):
    """400: the request could not be read."""


class AuthenticationError(ApiError, Unauthenticated):
    """401: the API key is missing, wrong, revoked or expired."""


class PermissionDeniedError(ApiError, Forbidden):
    """403: the key is valid but its scopes do not allow this."""


class NotFoundError(ApiError, NotFound):
    """404: no such record in the key's organization."""


class ConflictError(ApiError, Conflict):
    """409: the record's state forbids the change, or the name is taken."""


class PayloadTooLargeError(ApiError, TooLarge):
    """413: a body or document past a size limit."""


class ValidationError(ApiError, InvalidRequest):
    """422: the request (body, path or query) is not valid; `details` names each field."""


class RateLimitError(ApiError, Unavailable):
    """429: too many requests now; idempotent calls were already retried."""


class ServerError(ApiError):
    """5xx: the server failed; idempotent calls were already retried."""


class MisconfiguredError(ServerError, Misconfigured):
    """500 `misconfigured`: the server's operator has a setting to fix."""


class UnavailableError(ServerError, Unavailable):
    """503: something the server needs (its database, the sandbox) cannot be used now."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
    503: UnavailableError,
}


def error_class(status: int, code: str | None = None) -> type[ApiError]:
    """The class of an error answer: by status, and for a 500 by its envelope code."""
    if status == 500 and code == Misconfigured.code:
        return MisconfiguredError
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error response; reads the envelope, or falls back to the body."""
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    code, message, details = f"http_{status}", response.reason_phrase or "error", []
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
        text = response.text.strip()
        if text:
            message = text[:500]
    if isinstance(payload, dict):
        request_id = payload.get("request_id") or request_id
        envelope = payload.get("error")
        if isinstance(envelope, dict):
            code = str(envelope.get("code") or code)
            message = str(envelope.get("message") or message)
            details = [
                Detail(field=str(d.get("field", "")), message=str(d.get("message", "")))
                for d in envelope.get("details") or []
                if isinstance(d, dict)
            ]
        elif isinstance(payload.get("detail"), str):
            message = payload["detail"]
    return error_class(status, code)(status, code, message, details, request_id)


__all__ = [
    "ApiError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ConflictError",
    "ErrorDetail",
    "MisconfiguredError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "SteplineError",
    "TransportError",
    "UnavailableError",
    "ValidationError",
    "error_class",
    "error_from_response",
]
