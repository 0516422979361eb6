"""The bench's workflows as stepline definitions (plain dicts, as a user would write them).

Every step returns a small dict. `reshape` is the cheapest real node kind: it renders its
`output` templates, so a chain step reads the previous step's output like any user step.
"""

from __future__ import annotations

from typing import Any

CODE = "def main(inputs):\n    return {'i': inputs['i'] + 1}\n"
"""What each code step runs: the same work as a chain step, in the sandbox."""


def chain(size: int) -> dict[str, Any]:
    """`size` reshape steps in a row, each adding one to the previous step's output."""
    nodes = [{"id": "s0", "type": "reshape", "config": {"output": {"i": 1}}}]
    for i in range(1, size):
        output = {"i": f"{{{{ nodes.s{i - 1}.output.i + 1 }}}}"}
        nodes.append({"id": f"s{i}", "type": "reshape", "config": {"output": output}})
    return {"name": f"bench-chain-{size}", "nodes": nodes, "edges": _links(size, "s")}


def code_chain(size: int) -> dict[str, Any]:
    """`size` code steps in a row, each adding one to the previous step's output."""
    nodes = [{"id": "c0", "type": "code", "config": {"inputs": {"i": 0}, "code": CODE}}]
    for i in range(1, size):
        inputs = {"i": f"{{{{ nodes.c{i - 1}.output.i }}}}"}
        nodes.append({"id": f"c{i}", "type": "code", "config": {"inputs": inputs, "code": CODE}})
    return {"name": f"bench-code-{size}", "nodes": nodes, "edges": _links(size, "c")}


def fanout(size: int) -> dict[str, Any]:
    """`size` independent reshape steps, then one join step that depends on all of them."""
    nodes: list[dict[str, Any]] = [
        {"id": f"f{i}", "type": "reshape", "config": {"output": {"i": i}}} for i in range(size)
    ]
    # `nodes` in a template is every finished node's state: the join sees all the leaves.
    join = {"n": "{{ nodes | length }}"}
    nodes.append({"id": "join", "type": "reshape", "config": {"output": join}})
    edges = [{"from": f"f{i}", "to": "join"} for i in range(size)]
    return {"name": f"bench-fanout-{size}", "nodes": nodes, "edges": edges}


def expected_output(kind: str, size: int) -> dict[str, int]:
    return {"n": size} if kind == "fanout" else {"i": size}


def step_count(kind: str, size: int) -> int:
    return size + 1 if kind == "fanout" else size


def _links(size: int, prefix: str) -> list[dict[str, str]]:
    return [{"from": f"{prefix}{i - 1}", "to": f"{prefix}{i}"} for i in range(1, size)]
