"""What a document may be: exact JSON, within its depth and size, each refusal at its path."""

from __future__ import annotations

import time
from typing import Any

import pytest

from stepline.documents import (
    DocumentError,
    DocumentLimits,
    check_document,
    check_inputs,
    check_output,
)
from stepline.documents.limits import MAX_INT_DIGITS

LIMITS = DocumentLimits(max_depth=8, max_output_bytes=1000, max_inputs_bytes=1000)


def nested(levels: int) -> Any:
    """`levels` arrays, one inside the other: nested(1) == []."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def refusal(value: Any, limits: DocumentLimits = LIMITS) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        check_output(value, limits)
    return caught.value


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        18446744073709551617,
        1.5,
        -2.2250738585072014e-308,
        "",
        "é 中 😀 \u2028",
        nested(8),
        {"a": {"b": [1, "two", None, {"c": nested(4)}]}},
        (1, 2),
    ],
    ids=repr,
)
def test_exact_json_within_the_limits_passes(value: Any) -> None:
    check_output(value, LIMITS)


def test_integers_keep_up_to_the_bound_of_digits() -> None:
    check_document([int("9" * MAX_INT_DIGITS), -int("9" * MAX_INT_DIGITS)], max_depth=2)
    with pytest.raises(DocumentError, match=f"more than {MAX_INT_DIGITS:,} digits"):
        check_document([10**MAX_INT_DIGITS], max_depth=2)


def test_depth_counts_arrays_and_objects_and_names_where_it_is_exceeded() -> None:
    check_output({"a": nested(7)}, LIMITS)
    error = refusal({"a": {"b": nested(7)}})
    assert error.path == "$.a.b" + "[0]" * 6
    assert "deeper than 8 levels" in error.reason
    assert "STEPLINE_MAX_DOCUMENT_DEPTH" in error.reason
    assert not error.too_large


@pytest.mark.parametrize(
    ("value", "path", "words"),
    [
        ({"x": [1, float("nan")]}, "$.x[1]", "NaN is not a JSON number"),
        ({"x": float("inf")}, "$.x", "Infinity is not a JSON number"),
        ([float("-inf")], "$[0]", "-Infinity is not a JSON number"),
        ({"big": 10**MAX_INT_DIGITS}, "$.big", f"more than {MAX_INT_DIGITS:,} digits"),
        ({"a b": "nul \x00 inside"}, '$["a b"]', "NUL"),
        ({"k\x00": 1}, '$["k\\u0000"]', "NUL"),
        (["\ud800"], "$[0]", "not valid Unicode"),
        ({1: "one"}, '$["1"]', "key must be a string"),
        ({"s": {1, 2}}, "$.s", "a set is not a JSON value"),
        ({"b": b"bytes"}, "$.b", "a bytes is not a JSON value"),
    ],
)
def test_what_json_cannot_hold_exactly_is_refused_at_its_path(
    value: Any, path: str, words: str
) -> None:
    error = refusal(value)
    assert error.path == path
    assert words in error.reason


def test_size_is_bytes_of_compact_json_and_a_size_refusal_is_too_large() -> None:
    check_output("x" * 998, LIMITS)  # 1000 bytes with its quotes
    error = refusal("x" * 999)
    assert error.too_large
    assert "over the limit of 1,000" in error.reason
    assert "STEPLINE_MAX_OUTPUT_BYTES" in error.reason
    # Escapes count as what they take in JSON (a control character is \u00XX: 6 bytes).
    check_output("\x01" * 166, LIMITS)
    assert refusal("\x01" * 167).too_large
    with pytest.raises(DocumentError, match="STEPLINE_MAX_INPUTS_BYTES"):
        check_inputs({"a": "x" * 1000}, LIMITS)


def test_a_document_sharing_its_parts_stops_the_walk_at_the_size_limit() -> None:
    # Ten levels of ten references to the level below: 10**10 strings if expanded.
    value: Any = ["x" * 10]
    for _ in range(10):
        value = [value] * 10
    started = time.perf_counter()
    with pytest.raises(DocumentError) as caught:
        check_document(value, max_depth=20, max_bytes=1_000_000)
    assert caught.value.too_large
    assert time.perf_counter() - started < 2


def test_enums_and_other_subclasses_of_json_types_are_their_values() -> None:
    from stepline.records import StepStatus

    check_output({"status": StepStatus.completed, "flag": True}, LIMITS)
