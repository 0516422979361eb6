"""Slack: one Web API method per step (`chat.postMessage`, `chat.meMessage`, a file upload,
any other method), with a bot token; Slack's answer is the step's `data`.

Slack answers most failures with HTTP 200 and `{"ok": false, "error": "<code>"}`: that is an
error step whose message carries the code. Rate limits come as HTTP 429 with Retry-After
(quota); 5xx, timeouts and connection errors are transient; every other refusal is
permanent, except the codes Slack documents as rate limits or its own passing trouble.

`files.upload` (retired by Slack in 2025) and `files.uploadV2` both run Slack's current
upload flow: `files.getUploadURLExternal`, the bytes to the URL it gives (without the
token: that URL is pre-signed, and on another host), then `files.completeUploadExternal`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_validator

from stepline.nodes.api_call import parse_retry_after
from stepline.nodes.base import NodeError
from stepline.nodes.integrations import http
from stepline.nodes.integrations.common import Call, failure
from stepline.records import ErrorCategory, ErrorStage
from stepline.secrets.redact import MASK

SLACK_API = "https://slack.com/api"

COMPOSIO_ACTIONS = {
    "SLACK_SHARE_A_ME_MESSAGE_IN_A_CHANNEL": "chat.meMessage",
    "SLACK_SENDS_A_MESSAGE_TO_A_SLACK_CHANNEL": "chat.postMessage",
}
"""Action names as Arcee records them (Composio's), and the Web API method each one is."""

UPLOAD_ACTIONS = frozenset({"files.upload", "files.uploadV2"})

QUOTA_ERRORS = frozenset({"ratelimited", "rate_limited"})
TRANSIENT_ERRORS = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)

_METHOD = re.compile(r"[a-z][A-Za-z]*(\.[A-Za-z][A-Za-z0-9]*)+")


class SlackSettings(BaseModel):
    """How to reach Slack."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(
        min_length=1,
        description='The bot token (xoxb-...), e.g. "{{ secrets.SLACK_BOT_TOKEN }}"; recorded '
        "as ***.",
    )
    base_url: str = Field(
        default=SLACK_API,
        pattern=r"^https?://",
        description="The Web API's base URL (a stand-in or a proxy instead of Slack's).",
    )
    body_encoding: Literal["json", "form"] = Field(
        default="json",
        description="How the method's arguments are sent: JSON (write methods), or form "
        "fields for the methods that take only those (most read methods).",
    )


class FileUpload(BaseModel):
    """The `input_mapping` of a file upload."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1)
    content: str | None = Field(default=None, description="The file's text (sent as UTF-8).")
    content_base64: str | None = Field(default=None, description="Or its bytes, in base64.")
    title: str | None = None
    channel_id: str | None = Field(
        default=None,
        validation_alias=AliasChoices("channel_id", "channel"),
        description="The ID (C...) of the channel to share it in; unshared when absent.",
    )
    initial_comment: str | None = None
    thread_ts: str | None = None
    alt_txt: str | None = None
    snippet_type: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> FileUpload:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give the file as either `content` or `content_base64`")
        return self

    def data(self) -> bytes:
        if self.content is not None:
            return self.content.encode()
        try:
            return base64.b64decode(self.content_base64 or "", validate=True)
        except binascii.Error as exc:
            raise ValueError(f"content_base64 is not base64: {exc}") from exc


def method_for(action: str) -> str | None:
    """The Web API method an action names, or None when it names none."""
    if action in COMPOSIO_ACTIONS:
        return COMPOSIO_ACTIONS[action]
    return action if _METHOD.fullmatch(action) else None


def recorded_settings(settings: SlackSettings) -> dict[str, Any]:
    return {"base_url": settings.base_url, "token": MASK, "body_encoding": settings.body_encoding}


async def perform(settings: SlackSettings, call: Call) -> Any:
    method = method_for(call.action)
    if method is None:  # the config model refuses such an action first
        raise ValueError(f"not a Slack Web API method: {call.action!r}")
    async with http.client(call.http) as client:
        api = SlackApi(client, settings, call.timeout_s)
        if method in UPLOAD_ACTIONS:
            return await _upload(api, call.input_mapping)
        return await api.call(method, call.input_mapping, settings.body_encoding)


