"""/v1/keys over HTTP: create (secret shown once), list (paginated, never secrets), revoke."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from support.server import ServeProcess

MakeKey = Callable[..., str]

READER = {"name": "x", "scopes": ["read"]}


@pytest.fixture
def client(api_server: ServeProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
def admin(request: pytest.FixtureRequest, make_key: MakeKey) -> str:
    """An admin key of an organization of this test's own."""
    return make_key(f"keys-{request.node.name}-{uuid.uuid4().hex[:8]}")


def bearer(key: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", **extra}


def create(client: httpx.Client, admin: str, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/keys", json={"scopes": ["read"], **body}, headers=bearer(admin))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def assert_invalid(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"]["code"] == "validation_error"
    assert field in [d["field"] for d in body["error"]["details"]], body
    assert body["request_id"] == response.headers["X-Request-Id"]


def test_create_shows_the_secret_once(client: httpx.Client, admin: str) -> None:
    response = client.post(
        "/v1/keys", json={"name": "ci", "scopes": ["run", "read"]}, headers=bearer(admin)
    )

    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    created = response.json()
    secret = created["key"]
    assert secret.startswith(created["prefix"]) and secret.startswith("stp_")
    assert created["name"] == "ci" and created["scopes"] == ["read", "run"]
    assert created["revoked_at"] is None and created["workspace_id"] is None
    uuid.UUID(created["id"])

    # The new key works, with exactly its scopes.
    assert client.get("/v1/workflows", headers=bearer(secret)).status_code == 200
    assert client.get("/v1/keys", headers=bearer(secret)).status_code == 403

    listing = client.get("/v1/keys", headers=bearer(admin))
    assert listing.status_code == 200
    assert secret not in listing.text and secret[len(created["prefix"]) :] not in listing.text
    (listed,) = [k for k in listing.json()["data"] if k["id"] == created["id"]]
    assert "key" not in listed and "key_hash" not in listed
    assert listed == {k: v for k, v in created.items() if k != "key"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": ["root"]}, "body.scopes[0]"),
        ({"name": "x", "scopes": []}, "body.scopes"),
        ({"name": "x", "scopes": "admin"}, "body.scopes"),
        ({"scopes": ["read"]}, "body.name"),
        ({"name": "", "scopes": ["read"]}, "body.name"),
        (READER | {"role": "owner"}, "body.role"),
        (READER | {"workspace_id": "team-a"}, "body.workspace_id"),
        (READER | {"expires_at": "2999-01-01T00:00:00"}, "body.expires_at"),
        (READER | {"expires_at": "2001-01-01T00:00:00Z"}, "body.expires_at"),
    ],
    ids=[
        "unknown-scope",
        "no-scope",
        "scopes-not-a-list",
        "no-name",
        "empty-name",
        "unknown-field",
        "bad-workspace",
        "naive-expiry",
        "past-expiry",
    ],
)
def test_a_bad_create_is_422_naming_the_field(
    client: httpx.Client, admin: str, body: dict[str, Any], field: str
) -> None:
    before = client.get("/v1/keys", headers=bearer(admin)).json()["data"]
    assert_invalid(client.post("/v1/keys", json=body, headers=bearer(admin)), field)
    assert client.get("/v1/keys", headers=bearer(admin)).json()["data"] == before


def test_list_pages_newest_first_without_gaps_or_repeats(client: httpx.Client, admin: str) -> None:
    made = [create(client, admin, name=f"k{i}")["id"] for i in range(7)]
    everything = client.get("/v1/keys", headers=bearer(admin)).json()
    assert everything["next_cursor"] is None and everything["prev_cursor"] is None
    expected = [k["id"] for k in everything["data"]]
    assert len(expected) == 8  # the seven, then the admin key itself
    assert expected[:7] == list(reversed(made))

    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"after": cursor} if cursor else {})
        page = client.get("/v1/keys", params=params, headers=bearer(admin)).json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p["data"]) for p in pages] == [3, 3, 2]
    assert [k["id"] for p in pages for k in p["data"]] == expected
    assert pages[0]["prev_cursor"] is None and pages[1]["prev_cursor"] is not None

    back = client.get(
        "/v1/keys", params={"limit": 3, "before": pages[1]["prev_cursor"]}, headers=bearer(admin)
    ).json()
    assert back["data"] == pages[0]["data"]


