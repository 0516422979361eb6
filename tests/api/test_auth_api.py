"""The auth matrix over HTTP, against a real `stepline serve`.

No key, a bad key or a revoked key is 401; another organization's record is 404 (never
revealed); too small a scope is 403; every accepted form of the key works; X-Workspace-Id
narrows listings; and the first start on an empty home mints, prints and saves one admin key.
"""

from __future__ import annotations

import json
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.cli import stepline
from support.server import ServeProcess, start_server

MakeKey = Callable[..., str]

ERROR_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 422: "validation_error"}


def definition(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "nodes": [
            {"id": "shape", "type": "reshape", "config": {"output": {"ok": True}}},
            {"id": "end", "type": "end", "config": {"output": "{{ nodes.shape.output }}"}},
        ],
        "edges": [{"from": "shape", "to": "end"}],
    }


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def assert_error(response: httpx.Response, status: int, *needles: str) -> dict[str, Any]:
    """The response is `status` with the error envelope, its request_id the header's."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == ERROR_CODES[status]
    assert body["error"]["message"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    for needle in needles:
        assert needle in body["error"]["message"], body
    return body


@pytest.fixture
def client(api_server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
def org(request: pytest.FixtureRequest) -> str:
    """An organization name of this test's own (the server is shared by the session)."""
    return f"auth-{request.node.name}-{uuid.uuid4().hex[:8]}"


def create_workflow(client: httpx.Client, key: str, name: str, **headers: str) -> dict[str, Any]:
    response = client.post("/v1/workflows", json=definition(name), headers=bearer(key, **headers))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def workflow_names(client: httpx.Client, key: str, **headers: str) -> set[str]:
    response = client.get("/v1/workflows", headers=bearer(key, **headers))
    assert response.status_code == 200, response.text
    return {w["name"] for w in response.json()["data"]}


def key_id_of(client: httpx.Client, admin: str, secret: str) -> str:
    response = client.get("/v1/keys", headers=bearer(admin))
    assert response.status_code == 200, response.text
    (found,) = [k["id"] for k in response.json()["data"] if secret.startswith(k["prefix"])]
    return str(found)


# --- 401: no key, bad key, revoked key ------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/workflows", "/v1/keys"])
def test_no_key_is_401(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert_error(response, 401, "no API key")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer stp_" + "x" * 43},  # the right shape, but no such key
        {"Authorization": "Bearer not-a-stepline-key"},
        {"x-api-key": "stp_"},
        {"Api-Key": "stp_" + "y" * 500},
        {"Authorization": "Basic dXNlcjpwYXNz"},  # a password is not a key
    ],
    ids=["unknown", "foreign-shape", "prefix-only", "too-long", "basic-auth"],
)
def test_a_bad_key_is_401(client: httpx.Client, headers: dict[str, str]) -> None:
    assert_error(client.get("/v1/workflows", headers=headers), 401)


