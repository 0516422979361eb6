"""The workflow graph: neighbours, stable order, ancestry and cycles, at 10,000 nodes too."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from stepline.spec.graph import GraphCycleError, GraphError, WorkflowGraph
from stepline.spec.models import EdgeSpec, NodeSpec, WorkflowSpec


def make_graph(node_ids: list[str], edges: list[tuple[str, str]]) -> WorkflowGraph:
    spec = WorkflowSpec(
        name="g",
        nodes=[NodeSpec(id=node_id, type="code") for node_id in node_ids],
        edges=[EdgeSpec.model_validate({"from": a, "to": b}) for a, b in edges],
    )
    return WorkflowGraph(spec)


@pytest.fixture
def diamond() -> WorkflowGraph:
    # start -> left, right -> join; lone is unconnected.
    return make_graph(
        ["start", "right", "left", "join", "lone"],
        [("start", "right"), ("start", "left"), ("right", "join"), ("left", "join")],
    )


def test_inbound_and_outbound_follow_edge_order(diamond: WorkflowGraph) -> None:
    assert [e.target for e in diamond.outbound("start")] == ["right", "left"]
    assert [e.source for e in diamond.inbound("join")] == ["right", "left"]
    assert diamond.inbound("start") == []


def test_nodes_keep_definition_order(diamond: WorkflowGraph) -> None:
    assert list(diamond.nodes) == ["start", "right", "left", "join", "lone"]


def test_roots_include_unconnected_nodes(diamond: WorkflowGraph) -> None:
    assert diamond.roots() == ["start", "lone"]


def test_topological_order_breaks_ties_by_definition_order(diamond: WorkflowGraph) -> None:
    assert diamond.topological_order() == ["start", "right", "left", "join", "lone"]


def test_topological_order_puts_late_defined_upstream_first() -> None:
    graph = make_graph(["b", "c", "a"], [("a", "b"), ("b", "c")])
    assert graph.topological_order() == ["a", "b", "c"]


def test_upstream_and_downstream_exclude_the_node(diamond: WorkflowGraph) -> None:
    assert diamond.upstream("join") == {"start", "right", "left"}
    assert diamond.upstream("start") == frozenset()
    assert diamond.downstream("start") == {"right", "left", "join"}
    assert diamond.downstream("lone") == frozenset()


def test_upstream_is_cached(diamond: WorkflowGraph) -> None:
    assert diamond.upstream("join") is diamond.upstream("join")


def test_is_upstream(diamond: WorkflowGraph) -> None:
    assert diamond.is_upstream("start", "join")
    assert not diamond.is_upstream("right", "left")
    assert not diamond.is_upstream("join", "join")


def test_find_cycle_returns_closed_path() -> None:
    graph = make_graph(["a", "b", "c", "d"], [("a", "b"), ("b", "c"), ("c", "d"), ("d", "b")])
    assert graph.find_cycle() == ["b", "c", "d", "b"]


def test_find_cycle_is_none_for_dag(diamond: WorkflowGraph) -> None:
    assert diamond.find_cycle() is None


def test_self_loop_is_a_cycle() -> None:
    assert make_graph(["a"], [("a", "a")]).find_cycle() == ["a", "a"]


def test_topological_order_of_cycle_raises_naming_it() -> None:
    graph = make_graph(["a", "b"], [("a", "b"), ("b", "a")])
    with pytest.raises(GraphCycleError, match="a -> b -> a") as caught:
        graph.topological_order()
    assert caught.value.cycle == ["a", "b", "a"]


def test_upstream_still_answers_on_cyclic_graph() -> None:
    graph = make_graph(["x", "a", "b"], [("x", "a"), ("a", "b"), ("b", "a")])
    assert graph.upstream("a") == {"x", "b"}
    assert graph.is_upstream("x", "b")
    assert not graph.is_upstream("b", "x")


def test_edge_to_unknown_node_is_graph_error() -> None:
    with pytest.raises(GraphError, match="unknown node 'ghost'"):
        make_graph(["a"], [("a", "ghost")])


def test_duplicate_node_id_is_graph_error() -> None:
    with pytest.raises(GraphError, match="duplicate node id 'a'"):
        make_graph(["a", "a"], [])


def test_unknown_node_query_is_key_error(diamond: WorkflowGraph) -> None:
    with pytest.raises(KeyError, match="ghost"):
        diamond.upstream("ghost")


def test_from_parts_builds_without_a_whole_spec() -> None:
    graph = WorkflowGraph.from_parts(
        [NodeSpec(id="a", type="x"), NodeSpec(id="b", type="x")],
        [EdgeSpec.model_validate({"from": "a", "to": "b"})],
    )
    assert graph.topological_order() == ["a", "b"]


def test_ten_thousand_node_chain_is_fast_and_not_recursive() -> None:
    ids = [f"n{i}" for i in range(10_000)]
    started = time.perf_counter()
    graph = make_graph(ids[::-1], list(itertools.pairwise(ids)))
    assert graph.topological_order() == ids
    assert graph.find_cycle() is None
    assert len(graph.upstream("n9999")) == 9_999
    assert len(graph.downstream("n0")) == 9_999
    assert graph.is_upstream("n0", "n9999")
    assert not graph.is_upstream("n9999", "n0")
    assert all(graph.is_upstream(a, b) for a, b in itertools.pairwise(ids))
    assert time.perf_counter() - started < 5


def test_ten_thousand_node_random_dag_order_respects_every_edge() -> None:
    rng = random.Random(7)
    ids = [f"n{i}" for i in range(10_000)]
    edges = [(ids[rng.randrange(i)], ids[i]) for i in range(1, 10_000) for _ in range(3)]
    started = time.perf_counter()
    graph = make_graph(ids, edges)
    position = {node_id: i for i, node_id in enumerate(graph.topological_order())}
    assert all(position[a] < position[b] for a, b in edges)
    assert graph.find_cycle() is None
    assert "n0" in graph.upstream("n9999")
    assert time.perf_counter() - started < 5
