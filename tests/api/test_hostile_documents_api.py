"""No document stops the service: each one a hostile client sent is refused (413 or 422,
naming the limit and where), nothing of it is stored, and every organization's runs go on.

Against real `stepline serve` processes, on SQLite and on PostgreSQL where storage is
involved. Before: inputs nested 240 levels were a 500 that left a run no worker could
claim (stopping everyone's runs); a config nested 200 levels was accepted and then broke
`GET /v1/workflows`; 256+ levels and a 10,000-level YAML upload were 500s; NaN and 1e999
were served back as NaN and Infinity; integers past 64 bits came back as floats.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from control_support import (
    client,
    create_workflow,
    edge,
    error_of,
    hil_workflow,
    node,
    review_url,
    run_url,
    runs_url,
    settled,
)

from support.server import ServeProcess, start_server
from support.server import make_key as mint_key

DEEP = 10_000
ECHO = {"name": "echo", "nodes": [node("echo", "reshape", {"output": "{{ inputs.x }}"})]}
BIG = 18446744073709551617
HUGE = int("7" * 4000)
RETURNS = "def main(inputs):\n    return [{big}, {{'huge': {huge}}}][inputs['which']]\n"


def nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


@dataclass(frozen=True)
class Served:
    process: ServeProcess
    database_url: str

    def key(self, organization: str) -> str:
        return mint_key(self.database_url, organization)


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The session's SQLite server, or a server of this module on PostgreSQL."""
    if request.param == "sqlite":
        shared: ServeProcess = request.getfixturevalue("api_server")
        yield Served(shared, shared.database_url)
        return
    url: str = request.getfixturevalue("postgres_session_url")
    home = tmp_path_factory.mktemp("serve-postgres") / "home"
    process = start_server(home, env={"STEPLINE_DATABASE_URL": url})
    try:
        yield Served(process, url)
    finally:
        process.stop()


@pytest.fixture
def http(request: pytest.FixtureRequest, server: Served) -> Iterator[httpx.Client]:
    with client(server.process, server.key(f"org-{request.node.name}")) as http:
        yield http


