"""What the SDK raises: one base, an `ApiError` per HTTP status class, and transport failures.

SteplineError
├── ConfigurationError        no server URL could be found
├── TransportError            the server could not be reached, or the connection broke
└── ApiError                  the server answered with an error envelope
    ├── BadRequestError         400
    ├── AuthenticationError     401
    ├── PermissionDeniedError   403
    ├── NotFoundError           404
    ├── ConflictError           409
    ├── PayloadTooLargeError    413
    ├── ValidationError         422
    ├── RateLimitError          429
    └── ServerError             5xx
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class SteplineError(Exception):
    """Base of every error the SDK raises on purpose."""


class ConfigurationError(SteplineError):
    """The client was not told where the server is (argument, STEPLINE_SERVER, credentials)."""


class TransportError(SteplineError):
    """No HTTP answer: the server is unreachable, timed out, or dropped the connection."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


@dataclass(frozen=True, slots=True)
class ErrorDetail:
    """One problem of a request, e.g. field `body.inputs.amount`."""

    field: str
    message: str


class ApiError(SteplineError):
    """The server refused or failed the request; everything its error envelope said."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[ErrorDetail] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
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


class BadRequestError(ApiError):
    pass


class AuthenticationError(ApiError):
    """401: the API key is missing, wrong, revoked or expired."""


class PermissionDeniedError(ApiError):
    """403: the key is valid but its scopes do not allow this."""


class NotFoundError(ApiError):
    """404: no such record in the key's organization."""


class ConflictError(ApiError):
    pass


class PayloadTooLargeError(ApiError):
    pass


class ValidationError(ApiError):
    """422: the request (body, path or query) is not valid; `details` names each field."""


class RateLimitError(ApiError):
    pass


class ServerError(ApiError):
    """5xx: the server failed; idempotent calls were already retried."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_class(status: int) -> type[ApiError]:
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, ApiError)


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
                ErrorDetail(field=str(d.get("field", "")), message=str(d.get("message", "")))
                for d in envelope.get("details") or []
                if isinstance(d, dict)
            ]
        elif isinstance(payload.get("detail"), str):
            message = payload["detail"]
    return error_class(status)(status, code, message, details, request_id)
