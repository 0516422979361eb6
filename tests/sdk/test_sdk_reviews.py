"""Reviews, review decisions, retry and replay through both faces of the SDK, against a
real `stepline serve`."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from definitions import gated

from stepline import Client, errors
from stepline.sdk import ConflictError, Review, ReviewResult, Run
from support.workflows import hil_workflow


@pytest.fixture
def drop_dir() -> Iterator[Path]:
    """A directory every user may write to: sandbox children may run as `nobody`."""
    path = Path(tempfile.mkdtemp(prefix="stepline-sdk-control-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def wait_settled(sdk: Client, workflow_id: Any, run_id: Any) -> Run:
    """The run once it finished or paused for a review: `runs.wait` stops at either."""
    run = sdk.runs.wait(workflow_id, run_id, timeout_s=60)
    assert run.settled, f"run {run_id} stayed {run.status}"
    return run


def test_reviews_list_and_approve_with_an_edited_output(sdk: Client) -> None:
    workflow = sdk.workflows.create(hil_workflow("sdk-review"))
    run = sdk.runs.create(workflow.id, {"name": "Ada"})
    assert wait_settled(sdk, workflow.id, run.id).status == "waiting_for_human"

    (review,) = list(sdk.reviews.list(workflow_id=workflow.id))
    assert isinstance(review, Review)
    assert review.step_id == "check" and review.run_id == run.id
    assert review.outputs == {"text": "hello Ada"}
    assert review.review_url is not None and review.review_url.endswith("/review")
    assert list(sdk.reviews.list(workflow_id=uuid.uuid4())) == []

    result = sdk.runs.steps.review(
        workflow.id, run.id, "check", approved=True, output={"text": "Hi Ada"}, comment="ok"
    )
    assert isinstance(result, ReviewResult) and result.changed is True
    assert result.step.human_review_approved is True and result.run.id == run.id

    done = sdk.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.status == "completed"
    publish = sdk.runs.steps.get(workflow.id, run.id, "publish")
    assert publish.outputs == {"published": {"text": "Hi Ada"}}

    same = sdk.runs.steps.review(
        workflow.id, run.id, review.id, approved=True, output={"text": "Hi Ada"}, comment="ok"
    )
    assert same.changed is False
    with pytest.raises(errors.Conflict) as conflict:
        sdk.runs.steps.review(workflow.id, run.id, "check", approved=False)
    assert isinstance(conflict.value, ConflictError)
    with pytest.raises(errors.NotFound):
        sdk.runs.steps.review(workflow.id, run.id, "no-such-step", approved=True)


def test_a_rejection_takes_the_rejected_edge(sdk: Client) -> None:
    workflow = sdk.workflows.create(hil_workflow("sdk-reject"))
    run = sdk.runs.create(workflow.id, {"name": "Bo"})
    assert wait_settled(sdk, workflow.id, run.id).status == "waiting_for_human"
    (review,) = list(sdk.reviews.list(workflow_id=workflow.id))
    result = sdk.runs.steps.review(workflow.id, run.id, review.id, approved=False, comment="no")
    assert result.changed is True and result.step.human_review_approved is False
    assert sdk.runs.wait(workflow.id, run.id, timeout_s=60).status == "completed"
    assert sdk.runs.steps.get(workflow.id, run.id, "redo").outputs == "redo Bo"


def test_retry_and_replay(sdk: Client, drop_dir: Path) -> None:
    gate = drop_dir / "gate"
    workflow = sdk.workflows.create(gated("sdk-gated", gate))
    run = sdk.runs.create(workflow.id, {"n": 4})
    assert sdk.runs.wait(workflow.id, run.id, timeout_s=60).status == "failed"
    with pytest.raises(errors.NotFound):
        sdk.runs.retry(workflow.id, uuid.uuid4())

    gate.write_text("open")
    retried = sdk.runs.retry(workflow.id, run.id)
    assert retried.id == run.id
    done = sdk.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.status == "completed"
    assert sdk.runs.steps.get(workflow.id, run.id, "gated").outputs == {"doubled": 8}
    with pytest.raises(errors.Conflict):
        sdk.runs.retry(workflow.id, run.id)

    replay = sdk.runs.replay(workflow.id, run.id, from_node="gated", inputs={"n": 5})
    assert replay.replay_of == run.id and replay.inputs == {"n": 5}
    replayed = sdk.runs.wait(workflow.id, replay.id, timeout_s=60)
    assert replayed.status == "completed"
    seed = sdk.runs.steps.get(workflow.id, replay.id, "seed")
    assert seed.outputs == 4, "the upstream output is the original's, not recomputed"
    assert seed.step_metadata is not None and "replayed_from" in seed.step_metadata
    assert sdk.runs.steps.get(workflow.id, replay.id, "gated").outputs == {"doubled": 8}
    with pytest.raises(errors.InvalidRequest) as refused:
        sdk.runs.replay(workflow.id, run.id, from_node="nope")
    assert [d.field for d in refused.value.details] == ["body.from_node"]
