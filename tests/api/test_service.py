"""The service itself: health, request ids, the error envelope, body limits, OpenAPI."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from support.server import ServeProcess, start_server


def test_healthz_answers_with_a_request_id(api_server: ServeProcess) -> None:
    response = httpx.get(f"{api_server.base_url}/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["database"] == "sqlite" and body["worker"] is True
    uuid.UUID(response.headers["X-Request-Id"])


def test_an_incoming_request_id_is_kept(api_server: ServeProcess) -> None:
    response = httpx.get(f"{api_server.base_url}/healthz", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"


def test_unknown_route_is_a_404_envelope(api_server: ServeProcess, org_key: str) -> None:
    response = httpx.get(
        f"{api_server.base_url}/v1/nowhere", headers={"Authorization": f"Bearer {org_key}"}
    )
    assert response.status_code == 404
    body = response.json()
    assert body["error"]["code"] == "not_found"
    assert "/v1/nowhere" in body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_missing_key_is_401_with_the_envelope(api_server: ServeProcess) -> None:
    response = httpx.get(f"{api_server.base_url}/v1/workflows")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_a_body_over_the_limit_is_413_and_nothing_is_stored(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", env={"STEPLINE_MAX_BODY_BYTES": "2048"})
    try:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        big = {"name": "big", "description": "x" * 4096, "nodes": [{"id": "s", "type": "start"}]}
        response = httpx.post(f"{server.base_url}/v1/workflows", json=big, headers=headers)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

        # Without a Content-Length (chunked), the cap holds while the body is read.
        def chunks() -> Iterator[bytes]:
            data = json.dumps(big).encode()
            for start in range(0, len(data), 512):
                yield data[start : start + 512]

        chunked = httpx.post(
            f"{server.base_url}/v1/workflows",
            content=chunks(),
            headers={**headers, "Content-Type": "application/json"},
        )
        assert chunked.status_code == 413
        listed = httpx.get(f"{server.base_url}/v1/workflows", headers=headers).json()
        assert listed["data"] == []
    finally:
        server.stop()


def test_openapi_documents_every_route_and_its_errors(api_server: ServeProcess) -> None:
    schema = httpx.get(f"{api_server.base_url}/openapi.json").json()
    paths = schema["paths"]
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            success = [code for code in responses if code.startswith("2")]
            assert success, f"{method.upper()} {path} documents no success response"
            if path.startswith("/v1/"):
                for code in ("401", "422"):
                    assert code in responses, f"{method.upper()} {path} lacks {code}"
                    ref = responses[code]["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorEnvelope")
                assert "X-Request-Id" in responses[success[0]].get("headers", {})
    # Every accepted form of the key, each a scheme of its own.
    security = schema["components"]["securitySchemes"].values()
    assert {(s["type"], s.get("scheme") or f"{s['in']}:{s['name']}") for s in security} == {
        ("http", "bearer"),
        ("apiKey", "header:x-api-key"),
        ("apiKey", "header:Api-Key"),
        ("apiKey", "query:access_token"),
    }


def test_a_malformed_uuid_in_the_path_is_422(api_server: ServeProcess, org_key: str) -> None:
    response = httpx.get(
        f"{api_server.base_url}/v1/workflows/not-a-uuid",
        headers={"Authorization": f"Bearer {org_key}"},
    )
    assert response.status_code == 422
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["field"] == "path.workflow_id"


def test_logs_are_json_lines_carrying_the_request_id(api_server: ServeProcess) -> None:
    response = httpx.get(f"{api_server.base_url}/healthz", headers={"X-Request-Id": "log-me-1"})
    assert response.status_code == 200
    access = api_server.request_log("log-me-1")
    assert access[-1]["path"] == "/healthz" and access[-1]["status"] == 200
    assert {"time", "level", "logger", "message", "duration_ms"} <= set(access[-1])
