"""A webhook receiver on 127.0.0.1 that checks `X-Stepline-Signature` as a careful receiver
would, written from the documented scheme alone (not with stepline's own code, so that a
mistake in stepline's signing cannot hide behind the same mistake here):

- the header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`;
- the HMAC is computed over the raw body bytes, before any parsing;
- a timestamp further than `tolerance_s` from now is refused (an old delivery replayed);
- a signature already accepted is refused (a delivery replayed within the tolerance).

A refused delivery gets 400 with the reason; an accepted one 200, or the next scripted
reply (`script(Reply(503), ...)`) to test how the sender handles failures.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """One request as it arrived, and what the receiver made of it."""

    path: str
    headers: dict[str, str]
    body: bytes
    accepted: bool
    reason: str | None = None

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


def check_signature(
    secret: str, header: str | None, body: bytes, now: float, tolerance_s: float
) -> tuple[str | None, str | None]:
    """(reason it is refused or None, the matching v1 signature or None)."""
    if not header:
        return "no X-Stepline-Signature header", None
    parts: dict[str, list[str]] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, []).append(value)
    timestamps = parts.get("t", [])
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return "no valid timestamp", None
    expected = hmac.new(
        secret.encode(), timestamps[0].encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    matching = [v for v in parts.get("v1", []) if hmac.compare_digest(v, expected)]
    if not matching:
        return "signature mismatch", None
    if abs(now - int(timestamps[0])) > tolerance_s:
        return "timestamp outside the tolerance", None
    return None, matching[0]


@dataclass
class WebhookReceiver:
    """Start with `with WebhookReceiver(secret=...) as hooks:`; deliver to `hooks.url`."""

    secret: str | None = None
    """None: accepts unsigned deliveries (and checks nothing)."""
    tolerance_s: float = 300
    host: str = "127.0.0.1"
    port: int = 0
    log: Callable[[str], None] | None = None
    deliveries: list[Delivery] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _replies: deque[Reply] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/hooks"

    @property
    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.accepted]

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def __enter__(self) -> WebhookReceiver:
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
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._receive(self)

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

    def _receive(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("content-length") or 0)
        body = request.rfile.read(length) if length else b""
        reason: str | None = None
        matched: str | None = None
        with self._lock:
            if self.secret is not None:
                reason, matched = check_signature(
                    self.secret,
                    request.headers.get("X-Stepline-Signature"),
                    body,
                    time.time(),
                    self.tolerance_s,
                )
                if matched is not None and matched in self._seen:
                    reason = "replayed: this signature was already accepted"
            delivery = Delivery(
                request.path, dict(request.headers.items()), body, reason is None, reason
            )
            self.deliveries.append(delivery)
            reply = self._replies.popleft() if reason is None and self._replies else None
            if reason is not None:
                reply = Reply(400, {"error": reason})
            elif reply is None:
                reply = Reply(200, {"received": True})
            if matched is not None and 200 <= reply.status < 300:
                self._seen.add(matched)  # processed: the same delivery again is a replay
        if self.log is not None:
            self.log(f"webhook {request.path} {body[:200]!r} -> {reply.status} {reason or 'ok'}")
        data = json.dumps(reply.body).encode()
        request.send_response(reply.status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(data)
