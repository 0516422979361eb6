"""Comparing an answer with a vendor's documented example by shape: the same keys, the same
JSON types and the same nesting, whatever the values.

A documented `null` matches any value (the example shows the field unset); a value where
the example has `null` matches too. Lists compare each item against the example's first
item; an empty list in either is allowed.
"""

from __future__ import annotations

from typing import Any


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {value!r}")


def shape_mismatches(actual: Any, example: Any, path: str = "$") -> list[str]:
    """Every place where `actual` differs from `example` in keys, types or nesting."""
    if example is None or actual is None:
        return []
    expected_type, actual_type = json_type(example), json_type(actual)
    if expected_type != actual_type:
        return [f"{path}: {actual_type}, the example has {expected_type}"]
    if isinstance(example, dict):
        found: list[str] = []
        missing = sorted(set(example) - set(actual))
        extra = sorted(set(actual) - set(example))
        if missing:
            found.append(f"{path}: missing keys {missing}")
        if extra:
            found.append(f"{path}: keys the example lacks {extra}")
        for key in sorted(set(example) & set(actual)):
            found.extend(shape_mismatches(actual[key], example[key], f"{path}.{key}"))
        return found
    if isinstance(example, list) and example and actual:
        found = []
        for index, item in enumerate(actual):
            found.extend(shape_mismatches(item, example[0], f"{path}[{index}]"))
        return found
    return []


def assert_same_shape(
    actual: Any, example: Any, *, open_keys: frozenset[str] = frozenset()
) -> None:
    """Fail naming every mismatch. `open_keys` names paths (like `$[0].outputs`) whose
    objects hold values of the user's workflow, compared by type only."""
    found = [
        line
        for line in shape_mismatches(actual, example)
        if not any(line.startswith(f"{key}:") or line.startswith(f"{key}.") for key in open_keys)
    ]
    assert not found, "not the example's shape:\n" + "\n".join(found)
