"""/v1/workflows over HTTP against a real `stepline serve`: every route and its 4xx cases."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable, Iterator
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import yaml

from stepline.records import RunRecord, RunStatus, StepRecord, StepStatus
from stepline.store import Store
from support.server import ServeProcess

MakeKey = Callable[..., str]

DEFINITION: dict[str, Any] = {
    "name": "triage",
    "description": "route a number",
    "inputs": {"type": "object", "properties": {"n": {"type": "number"}}},
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "route",
            "type": "conditional",
            "config": {"branches": [{"name": "big", "when": "inputs.n > 5"}]},
        },
        {"id": "big", "type": "reshape", "label": 'The "big" one', "config": {"output": 1}},
        {"id": "small", "type": "reshape", "config": {"output": 0}},
        {"id": "end", "type": "end"},
    ],
    "edges": [
        {"from": "start", "to": "route"},
        {"from": "route", "to": "big", "handle": "big"},
        {"from": "route", "to": "small", "handle": "else"},
        {"from": "big", "to": "end"},
        {"from": "small", "to": "end"},
    ],
}


def named(name: str, **fields: Any) -> dict[str, Any]:
    return {**copy.deepcopy(DEFINITION), "name": name, **fields}


def client_for(server: ServeProcess, key: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=30,
    )


@pytest.fixture
def api(api_server: ServeProcess, org_key: str) -> Iterator[httpx.Client]:
    """A client with an admin key of this test's own organization."""
    with client_for(api_server, org_key) as client:
        yield client


