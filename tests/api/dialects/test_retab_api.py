"""The Retab dialect over HTTP, on a real `stepline serve` whose language model is the
loopback OpenAI stand-in: seed 004's example run (an invoice PDF -> extract -> split) read
back at seed 004's path and compared with its example key by key, today's step and run
checked by strict models of today's SDK, Retab's three ways of sending a key, its errors,
cursor paging and a run that waits for a review while another step still runs."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import jsonschema
import pytest
from pydantic import BaseModel, ConfigDict, Field

from support.openai_server import Answer, StandIn, openai_stand_in
from support.server import ServeProcess, start_server
from support.server import make_key as mint_key
from support.shapes import assert_same_shape

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
INVOICE = ROOT / "examples" / "invoice.pdf"
EXAMPLE_STEPS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "examples" / "retab_steps.json").read_text()
)
FIELDS = {
    "invoice_number": "INV-2024-001",
    "invoice_date": "2024-03-01",
    "customer": "Globex Ltd",
    "total_amount": 1234.56,
    "currency": "EUR",
}
# Seed 004 documents these step fields besides the ones its example shows (null ones are
# left out, as in its example).
SEED_OPTIONAL = {
    "error",
    "error_stage",
    "error_category",
    "error_details",
    "model",
    "cost",
    "tokens",
    "trace_spans",
    "output",
    "input_document",
    "output_document",
    "split_documents",
    "requires_human_review",
    "human_reviewed_at",
    "human_review_approved",
    "retry_count",
    "loop_id",
    "iteration",
    "iteration_context",
}
SEED_NODE_TYPES = {
    "start", "start_json", "end", "note", "parse", "edit", "extract", "split", "classifier",
    "conditional", "hil", "api_call", "functions", "reshape", "while_loop", "for_each",
    "merge_pdf", "merge_dicts", "while_loop_sentinel_start", "while_loop_sentinel_end",
    "for_each_sentinel_start", "for_each_sentinel_end",
}  # fmt: skip
SEED_STATUSES = {
    "pending", "queued", "running", "completed", "skipped", "error", "waiting_for_human",
    "cancelled",
}  # fmt: skip

SLOW_CODE = """
import time

def main(inputs):
    time.sleep(60)
    return "never"
"""


# --- today's SDK, strictly: every key present, no other, enums closed ---------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FileRef(_Strict):
    id: str
    filename: str
    mime_type: str


class Handle(_Strict):
    type: Literal["file", "json"]
    document: FileRef | None
    data: Any


class LoopContainer(_Strict):
    container_id: str
    iteration: int = Field(ge=0)
    is_parallel: bool
    parallel_item_index: int | None = None


class ErrorDetails(_Strict):
    message: str | None
    stack_trace: str | None
    block_id: str | None
    block_name: str | None
    error_code: str | None
    context: dict[str, Any] | None


class Plain(_Strict):
    status: Literal["pending", "queued", "running", "completed"]


class AwaitingReview(_Strict):
    status: Literal["awaiting_review"]


class Failed(_Strict):
    status: Literal["error"]
    message: str
    stage: (
        Literal[
            "input_collection",
            "registry_lookup",
            "document_fetch",
            "execution",
            "output_storage",
            "routing",
            "history_payload",
        ]
        | None
    )
    category: Literal["transient", "permanent", "quota"] | None
    details: ErrorDetails | None


class Ended(_Strict):
    status: Literal["skipped", "cancelled"]
    reason: str


class Artifact(_Strict):
    operation: str
    id: str


class TodayStep(_Strict):
    block_id: str
    step_id: str
    block_type: Literal[
        "start_document", "start_json", "note", "parse", "edit", "extract", "split",
        "classifier", "conditional", "api_call", "function", "while_loop", "for_each",
        "merge_dicts", "while_loop_sentinel_start", "while_loop_sentinel_end",
        "for_each_sentinel_start", "for_each_sentinel_end",
    ]  # fmt: skip
    block_label: str
    run_id: str
    started_at: str | None
    completed_at: str | None
    created_at: str | None
    model: str | None
    retry_count: int
    handle_inputs: dict[str, Handle]
    handle_outputs: dict[str, Handle]
    loop_containers: list[LoopContainer]
    artifact: Artifact | None
    lifecycle: Plain | AwaitingReview | Failed | Ended = Field(discriminator="status")


class StepPage(_Strict):
    data: list[TodayStep]
    list_metadata: dict[Literal["before", "after"], str | None]


class Trigger(_Strict):
    type: Literal["manual", "api", "schedule", "webhook", "email", "custom", "restart"]


class PendingRun(_Strict):
    status: Literal["pending", "running", "completed"]


class AwaitingReviewRun(_Strict):
    status: Literal["awaiting_review"]
    waiting_for_block_ids: list[str]


class ErrorRun(_Strict):
    status: Literal["error"]
    message: str
    stage: str | None = None
    category: Literal["transient", "permanent", "quota"] | None = None
    details: ErrorDetails | None = None
    failing_step_id: str | None = None


class CancelledRun(_Strict):
    status: Literal["cancelled"]
    reason: str | None


class Timing(_Strict):
    created_at: str
    started_at: str | None
    completed_at: str | None


class RunInputs(_Strict):
    documents: dict[str, FileRef]
    json_data: dict[str, Any]


class TodayRun(BaseModel):
    """Today's run; the seed-era keys beside it are checked by `check_seed_run`."""

    model_config = ConfigDict(extra="ignore", strict=True)
    id: str
    workflow_id: str
    workflow_version_id: str
    trigger: Trigger
    lifecycle: PendingRun | AwaitingReviewRun | ErrorRun | CancelledRun = Field(
        discriminator="status"
    )
    timing: Timing
    inputs: RunInputs
    metadata: dict[str, Any]