def test_a_key_revoked_over_the_api_is_401_at_once(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    admin = make_key(org)
    created = client.post(
        "/v1/keys", json={"name": "doomed", "scopes": ["read"]}, headers=bearer(admin)
    )
    assert created.status_code == 201, created.text
    doomed = created.json()
    assert client.get("/v1/workflows", headers=bearer(doomed["key"])).status_code == 200

    revoked = client.delete(f"/v1/keys/{doomed['id']}", headers=bearer(admin))
    assert revoked.status_code == 204 and revoked.content == b""

    assert_error(client.get("/v1/workflows", headers=bearer(doomed["key"])), 401, "revoked")
    # Idempotent: revoking again is the same 204, and the key stays dead.
    assert client.delete(f"/v1/keys/{doomed['id']}", headers=bearer(admin)).status_code == 204
    assert_error(client.get("/v1/workflows", headers=bearer(doomed["key"])), 401)
    # The admin key that revoked it still works.
    assert client.get("/v1/workflows", headers=bearer(admin)).status_code == 200


def test_a_key_made_and_revoked_with_the_cli_works_then_is_401(
    client: httpx.Client, api_server: ServeProcess, make_key: MakeKey, org: str
) -> None:
    # The CLI works on the server's database directly (same STEPLINE_HOME), no server involved.
    made = stepline(
        "keys", "create", "--org", org, "--create-org", "--scope", "read", home=api_server.home
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.splitlines()[-1]
    assert client.get("/v1/workflows", headers=bearer(secret)).status_code == 200

    key_id = key_id_of(client, make_key(org), secret)
    done = stepline("keys", "revoke", key_id, "--org", org, home=api_server.home)
    assert done.returncode == 0, done.stderr

    assert_error(client.get("/v1/workflows", headers=bearer(secret)), 401)


def test_an_expired_key_is_401(client: httpx.Client, make_key: MakeKey, org: str) -> None:
    admin = make_key(org)
    soon = client.post(
        "/v1/keys",
        json={"name": "brief", "scopes": ["read"], "expires_at": "2999-01-01T00:00:00Z"},
        headers=bearer(admin),
    )
    assert soon.status_code == 201, soon.text
    assert client.get("/v1/workflows", headers=bearer(soon.json()["key"])).status_code == 200

    past = make_key(org, ("read",), expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert_error(client.get("/v1/workflows", headers=bearer(past)), 401, "expired")


# --- the four ways to send a key ----------------------------------------------------------------


def test_every_accepted_form_of_the_key_works(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    key = make_key(org, ("read",))
    forms: list[dict[str, Any]] = [
        {"headers": {"Authorization": f"Bearer {key}"}},
        {"headers": {"Authorization": f"bearer {key}"}},
        {"headers": {"x-api-key": key}},
        {"headers": {"X-API-Key": key}},
        {"headers": {"Api-Key": key}},
        {"params": {"access_token": key}},
    ]
    for form in forms:
        response = client.get("/v1/workflows", **form)
        assert response.status_code == 200, (form, response.text)
        assert response.json()["data"] == []  # a fresh organization, seen as itself


# --- 404: other organizations' records do not exist for the caller ---------------------


def test_another_organizations_workflow_is_404(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    key_a = make_key(f"{org}-a")
    key_b = make_key(f"{org}-b")
    workflow = create_workflow(client, key_a, "private-to-a")
    path = f"/v1/workflows/{workflow['id']}"

    assert client.get(path, headers=bearer(key_a)).status_code == 200
    missing = assert_error(client.get(path, headers=bearer(key_b)), 404, workflow["id"])
    # The same answer as for an id that exists nowhere: nothing tells B that A has it.
    other_id = str(uuid.uuid4())
    nowhere = assert_error(client.get(f"/v1/workflows/{other_id}", headers=bearer(key_b)), 404)
    assert missing["error"]["message"] == nowhere["error"]["message"].replace(
        other_id, workflow["id"]
    )

    assert_error(client.get(f"{path}/versions", headers=bearer(key_b)), 404)
    renamed = client.patch(path, json={"name": "stolen"}, headers=bearer(key_b))
    assert_error(renamed, 404)
    assert_error(client.delete(path, headers=bearer(key_b)), 404)
    assert "private-to-a" not in workflow_names(client, key_b)
    # B's attempts changed nothing.
    still = client.get(path, headers=bearer(key_a))
    assert still.status_code == 200 and still.json()["name"] == "private-to-a"


def test_another_organizations_run_is_404(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    key_a = make_key(f"{org}-a")
    key_b = make_key(f"{org}-b")
    workflow = create_workflow(client, key_a, "runs-of-a")
    started = client.post(
        f"/v1/workflows/{workflow['id']}/runs", json={"inputs": {}}, headers=bearer(key_a)
    )
    assert started.status_code == 202, started.text
    run = f"/v1/workflows/{workflow['id']}/runs/{started.json()['id']}"
    assert client.get(run, headers=bearer(key_a)).status_code == 200

    assert_error(client.get(run, headers=bearer(key_b)), 404)
    assert_error(client.get(f"{run}/steps", headers=bearer(key_b)), 404)
    assert_error(client.post(f"{run}/cancel", headers=bearer(key_b)), 404)
    assert_error(client.get(f"/v1/workflows/{workflow['id']}/runs", headers=bearer(key_b)), 404)
    start_for_a = client.post(
        f"/v1/workflows/{workflow['id']}/runs", json={"inputs": {}}, headers=bearer(key_b)
    )
    assert_error(start_for_a, 404)


def test_another_organizations_key_cannot_be_revoked(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    key_a = make_key(f"{org}-a")
    admin_b = make_key(f"{org}-b")
    a_id = key_id_of(client, key_a, key_a)

    assert_error(client.delete(f"/v1/keys/{a_id}", headers=bearer(admin_b)), 404)
    assert client.get("/v1/workflows", headers=bearer(key_a)).status_code == 200
    listed = client.get("/v1/keys", headers=bearer(admin_b)).json()["data"]
    assert a_id not in {k["id"] for k in listed}


# --- 403: scopes ----------------------------------------------------------------------------


def test_a_read_key_cannot_start_runs_or_change_workflows(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    reader = make_key(org, ("read",))
    workflow = create_workflow(client, make_key(org, ("write",)), "read-only-target")
    path = f"/v1/workflows/{workflow['id']}"

    assert client.get(path, headers=bearer(reader)).status_code == 200
    assert_error(
        client.post(f"{path}/runs", json={"inputs": {}}, headers=bearer(reader)), 403, "'run'"
    )
    assert_error(
        client.post("/v1/workflows", json=definition("nope"), headers=bearer(reader)),
        403,
        "'write'",
    )
    assert_error(client.delete(path, headers=bearer(reader)), 403)
    assert client.get(path, headers=bearer(reader)).status_code == 200


def test_a_run_key_starts_runs_but_cannot_create_workflows(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    runner = make_key(org, ("run",))
    workflow = create_workflow(client, make_key(org, ("write",)), "run-target")

    forbidden = client.post("/v1/workflows", json=definition("by-runner"), headers=bearer(runner))
    assert_error(forbidden, 403, "'write'")
    # 403 comes before looking at the body: a bad body does not turn it into a 422.
    assert_error(client.post("/v1/workflows", json={}, headers=bearer(runner)), 403)
    assert "by-runner" not in workflow_names(client, runner)

    started = client.post(
        f"/v1/workflows/{workflow['id']}/runs", json={"inputs": {}}, headers=bearer(runner)
    )
    assert started.status_code == 202, started.text


def test_a_write_key_cannot_start_runs(client: httpx.Client, make_key: MakeKey, org: str) -> None:
    writer = make_key(org, ("write",))
    workflow = create_workflow(client, writer, "write-target")
    started = client.post(
        f"/v1/workflows/{workflow['id']}/runs", json={"inputs": {}}, headers=bearer(writer)
    )
    assert_error(started, 403, "'run'")


@pytest.mark.parametrize("scopes", [("read",), ("run",), ("write",), ("read", "run", "write")])
def test_only_admin_keys_manage_keys(
    client: httpx.Client, make_key: MakeKey, org: str, scopes: tuple[str, ...]
) -> None:
    admin = make_key(org)
    key = make_key(org, scopes)
    victim = key_id_of(client, admin, admin)

    assert_error(client.get("/v1/keys", headers=bearer(key)), 403, "'admin'")
    created = client.post("/v1/keys", json={"name": "x", "scopes": ["admin"]}, headers=bearer(key))
    assert_error(created, 403, "'admin'")
    assert_error(client.delete(f"/v1/keys/{victim}", headers=bearer(key)), 403)

    assert client.get("/v1/workflows", headers=bearer(admin)).status_code == 200
    names = [k["name"] for k in client.get("/v1/keys", headers=bearer(admin)).json()["data"]]
    assert "x" not in names


# --- workspaces ---------------------------------------------------------------------------


def test_x_workspace_id_narrows_listings(client: httpx.Client, make_key: MakeKey, org: str) -> None:
    key = make_key(org)
    space_a, space_b = str(uuid.uuid4()), str(uuid.uuid4())
    in_a = create_workflow(client, key, "in-a", **{"X-Workspace-Id": space_a})
    assert in_a["workspace_id"] == space_a
    create_workflow(client, key, "org-wide")

    assert workflow_names(client, key, **{"X-Workspace-Id": space_a}) == {"in-a"}
    assert workflow_names(client, key, **{"X-Workspace-Id": space_b}) == set()
    assert workflow_names(client, key) == {"in-a", "org-wide"}


def test_a_malformed_workspace_id_is_422(client: httpx.Client, make_key: MakeKey, org: str) -> None:
    key = make_key(org)
    response = client.get("/v1/workflows", headers=bearer(key, **{"X-Workspace-Id": "team-a"}))
    body = assert_error(response, 422, "X-Workspace-Id")
    assert body["error"]["details"][0]["field"] == "header.X-Workspace-Id"


def test_a_workspace_key_sees_only_its_workspace(
    client: httpx.Client, make_key: MakeKey, org: str
) -> None:
    space_a, space_b = uuid.uuid4(), uuid.uuid4()
    admin = make_key(org)
    create_workflow(client, admin, "a-side", **{"X-Workspace-Id": str(space_a)})
    create_workflow(client, admin, "b-side", **{"X-Workspace-Id": str(space_b)})
    key_a = make_key(org, ("read", "write"), workspace_id=space_a)

    assert workflow_names(client, key_a) == {"a-side"}
    made = create_workflow(client, key_a, "made-by-a")
    assert made["workspace_id"] == str(space_a)  # what it creates lands in its workspace
    elsewhere = client.get(
        "/v1/workflows", headers=bearer(key_a, **{"X-Workspace-Id": str(space_b)})
    )
    assert_error(elsewhere, 403, str(space_a))


# --- the first start --------------------------------------------------------------------


def test_the_first_start_prints_and_saves_one_admin_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = start_server(home)
    try:
        assert first.admin_key.startswith("stp_")
        assert first.log().count(first.admin_key) == 1  # printed once, never logged again
        credentials = home / "credentials"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        saved = json.loads(credentials.read_text())
        assert saved["api_key"] == first.admin_key
        assert saved["server"] == first.base_url

        listed = httpx.get(f"{first.base_url}/v1/keys", headers=bearer(first.admin_key))
        assert listed.status_code == 200, listed.text
        (key,) = listed.json()["data"]
        assert (key["name"], key["scopes"]) == ("bootstrap", ["admin"])
        assert key["organization_id"] == saved["organization_id"]
    finally:
        first.stop()

    saved_before = credentials.read_bytes()
    second = start_server(home)
    try:
        assert second.admin_key == ""  # nothing new printed
        assert "stp_" not in second.log()
        assert credentials.read_bytes() == saved_before
        still = httpx.get(f"{second.base_url}/v1/keys", headers=bearer(first.admin_key))
        assert still.status_code == 200 and len(still.json()["data"]) == 1
    finally:
        second.stop()