def test_bad_list_parameters_are_422(client: httpx.Client, admin: str) -> None:
    def listing(**params: Any) -> httpx.Response:
        return client.get("/v1/keys", params=params, headers=bearer(admin))

    assert_invalid(listing(limit=0), "query.limit")
    assert_invalid(listing(limit=1001), "query.limit")
    assert_invalid(listing(after="not-a-cursor"), "query.after")
    assert_invalid(listing(before="bm9wZQ"), "query.before")
    page = listing(limit=1).json()
    assert_invalid(listing(after=page["next_cursor"], before=page["next_cursor"]), "query.before")
    # A cursor of another listing is not a keys cursor.
    for name in ("w1", "w2"):
        workflow = {"name": name, "nodes": [{"id": "end", "type": "end"}]}
        assert client.post("/v1/workflows", json=workflow, headers=bearer(admin)).is_success
    workflows = client.get("/v1/workflows", params={"limit": 1}, headers=bearer(admin)).json()
    assert workflows["next_cursor"] is not None
    assert_invalid(listing(after=workflows["next_cursor"]), "query.after")


def test_revoke_is_204_idempotent_and_shows_in_the_list(client: httpx.Client, admin: str) -> None:
    key = create(client, admin, name="to-revoke")

    first = client.delete(f"/v1/keys/{key['id']}", headers=bearer(admin))
    assert first.status_code == 204 and first.content == b""
    listed = {k["id"]: k for k in client.get("/v1/keys", headers=bearer(admin)).json()["data"]}
    revoked_at = listed[key["id"]]["revoked_at"]
    assert revoked_at is not None

    again = client.delete(f"/v1/keys/{key['id']}", headers=bearer(admin))
    assert again.status_code == 204
    listed = {k["id"]: k for k in client.get("/v1/keys", headers=bearer(admin)).json()["data"]}
    assert listed[key["id"]]["revoked_at"] == revoked_at  # the first revocation stands
    assert client.get("/v1/workflows", headers=bearer(key["key"])).status_code == 401


def test_revoke_of_a_missing_or_malformed_id(client: httpx.Client, admin: str) -> None:
    missing = client.delete(f"/v1/keys/{uuid.uuid4()}", headers=bearer(admin))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert_invalid(client.delete("/v1/keys/abc", headers=bearer(admin)), "path.key_id")


def test_keys_follow_the_callers_workspace(client: httpx.Client, admin: str) -> None:
    space_a, space_b = str(uuid.uuid4()), str(uuid.uuid4())
    narrowed = bearer(admin, **{"X-Workspace-Id": space_a})

    inherited = client.post("/v1/keys", json={"name": "a", "scopes": ["read"]}, headers=narrowed)
    assert inherited.status_code == 201, inherited.text
    assert inherited.json()["workspace_id"] == space_a

    elsewhere = client.post(
        "/v1/keys",
        json={"name": "b", "scopes": ["read"], "workspace_id": space_b},
        headers=narrowed,
    )
    assert elsewhere.status_code == 403
    assert elsewhere.json()["error"]["code"] == "forbidden"

    # Without narrowing, an admin may mint a key for any workspace of its organization.
    assert create(client, admin, name="b", workspace_id=space_b)["workspace_id"] == space_b


def test_openapi_documents_the_keys_routes(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    assert {"get", "post"} <= set(paths["/v1/keys"])
    revoke = paths["/v1/keys/{key_id}"]["delete"]
    assert {"204", "401", "403", "404", "422"} <= set(revoke["responses"])
    create_op = paths["/v1/keys"]["post"]
    assert {"201", "401", "403", "422"} <= set(create_op["responses"])
    created_ref = create_op["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    created_schema = spec["components"]["schemas"][created_ref.rsplit("/", 1)[-1]]
    assert "key" in created_schema["properties"] and "key" in created_schema["required"]
    listed = paths["/v1/keys"]["get"]["responses"]["200"]["content"]["application/json"]
    list_schema = spec["components"]["schemas"][listed["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert {"data", "next_cursor", "prev_cursor"} <= set(list_schema["properties"])
