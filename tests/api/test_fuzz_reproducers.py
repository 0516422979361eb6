"""What fuzzing the API found, each kept as an ordinary test, on SQLite and PostgreSQL.

Every case was a 500 (or a status the OpenAPI document did not list) before; each is now
a 4xx in the error envelope that names the field, and the server logs no traceback.

- Text neither database can store: the NUL character (PostgreSQL's text and jsonb
  refuse it) and lone surrogates (no UTF-8 form), in query, path, JSON bodies at any
  depth and keys, uploaded YAML, forged cursors.
- Integers past what their column holds (int4 on PostgreSQL for `version`,
  `workflow_version`, `iteration` and step cursors; 64 bits for event ids), in query,
  path, header or body. The fuzzer found `GET .../versions/549755813887`.
- Times whose UTC is out of range (year 1 at +05:00, year 9999 at -05:00), and the
  summary's default window reaching before year 1.
- A JSON body that is not UTF-8: FastAPI's 400, undocumented, saying only "There was an
  error parsing the body".
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.databases import serving
from support.server import ServeProcess, make_key

HUGE = 2**64 + 1


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServeProcess, str]]:
    with serving(request.param, tmp_path_factory.mktemp("reproducers") / "home") as served:
        yield served


@pytest.fixture(scope="module")
def target(server: tuple[ServeProcess, str]) -> dict[str, Any]:
    """A key, and a finished run of a workflow (its ids), on the module's server."""
    process, database_url = server
    key = make_key(database_url, "reproducers")
    definition = {
        "name": "target",
        "nodes": [{"id": "a", "type": "reshape", "config": {"output": 1}}],
        "edges": [],
    }
    with _client(process, key) as http:
        workflow = http.post("/v1/workflows", json=definition).json()
        run = http.post(f"/v1/workflows/{workflow['id']}/runs?wait=true", json={}).json()
    assert run["status"] == "completed", run
    return {"key": key, "workflow": workflow["id"], "run": run["id"]}


@pytest.fixture
def http(server: tuple[ServeProcess, str], target: dict[str, Any]) -> Iterator[httpx.Client]:
    with _client(server[0], target["key"]) as client:
        yield client
    assert not [e for e in server[0].log_entries() if "exception" in e], "a traceback was logged"


def _client(server: ServeProcess, key: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=30
    )


def refused(response: httpx.Response, field: str, *words: str, status: int = 422) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-Id"]
    details = {d["field"]: d["message"] for d in body["error"]["details"]}
    assert field in details or field in body["error"]["message"], body
    for word in words:
        assert word in body["error"]["message"], body


