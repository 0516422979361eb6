"""Runs and their steps through both faces of the SDK, against a real `stepline serve`:
starting (and waiting), `wait`, listings across pages, downloads, events, cancelling."""

from __future__ import annotations

import pytest
from definitions import ADA, fan_out, sleeper, triage

from stepline import Client
from stepline.sdk import Event, Run, RunData, RunSummary, Step, ValidationError, Workflow


@pytest.fixture
def workflow(sdk: Client) -> Workflow:
    return sdk.workflows.create(triage("triage"))


def test_a_run_starts_at_once_and_wait_returns_it_finished(sdk: Client, workflow: Workflow) -> None:
    run = sdk.runs.create(workflow.id, ADA)
    assert isinstance(run, Run) and run.workflow_id == workflow.id
    assert run.inputs == ADA and run.steps is None
    done = sdk.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.finished and done.status == "completed"
    assert done.output == {"message": "Review Ada: risk 0.7"}
    assert done.total_steps == 5 and done.finished_steps == 5
    assert done.step_counts == {"completed": 4, "skipped": 1}
    assert sdk.runs.get(workflow.id, run.id) == done


def test_create_with_wait_returns_the_run_with_its_steps(sdk: Client, workflow: Workflow) -> None:
    run = sdk.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    assert run.status == "completed" and run.steps is not None
    assert [s.step_id for s in run.steps] == ["score", "route", "flag", "approve", "report"]
    assert run.steps[0].inputs["inputs"] == {"amount": 700}


def test_invalid_inputs_are_a_422_naming_each_field(sdk: Client, workflow: Workflow) -> None:
    with pytest.raises(ValidationError) as invalid:
        sdk.runs.create(workflow.id, {"amount": "lots"})
    fields = {d.field for d in invalid.value.details}
    assert {"body.inputs.amount", "body.inputs.customer"} <= fields
    assert list(sdk.runs.list(workflow.id)) == []


def test_a_repeated_idempotency_key_returns_the_first_run(sdk: Client, workflow: Workflow) -> None:
    first = sdk.runs.create(workflow.id, ADA, idempotency_key="order-1")
    again = sdk.runs.create(workflow.id, ADA, idempotency_key="order-1")
    other = sdk.runs.create(workflow.id, ADA, idempotency_key="order-2")
    assert again.id == first.id and other.id != first.id
    assert {r.id for r in sdk.runs.list(workflow.id)} == {first.id, other.id}


def test_runs_list_filters_and_is_newest_first(sdk: Client, workflow: Workflow) -> None:
    ok = sdk.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    bo = sdk.runs.create(workflow.id, {"amount": 1, "customer": "Bo"}, wait=True, timeout_s=60)
    assert [r.id for r in sdk.runs.list(workflow.id, page_size=1)] == [bo.id, ok.id]
    assert [r.id for r in sdk.runs.list(workflow.id, status="failed")] == []
    assert len(list(sdk.runs.list(workflow.id, status="completed"))) == 2


def test_summary_data_and_downloads(sdk: Client, workflow: Workflow) -> None:
    run = sdk.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    summary = sdk.runs.summary(workflow.id)
    assert isinstance(summary, RunSummary) and summary.workflow_id == workflow.id
    assert summary.total == 1 and summary.counts["completed"] == 1
    assert summary.success_rate == 1.0 and summary.p50_duration_ms is not None

    data = sdk.runs.data(workflow.id, run.id)
    assert isinstance(data, RunData) and data.output == {"message": "Review Ada: risk 0.7"}

    document = sdk.runs.download(workflow.id, run.id)
    assert document["run"]["id"] == str(run.id)
    order = ["score", "route", "flag", "approve", "report"]
    assert [s["step_id"] for s in document["steps"]] == order
    with sdk.runs.download(workflow.id, run.id, format="ndjson") as lines:
        streamed = list(lines)
    assert all(isinstance(s, Step) for s in streamed)
    assert [s.step_id for s in streamed] == order
    node = list(sdk.runs.download_node(workflow.id, run.id, "score"))
    assert [s.node_id for s in node] == ["score"] and node[0].outputs == {"risk": 0.7}


