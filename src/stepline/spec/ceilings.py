"""The operator's ceilings on what a workflow may ask for: a node's `timeout_s`.

A workflow asking for more than the server allows is refused when it is validated (on
save, on run creation, by `stepline validate`), with the field and the ceiling named: the
operator's limits are limits, not defaults. (A kind's own config ceilings, such as a code
node's `memory_mb`, are checked by its config model.)
"""

from __future__ import annotations

from typing import Any

from stepline.settings import get_settings
from stepline.spec.models import NodeSpec


def timeout_problems(
    node: NodeSpec, kind: Any, base: str, default_timeout_s: float | None
) -> list[tuple[str, str]]:
    """(path, message) for each ceiling the node's effective `timeout_s` is over.

    `kind` may declare `timeout_ceiling() -> (seconds, setting name)` for a tighter bound
    of its own (the code kind does).
    """
    settings = get_settings()
    problems: list[tuple[str, str]] = []
    path = f"{base}.timeout_s"
    if node.timeout_s is not None and node.timeout_s > settings.step_max_timeout_s:
        problems.append(
            (
                path,
                _over(node.timeout_s, settings.step_max_timeout_s, "STEPLINE_STEP_MAX_TIMEOUT_S"),
            )
        )
        return problems
    ceiling = getattr(kind, "timeout_ceiling", None)
    timeout_s = node.timeout_s if node.timeout_s is not None else default_timeout_s
    if ceiling is not None and timeout_s is not None:
        limit, setting = ceiling()
        if timeout_s > limit:
            where = "" if node.timeout_s is not None else " (from defaults.timeout_s)"
            problems.append((path, _over(timeout_s, limit, setting) + where))
    return problems


def defaults_problems(default_timeout_s: float | None) -> list[tuple[str, str]]:
    limit = get_settings().step_max_timeout_s
    if default_timeout_s is not None and default_timeout_s > limit:
        return [
            ("$.defaults.timeout_s", _over(default_timeout_s, limit, "STEPLINE_STEP_MAX_TIMEOUT_S"))
        ]
    return []


def _over(value: float, limit: float, setting: str) -> str:
    return f"timeout_s {value:g} is over this server's ceiling of {limit:g} s ({setting})"
