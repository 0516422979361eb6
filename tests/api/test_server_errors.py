"""Genuine server failures of a real `stepline serve`, over keep-alive connections.

The failures are real: rows that are no longer JSON (as a damaged disk or a hand edit
leaves them), which the server cannot read. A 500 must carry X-Request-Id and the error
envelope, leave the connection usable for the next request, and be logged once, with
its traceback, under that request id. A stream that fails after its first bytes cannot
be a 500 any more: the connection is closed, so that the client knows it is cut short,
and the failure is logged once all the same.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator

import httpx
import pytest

from support.server import ServeProcess, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server of this module's own: its database gets damaged."""
    server = start_server(tmp_path_factory.mktemp("server-errors") / "home")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def damaged(server: ServeProcess) -> str:
    """The id of a workflow whose stored definition the server can no longer read."""
    definition = {
        "name": "damaged",
        "nodes": [{"id": "end", "type": "end", "config": {"output": 1}}],
        "edges": [],
    }
    created = httpx.post(f"{server.base_url}/v1/workflows", json=definition, headers=_auth(server))
    assert created.status_code == 201, created.text
    workflow_id: str = created.json()["id"]
    _damage(server, "workflow_versions", "definition", "workflow_id", workflow_id)
    return workflow_id


@pytest.fixture(scope="module")
def damaged_events(server: ServeProcess) -> str:
    """The events URL of a finished run whose last event the server can no longer read."""
    definition = {
        "name": "damaged-events",
        "nodes": [{"id": "end", "type": "end", "config": {"output": 1}}],
        "edges": [],
    }
    with httpx.Client(base_url=server.base_url, headers=_auth(server), timeout=30) as http:
        workflow_id = http.post("/v1/workflows", json=definition).json()["id"]
        run = http.post(f"/v1/workflows/{workflow_id}/runs?wait=true", json={}).json()
    assert run["status"] == "completed", run
    with sqlite3.connect(server.home / "stepline.db") as db:
        (last,) = db.execute(
            "SELECT max(id) FROM run_events WHERE run_id = ?", (uuid.UUID(run["id"]).hex,)
        ).fetchone()
    _damage(server, "run_events", "data", "id", last)
    return f"/v1/workflows/{workflow_id}/runs/{run['id']}/events"


def _damage(server: ServeProcess, table: str, column: str, key: str, value: object) -> None:
    """Make one row's JSON column unreadable (SQLite keeps UUIDs as 32 hex digits)."""
    if isinstance(value, str):
        value = uuid.UUID(value).hex
    with sqlite3.connect(server.home / "stepline.db") as db:
        changed = db.execute(
            f"UPDATE {table} SET {column} = '{{\"name\": ' WHERE {key} = ?", (value,)
        ).rowcount
    assert changed >= 1


def _auth(server: ServeProcess) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.admin_key}"}


def _local_port(response: httpx.Response) -> int:
    """The client's port of the connection that carried `response`."""
    address = response.extensions["network_stream"].get_extra_info("client_addr")
    port: int = address[1]
    return port


def test_a_500_has_its_request_id_keeps_the_connection_and_is_logged_once(
    server: ServeProcess, damaged: str
) -> None:
    with httpx.Client(base_url=server.base_url, headers=_auth(server), timeout=30) as http:
        failed = http.get(f"/v1/workflows/{damaged}")
        failed_on = _local_port(failed)
        after = http.get("/v1/keys")
        after_on = _local_port(after)

    assert failed.status_code == 500, failed.text
    request_id = failed.headers["X-Request-Id"]
    assert failed.headers["content-type"] == "application/json"
    assert failed.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal error; quote the request id when reporting it",
            "details": [],
        },
        "request_id": request_id,
    }

    # The next request went over the same connection, and was answered.
    assert after.status_code == 200, after.text
    assert after_on == failed_on

    entries = server.request_log(request_id)
    tracebacks = [e for e in entries if "exception" in e]
    assert len(tracebacks) == 1, entries
    assert tracebacks[0]["level"] == "error"
    assert "Traceback" in tracebacks[0]["exception"]
    assert f"GET /v1/workflows/{damaged}" in tracebacks[0]["message"]
    access = [e for e in entries if e["logger"] == "stepline.api.access"]
    assert [e["status"] for e in access] == [500]
    # No other traceback, without the request id (as uvicorn's own record of it had).
    anonymous = [e for e in server.log_entries() if "exception" in e]
    assert all(e.get("request_id") for e in anonymous), anonymous


def test_a_500_keeps_the_request_id_the_client_sent(server: ServeProcess, damaged: str) -> None:
    with httpx.Client(base_url=server.base_url, headers=_auth(server), timeout=30) as http:
        failed = http.get(f"/v1/workflows/{damaged}", headers={"X-Request-Id": "client-chosen.1"})
        failed_on = _local_port(failed)
        again = http.get(f"/v1/workflows/{damaged}")
        again_on = _local_port(again)
    assert failed.status_code == again.status_code == 500
    assert failed.headers["X-Request-Id"] == "client-chosen.1"
    assert failed.json()["request_id"] == "client-chosen.1"
    assert again_on == failed_on
    assert len([e for e in server.request_log("client-chosen.1") if "exception" in e]) == 1


def test_a_stream_that_fails_midway_is_cut_short_and_logged_once(
    server: ServeProcess, damaged_events: str
) -> None:
    with httpx.Client(base_url=server.base_url, headers=_auth(server), timeout=30) as http:
        with http.stream("GET", damaged_events) as response:
            assert response.status_code == 200
            request_id = response.headers["X-Request-Id"]
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in response.iter_bytes():
                    pass
        after = http.get("/v1/keys")  # a new connection, as the client must open
    assert after.status_code == 200

    entries = server.request_log(request_id)
    tracebacks = [e for e in entries if "exception" in e]
    assert len(tracebacks) == 1, entries
    assert f"GET {damaged_events}" in tracebacks[0]["message"]
    assert not [e for e in server.log_entries() if "Exception in ASGI" in e["message"]]
