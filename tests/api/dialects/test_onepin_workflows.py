"""Onepin's workflow endpoints against a real `stepline serve`: CRUD, patch, duplicate,
counted and searchable listing, run statistics, uploads."""

from __future__ import annotations

import uuid
from typing import Any

from onepin_support import BASE, client, create, example, finished, reshape, start

from support.server import ServeProcess
from support.shapes import assert_same_shape

DEFINITION = "$.data.definition"


def simple(name: str = "w") -> dict[str, Any]:
    return {"name": name, "nodes": [reshape("a", {"ok": True})]}


def test_create_and_get_answer_in_the_documented_shape(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        made = http.post(
            BASE, json={"name": "Import", "description": "nightly", "definition": simple("x")}
        )
        assert made.status_code == 201, made.text
        workflow_id = made.json()["data"]["id"]
        got = http.get(f"{BASE}/{workflow_id}")
    assert got.status_code == 200
    assert_same_shape(got.json(), example("workflow"), open_keys=frozenset({DEFINITION}))
    workflow = got.json()["data"]
    assert workflow["name"] == "Import" and workflow["description"] == "nightly"
    assert workflow["definition"]["name"] == "Import"
    assert workflow["definition"]["nodes"][0]["id"] == "a"
    assert workflow["runs_count"] == 0 and workflow["last_run_at"] is None
    assert set(workflow["run_status_counts"].values()) == {0}


def test_run_statistics_follow_the_runs(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "stats", simple())
        for _ in range(2):
            finished(http, workflow_id, start(http, workflow_id))
        workflow = http.get(f"{BASE}/{workflow_id}").json()["data"]
    assert workflow["runs_count"] == 2
    assert workflow["run_status_counts"]["completed"] == 2
    assert workflow["last_run_status"] == "completed"
    assert workflow["last_run_at"].endswith("Z")


def test_put_replaces_the_definition_and_patch_changes_what_it_names(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "before", simple())
        replaced = http.put(
            f"{BASE}/{workflow_id}",
            json={
                "name": "after",
                "description": "d",
                "definition": {"name": "ignored", "nodes": [reshape("b", 2)]},
            },
        )
        assert replaced.status_code == 200, replaced.text
        assert replaced.json()["data"]["name"] == "after"
        assert [n["id"] for n in replaced.json()["data"]["definition"]["nodes"]] == ["b"]
        version = http.get(f"/v1/workflows/{workflow_id}").json()["latest_version"]
        same = {
            "name": "after",
            "description": "d",
            "definition": {"name": "ignored", "nodes": [reshape("b", 2)]},
        }
        assert http.put(f"{BASE}/{workflow_id}", json=same).status_code == 200
        assert http.get(f"/v1/workflows/{workflow_id}").json()["latest_version"] == version
        renamed = http.patch(f"{BASE}/{workflow_id}", json={"name": "renamed"})
        assert renamed.json()["data"]["name"] == "renamed"
        assert renamed.json()["data"]["description"] == "d"
        assert renamed.json()["data"]["definition"]["name"] == "renamed"
        described = http.patch(f"{BASE}/{workflow_id}", json={"description": "e"})
        assert described.json()["data"]["definition"]["description"] == "e"
        assert described.json()["data"]["name"] == "renamed"
        redefined = http.patch(
            f"{BASE}/{workflow_id}", json={"definition": {"nodes": [reshape("c", 3)]}}
        )
        assert redefined.status_code == 200, redefined.text
        data = redefined.json()["data"]
        assert data["name"] == "renamed" and data["description"] == "e"
        assert [n["id"] for n in data["definition"]["nodes"]] == ["c"]
        empty = http.patch(f"{BASE}/{workflow_id}", json={})
        unknown = http.patch(f"{BASE}/{workflow_id}", json={"title": "x"})
        invalid = http.patch(
            f"{BASE}/{workflow_id}", json={"definition": {"nodes": [{"id": "x", "type": "nope"}]}}
        )
    assert empty.status_code == 422
    assert empty.json()["error"]["details"][0]["field"] == "body"
    assert unknown.status_code == 422
    assert invalid.status_code == 422
    assert invalid.json()["error"]["details"][0]["field"].startswith("body.definition")


def test_duplicate_names_the_copy_and_delete_removes(
    api_server: ServeProcess, org_key: str
) -> None:
    with client(api_server, org_key) as http:
        workflow_id = create(http, "Report", simple())
        copy = http.post(f"{BASE}/{workflow_id}/duplicate")
        assert copy.status_code == 201, copy.text
        assert copy.json()["data"]["name"] == "Report (Copy)"
        assert copy.json()["data"]["id"] != workflow_id
        again = http.post(f"{BASE}/{workflow_id}/duplicate")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "CONFLICT"
        deleted = http.delete(f"{BASE}/{workflow_id}")
        assert deleted.status_code == 204
        gone = http.get(f"{BASE}/{workflow_id}")
        twice = http.delete(f"{BASE}/{workflow_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "NOT_FOUND"
    assert twice.status_code == 404


def test_a_taken_name_is_409(api_server: ServeProcess, org_key: str) -> None:
    with client(api_server, org_key) as http:
        create(http, "same", simple())
        answer = http.post(BASE, json={"name": "same", "definition": simple()})
    assert answer.status_code == 409
    assert answer.json()["error"]["details"][0]["field"] == "body.name"


def test_listing_counts_searches_and_pages(api_server: ServeProcess, make_key: Any) -> None:
    key = make_key("org-onepin-listing")
    with client(api_server, key) as http:
        ids = [create(http, f"alpha {i}", simple()) for i in range(3)]
        create(http, "beta", simple())
        everything = http.get(BASE).json()
        assert everything["pagination"]["total"] == 4
        page = http.get(f"{BASE}?search=ALPHA&limit=2").json()
        assert page["pagination"]["total"] == 3
        assert [w["id"] for w in page["data"]] == ids[::-1][:2]
        rest = http.get(page["pagination"]["next"]).json()
        assert [w["id"] for w in rest["data"]] == ids[:1]
        assert rest["pagination"]["next"] is None and rest["pagination"]["prev"] is not None
        none = http.get(f"{BASE}?search=gamma").json()
    assert none["data"] == [] and none["pagination"]["total"] == 0


def test_another_organizations_workflow_is_404(
    api_server: ServeProcess, org_key: str, make_key: Any
) -> None:
    with client(api_server, make_key("org-onepin-stranger")) as other:
        theirs = create(other, "theirs", simple())
    with client(api_server, org_key) as http:
        answers = [
            http.get(f"{BASE}/{theirs}"),
            http.patch(f"{BASE}/{theirs}", json={"name": "mine"}),
            http.delete(f"{BASE}/{theirs}"),
            http.post(f"{BASE}/{theirs}/duplicate"),
            http.get(f"{BASE}/{theirs}/runs"),
            http.get(f"{BASE}/{theirs}/uploads"),
            http.get(f"{BASE}/{uuid.uuid4()}"),
        ]
    for answer in answers:
        assert answer.status_code == 404, answer.text
        assert answer.json()["error"]["code"] == "NOT_FOUND"


def test_uploads_list_the_files_runs_referred_to(api_server: ServeProcess, org_key: str) -> None:
    definition = {
        "name": "reads a file",
        "inputs": {"type": "object", "properties": {"doc": {"type": "object"}}},
        "nodes": [reshape("a", "{{ inputs.doc.file_id }}")],
    }
    with client(api_server, org_key) as http:
        uploaded = http.post(
            "/v1/files", files={"file": ("notes.txt", b"hello onepin", "text/plain")}
        )
        assert uploaded.status_code == 201, uploaded.text
        file_id = uploaded.json()["id"]
        workflow_id = create(http, "files", definition)
        finished(http, workflow_id, start(http, workflow_id, {"doc": {"file_id": file_id}}))
        finished(http, workflow_id, start(http, workflow_id, {"doc": {"file_id": file_id}}))
        answer = http.get(f"{BASE}/{workflow_id}/uploads")
    assert answer.status_code == 200, answer.text
    (found,) = answer.json()["data"]
    assert found["id"] == file_id and found["filename"] == "notes.txt"
    assert found["size"] == len(b"hello onepin")
    assert answer.json()["pagination"]["total"] == 1


def test_a_body_too_large_is_413_in_onepins_envelope(
    api_server: ServeProcess, org_key: str
) -> None:
    huge = {"name": "big", "definition": {"name": "big", "nodes": [], "pad": "x" * 20_000_000}}
    with client(api_server, org_key) as http:
        answer = http.post(BASE, json=huge)
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_x_workspace_id_narrows_every_read(api_server: ServeProcess, org_key: str) -> None:
    here, there = str(uuid.uuid4()), str(uuid.uuid4())
    with client(api_server, org_key) as http:
        http.headers["X-Workspace-Id"] = here
        workflow_id = create(http, "scoped", simple())
        run_id = start(http, workflow_id)
        finished(http, workflow_id, run_id)
        assert http.get(BASE).json()["pagination"]["total"] == 1
        http.headers["X-Workspace-Id"] = there
        listed = http.get(BASE).json()
        answers = [
            http.get(f"{BASE}/{workflow_id}"),
            http.get(f"{BASE}/{workflow_id}/runs/{run_id}/steps"),
        ]
        http.headers["X-Workspace-Id"] = "not-a-uuid"
        malformed = http.get(BASE)
    assert listed["data"] == [] and listed["pagination"]["total"] == 0
    for answer in answers:
        assert answer.status_code == 404, answer.text
    assert malformed.status_code == 422
    assert malformed.json()["error"]["details"][0]["field"] == "header.X-Workspace-Id"
