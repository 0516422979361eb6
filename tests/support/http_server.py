"""A real HTTP server on 127.0.0.1 for tests: counts hits per path and serves scripted answers."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = tuple[int, dict[str, str], Any]
Route = Callable[[int, dict[str, Any]], Reply]
"""Given the hit number for the path (1-based) and the parsed JSON body, the reply."""


@dataclass(frozen=True)
class Received:
    """One request as it arrived: method, path with its query string, headers, raw body."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LoopbackServer:
    routes: dict[str, Route]
    hits: Counter[str] = field(default_factory=Counter)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    received: list[Received] = field(default_factory=list)

    def hit_count(self, path: str) -> int:
        return self.hits[path]


class _Server(ThreadingHTTPServer):
    # The standard backlog of 5 overflows when a worker fleet calls at once (48 requests
    # in flight): the kernel then drops the handshake's last ACK and the client reads a
    # reset connection (httpx ReadError), failing a test for the harness's sake.
    request_queue_size = 256


@contextmanager
def loopback_server(routes: dict[str, Route]) -> Iterator[LoopbackServer]:
    """Serve `routes` on a free port; unknown paths are 404. Stops on exit."""
    state = LoopbackServer(routes)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            with lock:
                state.hits[path] += 1
                n = state.hits[path]
                state.received.append(
                    Received(self.command, self.path, dict(self.headers.items()), raw)
                )
            route = state.routes.get(path)
            status, headers, payload = route(n, body) if route else (404, {}, {"error": "no route"})
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        server.shutdown()
        server.server_close()
