"""The `api_call` node kind: one HTTP request, its response on the record, its failure typed."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage
from stepline.secrets.redact import mask_headers
from stepline.settings import get_settings

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

ERROR_BODY_LIMIT = 2048
"""How many characters of an error response's body the error's context keeps."""

_DELAY_SECONDS = re.compile(r"\d+(\.\d+)?")


class ApiCallConfig(BaseModel):
    """One HTTP request."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    method: HttpMethod = Field(default="GET", description="The HTTP method (any case).")
    url: str = Field(description="An http:// or https:// URL; templates allowed.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Request headers; numbers and booleans become text."
    )
    query: dict[str, Any] = Field(
        default_factory=dict,
        description="Query parameters added to the URL's own (replacing one of the same name); "
        "a list value repeats the parameter, an object value is sent as JSON text, null is "
        "left out.",
    )
    json_body: Any = Field(
        default=None,
        alias="json",
        description="A JSON request body (sets Content-Type: application/json).",
    )
    body: str | None = Field(
        default=None, description="A raw text request body; not together with `json`."
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds before the request is abandoned as timed out; defaults to the "
        "node's timeout_s, then to STEPLINE_HTTP_TIMEOUT_S.",
    )
    follow_redirects: bool = Field(
        default=True,
        description="Follow 3xx redirects; when false, a 3xx response is the output.",
    )

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"not a valid URL: {exc}") from exc
        if url.scheme not in ("http", "https"):
            raise ValueError(f"URL must start with http:// or https://, got {value!r}")
        if not url.host:
            raise ValueError(f"URL has no host: {value!r}")
        return value

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values_as_text(cls, value: Any) -> Any:
        # A template such as "{{ inputs.n }}" may render to a number: send it as its text.
        if not isinstance(value, Mapping):
            return value
        return {name: _scalar_text(item) for name, item in value.items()}

    @model_validator(mode="after")
    def _one_body(self) -> ApiCallConfig:
        if self.json_body is not None and self.body is not None:
            raise ValueError("set either `json` or `body`, not both")
        return self


class ApiCallNode(NodeKind):
    """Sends the request; a response of 400 or more is an error whose category says whether
    to retry (429 quota, 5xx transient, other 4xx permanent)."""

    type = "api_call"
    config_model = ApiCallConfig
    description = "Sends an HTTP request; outputs the status, headers and body (parsed when JSON)."

    def recorded_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """Credentials in headers are recorded as `***`, wherever their value came from."""
        headers = inputs.get("headers")
        if not isinstance(headers, Mapping):
            return inputs
        return {**inputs, "headers": mask_headers(headers)}

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ApiCallConfig, ctx.config)
        timeout_s = config.timeout_s or ctx.timeout_s or get_settings().http_timeout_s
        request_kwargs: dict[str, Any] = {
            "headers": config.headers,
            "timeout": httpx.Timeout(timeout_s),
            "follow_redirects": config.follow_redirects,
        }
        if config.json_body is not None:
            request_kwargs["json"] = config.json_body
        elif config.body is not None:
            request_kwargs["content"] = config.body
        url = httpx.URL(config.url)
        params = _query_params(config.query)
        if params:
            # httpx would replace the URL's own query with `params`; merge them instead.
            url = url.copy_merge_params(params)
        where = f"{config.method} {config.url}"
        started = time.perf_counter()
        try:
            if ctx.services.http is not None:
                response = await ctx.services.http.request(config.method, url, **request_kwargs)
            else:
                async with httpx.AsyncClient() as client:
                    response = await client.request(config.method, url, **request_kwargs)
        except httpx.TimeoutException as exc:
            raise _request_error(
                f"{where} timed out after {timeout_s:g} s", exc, ErrorCategory.transient
            ) from exc
        except httpx.TransportError as exc:
            raise _request_error(
                f"{where} failed: {type(exc).__name__}: {exc}", exc, ErrorCategory.transient
            ) from exc
        except httpx.HTTPError as exc:
            # E.g. TooManyRedirects or a body that cannot be decoded: trying again won't help.
            raise _request_error(
                f"{where} failed: {type(exc).__name__}: {exc}", exc, ErrorCategory.permanent
            ) from exc
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        output = _response_output(response, elapsed_ms)
        if response.status_code >= 400:
            raise _status_error(config.method, response, output)
        return NodeResult(output=output)


def _scalar_text(value: Any) -> Any:
    """JSON scalars as the text a header or query string carries; other values unchanged."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def _query_params(query: Mapping[str, Any]) -> httpx.QueryParams:
    """The query as parameters httpx accepts, whatever JSON a template produced."""
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for name, value in query.items():
        for item in value if isinstance(value, list) else [value]:
            if item is None:
                continue
            if isinstance(item, dict | list):
                pairs.append((name, json.dumps(item)))
            else:
                pairs.append((name, str(_scalar_text(item))))
    return httpx.QueryParams(pairs)


def _response_output(response: httpx.Response, elapsed_ms: int) -> dict[str, Any]:
    """The step's output: what came back, with a JSON body parsed."""
    return {
        "status_code": response.status_code,
        "headers": {name.lower(): value for name, value in response.headers.items()},
        "body": _body(response),
        "url": str(response.url),
        "elapsed_ms": elapsed_ms,
    }


def _body(response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return response.json()
        except ValueError:
            # A server that says JSON but sends something else: keep what it sent.
            return response.text
    return response.text


def _status_error(method: str, response: httpx.Response, output: dict[str, Any]) -> NodeError:
    """The error for a response of 400 or more, categorized for the retry policy."""
    status = response.status_code
    message = f"HTTP {status} {response.reason_phrase} from {method} {response.url}"
    if status == 429:
        category = ErrorCategory.quota
    elif status >= 500:
        category = ErrorCategory.transient
    else:
        category = ErrorCategory.permanent
    text = response.text
    if len(text) > ERROR_BODY_LIMIT:
        text = text[:ERROR_BODY_LIMIT] + f"... [{len(text) - ERROR_BODY_LIMIT} more characters]"
    details = ErrorDetails(
        type="HTTPStatusError",
        message=message,
        error_code=f"http_{status}",
        context={
            "status_code": status,
            "body": text,
            "url": str(response.url),
            "method": method,
        },
    )
    return NodeError(
        message,
        category=category,
        stage=ErrorStage.execution,
        details=details,
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        metadata=output,
    )


def _request_error(message: str, exc: httpx.HTTPError, category: ErrorCategory) -> NodeError:
    """The error for a request that got no response."""
    details = ErrorDetails(type=type(exc).__name__, message=message, error_code="http_request")
    return NodeError(message, category=category, stage=ErrorStage.execution, details=details)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay seconds or an HTTP date); None if absent
    or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
