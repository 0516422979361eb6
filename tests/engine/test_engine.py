"""The engine end to end on a real SQLite file: routing, the step record, failures, retries."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from stepline.records import ErrorCategory, ErrorStage, RunStatus, StepStatus
from stepline.store import Store
from support.engine import run_workflow
from support.http_server import loopback_server

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")
    await store.upgrade()
    yield store
    await store.close()


def order_triage() -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / "order-triage.yaml").read_text())


def code(body: str, inputs: dict[str, Any] | None = None, **node: Any) -> dict[str, Any]:
    return {"type": "code", "config": {"inputs": inputs or {}, "code": body}, **node}


def wf(nodes: list[dict[str, Any]], edges: list[tuple[str, ...]], **extra: Any) -> dict[str, Any]:
    return {
        "name": extra.pop("name", "test"),
        "nodes": nodes,
        "edges": [
            {"from": e[0], "to": e[1], **({"handle": e[2]} if len(e) > 2 else {})} for e in edges
        ],
        **extra,
    }


async def test_normative_example_routes_high_risk_to_review(store: Store) -> None:
    out = await run_workflow(store, order_triage(), {"amount": 700, "customer": "Ada"})
    assert out.run.status is RunStatus.completed
    assert out.run.output == {"message": "Review Ada: risk 0.7"}
    assert out.steps["approve"].status is StepStatus.skipped
    assert "route" in (out.steps["approve"].status_reason or "")
    assert out.steps["flag"].status is StepStatus.completed
    assert out.steps["route"].outputs["branch"] == "high"
    assert out.steps["score"].outputs == {"risk": 0.7}
    assert out.steps["score"].inputs["inputs"] == {"amount": 700}


async def test_normative_example_routes_low_risk_to_approve(store: Store) -> None:
    out = await run_workflow(store, order_triage(), {"amount": 100, "customer": "Bo"})
    assert out.run.status is RunStatus.completed
    assert out.run.output == {"message": "Approved Bo"}
    assert out.steps["flag"].status is StepStatus.skipped
    assert out.steps["report"].status is StepStatus.completed


async def test_every_step_goes_pending_running_completed_with_its_record(store: Store) -> None:
    out = await run_workflow(store, order_triage(), {"amount": 700, "customer": "Ada"})
    assert out.transitions.statuses["score"] == [
        StepStatus.pending,
        StepStatus.running,
        StepStatus.completed,
    ]
    assert out.transitions.statuses["approve"] == [StepStatus.pending, StepStatus.skipped]
    running = next(
        s for s in out.transitions.snapshots if s.step_id == "score" and s.status == "running"
    )
    assert running.started_at is not None and running.inputs == {
        "inputs": {"amount": 700},
        "code": order_triage()["nodes"][0]["config"]["code"],
    }
    assert running.outputs is None and running.completed_at is None
    score = out.steps["score"]
    assert score.completed_at is not None and score.started_at is not None
    assert score.duration_ms is not None and score.duration_ms >= 0
    assert score.node_type == "code" and score.node_label == "score"
    assert score.workflow_version == out.run.workflow_version
    assert score.organization_id == out.run.organization_id
    assert [a.status for a in score.attempts] == [StepStatus.completed]
    assert out.run.step_counts == {"completed": 4, "skipped": 1}


async def test_independent_branches_overlap_in_time(store: Store) -> None:
    sleepy = "import time\ndef main(inputs):\n    time.sleep(0.4)\n    return {}\n"
    out = await run_workflow(
        store,
        wf([{"id": "a", **code(sleepy)}, {"id": "b", **code(sleepy)}], []),
    )
    a, b = out.steps["a"], out.steps["b"]
    assert a.started_at and a.completed_at and b.started_at and b.completed_at
    assert a.started_at < b.completed_at and b.started_at < a.completed_at


async def test_skip_propagates_down_an_inactive_chain_and_join_still_runs(store: Store) -> None:
    definition = wf(
        [
            {
                "id": "gate",
                "type": "conditional",
                "config": {"branches": [{"name": "yes", "when": "inputs.go"}]},
            },
            {"id": "y1", "type": "reshape", "config": {"output": {"v": 1}}},
            {"id": "y2", "type": "reshape", "config": {"output": {"v": 2}}},
            {"id": "n1", "type": "reshape", "config": {"output": {"v": 3}}},
            {
                "id": "join",
                "type": "merge_dicts",
                "config": {"inputs": ["{{ nodes.y2.output }}", "{{ nodes.n1.output }}"]},
            },
        ],
        [
            ("gate", "y1", "yes"),
            ("y1", "y2"),
            ("gate", "n1", "else"),
            ("y2", "join"),
            ("n1", "join"),
        ],
    )
    out = await run_workflow(store, definition, {"go": False})
    assert out.run.status is RunStatus.completed
    assert out.steps["y1"].status is StepStatus.skipped
    assert out.steps["y2"].status is StepStatus.skipped
    assert out.steps["y2"].status_reason == "no active inbound path: 'y1' was skipped"
    assert out.steps["join"].status is StepStatus.completed
    assert out.steps["join"].outputs == {"v": 3}


async def test_failing_step_fails_run_skips_downstream_and_keeps_independent_branch(
    store: Store,
) -> None:
    definition = wf(
        [
            {
                "id": "boom",
                **code("def main(inputs):\n    print('about to fail')\n    return 1 / 0\n"),
            },
            {"id": "after", "type": "reshape", "config": {"output": {"x": 1}}},
            {"id": "later", "type": "reshape", "config": {"output": {"x": 2}}},
            {"id": "other", "type": "reshape", "config": {"output": {"ok": True}}},
        ],
        [("boom", "after"), ("after", "later")],
    )
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.failed
    assert out.run.error == "step 'boom' failed: ZeroDivisionError: division by zero"
    assert out.run.error_details is not None
    assert out.run.error_details.context == {
        "node_id": "boom",
        "step_id": "boom",
        "error_stage": "execution",
    }
    boom = out.steps["boom"]
    assert boom.status is StepStatus.error
    assert boom.error_stage is ErrorStage.execution
    assert boom.error_category is ErrorCategory.permanent
    assert boom.error_details is not None and boom.error_details.type == "ZeroDivisionError"
    assert "1 / 0" in (boom.error_details.traceback or "")
    assert "about to fail" in (boom.step_metadata or {}).get("stdout", "")
    assert out.steps["after"].status is StepStatus.skipped
    assert out.steps["after"].status_reason == "upstream failed: boom"
    assert out.steps["later"].status_reason == "upstream failed: boom"
    assert out.steps["other"].status is StepStatus.completed


async def test_on_error_continue_records_the_error_and_runs_downstream(store: Store) -> None:
    definition = wf(
        [
            {
                "id": "flaky",
                "on_error": "continue",
                **code("def main(inputs):\n    raise KeyError('nope')\n"),
            },
            {
                "id": "next",
                "type": "reshape",
                "config": {
                    "output": {"got": "{{ nodes.flaky.output }}", "err": "{{ nodes.flaky.error }}"}
                },
            },
        ],
        [("flaky", "next")],
    )
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed
    assert out.steps["flaky"].status is StepStatus.error
    assert out.steps["next"].outputs == {"got": None, "err": "KeyError: 'nope'"}


async def test_missing_template_key_is_an_input_collection_error(store: Store) -> None:
    definition = wf(
        [{"id": "shape", "type": "reshape", "config": {"output": {"v": "{{ inputs.absent }}"}}}],
        [],
    )
    out = await run_workflow(store, definition, {"present": 1})
    step = out.steps["shape"]
    assert step.status is StepStatus.error
    assert step.error_stage is ErrorStage.input_collection
    assert "absent" in (step.error or "")
    assert out.run.status is RunStatus.failed


async def test_single_expression_template_keeps_the_value_type(store: Store) -> None:
    definition = wf(
        [
            {
                "id": "shape",
                "type": "reshape",
                "config": {
                    "output": {
                        "items": "{{ inputs.items }}",
                        "n": "{{ inputs.items | length }}",
                        "text": "n={{ inputs.items | length }}",
                    }
                },
            }
        ],
        [],
    )
    out = await run_workflow(store, definition, {"items": [1, 2, 3]})
    assert out.steps["shape"].outputs == {"items": [1, 2, 3], "n": 3, "text": "n=3"}


async def test_transient_http_error_is_retried_into_one_record(store: Store) -> None:
    def flaky(n: int, _body: Any) -> tuple[int, dict[str, str], Any]:
        return (503, {}, {"down": True}) if n == 1 else (200, {}, {"ok": n})

    with loopback_server({"/flaky": flaky}) as server:
        definition = wf(
            [
                {
                    "id": "call",
                    "type": "api_call",
                    "config": {"url": f"{server.url}/flaky"},
                    "retry": {"max_attempts": 3, "initial_delay_s": 0, "jitter": False},
                }
            ],
            [],
        )
        out = await run_workflow(store, definition)
    call = out.steps["call"]
    assert call.status is StepStatus.completed
    assert call.outputs["body"] == {"ok": 2}
    assert call.retry_count == 1
    assert [(a.status, a.error_category) for a in call.attempts] == [
        (StepStatus.error, ErrorCategory.transient),
        (StepStatus.completed, None),
    ]
    assert server.hit_count("/flaky") == 2


async def test_permanent_http_error_is_not_retried(store: Store) -> None:
    with loopback_server({"/gone": lambda n, b: (404, {}, {"missing": True})}) as server:
        definition = wf(
            [
                {
                    "id": "call",
                    "type": "api_call",
                    "config": {"url": f"{server.url}/gone"},
                    "retry": {"max_attempts": 3, "initial_delay_s": 0},
                }
            ],
            [],
        )
        out = await run_workflow(store, definition)
    call = out.steps["call"]
    assert call.status is StepStatus.error
    assert call.error_category is ErrorCategory.permanent
    assert call.retry_count == 0 and len(call.attempts) == 1
    assert server.hit_count("/gone") == 1


async def test_step_timeout_kills_the_code_and_says_it_timed_out(store: Store) -> None:
    sleepy = "import time\ndef main(inputs):\n    time.sleep(30)\n"
    out = await run_workflow(store, wf([{"id": "slow", "timeout_s": 0.5, **code(sleepy)}], []))
    slow = out.steps["slow"]
    assert slow.status is StepStatus.error
    assert slow.error_category is ErrorCategory.transient
    assert slow.error_stage is ErrorStage.execution
    assert "timed out after 0.5 s" in (slow.error or "")


async def test_run_timeout_cancels_what_is_unfinished(store: Store) -> None:
    sleepy = "import time\ndef main(inputs):\n    time.sleep(30)\n"
    definition = wf(
        [
            {"id": "slow", **code(sleepy)},
            {"id": "after", "type": "reshape", "config": {"output": {}}},
        ],
        [("slow", "after")],
        timeout_s=0.5,
    )
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.failed
    assert out.run.error == "the run timed out after 0.5 s"
    assert out.steps["slow"].status is StepStatus.cancelled
    assert out.steps["after"].status is StepStatus.cancelled


async def test_run_output_defaults_to_the_end_node_and_pins_the_version(store: Store) -> None:
    definition = wf(
        [
            {"id": "a", "type": "reshape", "config": {"output": {"v": "{{ inputs.v }}"}}},
            {"id": "end", "type": "end", "config": {"output": "{{ nodes.a.output.v * 2 }}"}},
        ],
        [("a", "end")],
    )
    first = await run_workflow(store, definition, {"v": 2})
    definition["description"] = "changed"
    second = await run_workflow(store, definition, {"v": 5})
    assert (first.run.output, second.run.output) == (4, 10)
    assert first.run.workflow_id == second.run.workflow_id
    assert (first.run.workflow_version, second.run.workflow_version) == (1, 2)
    again = await run_workflow(store, definition, {"v": 1})
    assert again.run.workflow_version == 2
    pinned = await store.workflows.version(first.run.workflow_id, 1)
    assert pinned is not None and "description" not in pinned.definition
