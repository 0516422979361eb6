"""A Slack Web API stand-in on 127.0.0.1: answers like Slack, records every call.

It speaks the methods stepline's Slack steps use (`auth.test`, `chat.postMessage`,
`chat.meMessage`, `conversations.list`, and the upload flow: `files.getUploadURLExternal`,
the upload URL, `files.completeUploadExternal`) as Slack does: HTTP 200 with `ok`, and
`{"ok": false, "error": "<code>"}` for what Slack refuses (`not_authed`, `invalid_auth`,
`channel_not_found`, `no_text`, `invalid_arguments`, `unknown_method`...), with Slack's
`missing_charset` warning for JSON sent without a charset. Channels are known by name or
by their ID (`channel_id("general")`).

`script(method, Reply(...), ...)` makes the next calls of a method answer as told instead
(an `ok: false`, a 429 with Retry-After, a 500), once each, in order.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DEFAULT_CHANNELS = ("general", "orchestra-demo", "alerts")
TEAM_ID, BOT_ID, BOT_USER_ID = "T0STANDIN1", "B0STEPLINE", "U0STEPLINE"


@dataclass(frozen=True)
class Reply:
    """A scripted answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SlackCall:
    """One Web API call as it arrived."""

    method: str
    headers: dict[str, str]
    arguments: dict[str, Any]
    raw: bytes


def channel_id(name: str) -> str:
    """The stand-in's (stable) ID of a channel name."""
    return "C" + hashlib.sha1(name.encode()).hexdigest()[:10].upper()


