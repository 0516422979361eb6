"""/v1/secrets over HTTP and through the SDK, against a real `stepline serve`: values go
in and never come out; names and values are bounded; tenants never see each other's."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from stepline import Client
from stepline.sdk import AsyncClient, NotFoundError, PermissionDeniedError, ValidationError
from support.server import ServeProcess

MakeKey = Callable[..., str]
VALUE = "sk-test-5d1e8a0b"


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    return f"secrets-{request.node.name}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def admin(org: str, make_key: MakeKey) -> str:
    return make_key(org)


@pytest.fixture
def http(api_server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=30) as client:
        yield client


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def assert_invalid(response: httpx.Response, field: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in [d["field"] for d in body["error"]["details"]], body
    return body


def test_set_replace_list_get_delete_never_show_the_value(http: httpx.Client, admin: str) -> None:
    created = http.put("/v1/secrets/API_KEY", json={"value": VALUE}, headers=bearer(admin))
    assert created.status_code == 201, created.text
    assert VALUE not in created.text
    record = created.json()
    assert record["name"] == "API_KEY" and record["workspace_id"] is None
    assert set(record) == {
        "id",
        "organization_id",
        "workspace_id",
        "name",
        "created_at",
        "updated_at",
    }

    replaced = http.put("/v1/secrets/API_KEY", json={"value": "v2"}, headers=bearer(admin))
    assert replaced.status_code == 200
    assert replaced.json()["id"] == record["id"]
    assert replaced.json()["updated_at"] >= record["updated_at"]

    posted = http.post("/v1/secrets", json={"name": "OTHER", "value": VALUE}, headers=bearer(admin))
    assert posted.status_code == 201, posted.text

    listing = http.get("/v1/secrets", headers=bearer(admin))
    assert listing.status_code == 200
    assert VALUE not in listing.text and "v2" not in listing.text
    assert [s["name"] for s in listing.json()["data"]] == ["API_KEY", "OTHER"]
    assert http.get("/v1/secrets/OTHER", headers=bearer(admin)).json()["name"] == "OTHER"

    assert http.delete("/v1/secrets/OTHER", headers=bearer(admin)).status_code == 204
    gone = http.get("/v1/secrets/OTHER", headers=bearer(admin))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert http.delete("/v1/secrets/OTHER", headers=bearer(admin)).status_code == 404


def test_another_organizations_secret_is_not_found(
    http: httpx.Client, admin: str, make_key: MakeKey
) -> None:
    http.put("/v1/secrets/MINE", json={"value": VALUE}, headers=bearer(admin)).raise_for_status()
    stranger = make_key(f"stranger-{uuid.uuid4().hex[:8]}")

    assert http.get("/v1/secrets/MINE", headers=bearer(stranger)).status_code == 404
    assert http.delete("/v1/secrets/MINE", headers=bearer(stranger)).status_code == 404
    assert http.get("/v1/secrets", headers=bearer(stranger)).json()["data"] == []
    # Setting its own of the same name changes nothing of ours.
    http.put("/v1/secrets/MINE", json={"value": "x"}, headers=bearer(stranger)).raise_for_status()
    assert http.get("/v1/secrets/MINE", headers=bearer(admin)).status_code == 200


@pytest.mark.parametrize(("scopes", "status"), [(["read"], 403), (["run"], 403), (["write"], 201)])
def test_write_or_admin_scope_is_needed(
    http: httpx.Client, org: str, make_key: MakeKey, scopes: list[str], status: int
) -> None:
    key = make_key(org, scopes)
    answer = http.put("/v1/secrets/S", json={"value": "v"}, headers=bearer(key))
    assert answer.status_code == status, answer.text
    assert http.get("/v1/secrets", headers=bearer(key)).status_code == (
        200 if status == 201 else 403
    )


def test_a_workspace_key_works_on_its_workspace_secrets(
    http: httpx.Client, org: str, admin: str, make_key: MakeKey
) -> None:
    workspace = uuid.uuid4()
    narrowed = make_key(org, ["write"], workspace_id=workspace)
    http.put("/v1/secrets/TOKEN", json={"value": "ws"}, headers=bearer(narrowed)).raise_for_status()

    assert [
        s["workspace_id"] for s in http.get("/v1/secrets", headers=bearer(narrowed)).json()["data"]
    ] == [str(workspace)]
    assert http.get("/v1/secrets", headers=bearer(admin)).json()["data"] == []
    header = bearer(admin, **{"X-Workspace-Id": str(workspace)})
    assert [s["name"] for s in http.get("/v1/secrets", headers=header).json()["data"]] == ["TOKEN"]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/v1/secrets/9LIVES", {"value": "v"}, "path.name"),
        ("PUT", "/v1/secrets/has-dash", {"value": "v"}, "path.name"),
        ("PUT", "/v1/secrets/" + "A" * 129, {"value": "v"}, "path.name"),
        ("PUT", "/v1/secrets/OK", {"value": ""}, "body.value"),
        ("PUT", "/v1/secrets/OK", {"value": "x" * (64 * 1024 + 1)}, "body.value"),
        ("PUT", "/v1/secrets/OK", {"value": 42}, "body.value"),
        ("PUT", "/v1/secrets/OK", {}, "body.value"),
        ("PUT", "/v1/secrets/OK", {"value": "v", "extra": 1}, "body.extra"),
        ("POST", "/v1/secrets", {"name": "a b", "value": "v"}, "body.name"),
        ("POST", "/v1/secrets", {"value": "v"}, "body.name"),
        ("GET", "/v1/secrets/bad.name", None, "path.name"),
        ("DELETE", "/v1/secrets/bad.name", None, "path.name"),
    ],
)
def test_bad_names_and_values_are_422_naming_the_field(
    http: httpx.Client, admin: str, method: str, path: str, body: Any, field: str
) -> None:
    response = http.request(method, path, json=body, headers=bearer(admin))
    error = assert_invalid(response, field)
    assert "x" * 100 not in str(error)  # a refused value is not echoed back


def test_a_run_reading_an_unset_secret_is_422_naming_node_and_field(
    http: httpx.Client, admin: str
) -> None:
    definition = {
        "name": "reads-secrets",
        "nodes": [
            {"id": "set_one", "type": "reshape", "config": {"output": "{{ secrets.SET_ONE }}"}},
            {
                "id": "call",
                "type": "api_call",
                "config": {
                    "url": "http://127.0.0.1:9/",
                    "headers": {"Authorization": "Bearer {{ secrets.NOT_SET }}"},
                },
            },
        ],
    }
    workflow = http.post("/v1/workflows", json=definition, headers=bearer(admin))
    assert workflow.status_code == 201, workflow.text
    http.put("/v1/secrets/SET_ONE", json={"value": "v"}, headers=bearer(admin)).raise_for_status()
    runs = f"/v1/workflows/{workflow.json()['id']}/runs"

    refused = http.post(runs, json={"inputs": {}}, headers=bearer(admin))

    body = assert_invalid(refused, "workflow.nodes[1].config.headers.Authorization")
    (detail,) = body["error"]["details"]
    assert "node 'call'" in detail["message"] and "'NOT_SET'" in detail["message"]
    assert http.get(runs, headers=bearer(admin)).json()["data"] == []

    http.put("/v1/secrets/NOT_SET", json={"value": "v"}, headers=bearer(admin)).raise_for_status()
    assert http.post(runs, json={"inputs": {}}, headers=bearer(admin)).status_code == 202


def test_the_sdk_sets_lists_and_deletes(api_server: ServeProcess, admin: str) -> None:
    with Client(api_server.base_url, api_key=admin) as client:
        created = client.secrets.set("SDK_KEY", VALUE)
        assert created.name == "SDK_KEY" and created.workspace_id is None
        assert [s.name for s in client.secrets.list()] == ["SDK_KEY"]
        assert client.secrets.get("SDK_KEY").id == created.id
        client.secrets.delete("SDK_KEY")
        assert client.secrets.list() == []
        with pytest.raises(NotFoundError):
            client.secrets.delete("SDK_KEY")
        with pytest.raises(ValidationError) as caught:
            client.secrets.set("not valid", "v")
        assert caught.value.details[0].field == "path.name"


@pytest.fixture
def reader(org: str, make_key: MakeKey) -> str:
    return make_key(org, ["read"])


async def test_the_async_sdk_does_the_same(
    api_server: ServeProcess, admin: str, reader: str
) -> None:
    async with AsyncClient(api_server.base_url, api_key=admin) as client:
        await client.secrets.set("ASYNC_KEY", VALUE)
        await client.secrets.set("ASYNC_KEY", "again")
        assert [s.name for s in await client.secrets.list()] == ["ASYNC_KEY"]
        assert (await client.secrets.get("ASYNC_KEY")).name == "ASYNC_KEY"
        await client.secrets.delete("ASYNC_KEY")
        assert await client.secrets.list() == []
    async with AsyncClient(api_server.base_url, api_key=reader) as read_only:
        with pytest.raises(PermissionDeniedError):
            await read_only.secrets.list()


def test_replay_and_retry_need_the_secrets_still_set(http: httpx.Client, admin: str) -> None:
    definition = {
        "name": "replays-secrets",
        "nodes": [
            {"id": "first", "type": "reshape", "config": {"output": 1}},
            {"id": "uses", "type": "reshape", "config": {"output": "{{ secrets.GONE_SOON }}"}},
        ],
        "edges": [{"from": "first", "to": "uses"}],
    }
    workflow_id = http.post("/v1/workflows", json=definition, headers=bearer(admin)).json()["id"]
    http.put("/v1/secrets/GONE_SOON", json={"value": VALUE}, headers=bearer(admin))
    runs = f"/v1/workflows/{workflow_id}/runs"
    run = http.post(f"{runs}?wait=true", json={"inputs": {}}, headers=bearer(admin)).json()
    assert run["status"] == "completed" and run["steps"][1]["outputs"] == "***"
    http.delete("/v1/secrets/GONE_SOON", headers=bearer(admin)).raise_for_status()

    replay = http.post(
        f"{runs}/{run['id']}/replay", json={"from_node": "uses"}, headers=bearer(admin)
    )
    assert_invalid(replay, "workflow.nodes[1].config.output")
