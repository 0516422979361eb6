"""Webhooks: the `input_mapping` POSTed as JSON to a URL, signed when a signing secret is
set (see stepline.webhook_signature); the step's `data` is the receiver's status and body.

Any 2xx is a delivery. Redirects are not followed (a signed delivery goes where it was
configured to, or nowhere): a 3xx is a permanent failure, like any other 4xx but 429
(quota, honouring Retry-After); 5xx, timeouts and connection errors are transient.

Each delivery carries `X-Stepline-Delivery`, the same for every retry of one step, so a
receiver can drop a delivery it already processed; the signature's timestamp is new on
each try.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline import __version__
from stepline.nodes.api_call import parse_retry_after
from stepline.nodes.integrations import http
from stepline.nodes.integrations.common import Call, failure
from stepline.secrets.redact import MASK, mask_headers
from stepline.webhook_signature import SIGNATURE_HEADER, sign

DELIVERY_HEADER = "X-Stepline-Delivery"


class WebhookSettings(BaseModel):
    """Where to deliver, and how to sign."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(pattern=r"^https?://", description="The receiver's http(s) URL.")
    signing_secret: str | None = Field(
        default=None,
        description='Signs each delivery (X-Stepline-Signature), e.g. "{{ secrets.'
        'WEBHOOK_SECRET }}"; recorded as ***.',
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="More request headers (credential headers are recorded as ***).",
    )

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values_as_text(cls, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return value
        return {
            name: str(item).lower() if isinstance(item, bool) else str(item)
            for name, item in value.items()
        }


def recorded_settings(settings: WebhookSettings) -> dict[str, Any]:
    recorded: dict[str, Any] = {"url": settings.url}
    if settings.headers:
        recorded["headers"] = mask_headers(settings.headers)
    if settings.signing_secret is not None:
        recorded["signing_secret"] = MASK
    return recorded


async def perform(settings: WebhookSettings, call: Call) -> dict[str, Any]:
    # Exactly these bytes are signed and sent: a receiver verifies them before parsing.
    body = json.dumps(call.input_mapping, ensure_ascii=False, separators=(",", ":")).encode()
    headers = {
        **settings.headers,
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": f"stepline/{__version__}",
        DELIVERY_HEADER: call.delivery_id,
    }
    if settings.signing_secret is not None:
        headers[SIGNATURE_HEADER] = sign(settings.signing_secret, body)
    where = f"webhook POST {settings.url}"
    async with http.client(call.http) as client:
        try:
            response = await client.post(
                settings.url,
                content=body,
                headers=headers,
                timeout=call.timeout_s,
                follow_redirects=False,
            )
        except httpx.HTTPError as exc:
            raise http.request_failure(where, exc, call.timeout_s) from exc
    data = {"status_code": response.status_code, "body": http.body(response)}
    if response.is_success:
        return data
    status = response.status_code
    raise failure(
        f"{where} answered HTTP {status} {response.reason_phrase}",
        category=http.status_category(status),
        code=f"http_{status}",
        data=data,
        context={"status_code": status},
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        error_type="WebhookError",
    )