def cursor(listing: str, *key: Any) -> str:
    raw = json.dumps({"o": listing, "k": list(key)}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- text that cannot be stored ----------------------------------------------------------------


def test_nul_in_a_query_parameter(http: httpx.Client, target: dict[str, Any]) -> None:
    steps = f"/v1/workflows/{target['workflow']}/runs/{target['run']}/steps"
    refused(http.get(steps, params={"node_id": "a\x00b"}), "query.node_id", "NUL")
    refused(http.get("/v1/workflows", params={"name": "\x00"}), "query.name", "NUL")
    refused(http.get("/v1/workflows", params={"access_token": "x\x00"}), "query.access_token")


def test_nul_in_a_path_parameter(http: httpx.Client, target: dict[str, Any]) -> None:
    run = f"/v1/workflows/{target['workflow']}/runs/{target['run']}"
    refused(http.get(f"{run}/steps/a%00b"), "path.step_id", "NUL")
    refused(http.get(f"{run}/nodes/a%00/download"), "path.node_id", "NUL")


def test_nul_and_lone_surrogates_anywhere_in_a_json_body(
    http: httpx.Client, target: dict[str, Any]
) -> None:
    workflow = f"/v1/workflows/{target['workflow']}"
    definition = {
        "name": "nul",
        "nodes": [{"id": "a", "type": "reshape", "config": {"output": {"deep": ["ok", "x\x00"]}}}],
        "edges": [],
    }
    refused(http.post("/v1/workflows", json=definition), "body.nodes[0].config.output.deep[1]")
    refused(http.put(workflow, json=definition), "body.nodes[0].config.output.deep[1]")
    refused(http.post(f"{workflow}/runs", json={"inputs": {"k\x00": 1}}), "body.inputs", "key")
    surrogate = b'{"inputs": {"x": "\\udfff"}}'
    refused(
        http.post(
            f"{workflow}/runs", content=surrogate, headers={"Content-Type": "application/json"}
        ),
        "body.inputs.x",
        "surrogate",
    )
    refused(http.post("/v1/keys", json={"name": "\x00", "scopes": ["read"]}), "body.name")
    refused(http.patch(workflow, json={"description": "\x00"}), "body.description")
    refused(http.post(f"{workflow}/duplicate", json={"name": "\x00"}), "body.name")


def test_text_that_only_looks_refused_is_taken(http: httpx.Client, target: dict[str, Any]) -> None:
    """An escaped backslash before u0000, and a surrogate pair (one emoji), are text."""
    runs = f"/v1/workflows/{target['workflow']}/runs"
    body = b'{"inputs": {"a": "\\\\u0000", "b": "\\ud83d\\ude00"}}'
    response = http.post(runs, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    assert response.json()["inputs"] == {"a": "\\u0000", "b": "\U0001f600"}


def test_nul_in_an_uploaded_yaml_workflow(http: httpx.Client) -> None:
    text = 'name: upload-nul\nnodes:\n  - {id: a, type: reshape, config: {output: "x\\0"}}\n'
    response = http.post("/v1/workflows/upload", files={"file": ("w.yaml", text.encode())})
    # The YAML reader refuses it while parsing, naming the file and the path inside it.
    refused(response, "body.file", "NUL")
    assert "nodes[0].config.output" in response.json()["error"]["message"]


def test_forged_cursors_with_unstorable_keys(http: httpx.Client, target: dict[str, Any]) -> None:
    steps = f"/v1/workflows/{target['workflow']}/runs/{target['run']}/steps"
    runs = f"/v1/workflows/{target['workflow']}/runs"
    early = "0001-01-01T00:00:00+05:00"
    refused(http.get(steps, params={"after": cursor("steps", HUGE, "a")}), "query.after")
    refused(http.get(steps, params={"after": cursor("steps", 1, "a\x00")}), "query.after")
    refused(http.get(runs, params={"before": cursor("runs", early, target["run"])}), "query.before")


# --- integers past 64 bits ---------------------------------------------------------------------


def test_integers_no_column_holds(http: httpx.Client, target: dict[str, Any]) -> None:
    workflow = f"/v1/workflows/{target['workflow']}"
    run = f"{workflow}/runs/{target['run']}"
    # Versions, iterations and step sequence numbers are int4 columns on PostgreSQL.
    refused(http.get(f"{workflow}/versions/549755813887"), "path.version")  # the fuzzer's
    refused(http.get(f"{run}/steps", params={"iteration": 2**31}), "query.iteration")
    refused(http.get(f"{run}/steps", params={"after": cursor("steps", 2**31, "a")}), "query.after")
    refused(
        http.get(f"{workflow}/versions", params={"after": cursor("versions", 2**31)}), "query.after"
    )
    assert http.get(f"{run}/steps", params={"iteration": 2**31 - 1}).status_code == 200
    # Event ids are bigint.
    assert http.get(f"{run}/events", params={"last_event_id": 2**63 - 1}).status_code == 200
    refused(http.get(f"{run}/steps", params={"iteration": HUGE}), "query.iteration")
    refused(http.get(f"{run}/events", params={"last_event_id": HUGE}), "query.last_event_id")
    refused(http.get(f"{run}/events", headers={"Last-Event-ID": str(HUGE)}), "header.Last-Event-ID")
    refused(http.get(f"{workflow}/versions/{HUGE}"), "path.version")
    replay = {"from_node": "a", "workflow_version": HUGE}
    refused(http.post(f"{run}/replay", json=replay), "body.workflow_version")


# --- times out of UTC's range ------------------------------------------------------------------


def test_times_whose_utc_is_out_of_range(http: httpx.Client, target: dict[str, Any]) -> None:
    runs = f"/v1/workflows/{target['workflow']}/runs"
    refused(http.get(runs, params={"created_from": "0001-01-01T00:00:00+05:00"}), "created_from")
    refused(http.get(runs, params={"created_to": "9999-12-31T23:59:59-05:00"}), "created_to")
    refused(http.get(f"{runs}/summary", params={"until": "9999-12-31T23:59:59-05:00"}), "until")
    expiring = {"name": "k", "scopes": ["read"], "expires_at": "9999-12-31T23:59:59-05:00"}
    refused(http.post("/v1/keys", json=expiring), "body.expires_at")


def test_a_summary_window_at_the_start_of_time(http: httpx.Client, target: dict[str, Any]) -> None:
    summary = f"/v1/workflows/{target['workflow']}/runs/summary"
    response = http.get(summary, params={"until": "0001-01-01T12:00:00Z"})
    assert response.status_code == 200, response.text  # since = the first representable time


# --- a body that is not UTF-8 ------------------------------------------------------------------


def test_a_json_body_that_is_not_utf8_is_a_documented_400(http: httpx.Client) -> None:
    response = http.post(
        "/v1/workflows",
        content=b'{"name": "\xc3\x28"}',
        headers={"Content-Type": "application/json"},
    )
    refused(response, "UTF-8", "not UTF-8", status=400)
    assert response.json()["error"]["code"] == "bad_request"


def test_an_upload_with_an_unprintable_character_is_refused(http: httpx.Client) -> None:
    # Found by the fuzzing tier (seed 17): YAML's reader refused U+008B while the loader was
    # being made, outside the parse's error handling: a 500.
    response = http.post("/v1/workflows/upload", files={"file": ("file", b"\xc2\x8bX\x16")})
    refused(response, "body.file", "invalid YAML", "special characters are not allowed")
