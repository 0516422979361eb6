"""The SDK's reviews, review decisions, retry and replay against a real `stepline serve`."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control_support import edge, hil_workflow, node

from stepline import AsyncClient, Client
from stepline.sdk import ConflictError, NotFoundError, Review, ReviewResult, Run, ValidationError
from support.server import ServeProcess

GATED = """
import os

def main(inputs):
    if not os.path.exists(inputs["gate"]):
        raise ValueError("the gate is closed")
    return {"doubled": inputs["n"] * 2}
"""


@pytest.fixture
def client(api_server: ServeProcess, org_key: str) -> Iterator[Client]:
    with Client(api_server.base_url, org_key) as sdk:
        yield sdk


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory every user may write to: sandbox children may run as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="stepline-sdk-control-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def api_server(process_isolation_server: ServeProcess) -> ServeProcess:
    """The code steps here read a gate file on the host: see `process_isolation_server`."""
    return process_isolation_server


def wait_settled(client: Client, workflow_id: Any, run_id: Any) -> Run:
    """The run once it finished or paused for a review: `runs.wait` stops at either."""
    run = client.runs.wait(workflow_id, run_id, timeout_s=60)
    assert run.settled, f"run {run_id} stayed {run.status}"
    return run


def gated(gate: Path) -> dict[str, Any]:
    return {
        "name": f"sdk-gated-{uuid.uuid4().hex[:8]}",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}},
        "nodes": [
            node("seed", "reshape", {"output": "{{ inputs.n }}"}),
            node(
                "gated",
                "code",
                {"inputs": {"gate": str(gate), "n": "{{ nodes.seed.output }}"}, "code": GATED},
            ),
        ],
        "edges": [edge("seed", "gated")],
    }


def test_reviews_list_and_decide(client: Client) -> None:
    workflow = client.workflows.create(hil_workflow("sdk-review"))
    run = client.runs.create(workflow.id, {"name": "Ada"})
    assert wait_settled(client, workflow.id, run.id).status == "waiting_for_human"

    (review,) = list(client.reviews.list(workflow_id=workflow.id))
    assert isinstance(review, Review)
    assert review.step_id == "check" and review.run_id == run.id
    assert review.outputs == {"text": "hello Ada"}
    assert review.review_url is not None and review.review_url.endswith("/review")
    assert list(client.reviews.list(workflow_id=uuid.uuid4())) == []

    result = client.runs.steps.review(
        workflow.id, run.id, "check", approved=True, output={"text": "Hi Ada"}, comment="ok"
    )
    assert isinstance(result, ReviewResult)
    assert result.changed is True
    assert result.step.human_review_approved is True
    assert result.run.id == run.id

    done = client.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.status == "completed"
    publish = client.runs.steps.get(workflow.id, run.id, "publish")
    assert publish.outputs == {"published": {"text": "Hi Ada"}}

    same = client.runs.steps.review(
        workflow.id, run.id, review.id, approved=True, output={"text": "Hi Ada"}, comment="ok"
    )
    assert same.changed is False
    with pytest.raises(ConflictError):
        client.runs.steps.review(workflow.id, run.id, "check", approved=False)
    with pytest.raises(NotFoundError):
        client.runs.steps.review(workflow.id, run.id, "no-such-step", approved=True)


def test_retry_and_replay(client: Client, drop_dir: Path) -> None:
    gate = drop_dir / "gate"
    workflow = client.workflows.create(gated(gate))
    run = client.runs.create(workflow.id, {"n": 4})
    assert client.runs.wait(workflow.id, run.id, timeout_s=60).status == "failed"
    with pytest.raises(NotFoundError):
        client.runs.retry(workflow.id, uuid.uuid4())

    gate.write_text("open")
    retried = client.runs.retry(workflow.id, run.id)
    assert retried.id == run.id
    done = client.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.status == "completed"
    assert client.runs.steps.get(workflow.id, run.id, "gated").outputs == {"doubled": 8}
    with pytest.raises(ConflictError):
        client.runs.retry(workflow.id, run.id)

    replay = client.runs.replay(workflow.id, run.id, from_node="gated", inputs={"n": 5})
    assert replay.replay_of == run.id and replay.inputs == {"n": 5}
    replayed = client.runs.wait(workflow.id, replay.id, timeout_s=60)
    assert replayed.status == "completed"
    seed = client.runs.steps.get(workflow.id, replay.id, "seed")
    assert seed.outputs == 4, "the upstream output is the original's, not recomputed"
    assert seed.step_metadata is not None and "replayed_from" in seed.step_metadata
    assert client.runs.steps.get(workflow.id, replay.id, "gated").outputs == {"doubled": 8}
    with pytest.raises(ValidationError) as refused:
        client.runs.replay(workflow.id, run.id, from_node="nope")
    assert [d.field for d in refused.value.details] == ["body.from_node"]


async def test_async_reviews_retry_and_replay(api_server: ServeProcess, org_key: str) -> None:
    async with AsyncClient(api_server.base_url, org_key) as client:
        workflow = await client.workflows.create(hil_workflow("sdk-async-review"))
        run = await client.runs.create(workflow.id, {"name": "Bo"})
        reviews: list[Review] = []
        for _ in range(1200):
            reviews = [r async for r in client.reviews.list(workflow_id=workflow.id)]
            if reviews:
                break
            await asyncio.sleep(0.05)
        (review,) = reviews
        result = await client.runs.steps.review(
            workflow.id, run.id, review.id, approved=False, comment="no"
        )
        assert result.changed is True and result.step.human_review_approved is False
        done = await client.runs.wait(workflow.id, run.id, timeout_s=60)
        assert done.status == "completed"  # the rejected edge is wired
        redo = await client.runs.steps.get(workflow.id, run.id, "redo")
        assert redo.outputs == "redo Bo"
        with pytest.raises(ConflictError):
            await client.runs.retry(workflow.id, run.id)
        replay = await client.runs.replay(workflow.id, run.id, from_node="publish")
        assert replay.replay_of == run.id
        assert (await client.runs.wait(workflow.id, replay.id, timeout_s=60)).finished
