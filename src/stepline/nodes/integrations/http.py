"""HTTP for the apps that speak it (Slack, webhooks): the client, and what a failure means
for retries (429 quota, 5xx and no answer transient, other 4xx permanent)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from stepline.nodes.base import NodeError
from stepline.nodes.integrations.common import failure
from stepline.records import ErrorCategory

BODY_LIMIT = 2048
"""How many characters of a non-JSON answer the record keeps."""


@asynccontextmanager
async def client(shared: httpx.AsyncClient | None) -> AsyncIterator[httpx.AsyncClient]:
    """The worker's shared client when there is one, else a client for this step alone."""
    if shared is not None:
        yield shared
        return
    async with httpx.AsyncClient() as own:
        yield own


def status_category(status: int) -> ErrorCategory:
    if status == 429:
        return ErrorCategory.quota
    if status >= 500:
        return ErrorCategory.transient
    return ErrorCategory.permanent


def request_failure(where: str, exc: httpx.HTTPError, timeout_s: float) -> NodeError:
    """The error for a request that got no answer."""
    if isinstance(exc, httpx.TimeoutException):
        message, category = f"{where} timed out after {timeout_s:g} s", ErrorCategory.transient
    elif isinstance(exc, httpx.TransportError):
        message = f"{where} failed: {type(exc).__name__}: {exc}"
        category = ErrorCategory.transient
    else:
        # E.g. a body that cannot be decoded: trying again won't help.
        message = f"{where} failed: {type(exc).__name__}: {exc}"
        category = ErrorCategory.permanent
    return failure(message, category=category, code="http_request", error_type=type(exc).__name__)


def body(response: httpx.Response) -> Any:
    """A JSON answer parsed; anything else as (at most BODY_LIMIT characters of) text."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            pass
    text = response.text
    if len(text) > BODY_LIMIT:
        return text[:BODY_LIMIT] + f"... [{len(text) - BODY_LIMIT} more characters]"
    return text
