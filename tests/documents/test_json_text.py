"""JSON text read as a document: refused fast, whatever its depth, before anything recurses."""

from __future__ import annotations

import json
import time

import pytest

from stepline.documents import DocumentError
from stepline.documents.json_text import parse_json

DEEP = 10_000


def parse(text: str | bytes, max_depth: int = 64) -> object:
    return parse_json(text, max_depth=max_depth)


def refusal(text: str | bytes, max_depth: int = 64) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse(text, max_depth)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        "[" * DEEP + "]" * DEEP,
        '{"a":' * DEEP + "1" + "}" * DEEP,
        "[" * 5_000_000,  # 5 MB, and not even JSON
        '{"inputs": ' + "[" * 240 + "]" * 240 + "}",
    ],
    ids=["arrays", "objects", "megabytes", "240-levels"],
)
def test_deep_text_is_refused_in_milliseconds(text: str) -> None:
    started = time.perf_counter()
    error = refusal(text)
    elapsed = time.perf_counter() - started
    assert "deeper than 64 levels" in error.reason
    assert elapsed < 0.05, f"{elapsed:.3f} s"


def test_depth_up_to_the_limit_reads_and_one_more_level_is_refused_at_its_path() -> None:
    assert parse("[" * 64 + "]" * 64, 64) == json.loads("[" * 64 + "]" * 64)
    error = refusal('{"a": ' + "[" * 64 + "]" * 64 + "}", 64)
    assert error.path == "$.a" + "[0]" * 63


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ('{"config": {"x": NaN}}', "$.config.x", "NaN is not a JSON number"),
        ('{"x": [Infinity]}', "$.x[0]", "Infinity is not a JSON number"),
        ('{"x": -Infinity}', "$.x", "-Infinity is not a JSON number"),
        ('{"threshold": 1e999}', "$.threshold", "1e999"),
        ('{"s": "\\ud800"}', "$.s", "not valid Unicode"),
        ('{"s": "a\\u0000b"}', "$.s", "NUL"),
    ],
)
def test_values_json_text_may_hold_but_stepline_cannot_keep_are_refused(
    text: str, path: str, words: str
) -> None:
    error = refusal(text)
    assert error.path == path
    assert words in error.reason


def test_integers_keep_their_value_up_to_the_bound_and_are_refused_past_it() -> None:
    assert parse("18446744073709551617") == 18446744073709551617
    long = "7" * 4300
    assert parse(f'{{"n": [{long}]}}') == {"n": [int(long)]}
    error = refusal(f'{{"n": [{long}7]}}')
    assert "4,300 digits" in error.reason
    assert "line 1, column" in error.reason


def test_text_that_is_not_json_raises_a_decode_error_with_its_position() -> None:
    with pytest.raises(json.JSONDecodeError) as caught:
        parse('{"a": [1,}')
    assert caught.value.pos == 9