def create(api: httpx.Client, definition: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/workflows", json=definition)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["request_id"] == response.headers["X-Request-Id"]
    error: dict[str, Any] = body["error"]
    return error


def fields_of(error: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in error["details"]]


# --- create, read, list --------------------------------------------------------------------


def test_create_then_get_returns_the_workflow_and_its_definition(api: httpx.Client) -> None:
    response = api.post("/v1/workflows", json=DEFINITION)
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["Location"] == f"/v1/workflows/{created['id']}"
    UUID(created["id"])
    UUID(created["organization_id"])
    assert created["name"] == "triage"
    assert created["description"] == "route a number"
    assert created["latest_version"] == 1
    assert created["workspace_id"] is None
    assert created["definition"] == DEFINITION

    fetched = api.get(response.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.json() == created
    listed = api.get("/v1/workflows").json()
    assert listed == {"data": [created], "next_cursor": None, "prev_cursor": None}


def test_invalid_definition_is_422_naming_each_path(api: httpx.Client) -> None:
    bad = named("broken")
    bad["nodes"][4]["type"] = "nope"
    bad["edges"].append({"from": "end", "to": "ghost"})
    error = error_of(api.post("/v1/workflows", json=bad), 422)
    assert error["code"] == "validation_error"
    assert fields_of(error) == ["body.nodes[4].type", "body.edges[5].to"]
    assert "unknown node type 'nope'" in error["details"][0]["message"]
    assert "node 'end'" in error["details"][0]["message"]
    assert "2 problems" in error["message"]
    # Nothing was stored.
    assert api.get("/v1/workflows").json()["data"] == []


def test_a_body_that_is_not_an_object_is_422(api: httpx.Client) -> None:
    error = error_of(api.post("/v1/workflows", json=[1, 2]), 422)
    assert fields_of(error) == ["body"]
    error = error_of(
        api.post("/v1/workflows", content=b"{nope", headers={"Content-Type": "application/json"}),
        422,
    )
    assert fields_of(error)[0].startswith("body")


def test_validate_always_answers_200_with_the_problems(api: httpx.Client) -> None:
    good = api.post("/v1/workflows/validate", json=DEFINITION)
    assert good.status_code == 200
    assert good.json() == {"valid": True, "errors": []}

    bad = named("broken")
    bad["nodes"][1]["config"]["branches"][0]["when"] = "nodes.missing.output > 1"
    bad["edges"].append({"from": "end", "to": "start"})
    report = api.post("/v1/workflows/validate", json=bad)
    assert report.status_code == 200
    body = report.json()
    assert body["valid"] is False
    codes = {(e["path"], e["code"], e["node_id"]) for e in body["errors"]}
    assert ("$.nodes[1].config.branches[0].when", "unknown_node", "route") in codes
    assert any(e["code"] == "cycle" for e in body["errors"])

    for raw in (b"[1, 2]", b"{not json", b""):
        answer = api.post(
            "/v1/workflows/validate", content=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code == 200, raw
        assert answer.json()["valid"] is False
        assert answer.json()["errors"][0]["path"] == "$"
    # Validating stores nothing.
    assert api.get("/v1/workflows").json()["data"] == []


def test_list_paginates_newest_first_without_gaps_or_repeats(api: httpx.Client) -> None:
    ids = [create(api, named(f"wf-{i}"))["id"] for i in range(7)]
    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor is not None:
            params["after"] = cursor
        page = api.get("/v1/workflows", params=params).json()
        pages += 1
        seen += [item["id"] for item in page["data"]]
        assert all(item["definition"]["name"] == item["name"] for item in page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 4
    assert seen == list(reversed(ids))

    first = api.get("/v1/workflows", params={"limit": 3}).json()
    second = api.get("/v1/workflows", params={"limit": 3, "after": first["next_cursor"]}).json()
    back = api.get("/v1/workflows", params={"limit": 3, "before": second["prev_cursor"]}).json()
    assert back["data"] == first["data"]
    assert back["prev_cursor"] is None

    by_name = api.get("/v1/workflows", params={"name": "wf-3"}).json()["data"]
    assert [item["id"] for item in by_name] == [ids[3]]


def test_list_refuses_bad_paging_parameters(api: httpx.Client) -> None:
    error = error_of(api.get("/v1/workflows", params={"after": "garbage"}), 422)
    assert fields_of(error) == ["query.after"]
    error = error_of(api.get("/v1/workflows", params={"limit": 0}), 422)
    assert fields_of(error) == ["query.limit"]
    error = error_of(api.get("/v1/workflows", params={"limit": 1001}), 422)
    assert fields_of(error) == ["query.limit"]
    error = error_of(api.get("/v1/workflows", params={"after": "x", "before": "y"}), 422)
    assert fields_of(error) == ["query.before"]


# --- ids, organizations, scopes ------------------------------------------------------------


def test_malformed_workflow_id_is_422(api: httpx.Client) -> None:
    for method, path in [
        ("GET", "/v1/workflows/not-a-uuid"),
        ("DELETE", "/v1/workflows/123"),
        ("GET", "/v1/workflows/xyz/versions"),
        ("GET", "/v1/workflows/xyz/diagram"),
    ]:
        error = error_of(api.request(method, path), 422)
        assert fields_of(error) == ["path.workflow_id"], path


def test_unknown_and_other_organizations_workflows_are_404(
    api: httpx.Client, api_server: ServeProcess, make_key: MakeKey
) -> None:
    theirs = create(api, DEFINITION)
    with client_for(api_server, make_key(f"other-{uuid4()}")) as other:
        for workflow_id in (theirs["id"], str(uuid4())):
            base = f"/v1/workflows/{workflow_id}"
            calls = [
                other.get(base),
                other.put(base, json=DEFINITION),
                other.patch(base, json={"name": "mine"}),
                other.delete(base),
                other.post(f"{base}/duplicate"),
                other.get(f"{base}/versions"),
                other.get(f"{base}/versions/1"),
                other.get(f"{base}/diagram"),
            ]
            for response in calls:
                error = error_of(response, 404)
                assert error["code"] == "not_found"
                assert workflow_id in error["message"]
        assert other.get("/v1/workflows").json()["data"] == []
    # Nothing the other organization tried changed ours.
    assert api.get(f"/v1/workflows/{theirs['id']}").json() == theirs


def test_read_only_key_can_read_but_not_change(
    api: httpx.Client, api_server: ServeProcess, make_key: MakeKey, request: pytest.FixtureRequest
) -> None:
    workflow = create(api, DEFINITION)
    base = f"/v1/workflows/{workflow['id']}"
    for scopes in (["read"], ["run"]):
        key = make_key(f"org-{request.node.name}", scopes)
        with client_for(api_server, key) as reader:
            assert reader.get(base).status_code == 200
            assert reader.get("/v1/workflows").status_code == 200
            assert reader.post("/v1/workflows/validate", json=DEFINITION).status_code == 200
            for response in [
                reader.post("/v1/workflows", json=named("new")),
                reader.put(base, json=DEFINITION),
                reader.patch(base, json={"name": "renamed"}),
                reader.delete(base),
                reader.post(f"{base}/duplicate"),
                reader.post("/v1/workflows/upload", files={"file": ("w.json", b"{}")}),
            ]:
                error = error_of(response, 403)
                assert "'write'" in error["message"]
    assert api.get(base).json() == workflow


def test_no_key_is_401(api_server: ServeProcess) -> None:
    response = httpx.post(f"{api_server.base_url}/v1/workflows", json=DEFINITION)
    assert error_of(response, 401)["code"] == "unauthorized"


# --- change: PUT, PATCH, DELETE, duplicate ---------------------------------------------------


def test_put_makes_a_new_version_only_when_the_definition_changes(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    base = f"/v1/workflows/{workflow['id']}"
    changed = named("triage", description="second")
    updated = api.put(base, json=changed)
    assert updated.status_code == 200, updated.text
    assert updated.json()["latest_version"] == 2
    assert updated.json()["description"] == "second"
    assert updated.json()["definition"] == changed
    again = api.put(base, json=changed)
    assert again.json()["latest_version"] == 2

    versions = api.get(f"{base}/versions").json()
    assert [v["version"] for v in versions["data"]] == [2, 1]
    assert versions["data"][1]["definition"] == DEFINITION
    assert versions["data"][0]["workflow_id"] == workflow["id"]
    one = api.get(f"{base}/versions", params={"limit": 1}).json()
    assert [v["version"] for v in one["data"]] == [2]
    rest = api.get(f"{base}/versions", params={"limit": 1, "after": one["next_cursor"]}).json()
    assert [v["version"] for v in rest["data"]] == [1]
    assert rest["next_cursor"] is None

    first = api.get(f"{base}/versions/1")
    assert first.status_code == 200
    assert first.json()["definition"] == DEFINITION
    assert first.json() == versions["data"][1]
    assert error_of(api.get(f"{base}/versions/3"), 404)["code"] == "not_found"
    assert fields_of(error_of(api.get(f"{base}/versions/0"), 422)) == ["path.version"]


def test_put_with_an_invalid_definition_keeps_the_workflow(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    bad = named("triage")
    del bad["nodes"][0]["type"]
    error = error_of(api.put(f"/v1/workflows/{workflow['id']}", json=bad), 422)
    assert fields_of(error) == ["body.nodes[0].type"]
    assert api.get(f"/v1/workflows/{workflow['id']}").json() == workflow


def test_patch_changes_metadata_without_a_new_version(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    base = f"/v1/workflows/{workflow['id']}"
    patched = api.patch(base, json={"name": "renamed", "description": "new words"})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == "renamed"
    assert body["description"] == "new words"
    assert body["latest_version"] == 1
    assert body["definition"] == DEFINITION
    assert body["updated_at"] > workflow["updated_at"]
    assert api.get(base).json() == body
    assert len(api.get(f"{base}/versions").json()["data"]) == 1
    assert api.patch(base, json={}).json() == body

    assert fields_of(error_of(api.patch(base, json={"colour": "red"}), 422)) == ["body.colour"]
    assert fields_of(error_of(api.patch(base, json={"name": ""}), 422)) == ["body.name"]
    assert fields_of(error_of(api.patch(base, json={"name": "   "}), 422)) == ["body.name"]


def test_names_in_use_are_a_409(api: httpx.Client) -> None:
    first = create(api, DEFINITION)
    second = create(api, named("second"))
    conflict = error_of(api.post("/v1/workflows", json=DEFINITION), 409)
    assert conflict["code"] == "conflict"
    assert first["id"] in conflict["message"]
    assert fields_of(conflict) == ["body.name"]

    base = f"/v1/workflows/{second['id']}"
    assert first["id"] in error_of(api.patch(base, json={"name": "triage"}), 409)["message"]
    assert first["id"] in error_of(api.put(base, json=DEFINITION), 409)["message"]
    duplicate = api.post(f"/v1/workflows/{first['id']}/duplicate", json={"name": "second"})
    assert second["id"] in error_of(duplicate, 409)["message"]
    assert api.get(base).json() == second


def test_delete_hides_the_workflow_and_frees_its_name(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    base = f"/v1/workflows/{workflow['id']}"
    deleted = api.delete(base)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert error_of(api.get(base), 404)["code"] == "not_found"
    assert error_of(api.delete(base), 404)["code"] == "not_found"
    assert error_of(api.get(f"{base}/versions"), 404)["code"] == "not_found"
    assert api.get("/v1/workflows").json()["data"] == []
    assert create(api, DEFINITION)["id"] != workflow["id"]


def test_duplicate_copies_the_latest_definition_under_a_new_name(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    base = f"/v1/workflows/{workflow['id']}"
    api.put(base, json=named("triage", description="latest"))
    response = api.post(f"{base}/duplicate")
    assert response.status_code == 201, response.text
    copy_ = response.json()
    assert response.headers["Location"] == f"/v1/workflows/{copy_['id']}"
    assert copy_["id"] != workflow["id"]
    assert copy_["name"] == "triage (copy)"
    assert copy_["latest_version"] == 1
    assert copy_["definition"] == named("triage (copy)", description="latest")
    assert api.post(f"{base}/duplicate").json()["name"] == "triage (copy 2)"
    chosen = api.post(f"{base}/duplicate", json={"name": "my triage"})
    assert chosen.status_code == 201
    assert chosen.json()["definition"]["name"] == "my triage"
    names = [item["name"] for item in api.get("/v1/workflows").json()["data"]]
    assert names == ["my triage", "triage (copy 2)", "triage (copy)", "triage"]


# --- upload --------------------------------------------------------------------------------


def test_upload_accepts_yaml_and_json_files(api: httpx.Client) -> None:
    text = yaml.safe_dump(named("from-yaml"), sort_keys=False)
    response = api.post(
        "/v1/workflows/upload", files={"file": ("flow.yaml", text.encode(), "application/yaml")}
    )
    assert response.status_code == 201, response.text
    assert response.json()["definition"] == named("from-yaml")
    assert response.headers["Location"] == f"/v1/workflows/{response.json()['id']}"

    raw = json.dumps(named("from-json")).encode()
    response = api.post("/v1/workflows/upload", files={"file": ("flow.json", raw)})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "from-json"
    assert api.get(f"/v1/workflows/{response.json()['id']}").json() == response.json()


def test_upload_of_a_bad_file_names_the_problem(api: httpx.Client) -> None:
    broken = b"name: x\nnodes: [\n  - id: a\n"
    error = error_of(api.post("/v1/workflows/upload", files={"file": ("w.yaml", broken)}), 422)
    assert fields_of(error) == ["body.file"]
    assert "invalid YAML" in error["message"]
    assert "w.yaml:" in error["message"]

    error = error_of(api.post("/v1/workflows/upload", files={"file": ("w.json", b"{,}")}), 422)
    assert "invalid JSON" in error["message"]

    error = error_of(api.post("/v1/workflows/upload", files={"file": ("w.yaml", b"\xff\xfe")}), 422)
    assert "not UTF-8" in error["message"]

    invalid = named("bad-upload")
    invalid["nodes"][2]["type"] = "nope"
    text = yaml.safe_dump(invalid).encode()
    error = error_of(api.post("/v1/workflows/upload", files={"file": ("w.yml", text)}), 422)
    assert fields_of(error) == ["body.file.nodes[2].type"]

    error = error_of(api.post("/v1/workflows/upload", data={"other": "x"}), 422)
    assert fields_of(error) == ["body.file"]
    assert api.get("/v1/workflows").json()["data"] == []


# --- diagram -------------------------------------------------------------------------------


def test_mermaid_diagram_has_every_node_and_edge(api: httpx.Client) -> None:
    workflow = create(api, DEFINITION)
    response = api.get(f"/v1/workflows/{workflow['id']}/diagram")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        response.text
        == api.get(f"/v1/workflows/{workflow['id']}/diagram", params={"format": "mermaid"}).text
    )
    assert response.text.splitlines() == [
        "flowchart TD",
        '    n0["start<br/>start"]',
        '    n1["route<br/>conditional"]',
        '    n2["The #quot;big#quot; one (big)<br/>reshape"]',
        '    n3["small<br/>reshape"]',
        '    n4["end<br/>end"]',
        "    n0 --> n1",
        '    n1 -->|"big"| n2',
        '    n1 -->|"else"| n3',
        "    n2 --> n4",
        "    n3 --> n4",
    ]
    error = error_of(api.get(f"/v1/workflows/{workflow['id']}/diagram?format=svg"), 422)
    assert fields_of(error) == ["query.format"]


def test_json_diagram_shows_the_latest_runs_step_statuses(
    api: httpx.Client, api_server: ServeProcess
) -> None:
    workflow = create(api, DEFINITION)
    url = f"/v1/workflows/{workflow['id']}/diagram"
    before = api.get(url, params={"format": "json"}).json()
    assert before["run_id"] is None
    assert before["nodes"] == [
        {"id": "start", "type": "start", "label": "start", "status": None, "parent": None},
        {"id": "route", "type": "conditional", "label": "route", "status": None, "parent": None},
        {"id": "big", "type": "reshape", "label": 'The "big" one', "status": None, "parent": None},
        {"id": "small", "type": "reshape", "label": "small", "status": None, "parent": None},
        {"id": "end", "type": "end", "label": "end", "status": None, "parent": None},
    ]
    assert before["edges"] == [
        {"from": "start", "to": "route", "handle": None},
        {"from": "route", "to": "big", "handle": "big"},
        {"from": "route", "to": "small", "handle": "else"},
        {"from": "big", "to": "end", "handle": None},
        {"from": "small", "to": "end", "handle": None},
    ]

    older = {"start": StepStatus.completed, "route": StepStatus.error}
    latest = {"start": StepStatus.completed, "route": StepStatus.completed}
    latest |= {"big": StepStatus.skipped, "small": StepStatus.running}
    insert_finished_run(api_server, workflow, older)
    newest = insert_finished_run(api_server, workflow, latest)
    after = api.get(url, params={"format": "json"}).json()
    assert after["run_id"] == str(newest)
    statuses = {node["id"]: node["status"] for node in after["nodes"]}
    assert statuses == {
        "start": "completed",
        "route": "completed",
        "big": "skipped",
        "small": "running",
        "end": None,
    }


def test_a_loop_body_is_a_subgraph_of_the_diagram(api: httpx.Client) -> None:
    definition = {
        "name": "diagram-loop",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": [1, 2]},
                "body": {
                    "nodes": [
                        {"id": "a", "type": "reshape", "config": {"output": 1}},
                        {"id": "b", "type": "reshape", "config": {"output": 2}},
                    ],
                    "edges": [{"from": "a", "to": "b"}],
                },
            },
            {"id": "after", "type": "reshape", "config": {"output": 3}},
        ],
        "edges": [{"from": "each", "to": "after"}],
    }
    workflow = create(api, definition)
    url = f"/v1/workflows/{workflow['id']}/diagram"
    assert api.get(url).text.splitlines() == [
        "flowchart TD",
        '    n0["each<br/>for_each"]',
        '    subgraph n0_body["body of each"]',
        '        n1["a<br/>reshape"]',
        '        n2["b<br/>reshape"]',
        "    end",
        '    n0 -.->|"each iteration"| n0_body',
        '    n3["after<br/>reshape"]',
        "    n1 --> n2",
        "    n0 --> n3",
    ]
    nodes = api.get(url, params={"format": "json"}).json()["nodes"]
    assert [(n["id"], n["parent"]) for n in nodes] == [
        ("each", None),
        ("a", "each"),
        ("b", "each"),
        ("after", None),
    ]


def insert_finished_run(
    server: ServeProcess, workflow: dict[str, Any], statuses: dict[str, StepStatus]
) -> UUID:
    """A finished run with these step statuses, written straight into the server's database.

    Finished, so the server's worker leaves it alone.
    """

    async def insert() -> UUID:
        store = await Store.connect(server.database_url)
        try:
            run = await store.runs.create(
                RunRecord(
                    workflow_id=workflow["id"],
                    workflow_version=workflow["latest_version"],
                    organization_id=workflow["organization_id"],
                    status=RunStatus.completed,
                )
            )
            await store.steps.insert(
                [
                    StepRecord(
                        run_id=run.id,
                        workflow_id=run.workflow_id,
                        workflow_version=run.workflow_version,
                        organization_id=run.organization_id,
                        node_id=node_id,
                        step_id=node_id,
                        node_type="reshape",
                        node_label=node_id,
                        seq=seq,
                        status=status,
                    )
                    for seq, (node_id, status) in enumerate(statuses.items())
                ]
            )
            return run.id
        finally:
            await store.close()

    return asyncio.run(insert())


# --- workspaces ----------------------------------------------------------------------------


def test_workspace_narrows_what_a_key_sees(
    api: httpx.Client, api_server: ServeProcess, make_key: MakeKey, request: pytest.FixtureRequest
) -> None:
    workspace = uuid4()
    key = make_key(f"org-{request.node.name}", ["admin"], workspace_id=workspace)
    outside = create(api, named("outside"))
    with client_for(api_server, key) as scoped:
        inside = scoped.post("/v1/workflows", json=named("inside"))
        assert inside.status_code == 201, inside.text
        assert inside.json()["workspace_id"] == str(workspace)
        assert [w["name"] for w in scoped.get("/v1/workflows").json()["data"]] == ["inside"]
        assert error_of(scoped.get(f"/v1/workflows/{outside['id']}"), 404)["code"] == "not_found"
        assert scoped.delete(f"/v1/workflows/{outside['id']}").status_code == 404
    # The organization-wide key sees both, and narrows with the header.
    assert len(api.get("/v1/workflows").json()["data"]) == 2
    narrowed = api.get("/v1/workflows", headers={"X-Workspace-Id": str(workspace)}).json()
    assert [w["name"] for w in narrowed["data"]] == ["inside"]
    error = error_of(api.get("/v1/workflows", headers={"X-Workspace-Id": "nope"}), 422)
    assert fields_of(error) == ["header.X-Workspace-Id"]


def test_names_are_unique_per_workspace(
    api: httpx.Client, api_server: ServeProcess, make_key: MakeKey, request: pytest.FixtureRequest
) -> None:
    # A key of one workspace never meets (or is pointed at) another workspace's workflow.
    organization = f"org-{request.node.name}"
    plain = create(api, DEFINITION)
    keys = [make_key(organization, ["admin"], workspace_id=uuid4()) for _ in range(2)]
    with client_for(api_server, keys[0]) as here, client_for(api_server, keys[1]) as there:
        mine, theirs = create(here, DEFINITION), create(there, DEFINITION)
        assert len({plain["id"], mine["id"], theirs["id"]}) == 3
        conflict = error_of(here.post("/v1/workflows", json=DEFINITION), 409)
        assert mine["id"] in conflict["message"] and theirs["id"] not in conflict["message"]
        other = create(here, named("other"))
        renamed = here.patch(f"/v1/workflows/{other['id']}", json={"name": "triage"})
        assert mine["id"] in error_of(renamed, 409)["message"]
    conflict = error_of(api.post("/v1/workflows", json=DEFINITION), 409)
    assert plain["id"] in conflict["message"]
    assert {
        w["id"] for w in api.get("/v1/workflows", params={"name": "triage"}).json()["data"]
    } == {
        plain["id"],
        mine["id"],
        theirs["id"],
    }
