"""The api_call node kind, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from pydantic import ValidationError

from stepline.nodes.api_call import ApiCallConfig, ApiCallNode, parse_retry_after
from stepline.nodes.base import NodeContext, NodeError, NodeServices
from stepline.records import ErrorCategory, ErrorStage
from stepline.spec.models import NodeSpec

_RELEASE = threading.Event()
"""Set at teardown so that a slow route stops waiting."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _send(
        self,
        status: int,
        body: bytes | str = b"",
        content_type: str = "text/plain",
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _json(self, status: int, payload: Any, **kwargs: Any) -> None:
        self._send(status, json.dumps(payload), "application/json; charset=utf-8", **kwargs)

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/json":
            self._json(200, {"hello": "world", "n": [1, 2]}, headers={"X-Trace": "abc"})
        elif path == "/problem-json":
            self._send(200, '{"ok": true}', "application/problem+json")
        elif path == "/text":
            self._send(200, "plain text", "text/plain; charset=utf-8")
        elif path == "/bad-json":
            self._send(200, "not json {", "application/json")
        elif path == "/echo":
            self._json(
                200,
                {
                    "method": self.command,
                    "query": parse_qs(parts.query),
                    "headers": {name.lower(): value for name, value in self.headers.items()},
                    "body": body,
                },
            )
        elif path == "/missing":
            self._json(404, {"error": "no such thing"})
        elif path == "/throttled":
            self._send(429, "slow down", headers={"Retry-After": "7"})
        elif path == "/throttled-until":
            until = datetime.now(UTC) + timedelta(seconds=120)
            self._send(429, "slow down", headers={"Retry-After": format_datetime(until, True)})
        elif path == "/unavailable":
            self._send(503, "try later")
        elif path == "/huge-error":
            self._send(500, "x" * 10_000)
        elif path == "/slow":
            _RELEASE.wait(5)
            try:
                self._send(200, "late")
            except OSError:
                pass  # the client gave up, as the test intends
        elif path == "/redirect":
            self._send(302, "", headers={"Location": "/json"})
        elif path == "/redirect-loop":
            self._send(302, "", headers={"Location": "/redirect-loop"})
        else:
            self._send(418, "unknown route")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _route


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        _RELEASE.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def make_ctx(
    config: dict[str, Any],
    *,
    timeout_s: float | None = None,
    services: NodeServices | None = None,
) -> NodeContext:
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id="call", type="api_call", config=config),
        step_id="call",
        attempt=1,
        inputs=config,
        config=ApiCallConfig.model_validate(config),
        timeout_s=timeout_s,
        evaluate=lambda expr: None,
        scope={"inputs": {}, "nodes": {}},
        services=services or NodeServices(),
    )


async def call(config: dict[str, Any], **kwargs: Any) -> Any:
    return (await ApiCallNode().run(make_ctx(config, **kwargs))).output


async def call_error(config: dict[str, Any], **kwargs: Any) -> NodeError:
    with pytest.raises(NodeError) as caught:
        await ApiCallNode().run(make_ctx(config, **kwargs))
    return caught.value


# successful responses


async def test_json_response_is_parsed_into_the_output(base_url: str) -> None:
    output = await call({"url": f"{base_url}/json"})
    assert set(output) == {"status_code", "headers", "body", "url", "elapsed_ms"}
    assert output["status_code"] == 200
    assert output["body"] == {"hello": "world", "n": [1, 2]}
    assert output["url"] == f"{base_url}/json"
    assert isinstance(output["elapsed_ms"], int)
    assert output["elapsed_ms"] >= 0
    assert output["headers"]["x-trace"] == "abc"
    assert output["headers"]["content-type"] == "application/json; charset=utf-8"
    assert all(name == name.lower() for name in output["headers"])


async def test_json_suffix_content_type_is_parsed(base_url: str) -> None:
    output = await call({"url": f"{base_url}/problem-json"})
    assert output["body"] == {"ok": True}


async def test_text_response_body_is_text(base_url: str) -> None:
    output = await call({"url": f"{base_url}/text"})
    assert output["body"] == "plain text"


async def test_unparseable_json_body_falls_back_to_text(base_url: str) -> None:
    output = await call({"url": f"{base_url}/bad-json"})
    assert output["status_code"] == 200
    assert output["body"] == "not json {"


async def test_method_query_headers_and_json_body_are_sent(base_url: str) -> None:
    output = await call(
        {
            "method": "post",
            "url": f"{base_url}/echo?fixed=1",
            "headers": {"X-Api-Key": "secret", "X-Count": 3, "X-Flag": True},
            "query": {"q": "hello world", "ids": [1, 2], "on": True, "none": None},
            "json": {"name": "Ada", "tags": ["x"]},
        }
    )
    echo = output["body"]
    assert echo["method"] == "POST"
    assert echo["query"] == {
        "fixed": ["1"],
        "q": ["hello world"],
        "ids": ["1", "2"],
        "on": ["true"],
    }
    assert echo["headers"]["x-api-key"] == "secret"
    assert echo["headers"]["x-count"] == "3"
    assert echo["headers"]["x-flag"] == "true"
    assert echo["headers"]["content-type"] == "application/json"
    assert json.loads(echo["body"]) == {"name": "Ada", "tags": ["x"]}


async def test_text_body_is_sent_as_is(base_url: str) -> None:
    output = await call(
        {
            "method": "PUT",
            "url": f"{base_url}/echo",
            "headers": {"Content-Type": "text/csv"},
            "body": "a,b\n1,2\n",
        }
    )
    assert output["body"]["method"] == "PUT"
    assert output["body"]["body"] == "a,b\n1,2\n"
    assert output["body"]["headers"]["content-type"] == "text/csv"


