"""The shape comparison the dialects' contract tests lean on fails where it must."""

from __future__ import annotations

import pytest

from support.shapes import assert_same_shape, shape_mismatches


def test_same_keys_types_and_nesting_pass() -> None:
    example = {"id": "a", "n": 1, "items": [{"x": True}], "error": None}
    assert_same_shape(
        {"id": "b", "n": 2.5, "items": [{"x": False}, {"x": True}], "error": "e"}, example
    )


def test_each_difference_is_named() -> None:
    example = {"id": "a", "n": 1, "items": [{"x": True}]}
    found = shape_mismatches({"id": 1, "items": [{"x": "yes"}], "more": 0}, example)
    assert found == [
        "$: missing keys ['n']",
        "$: keys the example lacks ['more']",
        "$.id: number, the example has string",
        "$.items[0].x: string, the example has boolean",
    ]
    with pytest.raises(AssertionError, match="missing keys"):
        assert_same_shape({"id": "a"}, example)


def test_open_keys_compare_by_type_only() -> None:
    example = {"outputs": {"text": "hi"}}
    assert_same_shape({"outputs": {"other": 1}}, example, open_keys=frozenset({"$.outputs"}))