@dataclass
class SlackStandIn:
    """Start with `with SlackStandIn(token=...) as slack:`; point steps at `slack.base_url`."""

    token: str = "xoxb-stand-in"
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    host: str = "127.0.0.1"
    port: int = 0
    log: Callable[[str], None] | None = None
    """Told one line per call (the offline command prints them)."""
    calls: list[SlackCall] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    _scripts: dict[str, deque[Reply]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _last_ts: float = 0.0

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api"

    def script(self, method: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts.setdefault(method, deque()).extend(replies)

    def calls_of(self, method: str) -> list[SlackCall]:
        return [call for call in self.calls if call.method == method]

    def __enter__(self) -> SlackStandIn:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                stand_in._serve(self)

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- one request ----------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        path = urlsplit(request.path).path
        length = int(request.headers.get("content-length") or 0)
        raw = request.rfile.read(length) if length else b""
        if path.startswith("/upload/v1/"):
            status, headers, body = self._receive_upload(path.rsplit("/", 1)[1], raw)
            _send(request, status, headers, body, "text/plain; charset=utf-8")
            return
        if not path.startswith("/api/"):
            _send(request, 404, {}, b"not found", "text/plain")
            return
        method = path.removeprefix("/api/")
        content_type = request.headers.get("content-type", "")
        arguments = _arguments(request.path, content_type, raw)
        call = SlackCall(method, dict(request.headers.items()), arguments, raw)
        with self._lock:
            self.calls.append(call)
            scripted = self._scripts.get(method)
            reply = scripted.popleft() if scripted else None
        if reply is None:
            reply = Reply(200, self._answer(method, call))
            if content_type.startswith("application/json") and "charset" not in content_type:
                reply.body["warning"] = "missing_charset"
                reply.body["response_metadata"] = {"warnings": ["missing_charset"]}
        if self.log is not None:
            answer = reply.body.get("error", "ok") if isinstance(reply.body, dict) else ""
            self.log(f"slack {method} {json.dumps(arguments)[:200]} -> {reply.status} {answer}")
        body = json.dumps(reply.body).encode()
        _send(request, reply.status, reply.headers, body, "application/json; charset=utf-8")

    def _answer(self, method: str, call: SlackCall) -> dict[str, Any]:
        token = call.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or str(call.arguments.get("token") or "")
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth"}
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.meMessage": self._me_message,
            "conversations.list": self._conversations_list,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return {"ok": False, "error": "unknown_method", "req_method": method}
        with self._lock:
            return handler(call.arguments)

    def _auth_test(self, arguments: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://stand-in.slack.com/",
            "team": "Stand-in",
            "user": "stepline",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
        }

    def _post_message(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(arguments.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not any(arguments.get(key) for key in ("text", "blocks", "attachments")):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": arguments.get("text", ""),
            "ts": ts,
            "bot_id": BOT_ID,
            "user": BOT_USER_ID,
        }
        if arguments.get("thread_ts"):
            message["thread_ts"] = arguments["thread_ts"]
        self.messages.append({"method": "chat.postMessage", "channel": channel, **message})
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _me_message(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(arguments.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if not arguments.get("text"):
            return {"ok": False, "error": "no_text"}
        ts = self._next_ts()
        self.messages.append(
            {"method": "chat.meMessage", "channel": channel, "text": arguments["text"], "ts": ts}
        )
        return {"ok": True, "channel": channel, "ts": ts}

    def _conversations_list(self, arguments: dict[str, Any]) -> dict[str, Any]:
        channels = [{"id": channel_id(name), "name": name} for name in self.channels]
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": ""}}

    def _upload_url(self, arguments: dict[str, Any]) -> dict[str, Any]:
        filename, length = arguments.get("filename"), arguments.get("length")
        if not filename or not str(length or "").isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{len(self.files) + 1:09d}"
        self.files[file_id] = {"name": filename, "length": int(str(length)), "content": None}
        return {"ok": True, "upload_url": f"{self.origin}/upload/v1/{file_id}", "file_id": file_id}

    def _receive_upload(self, file_id: str, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            entry = self.files.get(file_id)
            if entry is None:
                return 404, {}, b"no such upload"
            entry["content"] = raw
        return 200, {}, f"OK - {len(raw)}".encode()

    def _complete_upload(self, arguments: dict[str, Any]) -> dict[str, Any]:
        files = arguments.get("files")
        if isinstance(files, str):
            try:
                files = json.loads(files)
            except ValueError:
                return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel = arguments.get("channel_id")
        if channel is not None and channel not in {channel_id(n) for n in self.channels}:
            return {"ok": False, "error": "channel_not_found"}  # IDs only, as Slack wants
        completed = []
        for item in files:
            entry = self.files.get(item.get("id", ""))
            if entry is None or entry["content"] is None:
                return {"ok": False, "error": "file_not_found"}
            if len(entry["content"]) != entry["length"]:
                return {"ok": False, "error": "file_upload_size_mismatch"}
            entry["title"] = item.get("title") or entry["name"]
            entry["channel"] = channel
            entry["initial_comment"] = arguments.get("initial_comment")
            completed.append({"id": item["id"], "name": entry["name"], "title": entry["title"]})
        return {"ok": True, "files": completed}

    def _channel(self, value: Any) -> str | None:
        """The ID of a channel given by ID, name or #name; None when it is not known."""
        if not isinstance(value, str) or not value:
            return None
        ids = {channel_id(name): name for name in self.channels}
        if value in ids:
            return value
        name = value.removeprefix("#")
        return channel_id(name) if name in self.channels else None

    def _next_ts(self) -> str:
        # Slack's ts is unique per channel and increasing: seconds with six decimals.
        self._last_ts = max(time.time(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"


def _arguments(target: str, content_type: str, raw: bytes) -> dict[str, Any]:
    """The method's arguments, from the query string and a JSON or form body."""
    arguments: dict[str, Any] = dict(parse_qsl(urlsplit(target).query))
    if content_type.startswith("application/json") and raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            arguments.update(body)
    elif content_type.startswith("application/x-www-form-urlencoded"):
        arguments.update(parse_qsl(raw.decode()))
    return arguments


def _send(
    request: BaseHTTPRequestHandler,
    status: int,
    headers: dict[str, str],
    body: bytes,
    content_type: str,
) -> None:
    request.send_response(status)
    request.send_header("Content-Type", content_type)
    request.send_header("Content-Length", str(len(body)))
    for name, value in headers.items():
        request.send_header(name, value)
    request.end_headers()
    request.wfile.write(body)