async def test_head_request_has_empty_body(base_url: str) -> None:
    output = await call({"method": "HEAD", "url": f"{base_url}/text"})
    assert output["status_code"] == 200
    assert output["body"] == ""


async def test_shared_client_from_services_is_used(base_url: str) -> None:
    async with httpx.AsyncClient(headers={"X-From-Shared-Client": "yes"}) as client:
        output = await call({"url": f"{base_url}/echo"}, services=NodeServices(http=client))
    assert output["body"]["headers"]["x-from-shared-client"] == "yes"


async def test_redirect_is_followed_to_the_final_url(base_url: str) -> None:
    output = await call({"url": f"{base_url}/redirect"})
    assert output["status_code"] == 200
    assert output["url"] == f"{base_url}/json"
    assert output["body"]["hello"] == "world"


async def test_redirect_not_followed_is_the_output(base_url: str) -> None:
    output = await call({"url": f"{base_url}/redirect", "follow_redirects": False})
    assert output["status_code"] == 302
    assert output["headers"]["location"] == "/json"
    assert output["url"] == f"{base_url}/redirect"


# error responses


async def test_404_is_permanent_error_with_response_on_record(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/missing"})
    url = f"{base_url}/missing"
    assert error.message == f"HTTP 404 Not Found from GET {url}"
    assert error.category == ErrorCategory.permanent
    assert error.stage == ErrorStage.execution
    assert error.retry_after_s is None
    assert error.details.error_code == "http_404"
    assert error.details.context == {
        "status_code": 404,
        "body": '{"error": "no such thing"}',
        "url": url,
        "method": "GET",
    }
    assert error.metadata is not None
    assert error.metadata["status_code"] == 404
    assert error.metadata["body"] == {"error": "no such thing"}


async def test_429_is_quota_error_with_retry_after_seconds(base_url: str) -> None:
    error = await call_error({"method": "DELETE", "url": f"{base_url}/throttled"})
    assert error.category == ErrorCategory.quota
    assert error.retry_after_s == 7.0
    assert error.message == f"HTTP 429 Too Many Requests from DELETE {base_url}/throttled"
    assert error.details.error_code == "http_429"


async def test_429_retry_after_http_date_becomes_seconds(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/throttled-until"})
    assert error.category == ErrorCategory.quota
    assert error.retry_after_s is not None
    assert 100 < error.retry_after_s <= 120


async def test_503_is_transient_error(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/unavailable"})
    assert error.category == ErrorCategory.transient
    assert error.message == f"HTTP 503 Service Unavailable from GET {base_url}/unavailable"
    assert error.details.error_code == "http_503"
    assert error.details.context is not None
    assert error.details.context["body"] == "try later"


async def test_error_body_in_context_is_truncated(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/huge-error"})
    assert error.category == ErrorCategory.transient
    assert error.details.context is not None
    body = error.details.context["body"]
    assert body.startswith("x" * 2048)
    assert len(body) < 2200
    assert "7952 more characters" in body
    assert error.metadata is not None
    assert len(error.metadata["body"]) == 10_000  # the output itself is whole


async def test_slow_response_is_transient_timeout(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/slow", "timeout_s": 0.2})
    assert error.category == ErrorCategory.transient
    assert error.message == f"GET {base_url}/slow timed out after 0.2 s"
    assert error.details.type == "ReadTimeout"


async def test_node_timeout_applies_when_config_sets_none(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/slow"}, timeout_s=0.3)
    assert error.message == f"GET {base_url}/slow timed out after 0.3 s"


async def test_refused_connection_is_transient_error_naming_it() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed.
    error = await call_error({"url": f"http://127.0.0.1:{port}/x"})
    assert error.category == ErrorCategory.transient
    assert error.message.startswith(f"GET http://127.0.0.1:{port}/x failed: ConnectError:")
    assert error.details.type == "ConnectError"


async def test_redirect_loop_is_permanent_error(base_url: str) -> None:
    error = await call_error({"url": f"{base_url}/redirect-loop"})
    assert error.category == ErrorCategory.permanent
    assert "TooManyRedirects" in error.message


# config


def test_method_is_case_insensitive_and_defaults_to_get() -> None:
    assert ApiCallConfig.model_validate({"url": "http://x.test", "method": "patch"}).method == (
        "PATCH"
    )
    assert ApiCallConfig.model_validate({"url": "http://x.test"}).method == "GET"


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        ({"url": "ftp://x.test/file"}, "must start with http:// or https://"),
        ({"url": "not a url"}, "must start with http:// or https://"),
        ({"url": "http://"}, "no host"),
        ({"url": "http://x.test", "method": "FETCH"}, "method"),
        ({"url": "http://x.test", "json": {"a": 1}, "body": "a"}, "either `json` or `body`"),
        ({"url": "http://x.test", "timeout_s": 0}, "greater than 0"),
        ({"url": "http://x.test", "data": "a"}, "Extra inputs"),
        ({}, "url"),
    ],
)
def test_bad_config_is_rejected(config: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        ApiCallConfig.model_validate(config)


def test_json_body_is_published_as_json() -> None:
    schema = ApiCallConfig.model_json_schema()
    assert "json" in schema["properties"]
    assert "json_body" not in schema["properties"]
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert ApiCallConfig.model_validate({"url": "http://x.test", "json": [1]}).json_body == [1]


def test_parse_retry_after_reads_seconds_and_dates() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), True), now=now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), True), now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None
    assert parse_retry_after(None) is None
