"""Workflow definitions of the SDK tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from support.workflows import edge, node

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ADA = {"amount": 700, "customer": "Ada"}
"""Inputs of order-triage that take every branch but the approval."""
INPUTS_LIMIT = 64 * 1024
"""The largest run inputs the SDK tests' server takes (a 413 past it)."""


def triage(name: str) -> dict[str, Any]:
    """The order-triage example under a name of the test's own."""
    definition: dict[str, Any] = yaml.safe_load((EXAMPLES / "order-triage.yaml").read_text())
    definition["name"] = name
    return definition


def fan_out(name: str, width: int) -> dict[str, Any]:
    """A workflow of `width` independent reshape steps joined by one end step."""
    nodes = [node(f"n{i:03d}", "reshape", {"output": {"i": i}}) for i in range(width)]
    nodes.append(node("done", "end", {"output": "{{ nodes.n000.output }}"}))
    return {"name": name, "nodes": nodes, "edges": [edge(n["id"], "done") for n in nodes[:-1]]}


def sleeper(name: str, seconds: float) -> dict[str, Any]:
    """A code step that sleeps `seconds`, then an end step."""
    code = f"import time\n\ndef main(inputs):\n    time.sleep({seconds})\n    return {{}}\n"
    return {
        "name": name,
        "nodes": [
            node("nap", "code", {"inputs": {}, "code": code}),
            node("end", "end", {"output": "{{ nodes.nap.output }}"}),
        ],
        "edges": [edge("nap", "end")],
    }


GATED = """
import os

def main(inputs):
    if not os.path.exists(inputs["gate"]):
        raise ValueError("the gate is closed")
    return {"doubled": inputs["n"] * 2}
"""


def gated(name: str, gate: Path) -> dict[str, Any]:
    """seed -> gated: the code step fails until the file `gate` exists."""
    return {
        "name": name,
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
