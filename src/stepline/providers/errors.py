"""A provider's failure, classified for the retry policy.

- `quota`: HTTP 429, or a provider saying "rate limit" under another status; the wait it
  asks for (Retry-After, or OpenAI's retry-after-ms) is kept for the engine to honour;
- `transient`: a timeout, a connection that failed, HTTP 408 or 5xx, an answer that is not
  whole JSON (cut off by a proxy): the same request may well succeed later;
- `permanent`: any other 4xx (a wrong key, an unknown model, a bad request), a refusal, an
  answer the node cannot use: the same request would fail the same way.

The engine does the retrying (the `openai` client is made with `max_retries=0`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from stepline.nodes.api_call import parse_retry_after
from stepline.records import ErrorCategory

if TYPE_CHECKING:
    import openai  # imported where used, see stepline.providers.client

BODY_LIMIT = 2048
"""How many characters of an error answer's body the error keeps."""


class ProviderError(Exception):
    """A chat completion that failed: what to tell the user, and whether to retry."""

    def __init__(
        self,
        message: str,
        *,
        category: ErrorCategory,
        code: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
        body: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.code = code
        """A short stable name: http_429, timeout, connection, malformed_response, refusal..."""
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        self.body = body


def classify(exc: Exception, where: str, timeout_s: float) -> ProviderError:
    """The ProviderError for an exception the `openai` client raised calling `where`."""
    import openai

    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(
            f"{where} did not answer within {timeout_s:g} s",
            category=ErrorCategory.transient,
            code="timeout",
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ProviderError(
            f"could not reach {where}: {type(cause).__name__}: {cause}",
            category=ErrorCategory.transient,
            code="connection",
        )
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, where)
    return ProviderError(
        f"{where} failed: {type(exc).__name__}: {exc}",
        category=ErrorCategory.permanent,
        code="client_error",
    )


def _status_error(exc: openai.APIStatusError, where: str) -> ProviderError:
    status = exc.status_code
    headers = exc.response.headers
    detail = _error_detail(exc.body) or exc.response.reason_phrase
    if status == 429 or _says_rate_limit(exc.body):
        category = ErrorCategory.quota
    elif status == 408 or status >= 500:
        category = ErrorCategory.transient
    else:
        category = ErrorCategory.permanent
    retry_after_s = _retry_after(headers) if category is not ErrorCategory.permanent else None
    message = f"{where} answered HTTP {status}: {detail}"
    if retry_after_s is not None:
        message += f" (retry after {retry_after_s:g} s)"
    text = exc.response.text
    if len(text) > BODY_LIMIT:
        text = text[:BODY_LIMIT] + f"... [{len(text) - BODY_LIMIT} more characters]"
    return ProviderError(
        message,
        category=category,
        code=f"http_{status}",
        status_code=status,
        retry_after_s=retry_after_s,
        body=text,
    )


def malformed(where: str, problem: str, body: str) -> ProviderError:
    """An answer that is not a chat completion: cut-off or garbled JSON."""
    text = body if len(body) <= BODY_LIMIT else body[:BODY_LIMIT] + "..."
    return ProviderError(
        f"{where} answered with something that is not a chat completion: {problem}",
        category=ErrorCategory.transient,
        code="malformed_response",
        body=text,
    )


def refused(where: str, reason: str) -> ProviderError:
    return ProviderError(
        f"the model at {where} refused: {reason}",
        category=ErrorCategory.permanent,
        code="refusal",
    )


def unusable(where: str, problem: str, code: str = "unusable_answer") -> ProviderError:
    """A whole completion the node cannot use (no choices, no JSON where JSON was asked)."""
    return ProviderError(f"{where}: {problem}", category=ErrorCategory.permanent, code=code)


def _retry_after(headers: Mapping[str, str]) -> float | None:
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _error_detail(body: Any) -> str | None:
    """The provider's own message: OpenAI's {"error": {"message"}} (the client passes the
    inner object), or a bare {"message"} or {"detail"}."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            for key in ("message", "detail"):
                if isinstance(inner.get(key), str):
                    return str(inner[key])
        if isinstance(inner, str):
            return inner
    if isinstance(body, str) and body:
        return body[:200]
    return None


def _says_rate_limit(body: Any) -> bool:
    """Whether a non-429 error names a rate limit (some gateways answer 400 or 503)."""
    if not isinstance(body, Mapping):
        return False
    inner = body.get("error", body)
    if not isinstance(inner, Mapping):
        return False
    marks = " ".join(str(inner.get(key) or "") for key in ("code", "type")).lower()
    return "rate_limit" in marks or "ratelimit" in marks
