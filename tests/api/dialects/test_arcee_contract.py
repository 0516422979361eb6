"""Seed 000 as a contract: its workflow (a prompt, a model node, a Slack integration; see
examples/joke-to-slack.yaml) executed through /arcee on a real `stepline serve` against
the loopback model provider and Slack, and the answers compared key by key with Arcee's
documented examples (examples/arcee_*.json): the steps (seed 000's example verbatim), the
execution history and one run (the execution history page's example), the workflow list
(the list page's example, abridged where the page elides; the fields after `graph` as its
response syntax types them) and the diagram (the diagram page's example, of this very
workflow).

Keys are left open only where the values are the user's workflow's: the model's request
parameters, the Slack action's arguments and answer, the app's settings, the run's inputs
and its nodes' outputs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from support.openai_server import StandIn, openai_stand_in
from support.server import ServeProcess, start_server
from support.shapes import assert_same_shape
from support.slack_api import SlackStandIn, channel_id

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = Path(__file__).resolve().parent / "examples"
TOKEN = "xoxb-arcee-contract"
PROMPT = "Tell me a joke about the weather"


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"arcee_{name}.json").read_text())


@pytest.fixture(scope="module")
def provider() -> Iterator[StandIn]:
    with openai_stand_in() as running:
        yield running


@pytest.fixture(scope="module")
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(token=TOKEN) as running:
        yield running


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, provider: StandIn) -> Iterator[ServeProcess]:
    home = tmp_path_factory.mktemp("arcee") / "home"
    home.mkdir()
    (home / "stepline.toml").write_text(
        (ROOT / "examples" / "stepline.toml")
        .read_text()
        .replace("http://127.0.0.1:8901/v1", provider.base_url)
    )
    process = start_server(home)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="module")
def seed_run(server: ServeProcess, slack: SlackStandIn) -> dict[str, Any]:
    """Seed 000's workflow, executed through /arcee and read back once it completed."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
        assert http.put("/v1/secrets/SLACK_BOT_TOKEN", json={"value": TOKEN}).is_success
        definition = yaml.safe_load((ROOT / "examples" / "joke-to-slack.yaml").read_text())
        created = http.post("/v1/workflows", json=definition)
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        executed = http.post(
            f"/arcee/workflows/{workflow_id}/execute",
            json={"prompt": PROMPT, "slack_api": slack.base_url},
        )
        assert executed.status_code == 200, executed.text
        run_id = executed.json()["run_id"]
        deadline = time.monotonic() + 60
        while True:
            (run,) = http.get(f"/arcee/workflows/{workflow_id}/runs/{run_id}").json()
            if run["status"] not in {"pending", "running"}:
                break
            assert time.monotonic() < deadline, f"run {run_id} stayed {run['status']}"
            time.sleep(0.05)
        assert run["status"] == "completed", run["error"]
        steps = http.get(f"/arcee/workflows/{workflow_id}/runs/{run_id}/steps")
        history = http.get(f"/arcee/workflows/{workflow_id}/runs")
        workflows = http.get("/arcee/workflows")
        diagram = http.get(f"/arcee/workflows/{workflow_id}/diagram")
        unknown = http.get(f"/arcee/workflows/{workflow_id}/runs/{workflow_id}")
        malformed = http.get(f"/arcee/workflows/{workflow_id}/runs?limit=-1")
        document = http.get("/openapi.json").json()
    for response in (steps, history, workflows, diagram):
        assert response.status_code == 200, response.text
    return {
        "workflow_id": workflow_id,
        "run": run,
        "steps": steps.json(),
        "history": history.json(),
        "workflows": workflows.json(),
        "diagram": diagram.json(),
        "executed": executed.json(),
        "one_run": [run],
        "unknown": {"status": unknown.status_code, "body": unknown.json()},
        "malformed": {"status": malformed.status_code, "body": malformed.json()},
        "document": document,
    }


def test_the_steps_have_seed_000s_shape_key_by_key(seed_run: dict[str, Any]) -> None:
    steps = seed_run["steps"]
    documented = example("steps")
    assert [step["node_id"] for step in steps] == ["model", "slack_integration"]
    model, share = steps
    assert_same_shape(
        model,
        documented[0],
        open_keys=frozenset({"$.inputs"}),  # the model's request: the workflow's settings
    )
    assert_same_shape(
        share,
        documented[1],
        open_keys=frozenset(
            {
                "$.inputs.input_mapping",  # the action's arguments
                "$.inputs.tool_config",  # the app's settings (credentials masked)
                "$.inputs.input_data",  # the run's inputs and earlier outputs
                "$.outputs.result.data",  # Slack's answer
            }
        ),
    )


def test_the_model_step_shows_the_completion_and_the_run_it_saw(seed_run: dict[str, Any]) -> None:
    model, _ = seed_run["steps"]
    run_id = seed_run["run"]["id"]
    assert model["status"] == "completed" and model["error"] is None
    assert model["outputs"]["object"] == "chat.completion"
    assert "content" not in model["outputs"]  # the text is where OpenAI puts it
    text = model["outputs"]["choices"][0]["message"]["content"]
    assert text
    assert model["inputs"]["messages"] == [{"role": "user", "content": PROMPT}]
    assert model["inputs"]["run_id"] == run_id
    assert model["inputs"]["input_data"]["prompt"] == PROMPT
    # Arcee's seed says "currently always 0"; stepline counts them.
    assert model["tokens"] == model["outputs"]["usage"]["total_tokens"] > 0
    assert model["elapsed_time"] == int(model["elapsed_time"]) >= 0