class SlackApi:
    """Calls Web API methods with the bot token; each answer checked and classified."""

    def __init__(self, client: httpx.AsyncClient, settings: SlackSettings, timeout_s: float):
        self.client = client
        self.base_url = settings.base_url.rstrip("/")
        self.token = settings.token
        self.timeout_s = timeout_s

    async def call(
        self, method: str, arguments: dict[str, Any], encoding: Literal["json", "form"]
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if encoding == "json":
            # With the charset, which Slack otherwise warns is missing.
            headers["Content-Type"] = "application/json; charset=utf-8"
            content = json.dumps(arguments, ensure_ascii=False).encode()
        else:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            content = urlencode(_form_fields(arguments)).encode()
        try:
            response = await self.client.post(
                f"{self.base_url}/{method}",
                content=content,
                headers=headers,
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise http.request_failure(f"Slack {method}", exc, self.timeout_s) from exc
        return _answer(method, response)

    async def send_bytes(self, upload_url: str, data: bytes) -> None:
        """POST a file's bytes to the upload URL Slack gave."""
        where = "Slack file upload"
        try:
            response = await self.client.post(
                upload_url,
                content=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=self.timeout_s,
            )
        except httpx.HTTPError as exc:
            raise http.request_failure(where, exc, self.timeout_s) from exc
        if response.status_code >= 300:
            raise _status_failure(where, response, http.body(response))


async def _upload(api: SlackApi, arguments: dict[str, Any]) -> dict[str, Any]:
    try:
        upload = FileUpload.model_validate(arguments)
        data = upload.data()
    except (ValidationError, ValueError) as exc:
        raise failure(
            f"the file upload's input_mapping is invalid: {exc}",
            category=ErrorCategory.permanent,
            code="invalid_arguments",
            stage=ErrorStage.input_collection,
        ) from exc
    ticket = await api.call(
        "files.getUploadURLExternal",
        {
            "filename": upload.filename,
            "length": len(data),
            "alt_txt": upload.alt_txt,
            "snippet_type": upload.snippet_type,
        },
        "form",
    )
    upload_url, file_id = ticket.get("upload_url"), ticket.get("file_id")
    if not isinstance(upload_url, str) or not isinstance(file_id, str):
        raise failure(
            "Slack files.getUploadURLExternal answered without an upload_url and file_id",
            category=ErrorCategory.permanent,
            code="invalid_answer",
            data=ticket,
        )
    await api.send_bytes(upload_url, data)
    complete = {
        "files": [{"id": file_id, "title": upload.title or upload.filename}],
        "channel_id": upload.channel_id,
        "initial_comment": upload.initial_comment,
        "thread_ts": upload.thread_ts,
    }
    return await api.call("files.completeUploadExternal", complete, "form")


def _form_fields(arguments: dict[str, Any]) -> list[tuple[str, str]]:
    """Form fields as Slack reads them: structures as JSON text, booleans as true/false."""
    fields: list[tuple[str, str]] = []
    for name, value in arguments.items():
        if value is None:
            continue
        if isinstance(value, bool):
            fields.append((name, "true" if value else "false"))
        elif isinstance(value, dict | list):
            fields.append((name, json.dumps(value, ensure_ascii=False)))
        else:
            fields.append((name, str(value)))
    return fields


def _answer(method: str, response: httpx.Response) -> dict[str, Any]:
    """Slack's answer when it is `ok`; otherwise the classified error."""
    where = f"Slack {method}"
    answer = http.body(response)
    if response.status_code >= 400:
        raise _status_failure(where, response, answer)
    if not isinstance(answer, dict) or not isinstance(answer.get("ok"), bool):
        raise failure(
            f"{where} did not answer as the Slack Web API does (HTTP {response.status_code})",
            category=ErrorCategory.permanent,
            code="invalid_answer",
            data=answer,
            context={"method": method, "status_code": response.status_code},
        )
    if answer["ok"]:
        return answer
    code = str(answer.get("error") or "unknown_error")
    if code in QUOTA_ERRORS:
        category = ErrorCategory.quota
    elif code in TRANSIENT_ERRORS:
        category = ErrorCategory.transient
    else:
        category = ErrorCategory.permanent
    raise failure(
        f"{where} failed: {code}{_scopes(answer)}",
        category=category,
        code=code,
        data=answer,
        context={"method": method, "status_code": response.status_code},
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        error_type="SlackApiError",
    )


def _status_failure(where: str, response: httpx.Response, answer: Any) -> NodeError:
    status = response.status_code
    code = answer.get("error") if isinstance(answer, dict) else None
    reason = f" ({code})" if isinstance(code, str) else ""
    return failure(
        f"{where} failed: HTTP {status} {response.reason_phrase}{reason}",
        category=http.status_category(status),
        code=code if isinstance(code, str) else f"http_{status}",
        data=answer,
        context={"status_code": status},
        retry_after_s=parse_retry_after(response.headers.get("retry-after")),
        error_type="SlackApiError",
    )


def _scopes(answer: dict[str, Any]) -> str:
    """For `missing_scope`: the scope the method needs and those the token has."""
    needed, provided = answer.get("needed"), answer.get("provided")
    if not needed:
        return ""
    return f" (needed: {needed}; provided: {provided or 'none'})"
