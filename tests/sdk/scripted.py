"""A loopback HTTP server that answers each path from a script, hit by hit: for the SDK's
own protocol behaviour (retries, backoff, broken connections), which a real server cannot
be made to show on purpose."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Reply:
    """An answer: JSON (or bytes as they are); `cut` promises that many bytes more than it
    sends, then drops the connection."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    cut: int = 0


RESET = Reply(status=0)
"""No answer: the connection is reset (RST) as soon as the request arrived."""

Script = Callable[[int], Reply]
"""The reply to the n-th request (1-based) of a path."""


def failing(times: int, failure: Reply, then: Reply) -> Script:
    """`failure` for the first `times` requests, `then` after."""
    return lambda hit: failure if hit <= times else then


def envelope(status: int, code: str, request_id: str = "", **headers: str) -> Reply:
    body = {"error": {"code": code, "message": code, "details": []}, "request_id": request_id}
    return Reply(status, body, headers)


@dataclass(frozen=True)
class Received:
    method: str
    target: str
    headers: dict[str, str]
    at: float


@dataclass
class Scripted:
    url: str = ""
    hits: Counter[str] = field(default_factory=Counter)
    received: list[Received] = field(default_factory=list)

    def arrivals(self, path: str) -> list[float]:
        """When each request of `path` arrived (time.monotonic())."""
        return [r.at for r in self.received if r.target.split("?", 1)[0] == path]


@contextmanager
def scripted_server(routes: dict[str, Script]) -> Iterator[Scripted]:
    state = Scripted()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            with lock:
                state.hits[path] += 1
                hit = state.hits[path]
                received = Received(self.command, self.path, dict(self.headers), time.monotonic())
                state.received.append(received)
            reply = routes[path](hit) if path in routes else envelope(404, "not_found")
            if reply.status == 0:
                linger = struct.pack("ii", 1, 0)
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                self.close_connection = True
                return
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("content-type", "application/json")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(data) + reply.cut))
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            self.close_connection = reply.cut > 0

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
