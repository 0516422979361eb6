"""The contract between the `integration` kind and its apps: what a step asks for, and the
output shape every app answers in (Arcee's, as seed 000 records its Slack step)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from stepline.nodes.base import NodeError
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage


@dataclass(frozen=True)
class Call:
    """One action of one app, as a step asks for it (templates resolved)."""

    action: str
    input_mapping: dict[str, Any]
    timeout_s: float
    delivery_id: str
    """Stable across the retries of one step: lets a receiver drop a repeated delivery."""
    http: httpx.AsyncClient | None = None
    """The worker's shared HTTP client (None: the app opens its own)."""


def result(data: Any, error: str | None = None) -> dict[str, Any]:
    """The step's output: `{"result": {"data", "error", "successful"}}`."""
    return {"result": {"data": data, "error": error, "successful": error is None}}


def failure(
    message: str,
    *,
    category: ErrorCategory,
    code: str,
    data: Any = None,
    context: dict[str, Any] | None = None,
    retry_after_s: float | None = None,
    stage: ErrorStage = ErrorStage.execution,
    error_type: str = "IntegrationError",
) -> NodeError:
    """A failed action: `code` is the app's own error code (Slack's `channel_not_found`,
    `http_503`, an SMTP reply code); what the app answered stays on record in the step's
    metadata, in the output shape."""
    details = ErrorDetails(type=error_type, message=message, error_code=code, context=context)
    return NodeError(
        message,
        category=category,
        stage=stage,
        details=details,
        retry_after_s=retry_after_s,
        metadata=result(data, code),
    )