def test_a_download_closed_early_reads_no_further(sdk: Client, workflow: Workflow) -> None:
    run = sdk.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    with sdk.runs.download(workflow.id, run.id, format="ndjson") as lines:
        first = next(iter(lines))
    assert first.step_id == "score"
    assert sdk.runs.get(workflow.id, run.id).status == "completed"  # the client still works


def test_events_arrive_in_order_and_resume_after_an_id(sdk: Client, workflow: Workflow) -> None:
    run = sdk.runs.create(workflow.id, ADA)
    stream = sdk.runs.events(workflow.id, run.id)
    events = list(stream)
    assert all(isinstance(e, Event) and e.id is not None for e in events)
    ids = [e.id or 0 for e in events]
    assert ids == sorted(set(ids)) and stream.last_event_id == ids[-1]
    assert events[-1].type == "run.completed" and events[-1].is_terminal
    run_types = [e.type for e in events if e.type.startswith("run.")]
    assert run_types[0] in {"run.queued", "run.running"}
    finished = {
        e.step_change.step_id: e.step_change.status
        for e in events
        if e.step_change is not None and e.type in {"step.completed", "step.skipped"}
    }
    assert finished == {
        "score": "completed",
        "route": "completed",
        "flag": "completed",
        "approve": "skipped",
        "report": "completed",
    }
    middle = events[len(events) // 2]
    rest = list(sdk.runs.events(workflow.id, run.id, last_event_id=middle.id))
    assert [e.id for e in rest] == [e.id for e in events if (e.id or 0) > (middle.id or 0)]


def test_an_event_stream_closed_early_stops(sdk: Client) -> None:
    slow = sdk.workflows.create(sleeper("slow-events", 20))
    run = sdk.runs.create(slow.id, {})
    with sdk.runs.events(slow.id, run.id) as stream:
        first = next(iter(stream))
    assert first.type in {"run.queued", "run.running"}
    assert sdk.runs.cancel(slow.id, run.id).id == run.id


def test_cancel_stops_a_run_and_is_idempotent(sdk: Client) -> None:
    slow = sdk.workflows.create(sleeper("slow-cancel", 20))
    run = sdk.runs.create(slow.id, {})
    sdk.runs.cancel(slow.id, run.id)
    again = sdk.runs.cancel(slow.id, run.id)
    assert again.id == run.id
    done = sdk.runs.wait(slow.id, run.id, timeout_s=30)
    assert done.status == "cancelled"


def test_wait_returns_the_unfinished_run_when_time_is_up(sdk: Client) -> None:
    slow = sdk.workflows.create(sleeper("slow-wait", 5))
    run = sdk.runs.create(slow.id, {}, wait=True, timeout_s=0.5)
    assert not run.finished
    assert not sdk.runs.wait(slow.id, run.id, timeout_s=0.3).finished
    sdk.runs.cancel(slow.id, run.id)


def test_steps_iterator_crosses_pages_without_gaps_or_repeats(sdk: Client) -> None:
    wide = sdk.workflows.create(fan_out("wide", 120))
    run = sdk.runs.create(wide.id, {}, wait=True, timeout_s=120)
    assert run.status == "completed" and run.total_steps == 121

    listing = sdk.runs.steps.list(wide.id, run.id, page_size=7)
    pages = list(listing.pages())
    assert len(pages) == 18 and all(len(p.items) == 7 for p in pages[:-1])
    steps = [s for page in pages for s in page.items]
    assert len({s.id for s in steps}) == 121
    assert [s.step_id for s in steps] == [s.step_id for s in run.steps or []]
    assert [s.step_id for s in sdk.runs.steps.list(wide.id, run.id, page_size=50)] == [
        s.step_id for s in steps
    ]

    only = list(sdk.runs.steps.list(wide.id, run.id, node_id="n005", include_io=False))
    assert [s.step_id for s in only] == ["n005"] and only[0].outputs is None
    full = sdk.runs.steps.get(wide.id, run.id, only[0].id)
    assert full.outputs == {"i": 5}
    assert sdk.runs.steps.get(wide.id, run.id, "n005").id == full.id
    assert list(sdk.runs.steps.list(wide.id, run.id, status="error")) == []
