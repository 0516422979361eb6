"""Human review, run retry, replay and child runs: the engine with the store's control verbs.

Every test runs on SQLite and on PostgreSQL (the `store` fixture of tests/conftest.py).
Side effects are counted by a real HTTP server on loopback, so "not run again" is proved
by a counter, not inferred from a status.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import uuid4

import pytest

from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, RunStatus, StepStatus
from stepline.spec.graph import WorkflowGraph
from stepline.spec.validate import load_workflow
from stepline.store import StateConflictError, Store
from support.engine import Outcome, execute, metadata, queue_run, save_definition
from support.http_server import loopback_server

pytestmark = pytest.mark.usefixtures("store")


def reshape(node_id: str, output: Any, **extra: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "reshape", "config": {"output": output}, **extra}


def hil(node_id: str, payload: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "hil", "config": {"payload": payload, "instructions": "check"}}


def edge(a: str, b: str, handle: str | None = None) -> dict[str, Any]:
    return {"from": a, "to": b, **({"handle": handle} if handle else {})}


async def start(store: Store, definition: dict[str, Any], inputs: Any = None) -> Outcome:
    return await execute(store, await queue_run(store, definition, inputs or {}))


async def resume(store: Store, out: Outcome) -> Outcome:
    return await execute(store, out.run)


async def test_hil_pauses_the_run_and_an_approval_with_an_edit_resumes_it(store: Store) -> None:
    definition = {
        "name": "approve-me",
        "nodes": [
            reshape("draft", {"text": "helo"}),
            hil("check", "{{ nodes.draft.output }}"),
            reshape("publish", {"final": "{{ nodes.check.output.text }}"}),
        ],
        "edges": [edge("draft", "check"), edge("check", "publish")],
    }
    out = await start(store, definition)
    assert out.run.status is RunStatus.waiting_for_human
    assert out.run.lease_owner is None, "a paused run holds no worker"
    check = out.steps["check"]
    assert check.status is StepStatus.waiting_for_human
    assert check.requires_human_review is True
    assert check.outputs == {"text": "helo"}
    assert metadata(check) == {"instructions": "check"}
    assert out.steps["publish"].status is StepStatus.pending

    org = out.run.organization_id
    pending = await store.runs.page_reviews(org)
    assert [s.step_id for s in pending.items] == ["check"]

    decision = await store.runs.decide_review(
        org, out.run.id, "check", approved=True, reviewer="ada", output={"text": "hello"}
    )
    assert decision.changed and decision.run.status is RunStatus.queued
    again = await store.runs.decide_review(
        org, out.run.id, "check", approved=True, reviewer="ada", output={"text": "hello"}
    )
    assert not again.changed
    with pytest.raises(StateConflictError):
        await store.runs.decide_review(org, out.run.id, "check", approved=False, reviewer="bo")
    assert (await store.runs.page_reviews(org)).items == []

    done = await resume(store, out)
    assert done.run.status is RunStatus.completed, done.run.error
    assert done.steps["check"].status is StepStatus.completed
    assert done.steps["check"].outputs == {"text": "hello"}
    assert done.steps["check"].human_review_approved is True
    assert done.steps["check"].human_reviewer == "ada"
    assert done.steps["check"].human_reviewed_at is not None
    assert done.steps["publish"].outputs == {"final": "hello"}
    assert done.steps["check"].retry_count == 0, "a pause is not a retry"


@pytest.mark.parametrize(("score", "waits"), [(0.9, False), (0.2, True)])
async def test_review_when_expression_decides_per_output(
    store: Store, score: float, waits: bool
) -> None:
    definition = {
        "name": f"maybe-review-{waits}",
        "nodes": [
            reshape(
                "score",
                {"score": "{{ inputs.score }}"},
                review={"when": "output.score < 0.5"},
            )
        ],
    }
    out = await start(store, definition, {"score": score})
    expected = RunStatus.waiting_for_human if waits else RunStatus.completed
    assert out.run.status is expected
    assert out.steps["score"].requires_human_review is (True if waits else None)


async def test_a_rejection_follows_the_rejected_handle_when_it_is_wired(store: Store) -> None:
    definition = {
        "name": "reject-routes",
        "nodes": [hil("gate", {"n": 1}), reshape("ship", "shipped"), reshape("redo", "redone")],
        "edges": [edge("gate", "ship"), edge("gate", "redo", "rejected")],
    }
    out = await start(store, definition)
    await store.runs.decide_review(
        out.run.organization_id, out.run.id, "gate", approved=False, reviewer="bo", comment="no"
    )
    done = await resume(store, out)
    assert done.run.status is RunStatus.completed
    assert done.steps["gate"].status is StepStatus.completed
    assert done.steps["gate"].human_review_approved is False
    assert done.steps["redo"].outputs == "redone"
    assert done.steps["ship"].status is StepStatus.skipped


async def test_a_rejection_without_a_rejected_edge_fails_the_step(store: Store) -> None:
    definition = {
        "name": "reject-fails",
        "nodes": [hil("gate", {"n": 1}), reshape("ship", "shipped")],
        "edges": [edge("gate", "ship")],
    }
    out = await start(store, definition)
    await store.runs.decide_review(
        out.run.organization_id, out.run.id, "gate", approved=False, reviewer="bo", comment="nope"
    )
    done = await resume(store, out)
    assert done.run.status is RunStatus.failed
    assert done.steps["gate"].status is StepStatus.error
    assert done.steps["gate"].error == "rejected by bo: nope"
    assert done.steps["ship"].status is StepStatus.skipped


async def test_reviews_inside_a_loop_pause_the_loop_until_each_is_decided(store: Store) -> None:
    definition = {
        "name": "loop-reviews",
        "nodes": [
            {
                "id": "each",
                "type": "for_each",
                "config": {"items": ["a", "b"], "concurrency": 2},
                "body": {"nodes": [hil("ok", "{{ loop.item }}")]},
            }
        ],
    }
    out = await start(store, definition)
    assert out.run.status is RunStatus.waiting_for_human
    assert out.steps["each"].status is StepStatus.waiting_for_human
    assert out.steps["each"].requires_human_review is None, "the loop itself is not reviewed"
    org = out.run.organization_id
    pending = await store.runs.page_reviews(org)
    assert sorted(s.step_id for s in pending.items) == ["each_iter_0_ok", "each_iter_1_ok"]

    await store.runs.decide_review(org, out.run.id, "each_iter_0_ok", approved=True, reviewer="a")
    half = await resume(store, out)
    assert half.run.status is RunStatus.waiting_for_human
    assert half.steps["each_iter_0_ok"].status is StepStatus.completed

    await store.runs.decide_review(
        org, out.run.id, "each_iter_1_ok", approved=True, reviewer="a", output="B"
    )
    done = await resume(store, out)
    assert done.run.status is RunStatus.completed, done.run.error
    assert done.steps["each"].outputs == ["a", "B"]
    assert done.steps["each"].retry_count == 0


async def test_a_pause_after_a_decision_queues_the_run_instead(store: Store) -> None:
    definition = {"name": "race", "nodes": [hil("gate", 1)]}
    out = await start(store, definition)
    org = out.run.organization_id
    assert await store.runs.claim("w1", 30, run_id=out.run.id) is None, "a paused run waits"
    await store.runs.decide_review(org, out.run.id, "gate", approved=True, reviewer="a")
    # A worker holds the run while the decided step is still on record as waiting (as
    # when a decision lands while other branches run): pausing must not strand it.
    claimed = await store.runs.claim("w1", 30, run_id=out.run.id)
    assert claimed is not None
    paused = await store.runs.pause(out.run.id, "w1")
    assert paused.status is RunStatus.queued
    assert paused.lease_owner is None


def counting_flaky_pipeline(url: str) -> dict[str, Any]:
    return {
        "name": "retry-me",
        "nodes": [
            {"id": "fetch", "type": "api_call", "config": {"url": f"{url}/fetch"}},
            {"id": "push", "type": "api_call", "config": {"url": f"{url}/push"}},
            reshape("report", {"got": "{{ nodes.push.output.body.ok }}"}),
        ],
        "edges": [edge("fetch", "push"), edge("push", "report")],
    }


def fails_first(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
    return (400, {}, {"error": "bad"}) if n == 1 else (200, {}, {"ok": True})


async def test_retry_continues_a_failed_run_without_rerunning_completed_steps(
    store: Store,
) -> None:
    routes = {"/fetch": lambda n, b: (200, {}, {"rows": n}), "/push": fails_first}
    with loopback_server(routes) as server:
        out = await start(store, counting_flaky_pipeline(server.url))
        assert out.run.status is RunStatus.failed
        assert out.steps["push"].status is StepStatus.error
        assert out.steps["report"].status is StepStatus.skipped

        retried = await store.runs.retry(out.run.organization_id, out.run.id)
        assert retried.status is RunStatus.queued and retried.error is None
        with pytest.raises(StateConflictError):
            await store.runs.retry(out.run.organization_id, out.run.id)
        done = await resume(store, out)
        assert server.hit_count("/fetch") == 1, "the completed step ran again"
        assert server.hit_count("/push") == 2

    assert done.run.status is RunStatus.completed, done.run.error
    assert done.run.id == out.run.id
    push = done.steps["push"]
    assert push.retry_count == 1
    assert [a.status for a in push.attempts] == [StepStatus.error, StepStatus.completed]
    assert done.steps["report"].outputs == {"got": True}
    assert done.steps["fetch"].outputs["body"] == {"rows": 1}


async def test_replay_reuses_upstream_outputs_and_runs_from_the_node(store: Store) -> None:
    routes = {
        "/fetch": lambda n, b: (200, {}, {"call": n}),
        "/push": lambda n, b: (200, {}, {"ok": n}),
    }
    with loopback_server(routes) as server:
        definition = counting_flaky_pipeline(server.url)
        original = await start(store, definition)
        assert original.run.status is RunStatus.completed

        spec = load_workflow(definition, default_registry())
        reuse = WorkflowGraph(spec).upstream("push")
        replay = await store.runs.replay(
            original.run,
            reuse=reuse,
            inputs={},
            workflow_version=original.run.workflow_version,
            from_node="push",
        )
        assert replay.replay_of == original.run.id and replay.status is RunStatus.queued
        done = await execute(store, replay)
        assert server.hit_count("/fetch") == 1, "an upstream step ran again"
        assert server.hit_count("/push") == 2

    assert done.run.status is RunStatus.completed
    fetch = done.steps["fetch"]
    assert fetch.outputs == original.steps["fetch"].outputs
    assert fetch.step_metadata is not None
    assert fetch.step_metadata["replayed_from"]["run_id"] == str(original.run.id)
    assert done.steps["push"].outputs["body"] == {"ok": 2}
    assert "replayed_from" not in (done.steps["push"].step_metadata or {})
    assert done.steps["report"].outputs == {"got": 2}


async def test_sub_workflow_runs_a_linked_child_run(store: Store) -> None:
    org = await store.organizations.ensure()
    child = {
        "name": "child",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "nodes": [reshape("double", {"twice": "{{ inputs.n * 2 }}"})],
    }
    await save_definition(store, org, child, default_registry())
    parent = {
        "name": "parent",
        "nodes": [
            {
                "id": "call",
                "type": "sub_workflow",
                "config": {"workflow": "child", "inputs": {"n": 21}},
            },
            reshape("use", "{{ nodes.call.output.twice }}"),
        ],
        "edges": [edge("call", "use")],
    }
    out = await start(store, parent)
    assert out.run.status is RunStatus.completed, out.run.error
    step = out.steps["call"]
    assert step.outputs == {"twice": 42}
    assert out.steps["use"].outputs == 42
    assert step.step_metadata is not None
    child_run = await store.runs.find_child(step.id)
    assert child_run is not None
    assert str(child_run.id) == step.step_metadata["child_run_id"]
    assert child_run.parent_run_id == out.run.id
    assert child_run.parent_step_id == step.id
    assert child_run.trigger == "sub_workflow"
    assert child_run.status is RunStatus.completed
    assert [s.step_id for s in await store.steps.list(child_run.id)] == ["double"]


async def test_sub_workflow_by_name_takes_the_runs_own_workspaces_workflow(store: Store) -> None:
    # Names are unique per workspace: the run's workspace first, then the organization's.
    org = await store.organizations.ensure()
    here, elsewhere = uuid4(), uuid4()
    for workspace, value in ((None, "organization"), (here, "here"), (elsewhere, "elsewhere")):
        child = {"name": "child", "nodes": [reshape("say", value)]}
        await store.workflows.save(org, child, workspace_id=workspace)
    parent = {
        "name": "parent",
        "nodes": [{"id": "call", "type": "sub_workflow", "config": {"workflow": "child"}}],
    }
    for workspace, expected in ((here, "here"), (uuid4(), "organization")):
        saved = await store.workflows.save(org, parent, workspace_id=workspace)
        run = await store.runs.create(
            RunRecord(
                workflow_id=saved.workflow.id,
                workflow_version=saved.version.version,
                organization_id=org,
                workspace_id=workspace,
            )
        )
        out = await execute(store, run)
        assert out.run.status is RunStatus.completed, out.run.error
        assert out.steps["call"].outputs == expected


async def test_sub_workflow_failures_and_bad_inputs_fail_the_step(store: Store) -> None:
    org = await store.organizations.ensure()
    child = {
        "name": "strict-child",
        "inputs": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]},
        "nodes": [reshape("double", "{{ inputs.n * 2 }}")],
    }
    await save_definition(store, org, child, default_registry())
    parent = {
        "name": "bad-parent",
        "nodes": [
            {"id": "a", "type": "sub_workflow", "config": {"workflow": "strict-child"}},
            {"id": "b", "type": "sub_workflow", "config": {"workflow": "no-such-workflow"}},
        ],
    }
    out = await start(store, parent)
    assert out.run.status is RunStatus.failed
    assert "inputs do not fit" in (out.steps["a"].error or "")
    assert "no workflow 'no-such-workflow'" in (out.steps["b"].error or "")


async def test_a_child_waiting_for_review_pauses_the_parent_until_it_finishes(
    store: Store,
) -> None:
    org = await store.organizations.ensure()
    child = {"name": "reviewed-child", "nodes": [hil("ok", {"v": 1})]}
    await save_definition(store, org, child, default_registry())
    parent = {
        "name": "waiting-parent",
        "nodes": [
            {"id": "call", "type": "sub_workflow", "config": {"workflow": "reviewed-child"}},
            reshape("use", "{{ nodes.call.output.v }}"),
        ],
        "edges": [edge("call", "use")],
    }
    out = await start(store, parent)
    assert out.run.status is RunStatus.waiting_for_human
    child_run = await store.runs.find_child(out.steps["call"].id)
    assert child_run is not None and child_run.status is RunStatus.waiting_for_human

    await store.runs.decide_review(
        org, child_run.id, "ok", approved=True, reviewer="a", output={"v": 7}
    )
    child_done = await execute(store, child_run)
    assert child_done.run.status is RunStatus.completed
    parent_now = await store.runs.get(out.run.id)
    assert parent_now is not None and parent_now.status is RunStatus.queued, "the child woke it"

    done = await resume(store, out)
    assert done.run.status is RunStatus.completed, done.run.error
    assert done.steps["use"].outputs == 7


async def test_retry_of_a_failed_loop_reruns_only_the_failed_iteration_onwards(
    store: Store,
) -> None:
    def item(n: int, body: Any) -> tuple[int, dict[str, str], Any]:
        return (500 if n == 1 else 200), {}, {"hit": n}

    routes = {f"/item/{i}": item for i in range(3)}
    routes["/item/0"] = lambda n, b: (200, {}, {"hit": n})
    routes["/item/2"] = lambda n, b: (200, {}, {"hit": n})
    with loopback_server(routes) as server:
        definition = {
            "name": "loop-retry",
            "nodes": [
                {
                    "id": "each",
                    "type": "for_each",
                    "config": {"items": [0, 1, 2]},
                    "body": {
                        "nodes": [
                            {
                                "id": "get",
                                "type": "api_call",
                                "config": {"url": server.url + "/item/{{ loop.item }}"},
                            }
                        ]
                    },
                }
            ],
        }
        out = await start(store, definition)
        assert out.run.status is RunStatus.failed
        assert "each_iter_2_get" not in out.steps
        await store.runs.retry(out.run.organization_id, out.run.id)
        done = await resume(store, out)
        hits = {path: server.hit_count(path) for path in routes}
    assert done.run.status is RunStatus.completed, done.run.error
    assert hits == {"/item/0": 1, "/item/1": 2, "/item/2": 1}
    assert [r["body"]["hit"] for r in done.steps["each"].outputs] == [1, 2, 1]
    assert done.steps["each"].retry_count == 1
    assert done.steps["each_iter_0_get"].retry_count == 0
    assert done.steps["each_iter_1_get"].retry_count == 1


async def test_cancelling_a_waiting_parent_cancels_its_waiting_child(store: Store) -> None:
    org = await store.organizations.ensure()
    await save_definition(
        store, org, {"name": "held-child", "nodes": [hil("ok", 1)]}, default_registry()
    )
    parent = {
        "name": "held-parent",
        "nodes": [{"id": "call", "type": "sub_workflow", "config": {"workflow": "held-child"}}],
    }
    out = await start(store, parent)
    assert out.run.status is RunStatus.waiting_for_human
    child = await store.runs.find_child(out.steps["call"].id)
    assert child is not None

    cancelled = await store.runs.request_cancel(org, out.run.id)
    assert cancelled.status is RunStatus.cancelled
    child_now = await store.runs.get(child.id)
    assert child_now is not None and child_now.status is RunStatus.cancelled
    assert (await store.runs.page_reviews(org)).items == []
    assert all(s.status is StepStatus.cancelled for s in await store.steps.list(child.id))


async def test_cancelling_a_running_child_stops_it_and_fails_the_parent_step(
    store: Store,
) -> None:
    org = await store.organizations.ensure()
    slow = "import time\ndef main(inputs):\n    time.sleep(30)\n    return 1\n"
    child = {
        "name": "slow-child",
        "nodes": [{"id": "nap", "type": "code", "config": {"inputs": {}, "code": slow}}],
    }
    await save_definition(store, org, child, default_registry())
    parent = {
        "name": "slow-parent",
        "nodes": [{"id": "call", "type": "sub_workflow", "config": {"workflow": "slow-child"}}],
    }
    run = await queue_run(store, parent, {})

    async def cancel_the_child_once_it_runs() -> None:
        while True:
            steps = await store.steps.list(run.id)
            child_run = await store.runs.find_child(steps[0].id) if steps else None
            if child_run is not None:
                nap = await store.steps.list(child_run.id)
                if nap and nap[0].status is StepStatus.running:
                    await store.runs.request_cancel(org, child_run.id)
                    return
            await asyncio.sleep(0.05)

    canceller = asyncio.create_task(cancel_the_child_once_it_runs())
    async with asyncio.timeout(20):  # the nap alone would take 30 s
        out = await execute(store, run)
    await canceller
    assert out.run.status is RunStatus.failed
    assert "cancelled" in (out.steps["call"].error or "")
    child_run = await store.runs.find_child(out.steps["call"].id)
    assert child_run is not None and child_run.status is RunStatus.cancelled
