"""Loops end to end on a real SQLite file: every iteration's steps on the record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from stepline.nodes.registry import default_registry
from stepline.records import RunStatus, StepStatus
from stepline.spec.validate import validate_workflow
from stepline.store import Store
from support.engine import metadata, run_workflow


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.connect(f"sqlite+aiosqlite:///{tmp_path / 'loops.db'}")
    await store.upgrade()
    yield store
    await store.close()


def edges(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"from": a, "to": b} for a, b in pairs]


def for_each(
    node_id: str, items: Any, nodes: list[dict[str, Any]], links: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    config = {"items": items, **extra.pop("config", {})}
    return {
        "id": node_id,
        "type": "for_each",
        "config": config,
        "body": {"nodes": nodes, "edges": links, **extra.pop("body", {})},
        **extra,
    }


def reshape(node_id: str, output: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "reshape", "config": {"output": output}}


def code(node_id: str, body: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {"id": node_id, "type": "code", "config": {"inputs": inputs, "code": body}}


async def test_for_each_records_every_iteration_and_outputs_the_ordered_list(store: Store) -> None:
    definition = {
        "name": "each",
        "inputs": {"type": "object"},
        "nodes": [
            reshape("prep", {"factor": 10}),
            for_each(
                "loop1",
                "{{ inputs.rows }}",
                [
                    reshape("scale", {"v": "{{ loop.item * nodes.prep.output.factor }}"}),
                    reshape("tag", {"v": "{{ nodes.scale.output.v }}", "i": "{{ loop.index }}"}),
                ],
                edges(("scale", "tag")),
            ),
        ],
        "edges": edges(("prep", "loop1")),
    }
    out = await run_workflow(store, definition, {"rows": [1, 2, 3]})
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["loop1"].outputs == [{"v": 10, "i": 0}, {"v": 20, "i": 1}, {"v": 30, "i": 2}]
    assert metadata(out.steps["loop1"]) == {"iterations": 3}
    assert out.steps["loop1"].loop_id is None
    for i in range(3):
        step = out.steps[f"loop1_iter_{i}_tag"]
        assert step.status is StepStatus.completed
        assert step.node_id == "tag"
        assert step.loop_id == "loop1"
        assert step.iteration == i
        assert step.iteration_context is not None
        frames = [f.model_dump() for f in step.iteration_context.frames]
        assert frames == [{"container_id": "loop1", "container_type": "for_each", "iteration": i}]
    assert len(out.steps) == 2 + 3 * 2
    # Steps of an iteration come after the loop step in the run's order.
    assert out.steps["loop1_iter_0_scale"].seq > out.steps["loop1"].seq


async def test_for_each_with_concurrency_overlaps_iterations_and_keeps_order(store: Store) -> None:
    body = "import time\ndef main(inputs):\n    time.sleep(0.3)\n    return inputs['n'] * 2\n"
    definition = {
        "name": "parallel",
        "nodes": [
            for_each(
                "fan",
                [5, 4, 3, 2],
                [code("work", body, {"n": "{{ loop.item }}"})],
                [],
                config={"concurrency": 4},
            )
        ],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["fan"].outputs == [10, 8, 6, 4]
    spans = [(s.started_at, s.completed_at) for s in out.steps.values() if s.node_id == "work"]
    assert len(spans) == 4
    latest_start = max(start for start, _ in spans if start)
    earliest_end = min(end for _, end in spans if end)
    assert latest_start < earliest_end, "the four iterations never ran at the same time"


async def test_nested_loops_chain_step_ids_and_iteration_context(store: Store) -> None:
    inner = for_each(
        "inner",
        "{{ loop.item }}",
        [reshape("cell", {"outer": "{{ loop.parent.index }}", "value": "{{ loop.item }}"})],
        [],
    )
    definition = {
        "name": "nested",
        "nodes": [for_each("outer", [["a", "b"], ["c"]], [inner], [])],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["outer"].outputs == [
        [{"outer": 0, "value": "a"}, {"outer": 0, "value": "b"}],
        [{"outer": 1, "value": "c"}],
    ]
    cell = out.steps["outer_iter_0_inner_iter_1_cell"]
    assert cell.loop_id == "inner"
    assert cell.iteration == 1
    assert cell.iteration_context is not None
    assert [(f.container_id, f.iteration) for f in cell.iteration_context.frames] == [
        ("outer", 0),
        ("inner", 1),
    ]
    inner_step = out.steps["outer_iter_1_inner"]
    assert inner_step.loop_id == "outer"
    assert inner_step.iteration == 1
    assert "outer_iter_1_inner_iter_0_cell" in out.steps


async def test_a_failed_iteration_fails_the_loop_and_the_run(store: Store) -> None:
    body = "def main(inputs):\n    return 10 // inputs['n']\n"
    definition = {
        "name": "fails",
        "nodes": [
            for_each("loop1", [1, 0, 2], [code("divide", body, {"n": "{{ loop.item }}"})], []),
            reshape("after", {"x": 1}),
        ],
        "edges": edges(("loop1", "after")),
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.failed
    loop = out.steps["loop1"]
    assert loop.status is StepStatus.error
    assert "iteration 1 failed" in (loop.error or "")
    assert "loop1_iter_1_divide" in (loop.error or "")
    assert out.steps["loop1_iter_1_divide"].status is StepStatus.error
    assert "loop1_iter_2_divide" not in out.steps, "no iteration starts after a failure"
    assert out.steps["after"].status is StepStatus.skipped


async def test_on_error_continue_puts_the_failure_in_the_list(store: Store) -> None:
    body = "def main(inputs):\n    return 10 // inputs['n']\n"
    definition = {
        "name": "continues",
        "nodes": [
            for_each(
                "loop1",
                [1, 0, 2],
                [code("divide", body, {"n": "{{ loop.item }}"})],
                [],
                on_error="continue",
            )
        ],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed, out.run.error
    results = out.steps["loop1"].outputs
    assert results[0] == 10 and results[2] == 5
    assert results[1]["iteration"] == 1
    assert results[1]["step_id"] == "loop1_iter_1_divide"
    assert "ZeroDivisionError" in results[1]["error"]
    assert metadata(out.steps["loop1"]) == {"iterations": 3, "failed_iterations": [1]}


def while_loop(condition: str, max_iterations: int, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "again",
        "type": "while_loop",
        "config": {"condition": condition, "max_iterations": max_iterations},
        "body": {"nodes": nodes, "edges": []},
    }


async def test_while_loop_stops_when_its_condition_turns_false(store: Store) -> None:
    step = reshape("step", {"total": "{{ (loop.previous.total if loop.previous else 0) + 5 }}"})
    definition = {
        "name": "while",
        "nodes": [while_loop("loop.previous is none or loop.previous.total < 12", 10, [step])],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed, out.run.error
    loop = out.steps["again"]
    assert loop.outputs == [{"total": 5}, {"total": 10}, {"total": 15}]
    assert metadata(loop) == {"iterations": 3, "termination_reason": "condition_false"}
    assert out.steps["again_iter_2_step"].iteration == 2


async def test_while_loop_records_reaching_max_iterations(store: Store) -> None:
    definition = {
        "name": "bounded",
        "nodes": [while_loop("true", 3, [reshape("tick", "{{ loop.index }}")])],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.completed, out.run.error
    assert out.steps["again"].outputs == [0, 1, 2]
    assert metadata(out.steps["again"]) == {
        "iterations": 3,
        "termination_reason": "max_iterations_reached",
    }


async def test_while_loop_records_an_error_as_its_termination_reason(store: Store) -> None:
    body = "def main(inputs):\n    raise ValueError('bad row')\n"
    definition = {
        "name": "erring",
        "nodes": [while_loop("true", 5, [code("work", body, {})])],
    }
    out = await run_workflow(store, definition)
    assert out.run.status is RunStatus.failed
    loop = out.steps["again"]
    assert loop.status is StepStatus.error
    assert loop.step_metadata is not None
    assert loop.step_metadata["termination_reason"] == "error"
    assert "again_iter_1_work" not in out.steps


def issues_of(definition: dict[str, Any]) -> list[tuple[str, str]]:
    _, issues = validate_workflow(definition, default_registry())
    return [(issue.path, issue.code) for issue in issues]


def test_validation_requires_a_body_on_loops_and_only_there() -> None:
    found = issues_of(
        {
            "name": "v",
            "nodes": [
                {"id": "l", "type": "for_each", "config": {"items": [1]}},
                {**reshape("r", 1), "body": {"nodes": [reshape("x", 1)]}},
            ],
        }
    )
    assert ("$.nodes[0].body", "config") in found
    assert ("$.nodes[1].body", "config") in found


def test_validation_checks_body_nodes_with_their_own_paths() -> None:
    definition = {
        "name": "v",
        "nodes": [
            for_each(
                "l1",
                [1],
                [reshape("a", "{{ nodes.b.output }}"), {"id": "b", "type": "nope"}],
                edges(("a", "ghost")),
            ),
            for_each("l2", [1], [reshape("c", "{{ nodes.a.output }}")], []),
            reshape("after", "{{ nodes.a.output }}"),
        ],
        "edges": edges(("l1", "after")),
    }
    found = issues_of(definition)
    assert ("$.nodes[0].body.nodes[1].type", "unknown_type") in found
    assert ("$.nodes[0].body.edges[0].to", "unknown_node") in found
    assert ("$.nodes[0].body.nodes[0].config.output", "not_upstream") in found
    # A node inside one body is not readable from another body, nor from outside.
    assert ("$.nodes[1].body.nodes[0].config.output", "not_upstream") in found
    assert ("$.nodes[2].config.output", "not_upstream") in found


def test_validation_rejects_duplicate_ids_across_bodies_and_retry_on_loops() -> None:
    definition = {
        "name": "v",
        "nodes": [
            {**for_each("l1", [1], [reshape("x", 1)], []), "retry": {"max_attempts": 2}},
            reshape("x", 2),
        ],
    }
    found = issues_of(definition)
    assert ("$.nodes[0].body.nodes[0].id", "duplicate_id") in found
    assert ("$.nodes[0].retry", "config") in found


def test_a_valid_nested_loop_validates_clean() -> None:
    inner = for_each("inner", "{{ loop.item }}", [reshape("cell", "{{ nodes.top.output }}")], [])
    definition = {
        "name": "v",
        "nodes": [reshape("top", 1), for_each("outer", [[1]], [inner], [])],
        "edges": edges(("top", "outer")),
    }
    assert issues_of(definition) == []


async def test_steps_filter_by_loop_id_and_iteration(store: Store) -> None:
    inner = for_each("inner", "{{ loop.item }}", [reshape("cell", "{{ loop.item }}")], [])
    definition = {"name": "filters", "nodes": [for_each("outer", [[1, 2], [3]], [inner], [])]}
    out = await run_workflow(store, definition)
    org = out.run.organization_id
    page = await store.steps.page(out.run.id, organization_id=org, loop_id="inner", limit=100)
    assert [s.step_id for s in page.items] == [
        "outer_iter_0_inner_iter_0_cell",
        "outer_iter_0_inner_iter_1_cell",
        "outer_iter_1_inner_iter_0_cell",
    ]
    page = await store.steps.page(
        out.run.id, organization_id=org, loop_id="inner", iteration=0, limit=100
    )
    assert [s.step_id for s in page.items] == [
        "outer_iter_0_inner_iter_0_cell",
        "outer_iter_1_inner_iter_0_cell",
    ]
    page = await store.steps.page(out.run.id, organization_id=org, loop_id="outer", limit=100)
    assert [s.step_id for s in page.items] == ["outer_iter_0_inner", "outer_iter_1_inner"]