SEED_RUN_KEYS = {
    "id", "workflow_id", "workflow_name", "organization_id", "status", "started_at",
    "completed_at", "duration_ms", "steps", "final_outputs", "error", "created_at",
    "updated_at", "waiting_for_node_ids",
}  # fmt: skip
TODAY_RUN_KEYS = {
    "id", "workflow_id", "workflow_version_id", "trigger", "lifecycle", "timing", "inputs",
    "metadata",
}  # fmt: skip


def check_run(run: dict[str, Any]) -> TodayRun:
    """Both generations' fields, and nothing else."""
    assert set(run) == SEED_RUN_KEYS | TODAY_RUN_KEYS
    assert run["status"] in {
        "pending", "running", "completed", "error", "waiting_for_human", "cancelled",
    }  # fmt: skip
    for step in run["steps"]:
        assert step["status"] in SEED_STATUSES and step["node_type"] in SEED_NODE_TYPES
    return TodayRun.model_validate(run)


def check_seed_step(step: dict[str, Any]) -> None:
    assert {"node_id", "node_type", "node_label", "status"} <= set(step)
    assert step["node_type"] in SEED_NODE_TYPES and step["status"] in SEED_STATUSES


# --- the server ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def provider() -> Iterator[StandIn]:
    with openai_stand_in() as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: StandIn) -> Iterator[ServeProcess]:
    home = tmp_path_factory.mktemp("retab") / "home"
    home.mkdir()
    (home / "stepline.toml").write_text(
        f"""
[providers.local]
base_url = "{provider.base_url}"
default_model = "stand-in-small"

[providers.local.prices."stand-in-small"]
prompt = 0.15
completion = 0.6
"""
    )
    process = start_server(home)
    try:
        yield process
    finally:
        process.stop()


def key_of(server: ServeProcess, organization: str, scopes: tuple[str, ...] = ("admin",)) -> str:
    return mint_key(server.database_url, organization, scopes)


