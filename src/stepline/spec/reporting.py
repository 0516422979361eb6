"""How validation reports a problem: JSON paths, pydantic's messages in plain words,
previews of values, suggestions; and what still parses of a broken document."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from stepline.spec.models import NodeSpec
from stepline.spec.templates import child_path

PREVIEW = 80
_M = TypeVar("_M", bound=BaseModel)


def salvage(raw: Any, model: type[_M]) -> list[tuple[int, _M]]:
    """The items of a list that parse alone (their errors are already reported)."""
    if not isinstance(raw, list):
        return []
    parsed: list[tuple[int, _M]] = []
    for index, item in enumerate(raw):
        try:
            parsed.append((index, model.model_validate(item)))
        except ValidationError:
            continue
    return parsed


def salvage_nodes(raw: Any) -> list[tuple[int, NodeSpec, bool]]:
    """Each node with an id, and whether it parsed (a broken one is a bare placeholder)."""
    if not isinstance(raw, list):
        return []
    found: list[tuple[int, NodeSpec, bool]] = []
    for index, item in enumerate(raw):
        try:
            found.append((index, NodeSpec.model_validate(item), True))
        except ValidationError:
            node_id = item.get("id") if isinstance(item, Mapping) else None
            if isinstance(node_id, str):
                found.append((index, NodeSpec.model_construct(id=node_id, type=""), False))
    return found


def loc_path(base: str, loc: Iterable[int | str]) -> str:
    path = base
    for part in loc:
        path = child_path(path, part)
    return path


def join_path(base: str, below: str) -> str:
    """`below` under `base` (the config's path), however a kind spells it.

    Accepted: `$.config.branches[0].when` (from the node, as stored on the node),
    `$.branches[0].when`, `branches[0].when`, `.branches[0].when` and `[0]`.
    """
    if below.startswith("$"):
        below = below[1:]
        if below == ".config" or below.startswith((".config.", ".config[")):
            below = below[len(".config") :]
    if below.startswith(("[", ".")):
        return base + below
    return f"{base}.{below}" if below else base


def pydantic_message(error: Any) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not allowed here)"
    message = str(error["msg"])
    if "input" in error:
        message += f" (got {preview(error['input'])})"
    return message


def preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= PREVIEW else text[: PREVIEW - 3] + "..."


def suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
