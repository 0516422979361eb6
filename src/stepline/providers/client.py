"""One chat completion against an OpenAI-compatible endpoint, with the official client.

The answer is kept as the provider sent it (its JSON, keys in its order, fields the
`openai` types do not know included), not as the client's typed model would re-dump it:
the step record shows what came back. The client never retries (the engine does, by
the error's category) and reads nothing from the server's environment: no
OPENAI_API_KEY, OPENAI_ORG_ID or OPENAI_PROJECT_ID of the operator reaches a workflow's
request.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from stepline.providers.errors import ProviderError, classify, malformed
from stepline.providers.pricing import NO_PRICES, Cost, PriceTable, cost_of
from stepline.providers.usage import tokens_of
from stepline.records import TokenUsage, utcnow

if TYPE_CHECKING:
    # Imported where used: `openai` takes about a second to import, which every `stepline`
    # command would otherwise pay, model nodes or not.
    import openai

MAX_CLIENTS = 64
"""Clients a pool keeps (one per endpoint and key)."""
NO_KEY = "none"
"""Sent as the key of an endpoint that takes none (the client insists on one)."""


@dataclass(frozen=True)
class Endpoint:
    """Where a node's requests go: a configured provider, or a base URL of its own."""

    base_url: str
    api_key: str | None = field(default=None, repr=False)
    provider: str | None = None
    """The configured provider's name; None for a node's own base_url."""
    prices: PriceTable = NO_PRICES
    timeout_s: float | None = None

    def describe(self) -> str:
        if self.provider is not None:
            return f"provider {self.provider!r} ({self.base_url})"
        return self.base_url


@dataclass(frozen=True)
class ChatCall:
    """One request and the completion that answered it."""

    request: dict[str, Any]
    response: dict[str, Any]
    started_at: datetime
    completed_at: datetime
    duration_ms: int
    tokens: TokenUsage | None
    cost: Cost | None

    @property
    def model(self) -> str | None:
        """The model as the provider answered it (else as asked for)."""
        answered = self.response.get("model")
        return answered if isinstance(answered, str) and answered else self.request.get("model")

    @property
    def message(self) -> dict[str, Any]:
        """The first choice's message ({} when the answer has none)."""
        choice = self.first_choice
        message = choice.get("message")
        return message if isinstance(message, dict) else {}

    @property
    def first_choice(self) -> dict[str, Any]:
        choices = self.response.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            return choices[0]
        return {}

    def span(self, name: str, *, bodies: bool = True, **attributes: Any) -> dict[str, Any]:
        """The call as a trace span; `bodies` adds the request and the answer."""
        span: dict[str, Any] = {
            "name": name,
            "kind": "chat.completion",
            "started_at": self.started_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "duration_ms": self.duration_ms,
            "status": "ok",
            "model": self.model,
            "tokens": None if self.tokens is None else self.tokens.model_dump(),
            "cost": None if self.cost is None else self.cost.breakdown().model_dump(),
            **attributes,
        }
        if bodies:
            span["request"] = self.request
            span["response"] = self.response
        return span


def failed_span(
    name: str,
    request: dict[str, Any],
    started_at: datetime,
    error: ProviderError,
    *,
    bodies: bool = True,
) -> dict[str, Any]:
    """A call that got no usable answer, as a trace span (see ChatCall.span)."""
    completed_at = utcnow()
    span: dict[str, Any] = {
        "name": name,
        "kind": "chat.completion",
        "started_at": started_at.isoformat(),
        "completed_at": completed_at.isoformat(),
        "duration_ms": int((completed_at - started_at).total_seconds() * 1000),
        "status": "error",
        "error": error.message,
        "error_category": str(error.category),
    }
    if bodies:
        span["request"] = request
    return span


class ClientPool:
    """`openai` clients by endpoint and key, so that steps reuse connections (and a client,
    slow to make, is made once); closed with the worker's other node services.

    At most `max_clients` are kept: nodes may name endpoints of their own, and a worker
    must not keep one for each forever. A call beyond that gets a client of its own,
    closed after it.
    """

    def __init__(self, max_clients: int = MAX_CLIENTS) -> None:
        self._clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self._max_clients = max_clients

    @asynccontextmanager
    async def lease(self, endpoint: Endpoint) -> AsyncIterator[openai.AsyncOpenAI]:
        """A client of `endpoint`, for one call."""
        key = (endpoint.base_url, endpoint.api_key or NO_KEY)
        client = self._clients.get(key)
        if client is not None:
            yield client
            return
        client = _new_client(endpoint)
        if len(self._clients) < self._max_clients:
            self._clients[key] = client
            yield client
            return
        try:
            yield client
        finally:
            await client.close()

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(client.close() for client in clients), return_exceptions=True)


def _new_client(endpoint: Endpoint) -> openai.AsyncOpenAI:
    import openai

    # Left out even when the server's environment has OPENAI_ORG_ID or OPENAI_PROJECT_ID,
    # which the client would otherwise send.
    not_from_environment = {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()}
    return openai.AsyncOpenAI(
        api_key=endpoint.api_key or NO_KEY,
        base_url=endpoint.base_url,
        max_retries=0,
        default_headers=cast(dict[str, str], not_from_environment),
    )


async def chat_completion(
    endpoint: Endpoint,
    request: Mapping[str, Any],
    *,
    timeout_s: float,
    pool: ClientPool | None = None,
) -> ChatCall:
    """Send `request` (a chat-completions body: model, messages, parameters) and return the
    answer; ProviderError, classified for retries, when there is none to use. Without a
    `pool`, the client is made for this call and closed after it."""
    import openai

    body = {**request, "stream": False}
    clients = pool if pool is not None else ClientPool(max_clients=0)
    where = endpoint.describe()
    started_at, started = utcnow(), time.perf_counter()
    # Every parameter goes in the body as given (extra_body), so that what a provider takes
    # beyond OpenAI's own (top_k, repetition_penalty...) reaches it unchanged.
    parameters = {k: v for k, v in body.items() if k not in ("model", "messages", "stream")}
    try:
        async with clients.lease(endpoint) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model=body["model"],
                messages=body["messages"],
                stream=False,
                extra_body=parameters or None,
                timeout=timeout_s,
            )
            text = raw.text
    except openai.OpenAIError as exc:
        raise classify(exc, where, timeout_s) from exc
    completed_at = utcnow()
    duration_ms = int((time.perf_counter() - started) * 1000)
    response = _completion(text, where)
    tokens = tokens_of(response.get("usage"))
    price = endpoint.prices.price_of(response.get("model"), body.get("model"))
    cost = (
        cost_of(tokens, price, endpoint.prices.currency)
        if tokens is not None and price is not None
        else None
    )
    return ChatCall(
        request=body,
        response=response,
        started_at=started_at,
        completed_at=completed_at,
        duration_ms=duration_ms,
        tokens=tokens,
        cost=cost,
    )


def _completion(text: str, where: str) -> dict[str, Any]:
    try:
        response = json.loads(text)
    except ValueError as exc:
        raise malformed(where, f"invalid JSON ({exc})", text) from None
    if not isinstance(response, dict):
        raise malformed(where, f"a JSON {type(response).__name__}, not an object", text)
    return response


__all__ = [
    "ChatCall",
    "ClientPool",
    "Endpoint",
    "ProviderError",
    "chat_completion",
    "failed_span",
]
