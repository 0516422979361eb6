"""How steps are ordered for people: each loop's iterations right after the loop's step."""

from __future__ import annotations

from dataclasses import dataclass

from stepline.cli.render import tree_order


@dataclass
class Step:
    step_id: str


def test_tree_order_puts_iterations_under_their_loop_and_keeps_execution_order() -> None:
    executed = [
        "prep",
        "outer",
        "report",
        "outer_iter_0_inner",
        "outer_iter_0_inner_iter_0_cell",
        "outer_iter_1_inner",
        "outer_iter_0_inner_iter_1_cell",
        "outer_iter_1_inner_iter_0_cell",
        "odd_iter_9_name",  # looks like an iteration, but no step `odd` exists
    ]
    ordered = [s.step_id for s in tree_order([Step(i) for i in executed])]
    assert ordered == [
        "prep",
        "outer",
        "outer_iter_0_inner",
        "outer_iter_0_inner_iter_0_cell",
        "outer_iter_0_inner_iter_1_cell",
        "outer_iter_1_inner",
        "outer_iter_1_inner_iter_0_cell",
        "report",
        "odd_iter_9_name",
    ]