def test_the_slack_step_shows_the_models_text_and_arcees_result_keys(
    seed_run: dict[str, Any], slack: SlackStandIn
) -> None:
    model, share = seed_run["steps"]
    text = model["outputs"]["choices"][0]["message"]["content"]
    inputs = share["inputs"]
    assert list(inputs)[:4] == ["app_name", "action", "entity_id", "workspace_type"]
    assert inputs["app_name"] == "slack" and inputs["workspace_type"] == "local"
    assert inputs["input_mapping"] == {"channel": "orchestra-demo", "text": text}
    assert inputs["tool_config"]["tool_type"] == "slack"
    assert inputs["tool_config"]["token"] == "***"
    # A model node's value reaches later nodes as its text, as in Arcee.
    assert inputs["input_data"]["model"] == text
    assert inputs["input_data"]["prompt"] == PROMPT
    assert inputs["run_id"] == seed_run["run"]["id"]
    result = share["outputs"]["result"]
    assert result["successfull"] is True and result["successful"] is True
    assert result["error"] is None
    assert result["data"]["channel"] == channel_id("orchestra-demo")
    assert TOKEN not in json.dumps(seed_run)


def test_the_run_and_the_history_have_the_documented_items(seed_run: dict[str, Any]) -> None:
    documented = example("runs")[0]
    run = seed_run["run"]
    (listed,) = seed_run["history"]
    assert listed == run
    # The values of the run's inputs and nodes; `outputs` is the selected node's (here the
    # Slack node's result, in the documented example a model's text).
    open_keys = frozenset({"$.inputs", "$.all_outputs", "$.outputs"})
    assert_same_shape(run, documented, open_keys=open_keys)
    text = seed_run["steps"][0]["outputs"]["choices"][0]["message"]["content"]
    assert run["all_outputs"]["prompt"] == PROMPT
    assert run["all_outputs"]["model"] == text
    assert run["all_outputs"]["slack_integration"] == seed_run["steps"][1]["outputs"]
    assert run["outputs"] == seed_run["steps"][1]["outputs"]  # the run ends on the Slack node


def test_the_workflow_list_has_the_documented_items(seed_run: dict[str, Any]) -> None:
    (listed,) = [w for w in seed_run["workflows"] if w["workflow_id"] == seed_run["workflow_id"]]
    assert_same_shape(
        listed,
        example("workflows")[0],
        open_keys=frozenset({"$.graph.nodes", "$.graph.input_data"}),
    )
    graph = listed["graph"]
    assert graph["edges"] == [
        ["START", "model"],
        ["model", "slack_integration"],
        ["slack_integration", "END"],
    ]
    assert graph["nodes"]["model"]["type"] == "model"
    assert graph["selectedOutput"] == "slack_integration"


def test_the_diagram_draws_what_arcees_example_draws(seed_run: dict[str, Any]) -> None:
    documented = example("diagram")
    assert_same_shape(seed_run["diagram"], documented)
    ours, theirs = seed_run["diagram"]["diagram"], documented["diagram"]

    def drawn(text: str, names: dict[str, str]) -> set[str]:
        """The lines that are not boxes (ours show the kind where Arcee's show a
        description), each generated id replaced by its node's id."""
        return {
            " ".join(names.get(word, word) for word in line.split())
            for line in text.splitlines()
            if "[" not in line
        }

    assert drawn(ours, {"n0": "model", "n1": "slack_integration"}) == drawn(theirs, {})
    assert '    n0["model<br/>model"]' in ours.splitlines()


def test_every_answer_is_what_the_openapi_document_says(seed_run: dict[str, Any]) -> None:
    document = seed_run["document"]
    base = "/arcee/workflows/{workflow_id}"

    def schema_of(path: str, method: str, status: str) -> dict[str, Any]:
        response = document["paths"][path][method]["responses"][status]
        schema = response["content"]["application/json"]["schema"]
        return {**schema, "components": document["components"]}

    answered = [
        ("/arcee/workflows", "get", "200", seed_run["workflows"]),
        (f"{base}/execute", "post", "200", seed_run["executed"]),
        (f"{base}/runs", "get", "200", seed_run["history"]),
        (f"{base}/runs/{{run_id}}", "get", "200", seed_run["one_run"]),
        (f"{base}/runs/{{run_id}}/steps", "get", "200", seed_run["steps"]),
        (f"{base}/diagram", "get", "200", seed_run["diagram"]),
        (f"{base}/runs/{{run_id}}", "get", "404", seed_run["unknown"]["body"]),
        (f"{base}/runs", "get", "422", seed_run["malformed"]["body"]),
    ]
    for path, method, status, body in answered:
        jsonschema.validate(body, schema_of(path, method, status))
    assert seed_run["unknown"]["status"] == 404
    assert seed_run["malformed"]["status"] == 422
