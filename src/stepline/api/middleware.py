"""Every request: an id (X-Request-Id), a body-size cap, one JSON access-log line, and a
500 in the error envelope for any exception nothing else handled (`api.failures`).

Written as plain ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and
a stream copy per request. The hottest read (a page of a run's steps) gets a fast lane
here, ahead of FastAPI's routing: the app gives the middleware its `fast_lane`
(`routes.steps.list_steps_fast`), which answers the requests it is sure of and leaves the
rest to the route.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stepline.api.errors import BodyTooLarge, error_response
from stepline.api.failures import answer_unhandled
from stepline.api.logs import request_id_var

log = logging.getLogger("stepline.api.access")

_INCOMING_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

FastLane = Callable[[Scope], Awaitable[Response | None]]
"""Answers a request ahead of the routing, or gives None to leave it to the route."""


async def _no_fast_lane(scope: Scope) -> Response | None:
    return None


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        fast_lane: FastLane = _no_fast_lane,
        uploads: dict[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.fast_lane = fast_lane
        self.uploads = uploads or {}
        """Paths a POST uploads a file to, and their own (larger) body limits."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        started_response = completed_response = False
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status, started_response, completed_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", []), header]
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                completed_response = True
            await send(message)

        limit = self.max_body_bytes
        if scope["method"] == "POST" and scope["path"] in self.uploads:
            limit = max(limit, self.uploads[scope["path"]])
        declared = _content_length(scope)
        received = 0

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        try:
            if declared is not None and declared > limit:
                await _reject_too_large(request_id, limit, send_with_id, scope["path"])
                return
            fast = await self.fast_lane(scope)
            if fast is not None:
                await fast(scope, capped_receive, send_with_id)
                return
            await self.app(scope, capped_receive, send_with_id)
        except Exception as exc:
            await answer_unhandled(
                exc,
                scope,
                receive,
                send_with_id,
                request_id=request_id,
                response_started=started_response,
                response_complete=completed_response,
            )
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    },
                )
            request_id_var.reset(token)


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if _INCOMING_ID.match(incoming):
                return incoming
    return str(uuid.uuid4())


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _reject_too_large(request_id: str, limit: int, send: Send, path: str) -> None:
    response = error_response(
        request_id, 413, f"request body is larger than the limit of {limit} bytes", path=path
    )
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(response.body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": bytes(response.body)})
