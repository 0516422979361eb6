"""A step's model calls: each one a trace span, their tokens and cost added up, and a
failure with what the calls before it spent (a refused or unusable answer still costs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stepline.nodes.base import NodeError
from stepline.providers.client import ChatCall, ClientPool, Endpoint, chat_completion, failed_span
from stepline.providers.errors import ProviderError
from stepline.providers.pricing import total_cost
from stepline.providers.usage import total_tokens
from stepline.records import (
    CostBreakdown,
    ErrorCategory,
    ErrorDetails,
    ErrorStage,
    TokenUsage,
    utcnow,
)


@dataclass
class Calls:
    """The model calls of one step: their spans, tokens and cost added up."""

    endpoint: Endpoint
    pool: ClientPool | None
    timeout_s: float
    calls: list[ChatCall] = field(default_factory=list)
    spans: list[dict[str, Any]] = field(default_factory=list)

    async def send(
        self, name: str, request: dict[str, Any], *, bodies: bool = True, **attributes: Any
    ) -> ChatCall:
        """One call, on the record as span `name`; ProviderError when it fails."""
        started = utcnow()
        try:
            call = await chat_completion(
                self.endpoint, request, timeout_s=self.timeout_s, pool=self.pool
            )
        except ProviderError as exc:
            self.spans.append(failed_span(name, request, started, exc, bodies=bodies))
            raise
        self.calls.append(call)
        self.spans.append(call.span(name, bodies=bodies, **attributes))
        return call

    @property
    def model(self) -> str | None:
        return self.calls[-1].model if self.calls else None

    @property
    def tokens(self) -> TokenUsage | None:
        return total_tokens(call.tokens for call in self.calls)

    @property
    def cost(self) -> CostBreakdown | None:
        cost = total_cost(call.cost for call in self.calls)
        return None if cost is None else cost.breakdown()

    def metadata(self, **more: Any) -> dict[str, Any]:
        return {"provider": self.endpoint.provider, "base_url": self.endpoint.base_url, **more}

    def error(
        self,
        message: str,
        category: ErrorCategory,
        *,
        code: str,
        retry_after_s: float | None = None,
        context: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> NodeError:
        """A failed step, with what its calls spent on the record."""
        return NodeError(
            message,
            category=category,
            stage=ErrorStage.execution,
            details=ErrorDetails(
                type="ProviderError", message=message, error_code=code, context=context
            ),
            retry_after_s=retry_after_s,
            metadata=self.metadata(**(metadata or {})),
            model=self.model,
            tokens=self.tokens,
            cost=self.cost,
            trace_spans=self.spans,
        )

    def failed(self, exc: ProviderError, **metadata: Any) -> NodeError:
        context: dict[str, Any] = {"status_code": exc.status_code} if exc.status_code else {}
        if exc.body:
            context["body"] = exc.body
        return self.error(
            exc.message,
            exc.category,
            code=exc.code,
            retry_after_s=exc.retry_after_s,
            context=context or None,
            metadata=metadata,
        )
