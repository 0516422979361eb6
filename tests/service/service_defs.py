"""What the service tests share: small definitions (reshape nodes only: nothing leaves the
process) and a worker wake-up that counts."""

from __future__ import annotations

import uuid
from typing import Any


def two_inputs() -> dict[str, Any]:
    """`greet` reshapes inputs `name` and `greeting` (both required strings) -> `shout`."""
    return {
        "name": f"greeter-{uuid.uuid4().hex[:8]}",
        "inputs": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "greeting": {"type": "string"}},
            "required": ["name", "greeting"],
        },
        "nodes": [
            {
                "id": "greet",
                "type": "reshape",
                "config": {"output": {"text": "{{ inputs.greeting }}, {{ inputs.name }}"}},
            },
            {"id": "shout", "type": "reshape", "config": {"output": {"done": True}}},
        ],
        "edges": [{"from": "greet", "to": "shout"}],
    }


class Wakes:
    def __init__(self) -> None:
        self.count = 0
        self.cancelled: list[object] = []

    def wake(self) -> None:
        self.count += 1

    def cancel(self, run_id: object) -> bool:
        self.cancelled.append(run_id)
        return False