def refused(response: httpx.Response, status: int, field: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = error_of(response)
    fields = [detail["field"] for detail in error["details"]]
    assert any(f.startswith(field) for f in fields), fields
    for word in words:
        assert word in error["message"], error["message"]
    return error


def post_raw(http: httpx.Client, url: str, text: str) -> httpx.Response:
    return http.post(url, content=text, headers={"Content-Type": "application/json"})


# --- poisoned inputs -----------------------------------------------------------------------------


def test_inputs_240_levels_deep_are_refused_and_another_organizations_run_completes(
    request: pytest.FixtureRequest, server: Served, http: httpx.Client
) -> None:
    workflow_id = create_workflow(http, ECHO)
    response = http.post(
        runs_url(workflow_id), params={"wait": "true"}, json={"inputs": {"x": nested(240)}}
    )
    refused(response, 422, "body", "deeper than", "STEPLINE_MAX_DOCUMENT_DEPTH")
    assert http.get(runs_url(workflow_id)).json()["data"] == []  # no run was stored

    with client(server.process, server.key(f"other-{request.node.name}")) as other:
        other_workflow = create_workflow(other, ECHO)
        started = time.monotonic()
        done = other.post(
            runs_url(other_workflow), params={"wait": "true"}, json={"inputs": {"x": "fine"}}
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        assert done.json()["output"] == "fine"
        assert time.monotonic() - started < 10


def test_inputs_one_level_past_the_limit_name_the_field(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, ECHO)
    # inputs (1) -> x (2..65): 65 levels, one more than the 64 allowed.
    response = http.post(runs_url(workflow_id), json={"inputs": {"x": nested(64)}})
    error = refused(response, 422, "body.inputs.x", "nested deeper than 64 levels")
    assert error["details"][0]["field"] == "body.inputs.x" + "[0]" * 63
    ok = http.post(runs_url(workflow_id), json={"inputs": {"x": nested(63)}})
    assert ok.status_code == 202, ok.text


def test_a_json_body_10000_levels_deep_is_refused_fast(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, ECHO)
    body = '{"inputs": {"x": ' + "[" * DEEP + "]" * DEEP + "}}"
    started = time.monotonic()
    response = post_raw(http, runs_url(workflow_id), body)
    elapsed = time.monotonic() - started
    refused(response, 422, "body", "deeper than 66 levels", "STEPLINE_MAX_DOCUMENT_DEPTH")
    assert elapsed < 0.5, f"{elapsed:.3f} s"


def test_inputs_over_the_size_limit_are_413(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, ECHO)
    response = http.post(runs_url(workflow_id), json={"inputs": {"x": "x" * (4 * 1024 * 1024)}})
    refused(response, 413, "body.inputs", "STEPLINE_MAX_INPUTS_BYTES")


# --- hostile definitions -------------------------------------------------------------------------


def deep_config(levels: int) -> str:
    """A definition whose node's config nests `levels` arrays (text: too deep to dump)."""
    return (
        f'{{"name": "deep-{levels}", "nodes": [{{"id": "a", "type": "reshape", '
        f'"config": {{"output": {"[" * levels}{"]" * levels}}}}}]}}'
    )


@pytest.mark.parametrize("levels", [200, 300, DEEP])
def test_a_deep_config_is_refused_and_the_workflow_list_still_answers(
    http: httpx.Client, levels: int
) -> None:
    response = post_raw(http, "/v1/workflows", deep_config(levels))
    refused(response, 422, "body", "deeper than")
    listing = http.get("/v1/workflows")
    assert listing.status_code == 200, listing.text
    assert [w["name"] for w in listing.json()["data"]] == []


def test_a_10000_level_yaml_upload_is_refused_fast(http: httpx.Client) -> None:
    text = "name: deep\nnodes:\n  - id: a\n    type: reshape\n    config:\n      output: "
    for name, line, body in [
        ("flow", 6, text + "[" * DEEP + "]" * DEEP + "\n"),
        ("block", 7, text + "\n" + "        " + "- " * DEEP + "x\n"),
    ]:
        started = time.monotonic()
        response = http.post(
            "/v1/workflows/upload", files={"file": (f"{name}.yaml", body, "application/yaml")}
        )
        elapsed = time.monotonic() - started
        error = refused(response, 422, "body.file", "nested deeper than 64 levels")
        assert f"{name}.yaml:{line}:" in error["message"]
        assert elapsed < 0.5, f"{name}: {elapsed:.3f} s"


@pytest.mark.parametrize(
    ("literal", "words"),
    [("NaN", "NaN is not a JSON number"), ("1e999", "Infinity is not a JSON number")],
)
def test_non_finite_numbers_in_a_config_are_refused_at_their_path(
    http: httpx.Client, literal: str, words: str
) -> None:
    body = (
        '{"name": "numbers", "nodes": [{"id": "a", "type": "reshape", '
        f'"config": {{"output": {{"ratio": {literal}}}}}}}]}}'
    )
    response = post_raw(http, "/v1/workflows", body)
    error = refused(response, 422, "body.nodes[0].config.output.ratio", words)
    assert error["details"][0]["field"] == "body.nodes[0].config.output.ratio"
    assert http.get("/v1/workflows").json()["data"] == []


def test_a_definition_over_the_size_limit_is_413(http: httpx.Client) -> None:
    definition = {**ECHO, "description": "x" * (1024 * 1024)}
    refused(http.post("/v1/workflows", json=definition), 413, "body", "MAX_DEFINITION_BYTES")
    upload = http.post(
        "/v1/workflows/upload",
        files={"file": ("big.json", json.dumps(definition), "application/json")},
    )
    refused(upload, 413, "body.file", "STEPLINE_MAX_DEFINITION_BYTES")


def test_nul_and_lone_surrogates_are_refused_anywhere_in_a_body(http: httpx.Client) -> None:
    refused(
        post_raw(http, "/v1/workflows", '{"name": "a\\u0000b", "nodes": []}'),
        422,
        "body.name",
        "NUL",
    )
    refused(
        post_raw(http, "/v1/workflows", '{"name": "a\\ud800b", "nodes": []}'),
        422,
        "body.name",
        "not valid Unicode",
    )


def test_a_review_output_too_deep_is_refused(http: httpx.Client) -> None:
    workflow_id = create_workflow(http, hil_workflow("deep-review"))
    run = http.post(runs_url(workflow_id), json={"inputs": {"name": "Ada"}}).json()
    assert settled(http, workflow_id, run["id"])["status"] == "waiting_for_human"
    response = http.post(
        review_url(workflow_id, run["id"], "check"),
        json={"approved": True, "output": nested(65)},
    )
    refused(response, 422, "body.output", "nested deeper than 64 levels")
    still = http.get(run_url(workflow_id, run["id"])).json()
    assert still["status"] == "waiting_for_human"


# --- exact numbers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("which", "expected"), [(0, BIG), (1, {"huge": HUGE})], ids=["2**64+1", "4000-digits"]
)
def test_integers_come_back_exactly_from_every_read(
    http: httpx.Client, which: int, expected: Any
) -> None:
    definition = {
        "name": "exact",
        "nodes": [
            node(
                "make",
                "code",
                {
                    "inputs": {"which": "{{ inputs.which }}"},
                    "code": RETURNS.format(big=BIG, huge=HUGE),
                },
            ),
            node("end", "end", {"output": "{{ nodes.make.output }}"}),
        ],
        "edges": [edge("make", "end")],
    }
    workflow_id = create_workflow(http, definition)
    done = http.post(
        runs_url(workflow_id), params={"wait": "true"}, json={"inputs": {"which": which}}
    )
    assert done.status_code == 200, done.text
    run = done.json()
    assert run["status"] == "completed", run
    digits = str(BIG if which == 0 else HUGE)
    reads = {
        "run": http.get(run_url(workflow_id, run["id"])),
        "data": http.get(f"{run_url(workflow_id, run['id'])}/data"),
        "steps": http.get(f"{run_url(workflow_id, run['id'])}/steps"),
        "step": http.get(f"{run_url(workflow_id, run['id'])}/steps/make"),
        "download": http.get(f"{run_url(workflow_id, run['id'])}/download"),
    }
    for name, response in reads.items():
        assert response.status_code == 200, (name, response.text)
        assert digits in response.text, name  # the digits themselves, not a float's
    assert reads["run"].json()["output"] == expected
    assert reads["data"].json()["output"] == expected
    assert reads["step"].json()["outputs"] == expected