def client(server: ServeProcess, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def key(server: ServeProcess) -> str:
    return key_of(server, "retab-main")


@pytest.fixture(scope="module")
def http(server: ServeProcess, key: str) -> Iterator[httpx.Client]:
    with client(server, {"Api-Key": key}) as opened:
        yield opened


@pytest.fixture(scope="module")
def openapi(http: httpx.Client) -> dict[str, Any]:
    document: dict[str, Any] = http.get("/openapi.json").json()
    return document


def assert_documented(openapi: dict[str, Any], method: str, path: str, answer: Any) -> None:
    """The answer matches the 200 schema the OpenAPI document gives the operation."""
    operation = openapi["paths"][path][method]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft202012Validator({**schema, "components": openapi["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(answer)]
    assert not errors, f"{method} {path}: " + "; ".join(errors[:5])


def wait_for(http: httpx.Client, run_id: str, test: Callable[[Any], bool]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        response = http.get(f"/retab/v1/workflows/runs/{run_id}")
        assert response.status_code == 200, response.text
        run: dict[str, Any] = response.json()
        if test(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
        time.sleep(0.05)


def create_workflow(http: httpx.Client, definition: dict[str, Any]) -> str:
    response = http.post("/v1/workflows", json=definition)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id


INVOICE_WORKFLOW: dict[str, Any] = {
    "name": "retab-invoice",
    "inputs": {
        "type": "object",
        "properties": {"invoice": {"type": "object"}, "note": {"type": "string"}},
        "required": ["invoice"],
    },
    "nodes": [
        {
            "id": "extract-node-1",
            "type": "extract",
            "label": "Extract Invoice",
            "config": {
                "provider": "local",
                "document": "{{ inputs.invoice }}",
                "schema": {
                    "type": "object",
                    "properties": {
                        "invoice_number": {"type": "string"},
                        "invoice_date": {"type": "string"},
                        "customer": {"type": "string"},
                        "total_amount": {"type": "number"},
                        "currency": {"type": "string"},
                    },
                    "required": ["invoice_number", "total_amount"],
                },
            },
        },
        {
            "id": "split-node-1",
            "type": "split",
            "label": "Split Documents",
            "config": {
                "document": "{{ inputs.invoice }}",
                "subdocuments": [
                    {"name": "Invoice", "pages": "1-2"},
                    {"name": "Terms", "pages": "3"},
                ],
            },
        },
    ],
    "edges": [{"from": "extract-node-1", "to": "split-node-1"}],
}


@pytest.fixture(scope="module")
def invoice_run(http: httpx.Client, provider: StandIn) -> dict[str, Any]:
    """Seed 004's example run: the invoice uploaded as a stepline file, run through Retab's
    start with the file as a document, read back once completed."""
    uploaded = http.post(
        "/v1/files", files={"file": ("invoice.pdf", INVOICE.read_bytes(), "application/pdf")}
    )
    assert uploaded.status_code == 201, uploaded.text
    file_id = uploaded.json()["id"]
    workflow_id = create_workflow(http, INVOICE_WORKFLOW)
    provider.script(Answer(json_content=FIELDS))
    started = http.post(
        f"/retab/v1/workflows/{workflow_id}/run",
        json={"json_inputs": {"note": "March"}, "documents": {"invoice": file_id}},
    )
    assert started.status_code == 200, started.text
    run = started.json()
    assert run["status"] == "running" and run["workflow_name"] == "retab-invoice"
    check_run(run)
    done = wait_for(http, run["id"], lambda r: r["status"] not in {"running", "pending"})
    assert done["status"] == "completed", done
    return {"run": done, "file_id": file_id, "workflow_id": workflow_id}


# --- seed 004's example ------------------------------------------------------------------------


def test_seed_004s_steps_have_its_examples_shape(
    http: httpx.Client, invoice_run: dict[str, Any], openapi: dict[str, Any]
) -> None:
    run_id = invoice_run["run"]["id"]
    response = http.get(f"/retab/v1/workflows/runs/{run_id}/steps")
    assert response.status_code == 200, response.text
    steps = response.json()
    assert_documented(openapi, "get", "/retab/v1/workflows/runs/{run_id}/steps", steps)
    assert [s["node_id"] for s in steps] == ["extract-node-1", "split-node-1"]
    for step, example in zip(steps, EXAMPLE_STEPS, strict=True):
        check_seed_step(step)
        # Every key of the example, with its type and nesting; the others are seed 004's
        # documented fields that this run fills (model, tokens, cost, documents...).
        assert set(example) <= set(step), set(example) - set(step)
        assert set(step) - set(example) <= SEED_OPTIONAL, set(step) - set(example)
        shown = {k: v for k, v in step.items() if k in example}
        assert_same_shape(
            shown,
            example,
            open_keys=frozenset({"$.output", "$.handle_outputs", "$.handle_outputs.output-json-0"}),
        )
    extract, split = steps
    pdf = {
        "file_id": invoice_run["file_id"],
        "filename": "invoice.pdf",
        "mime_type": "application/pdf",
    }
    assert extract["output"] == FIELDS
    assert extract["handle_outputs"] == {"output-json-0": {"type": "json", "data": FIELDS}}
    assert extract["handle_inputs"] == {"input-file-0": {"type": "file", "document": pdf}}
    assert extract["node_type"] == "extract" and extract["node_label"] == "Extract Invoice"
    assert extract["model"] == "stand-in-small" and extract["tokens"]["total"] > 0
    assert split["node_type"] == "split"
    assert set(split["handle_outputs"]) == {"output-file-Invoice", "output-file-Terms"}
    assert_same_shape(
        split["handle_outputs"]["output-file-Invoice"],
        EXAMPLE_STEPS[1]["handle_outputs"]["output-file-Invoice"],
    )
    for step in steps:
        assert step["run_id"] == run_id and step["status"] == "completed"
        assert step["started_at"].endswith("Z") and step["duration_ms"] >= 0


def test_the_run_holds_seed_004s_fields_and_todays(
    http: httpx.Client, invoice_run: dict[str, Any], openapi: dict[str, Any]
) -> None:
    run = invoice_run["run"]
    assert_documented(openapi, "get", "/retab/v1/workflows/runs/{run_id}", run)
    today = check_run(run)
    assert today.lifecycle.status == "completed"
    assert today.trigger.type == "api"
    assert today.inputs.json_data == {"note": "March"}
    assert today.inputs.documents["invoice"].model_dump() == {
        "id": invoice_run["file_id"],
        "filename": "invoice.pdf",
        "mime_type": "application/pdf",
    }
    assert run["workflow_id"] == invoice_run["workflow_id"]
    assert set(run["final_outputs"]["documents"]) == {"Invoice", "Terms"}
    assert [s["node_id"] for s in run["steps"]] == ["extract-node-1", "split-node-1"]
    assert run["waiting_for_node_ids"] == [] and run["error"] is None
    assert run["timing"]["completed_at"] == run["completed_at"]
    assert run["duration_ms"] >= 0


def test_todays_steps_pass_the_strict_sdk_model(
    http: httpx.Client, invoice_run: dict[str, Any], openapi: dict[str, Any]
) -> None:
    run_id = invoice_run["run"]["id"]
    response = http.get("/retab/v1/workflows/steps", params={"run_id": run_id, "limit": 100})
    assert response.status_code == 200, response.text
    assert_documented(openapi, "get", "/retab/v1/workflows/steps", response.json())
    page = StepPage.model_validate(response.json())
    assert page.list_metadata == {"before": None, "after": None}
    extract, split = page.data
    assert (extract.block_id, extract.block_type, extract.block_label) == (
        "extract-node-1",
        "extract",
        "Extract Invoice",
    )
    assert extract.lifecycle.status == "completed" and extract.model == "stand-in-small"
    document = extract.handle_inputs["input-file-0"].document
    assert document is not None and document.id == invoice_run["file_id"]
    assert extract.handle_outputs["output-json-0"].data == FIELDS
    assert set(split.handle_outputs) == {"output-file-Invoice", "output-file-Terms"}
    one = http.get(f"/retab/v1/workflows/steps/{split.step_id}", params={"run_id": run_id})
    assert one.status_code == 200, one.text
    assert_documented(openapi, "get", "/retab/v1/workflows/steps/{step_id}", one.json())
    assert TodayStep.model_validate(one.json()) == split


def test_a_step_is_found_by_its_record_id_alone(
    http: httpx.Client, invoice_run: dict[str, Any], server: ServeProcess
) -> None:
    run = invoice_run["run"]
    native = http.get(f"/v1/workflows/{run['workflow_id']}/runs/{run['id']}/steps")
    record_id = native.json()["data"][0]["id"]
    found = http.get(f"/retab/v1/workflows/steps/{record_id}")
    assert found.status_code == 200, found.text
    assert found.json()["block_id"] == "extract-node-1"
    with client(server, {"Api-Key": key_of(server, "retab-stranger")}) as stranger:
        hidden = stranger.get(f"/retab/v1/workflows/steps/{record_id}")
    assert hidden.status_code == 404 and hidden.json() == {"detail": f"step {record_id} not found"}


# --- keys --------------------------------------------------------------------------------------


def test_each_of_retabs_key_forms_is_accepted(
    server: ServeProcess, key: str, invoice_run: dict[str, Any]
) -> None:
    path = f"/retab/v1/workflows/runs/{invoice_run['run']['id']}/steps"
    for headers, params in (
        ({"Api-Key": key}, {}),
        ({}, {"access_token": key}),
        ({"Authorization": f"Bearer {key}"}, {}),
    ):
        with client(server, headers) as http:
            response = http.get(path, params=params)
        assert response.status_code == 200, (headers, params, response.text)
        assert len(response.json()) == 2


def test_a_bad_or_missing_key_is_401_in_retabs_envelope(
    server: ServeProcess, invoice_run: dict[str, Any]
) -> None:
    path = f"/retab/v1/workflows/runs/{invoice_run['run']['id']}"
    with client(server, {"Api-Key": "stp_not-a-key"}) as http:
        refused = http.get(path)
    assert refused.status_code == 401
    assert refused.json() == {"detail": "the API key is not valid (unknown, revoked or expired)"}
    with client(server, {}) as http:
        missing = http.get(path)
    assert missing.status_code == 401 and set(missing.json()) == {"detail"}


# --- not found, malformed ----------------------------------------------------------------------


def test_unknown_and_other_organizations_runs_are_404(
    server: ServeProcess, http: httpx.Client, invoice_run: dict[str, Any]
) -> None:
    run_id = invoice_run["run"]["id"]
    unknown = "00000000-0000-4000-8000-000000000000"
    for path in (
        f"/retab/v1/workflows/runs/{unknown}",
        f"/retab/v1/workflows/runs/{unknown}/steps",
    ):
        response = http.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": f"run {unknown} not found"}
    listed = http.get("/retab/v1/workflows/steps", params={"run_id": unknown})
    assert listed.status_code == 404 and listed.json() == {"detail": f"run {unknown} not found"}
    with client(server, {"Api-Key": key_of(server, "retab-other")}) as other:
        for path, params in (
            (f"/retab/v1/workflows/runs/{run_id}", {}),
            (f"/retab/v1/workflows/runs/{run_id}/steps", {}),
            ("/retab/v1/workflows/steps", {"run_id": run_id}),
            ("/retab/v1/workflows/steps/extract-node-1", {"run_id": run_id}),
        ):
            response = other.get(path, params=params)
            assert response.status_code == 404, path
            assert response.json() == {"detail": f"run {run_id} not found"}
        refused = other.post(f"/retab/v1/workflows/runs/{run_id}/cancel")
        assert refused.status_code == 404
        assert refused.json() == {"detail": f"run {run_id} not found"}
        started = other.post(
            f"/retab/v1/workflows/{invoice_run['workflow_id']}/run", json={"json_inputs": {}}
        )
    assert started.status_code == 404
    assert started.json() == {"detail": f"workflow {invoice_run['workflow_id']} not found"}
    no_route = http.get("/retab/v1/nothing-here")
    assert no_route.status_code == 404 and set(no_route.json()) == {"detail"}


def test_malformed_ids_and_parameters_are_422_naming_them(
    http: httpx.Client, invoice_run: dict[str, Any]
) -> None:
    run_id = invoice_run["run"]["id"]
    cases: list[tuple[str, str, dict[str, Any], list[str | int]]] = [
        ("GET", "/retab/v1/workflows/runs/not-a-uuid", {}, ["path", "run_id"]),
        ("GET", "/retab/v1/workflows/runs/12345/steps", {}, ["path", "run_id"]),
        ("GET", "/retab/v1/workflows/steps", {}, ["query", "run_id"]),
        ("GET", "/retab/v1/workflows/steps", {"run_id": "x"}, ["query", "run_id"]),
        ("GET", "/retab/v1/workflows/steps/extract-node-1", {}, ["query", "run_id"]),
        ("GET", "/retab/v1/workflows/steps", {"run_id": run_id, "limit": 0}, ["query", "limit"]),
        (
            "GET",
            "/retab/v1/workflows/steps",
            {"run_id": run_id, "limit": 10**30},
            ["query", "limit"],
        ),
        ("POST", "/retab/v1/workflows/nope/run", {}, ["path", "workflow_id"]),
    ]
    for method, path, params, loc in cases:
        response = http.request(method, path, params=params, json={})
        assert response.status_code == 422, (path, params, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, list) and detail[0]["loc"] == loc, (path, detail)
        assert detail[0]["msg"]


def test_a_document_that_is_not_the_callers_file_is_refused_where_it_is_named(
    http: httpx.Client, invoice_run: dict[str, Any]
) -> None:
    workflow_id = invoice_run["workflow_id"]
    missing = "00000000-0000-4000-8000-000000000001"
    for document, message in (
        (missing, f"file {missing} not found"),
        ("not-an-id", "not a file id: 'not-an-id'"),
        ([1], 'expected a file id, {"file_id": ...}, a file handle or {"filename", "url"}'),
    ):
        response = http.post(
            f"/retab/v1/workflows/{workflow_id}/run", json={"documents": {"invoice": document}}
        )
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == [
            {"loc": ["body", "documents", "invoice"], "msg": message, "type": "validation_error"}
        ]
    bad_inputs = http.post(
        f"/retab/v1/workflows/{workflow_id}/run", json={"json_inputs": {"note": 3}}
    )
    assert bad_inputs.status_code == 422
    assert bad_inputs.json()["detail"][0]["loc"][:2] == ["body", "json_inputs"]


def test_todays_start_takes_a_data_url_document_as_retabs_sdk_sends_one(
    http: httpx.Client, provider: StandIn, invoice_run: dict[str, Any]
) -> None:
    encoded = base64.b64encode(INVOICE.read_bytes()).decode()
    provider.script(Answer(json_content=FIELDS))
    response = http.post(
        "/retab/v1/workflows/runs",
        json={
            "workflow_id": invoice_run["workflow_id"],
            "version": "production",
            "json_inputs": {},
            "documents": {
                "invoice": {
                    "filename": "march.pdf",
                    "url": f"data:application/pdf;base64,{encoded}",
                }
            },
        },
    )
    assert response.status_code == 200, response.text
    run = check_run(response.json())
    stored = run.inputs.documents["invoice"]
    assert stored.filename == "march.pdf" and stored.id != invoice_run["file_id"]
    done = wait_for(http, run.id, lambda r: r["lifecycle"]["status"] in {"completed", "error"})
    assert done["lifecycle"] == {"status": "completed"}


def test_todays_start_pins_a_version_by_number_or_by_its_id(
    http: httpx.Client, provider: StandIn, invoice_run: dict[str, Any]
) -> None:
    workflow_id = invoice_run["workflow_id"]
    documents = {"invoice": {"file_id": invoice_run["file_id"]}}
    version_id = invoice_run["run"]["workflow_version_id"]
    for version in (1, "1", version_id, "latest"):
        provider.script(Answer(json_content=FIELDS))
        response = http.post(
            "/retab/v1/workflows/runs",
            json={"workflow_id": workflow_id, "version": version, "documents": documents},
        )
        assert response.status_code == 200, (version, response.text)
        assert response.json()["workflow_version_id"] == version_id
        wait_for(http, response.json()["id"], lambda r: r["completed_at"] is not None)
    for version in ("ver_unknown", 0, "²", 10**30):
        refused = http.post(
            "/retab/v1/workflows/runs", json={"workflow_id": workflow_id, "version": version}
        )
        assert refused.status_code == 422, (version, refused.text)
        assert refused.json()["detail"][0]["loc"] == ["body", "version"]
    missing = http.post("/retab/v1/workflows/runs", json={"workflow_id": workflow_id, "version": 9})
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"version 9 of workflow {workflow_id} not found"}


# --- paging ------------------------------------------------------------------------------------


def test_steps_page_by_cursor_both_ways(http: httpx.Client, invoice_run: dict[str, Any]) -> None:
    run_id = invoice_run["run"]["id"]
    url = "/retab/v1/workflows/steps"
    first = http.get(url, params={"run_id": run_id, "limit": 1}).json()
    assert [s["block_id"] for s in first["data"]] == ["extract-node-1"]
    assert first["list_metadata"]["before"] is None and first["list_metadata"]["after"]
    second = http.get(
        url, params={"run_id": run_id, "limit": 1, "after": first["list_metadata"]["after"]}
    ).json()
    assert [s["block_id"] for s in second["data"]] == ["split-node-1"]
    assert second["list_metadata"]["after"] is None and second["list_metadata"]["before"]
    back = http.get(
        url, params={"run_id": run_id, "limit": 1, "before": second["list_metadata"]["before"]}
    ).json()
    assert back["data"] == first["data"]
    for params in (
        {"after": "not-a-cursor"},
        {"before": "bm90LWEtY3Vyc29y"},
        {"after": first["list_metadata"]["after"], "before": second["list_metadata"]["before"]},
    ):
        refused = http.get(url, params={"run_id": run_id, **params})
        assert refused.status_code == 422, params
        (detail,) = refused.json()["detail"]
        assert detail["loc"][0] == "query" and detail["loc"][1] in {"after", "before"}


# --- a run still going ---------------------------------------------------------------------------


def test_a_run_waiting_for_a_review_reads_back_with_its_running_and_pending_steps(
    http: httpx.Client,
) -> None:
    """review (hil) waits for a person while slow (a code step) still runs; after waits."""
    workflow_id = create_workflow(
        http,
        {
            "name": "retab-review",
            "nodes": [
                {"id": "first", "type": "reshape", "config": {"output": {"a": 1}}},
                {
                    "id": "review",
                    "type": "hil",
                    "label": "Check it",
                    "config": {"payload": "{{ nodes.first.output }}"},
                },
                {"id": "after", "type": "reshape", "config": {"output": 2}},
                {
                    "id": "slow",
                    "type": "code",
                    "timeout_s": 120,
                    "config": {"inputs": {}, "code": SLOW_CODE},
                },
            ],
            "edges": [{"from": "first", "to": "review"}, {"from": "review", "to": "after"}],
        },
    )
    started = http.post(f"/retab/v1/workflows/{workflow_id}/run", json={})
    assert started.status_code == 200, started.text
    run_id = started.json()["id"]
    try:
        run = wait_for(
            http,
            run_id,
            lambda r: (
                {s["node_id"]: s["status"] for s in r["steps"]}
                == {
                    "first": "completed",
                    "review": "waiting_for_human",
                    "after": "pending",
                    "slow": "running",
                }
            ),
        )
        assert run["status"] == "running" and run["lifecycle"]["status"] == "running"
        assert run["waiting_for_node_ids"] == ["review"]
        assert run["completed_at"] is None and run["final_outputs"] is None
        check_run(run)

        seed_steps = http.get(f"/retab/v1/workflows/runs/{run_id}/steps").json()
        by_node = {s["node_id"]: s for s in seed_steps}
        for step in seed_steps:
            check_seed_step(step)
        assert by_node["review"]["node_type"] == "hil"
        assert by_node["review"]["requires_human_review"] is True
        assert by_node["slow"]["node_type"] == "functions"
        assert "completed_at" not in by_node["slow"] and by_node["slow"]["started_at"]
        assert "started_at" not in by_node["after"]

        page = StepPage.model_validate(
            http.get("/retab/v1/workflows/steps", params={"run_id": run_id}).json()
        )
        lifecycles = {s.block_id: s.lifecycle.status for s in page.data}
        assert lifecycles == {
            "first": "completed",
            "review": "awaiting_review",
            "after": "pending",
            "slow": "running",
        }
        blocks = {s.block_id: s.block_type for s in page.data}
        assert blocks == {"first": "function", "review": "function", "after": "function",
                          "slow": "function"}  # fmt: skip
    finally:
        stopping = http.post(
            f"/retab/v1/workflows/runs/{run_id}/cancel", json={"command_id": "stop-1"}
        )
    assert stopping.status_code == 200, stopping.text
    assert stopping.json()["cancellation_status"] in {"cancelled", "cancellation_requested"}
    check_run(stopping.json()["run"])
    cancelled = wait_for(http, run_id, lambda r: r["status"] == "cancelled")
    again = http.post(f"/retab/v1/workflows/runs/{run_id}/cancel")
    assert again.status_code == 200
    assert again.json()["cancellation_status"] == "cancelled"
    assert again.json()["run"]["lifecycle"]["status"] == "cancelled"
    assert cancelled["lifecycle"]["status"] == "cancelled"
    page = StepPage.model_validate(
        http.get("/retab/v1/workflows/steps", params={"run_id": run_id}).json()
    )
    ended = {s.block_id: s.lifecycle for s in page.data}
    assert ended["after"].status in {"cancelled", "skipped"}
    assert isinstance(ended["after"], Ended) and ended["after"].reason


def test_hostile_bodies_get_retabs_envelope_not_a_500(
    http: httpx.Client, invoice_run: dict[str, Any]
) -> None:
    path = f"/retab/v1/workflows/{invoice_run['workflow_id']}/run"
    headers = {"Content-Type": "application/json"}
    for content in (b'{"json_inputs": "\xff\xfe"}', b"[1, 2]", b"{", b'{"documents": []}'):
        response = http.post(path, content=content, headers=headers)
        assert response.status_code in (400, 422), (content, response.text)
        assert set(response.json()) == {"detail"}, response.text
    bad_url = http.post(
        path, json={"documents": {"invoice": {"filename": "a.pdf", "url": "data:x;base64,@@"}}}
    )
    assert bad_url.status_code == 422
    assert bad_url.json()["detail"][0]["loc"] == ["body", "documents", "invoice", "url"]
    remote = http.post(
        path, json={"documents": {"invoice": {"filename": "a.pdf", "url": "https://x/a.pdf"}}}
    )
    assert remote.status_code == 422
    assert "data: URLs" in remote.json()["detail"][0]["msg"]
    twice = http.post(
        path,
        json={"json_inputs": {"invoice": {}}, "documents": {"invoice": invoice_run["file_id"]}},
    )
    assert twice.status_code == 422
    assert twice.json()["detail"][0]["msg"] == "'invoice' is given in json_inputs too"


def test_loops_skips_and_errors_read_back_in_both_generations(
    http: httpx.Client, openapi: dict[str, Any]
) -> None:
    workflow_id = create_workflow(
        http,
        {
            "name": "retab-loops",
            "nodes": [
                {
                    "id": "loop",
                    "type": "for_each",
                    "config": {"items": [1, 2]},
                    "body": {
                        "nodes": [
                            {
                                "id": "double",
                                "type": "reshape",
                                "config": {"output": "{{ loop.item * 2 }}"},
                            }
                        ]
                    },
                },
                {
                    "id": "route",
                    "type": "conditional",
                    "config": {"branches": [{"name": "never", "when": "false"}]},
                },
                {"id": "unlikely", "type": "reshape", "config": {"output": 1}},
                {
                    "id": "fail",
                    "type": "code",
                    "config": {
                        "inputs": {},
                        "code": "def main(inputs):\n    raise ValueError('no refunds today')\n",
                    },
                },
            ],
            "edges": [
                {"from": "loop", "to": "route"},
                {"from": "route", "handle": "never", "to": "unlikely"},
                {"from": "route", "handle": "else", "to": "fail"},
            ],
        },
    )
    started = http.post("/retab/v1/workflows/runs", json={"workflow_id": workflow_id})
    assert started.status_code == 200, started.text
    run = wait_for(http, started.json()["id"], lambda r: r["status"] == "error")
    assert run["lifecycle"]["status"] == "error" and run["lifecycle"]["message"] == run["error"]
    check_run(run)
    assert_documented(openapi, "get", "/retab/v1/workflows/runs/{run_id}", run)

    listed = http.get(f"/retab/v1/workflows/runs/{run['id']}/steps").json()
    assert_documented(openapi, "get", "/retab/v1/workflows/runs/{run_id}/steps", listed)
    seed = {s["step_id"]: s for s in listed}
    assert list(seed) == [
        "loop",
        "loop_iter_0_double",
        "loop_iter_1_double",
        "route",
        "unlikely",
        "fail",
    ]
    for step in seed.values():
        check_seed_step(step)
    second = seed["loop_iter_1_double"]
    assert (second["node_id"], second["loop_id"], second["iteration"]) == ("double", "loop", 1)
    assert second["iteration_context"] == {
        "containers": [{"container_id": "loop", "iteration": 1, "is_parallel": False}]
    }
    assert second["output"] == {"value": 4}
    assert second["handle_outputs"] == {"output-json-0": {"type": "json", "data": {"value": 4}}}
    assert run["lifecycle"]["failing_step_id"] == "fail"
    assert run["lifecycle"]["stage"] == "execution"
    assert run["lifecycle"]["details"]["block_id"] == "fail"
    assert seed["loop"]["node_type"] == "for_each" and "loop_id" not in seed["loop"]
    assert seed["unlikely"]["status"] == "skipped"
    failed = seed["fail"]
    assert failed["status"] == "error" and "no refunds today" in failed["error"]
    assert failed["error_stage"] == "execution" and failed["error_category"] == "permanent"
    assert failed["error_details"]["block_id"] == "fail"
    assert set(failed["error_details"]) <= {
        "message", "stack_trace", "block_id", "block_name", "error_code", "context",
    }  # fmt: skip

    answer = http.get("/retab/v1/workflows/steps", params={"run_id": run["id"], "limit": 100})
    assert_documented(openapi, "get", "/retab/v1/workflows/steps", answer.json())
    page = StepPage.model_validate(answer.json())
    today = {s.step_id: s for s in page.data}
    assert list(today) == list(seed)
    assert [c.model_dump() for c in today["loop_iter_0_double"].loop_containers] == [
        {"container_id": "loop", "iteration": 0, "is_parallel": False, "parallel_item_index": None}
    ]
    assert today["loop"].block_type == "for_each" and today["route"].block_type == "conditional"
    skipped = today["unlikely"].lifecycle
    assert isinstance(skipped, Ended) and skipped.status == "skipped" and skipped.reason
    error = today["fail"].lifecycle
    assert isinstance(error, Failed) and "no refunds today" in error.message
    assert error.stage == "execution" and error.details is not None
    assert error.details.block_id == "fail"
    # Today's JSON handles hold the value as it is.
    assert today["loop_iter_1_double"].handle_outputs["output-json-0"].data == 4

    # Filters: a block's steps, a status, one step_id; block_type is refused.
    url = "/retab/v1/workflows/steps"
    doubles = http.get(url, params={"run_id": run["id"], "block_id": "double"}).json()
    assert [s["step_id"] for s in doubles["data"]] == ["loop_iter_0_double", "loop_iter_1_double"]
    skipped_only = http.get(url, params={"run_id": run["id"], "status": "skipped"}).json()
    assert [s["step_id"] for s in skipped_only["data"]] == ["unlikely"]
    one = http.get(url, params={"run_id": run["id"], "step_id": "loop_iter_1_double"}).json()
    assert [s["step_id"] for s in one["data"]] == ["loop_iter_1_double"]
    none = http.get(url, params={"run_id": run["id"], "step_id": "nothing"}).json()
    assert none == {"data": [], "list_metadata": {"before": None, "after": None}}
    for params, where in (
        ({"block_type": "function"}, ["query", "block_type"]),
        ({"status": ["error", "skipped"]}, ["query", "status"]),
        ({"status": "sleeping"}, ["query", "status", 0]),
    ):
        refused = http.get(url, params={"run_id": run["id"], **params})
        assert refused.status_code == 422, params
        assert refused.json()["detail"][0]["loc"] == where


def test_a_run_paused_for_a_review_is_waiting_for_human(http: httpx.Client) -> None:
    workflow_id = create_workflow(
        http,
        {
            "name": "retab-paused",
            "nodes": [
                {"id": "review", "type": "hil", "config": {"payload": {"draft": "hi"}}},
                {"id": "after", "type": "reshape", "config": {"output": 2}},
            ],
            "edges": [{"from": "review", "to": "after"}],
        },
    )
    started = http.post(f"/retab/v1/workflows/{workflow_id}/run", json={"json_inputs": {}})
    run = wait_for(http, started.json()["id"], lambda r: r["status"] == "waiting_for_human")
    assert run["lifecycle"] == {"status": "awaiting_review", "waiting_for_block_ids": ["review"]}
    assert run["waiting_for_node_ids"] == ["review"]
    assert [s["status"] for s in run["steps"]] == ["waiting_for_human", "pending"]
    check_run(run)


def test_hostile_parameters_are_refused_not_a_500(
    http: httpx.Client, invoice_run: dict[str, Any]
) -> None:
    run_id = invoice_run["run"]["id"]
    for path, params in (
        ("/retab/v1/workflows/steps/a%00b", {"run_id": run_id}),
        ("/retab/v1/workflows/steps/%F0%9F%98%80" + "x" * 5000, {"run_id": run_id}),
        ("/retab/v1/workflows/steps", {"run_id": run_id, "after": "a\x00b"}),
        ("/retab/v1/workflows/steps", {"run_id": run_id, "limit": -1}),
        ("/retab/v1/workflows/steps", {"run_id": "\x00"}),
        (f"/retab/v1/workflows/runs/{run_id}%00", {}),
    ):
        response = http.get(path, params=params)
        assert response.status_code in (404, 422), (path, params, response.text)
        assert set(response.json()) == {"detail"}
