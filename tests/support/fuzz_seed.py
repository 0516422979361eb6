"""Records for the API fuzzer to aim at: two organizations, each with workflows and runs in
every state a route treats apart (completed, failed, waiting for a review), loop steps,
a secret and spare keys, all made through the API of a real `stepline serve`.

The fuzzer draws path parameters from these ids (its dictionaries), so that its requests
reach past the 404 of an unknown id; the other organization's ids are among them, and
must stay 404s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from support.server import ServeProcess, make_key

FINISHED = {"completed", "failed", "cancelled"}
SETTLED = FINISHED | {"waiting_for_human"}


@dataclass
class Organization:
    name: str
    admin_key: str
    read_key: str
    workflow_ids: list[str] = field(default_factory=list)
    disposable_workflow_ids: list[str] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    step_ids: list[str] = field(default_factory=list)
    node_ids: list[str] = field(default_factory=list)
    spare_key_ids: list[str] = field(default_factory=list)
    secret_names: list[str] = field(default_factory=list)
    collection_ids: list[str] = field(default_factory=list)
    disposable_collection_ids: list[str] = field(default_factory=list)
    source_ids: list[str] = field(default_factory=list)
    parents: dict[str, str] = field(default_factory=dict)
    """Each seeded run's workflow id and each step's (UUID and step_id) run id."""


@dataclass
class FuzzTarget:
    server: ServeProcess
    organizations: list[Organization]

    def parents(self) -> dict[str, str]:
        return {
            k: v for organization in self.organizations for k, v in organization.parents.items()
        }

    def values(self, attribute: str) -> list[str]:
        """Every organization's values of one `Organization` list, de-duplicated."""
        seen: dict[str, None] = {}
        for organization in self.organizations:
            seen.update(dict.fromkeys(getattr(organization, attribute)))
        return list(seen)


def _node(node_id: str, kind: str, config: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"id": node_id, "type": kind, "config": config, **options}


def _definitions(prefix: str) -> dict[str, dict[str, Any]]:
    inputs = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "amounts": {"type": "array"}},
    }
    return {
        "simple": {
            "name": f"{prefix}-simple",
            "inputs": inputs,
            "nodes": [
                _node("greet", "reshape", {"output": {"text": "hi {{ inputs.name }}"}}),
                _node("end", "end", {"output": "{{ nodes.greet.output }}"}),
            ],
            "edges": [{"from": "greet", "to": "end"}],
        },
        "review": {
            "name": f"{prefix}-review",
            "inputs": inputs,
            "nodes": [
                _node("draft", "reshape", {"output": {"text": "draft {{ inputs.name }}"}}),
                _node("check", "hil", {"payload": "{{ nodes.draft.output }}"}),
                _node("publish", "reshape", {"output": "{{ nodes.check.output }}"}),
                _node("redo", "reshape", {"output": "redo"}),
            ],
            "edges": [
                {"from": "draft", "to": "check"},
                {"from": "check", "to": "publish"},
                {"from": "check", "to": "redo", "handle": "rejected"},
            ],
        },
        "loop": {
            "name": f"{prefix}-loop",
            "inputs": inputs,
            "nodes": [
                _node(
                    "each",
                    "for_each",
                    {"items": "{{ inputs.amounts or [1, 2, 3] }}"},
                    body={
                        "nodes": [_node("double", "reshape", {"output": "{{ loop.item * 2 }}"})],
                        "edges": [],
                    },
                ),
                _node("sum", "end", {"output": "{{ nodes.each.output }}"}),
            ],
            "edges": [{"from": "each", "to": "sum"}],
        },
        "failing": {
            "name": f"{prefix}-failing",
            "inputs": inputs,
            "nodes": [
                # Port 1 on loopback: refused at once, and not retried.
                _node("call", "api_call", {"url": "http://127.0.0.1:1/", "timeout_s": 2}),
                _node("end", "end", {"output": "{{ nodes.call.output }}"}),
            ],
            "edges": [{"from": "call", "to": "end"}],
        },
    }


def seed(
    server: ServeProcess, database_url: str, names: tuple[str, ...] = ("alpha", "beta")
) -> FuzzTarget:
    """Seed `server`, whose database is at `database_url`, with the organizations `names`."""
    organizations = [_seed_organization(server, database_url, name) for name in names]
    return FuzzTarget(server=server, organizations=organizations)


def _seed_organization(server: ServeProcess, database_url: str, name: str) -> Organization:
    org = Organization(
        name=name,
        admin_key=make_key(database_url, f"fuzz-{name}"),
        read_key=make_key(database_url, f"fuzz-{name}", ("read",)),
    )
    headers = {"Authorization": f"Bearer {org.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        for kind, definition in _definitions(f"fuzz-{name}").items():
            workflow_id = _created(http.post("/v1/workflows", json=definition))["id"]
            org.workflow_ids.append(workflow_id)
            run = _settled_run(http, workflow_id, {"name": f"{name} {kind}"})
            org.run_ids.append(run["id"])
            org.parents[run["id"]] = workflow_id
            steps = http.get(f"/v1/workflows/{workflow_id}/runs/{run['id']}/steps")
            for step in steps.json()["data"]:
                org.step_ids += [step["id"], step["step_id"]]
                org.parents.update(dict.fromkeys((step["id"], step["step_id"]), run["id"]))
                org.node_ids.append(step["node_id"])
        for index in range(4):
            spare = dict(_definitions(f"fuzz-{name}-spare-{index}")["simple"])
            org.disposable_workflow_ids.append(
                _created(http.post("/v1/workflows", json=spare))["id"]
            )
        for index in range(3):
            body = {"name": f"spare-{index}", "scopes": ["read"]}
            org.spare_key_ids.append(_created(http.post("/v1/keys", json=body))["id"])
        for secret in ("TOKEN", "OTHER_TOKEN"):
            _created(http.put(f"/v1/secrets/{secret}", json={"value": f"{name}-secret"}))
            org.secret_names.append(secret)
        for index in range(3):
            body = {"name": f"fuzz-{name}-collection-{index}"}
            collection_id = _created(http.post("/v1/collections", json=body))["id"]
            text = {"text": f"{name} knowledge, chunk {index}: otters and seals", "source": "seed"}
            added = _created(http.post(f"/v1/collections/{collection_id}/sources", json=text))
            # The first is kept for the other cases to aim at; the others may be deleted.
            if index == 0:
                org.collection_ids.append(collection_id)
                org.source_ids.append(added["source_id"])
            else:
                org.disposable_collection_ids.append(collection_id)
    return org


def _created(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def _settled_run(http: httpx.Client, workflow_id: str, inputs: dict[str, Any]) -> Any:
    run = _created(http.post(f"/v1/workflows/{workflow_id}/runs", json={"inputs": inputs}))
    deadline = time.monotonic() + 60
    while run["status"] not in SETTLED:
        assert time.monotonic() < deadline, f"run {run['id']} stayed {run['status']}"
        time.sleep(0.05)
        run = _created(http.get(f"/v1/workflows/{workflow_id}/runs/{run['id']}"))
    return run
