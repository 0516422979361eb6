"""A request as data, and when to retry it: what `_flows` reads to talk to the server.

A `Call` describes one API request and how to read its answer; `RetryPolicy` decides
whether and when to send it again. Neither does I/O.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Generic, TypeVar
from uuid import UUID

import httpx

from stepline import __version__
from stepline.sdk.errors import TransportError

T = TypeVar("T")

USER_AGENT = f"stepline-python/{__version__}"
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request: where it goes, what it carries, whether a retry is safe, how to parse it."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    files: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    idempotent: bool = False
    read_timeout: float | None = None
    """Overrides the client's timeout for reading the answer (long waits, streams)."""
    no_read_timeout: bool = False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring Retry-After, for requests that may repeat.

    Idempotent calls are retried on 429, 5xx and transport errors. Any call is retried when
    the connection could not even be opened, because then the request never left.
    """

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def retries_status(self, call: Call[Any], status: int, attempt: int) -> bool:
        return call.idempotent and status in RETRYABLE_STATUSES and attempt < self.max_retries

    def retries_exception(self, call: Call[Any], exc: httpx.TransportError, attempt: int) -> bool:
        if attempt >= self.max_retries:
            return False
        return call.idempotent or isinstance(exc, httpx.ConnectError)

    def delay(self, attempt: int, response: httpx.Response | None = None) -> float:
        """Seconds to wait before try number `attempt + 2` (attempt counts from 0)."""
        if response is not None:
            hinted = retry_after_seconds(response.headers.get("retry-after"))
            if hinted is not None:
                return min(hinted, self.max_retry_after)
        backoff = min(self.max_delay, self.base_delay * 2**attempt)
        return backoff * random.uniform(0.5, 1.0)


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def query_value(value: Any) -> Any:
    """A filter value as a query parameter: ISO dates, enum values, lowercase booleans."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [query_value(v) for v in value]
    return value


def query(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters without the ones left as None."""
    return {k: query_value(v) for k, v in params.items() if v is not None}


def timeout_for(call: Call[Any], default: float) -> httpx.Timeout:
    if call.no_read_timeout:
        return httpx.Timeout(default, read=None)
    if call.read_timeout is not None:
        return httpx.Timeout(default, read=call.read_timeout)
    return httpx.Timeout(default)


def normalize_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = f"http://{url}"
    return url


def build_headers(api_key: str | None, workspace_id: UUID | str | None) -> dict[str, str]:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    if workspace_id is not None:
        headers["X-Workspace-Id"] = str(workspace_id)
    return headers


def transport_error(exc: httpx.TransportError, base_url: str) -> TransportError:
    if isinstance(exc, httpx.ConnectError):
        message = f"cannot reach the stepline server at {base_url}: {exc}"
    elif isinstance(exc, httpx.TimeoutException):
        message = f"the stepline server at {base_url} did not answer in time ({type(exc).__name__})"
    else:
        message = f"the connection to the stepline server at {base_url} failed: {exc!r}"
    return TransportError(message, url=base_url)
