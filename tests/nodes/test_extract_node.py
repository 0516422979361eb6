"""The `extract` node kind against the stand-in server: validated extraction, one repair
round-trip that shows the model its violations, then a permanent error listing them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.nodes.extract import DEFAULT_INSTRUCTIONS, ExtractConfig, ExtractNode
from stepline.records import ErrorCategory, TokenUsage
from support.model_nodes import KEY, MODEL, catalog, failed_step, provider, run_step
from support.openai_server import Answer, StandIn, openai_stand_in, rate_limited, server_error

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "invoice_number": {"type": "string"},
        "total_amount": {"type": "number"},
    },
    "required": ["invoice_number", "total_amount"],
}
CONFIG: dict[str, Any] = {
    "provider": "local",
    "input": "Invoice INV-2024-001, total due 1234.56 EUR",
    "schema": SCHEMA,
}
GOOD = {"invoice_number": "INV-2024-001", "total_amount": 1234.56}
USAGE = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture
def node(server: StandIn) -> ExtractNode:
    return ExtractNode(catalog(provider(server.base_url)))


async def test_a_valid_answer_is_the_output(server: StandIn, node: ExtractNode) -> None:
    server.script(Answer(json_content=GOOD, usage=USAGE))
    result = await run_step(node, CONFIG)
    assert result.output == GOOD
    assert result.handle is None
    assert result.handle_outputs == {"output-json-0": {"type": "json", "data": GOOD}}
    assert result.model == MODEL
    assert result.tokens == TokenUsage(prompt=1000, completion=100, total=1100)
    assert result.cost is not None and result.cost.total == pytest.approx(0.00021)
    assert result.metadata == {
        "provider": "local",
        "base_url": server.base_url,
        "repair_round_trips": 0,
    }
    (span,) = result.trace_spans or []
    assert span["name"] == "extract" and "violations" not in span
    sent = server.completions[-1].body
    assert node.recorded_inputs(CONFIG) == sent
    assert sent["messages"] == [
        {"role": "system", "content": DEFAULT_INSTRUCTIONS},
        {"role": "user", "content": CONFIG["input"]},
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "extraction",
            "description": "The data extracted from the input.",
            "schema": SCHEMA,
        },
    }


async def test_one_repair_round_trip_shows_the_model_its_violations(
    server: StandIn, node: ExtractNode
) -> None:
    wrong = {"invoice_number": 2024, "total_amount": "1234.56"}
    server.script(Answer(json_content=wrong, usage=USAGE), Answer(json_content=GOOD, usage=USAGE))
    result = await run_step(node, CONFIG)
    assert result.output == GOOD
    # Both calls are paid for, and both are on the record.
    assert result.tokens == TokenUsage(prompt=2000, completion=200, total=2200)
    assert result.cost is not None and result.cost.total == pytest.approx(0.00042)
    assert result.metadata is not None and result.metadata["repair_round_trips"] == 1
    first, repair = result.trace_spans or []
    violations = [
        "$.invoice_number: 2024 is not of type 'string'",
        "$.total_amount: '1234.56' is not of type 'number'",
    ]
    assert (first["name"], first["violations"]) == ("extract", violations)
    assert repair["name"] == "repair" and "violations" not in repair
    assert repair["tokens"] == {"prompt": 1000, "completion": 100, "total": 1100}
    messages = server.completions[-1].body["messages"]
    assert messages[:2] == server.completions[0].body["messages"]
    assert messages[2] == {"role": "assistant", "content": json.dumps(wrong)}
    assert messages[3]["role"] == "user"
    assert messages[3]["content"] == (
        "Your answer does not match the required JSON Schema:\n"
        "- $.invoice_number: 2024 is not of type 'string'\n"
        "- $.total_amount: '1234.56' is not of type 'number'\n"
        "Answer again with JSON that fits the schema exactly."
    )


async def test_an_answer_that_is_not_json_is_repaired_too(
    server: StandIn, node: ExtractNode
) -> None:
    server.script(Answer(content="INV-2024-001, 1234.56"), Answer(json_content=GOOD))
    result = await run_step(node, CONFIG)
    assert result.output == GOOD
    assert (result.trace_spans or [])[0]["violations"][0].startswith("the answer is not JSON")


async def test_a_second_invalid_answer_fails_for_good_listing_the_violations(
    server: StandIn, node: ExtractNode
) -> None:
    server.script(
        Answer(json_content={"invoice_number": "x"}, usage=USAGE),
        Answer(json_content={"invoice_number": "x", "total_amount": None}, usage=USAGE),
    )
    error = await failed_step(node, CONFIG)
    assert error.category is ErrorCategory.permanent
    assert error.message == (
        "the extraction does not match the schema, even after a repair round-trip:\n"
        "- $.total_amount: None is not of type 'number'"
    )
    assert error.details.error_code == "schema_violations"
    assert error.details.context == {
        "violations": ["$.total_amount: None is not of type 'number'"],
        "answer": '{"invoice_number": "x", "total_amount": null}',
    }
    assert error.tokens == TokenUsage(prompt=2000, completion=200, total=2200)
    assert error.cost is not None and error.cost.total == pytest.approx(0.00042)
    assert [span["name"] for span in error.trace_spans or []] == ["extract", "repair"]
    assert error.metadata == {
        "provider": "local",
        "base_url": server.base_url,
        "repair_round_trips": 1,
    }
    assert len(server.completions) == 2  # no third call: the engine decides on retries


async def test_a_provider_with_tools_extracts_through_a_function_call(server: StandIn) -> None:
    node = ExtractNode(catalog(provider(server.base_url, structured_output="tools")))
    server.script(
        Answer(tool_call=("invoice", {"invoice_number": "INV-2024-001"})),
        Answer(tool_call=("invoice", GOOD)),
    )
    result = await run_step(node, {**CONFIG, "schema_name": "invoice"})
    assert result.output == GOOD
    first, repair = server.completions[0].body, server.completions[1].body
    assert first["tool_choice"] == {"type": "function", "function": {"name": "invoice"}}
    assert first["tools"][0]["function"]["parameters"] == SCHEMA
    assistant, tool = repair["messages"][2:]
    assert (
        assistant["role"] == "assistant"
        and assistant["tool_calls"][0]["function"]["name"] == "invoice"
    )
    assert tool["role"] == "tool"
    assert tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "- $: 'total_amount' is a required property" in tool["content"]


async def test_a_node_may_choose_its_method(server: StandIn, node: ExtractNode) -> None:
    await run_step(node, {**CONFIG, "method": "tools", "strict": True})
    sent = server.completions[-1].body
    assert sent["tools"][0]["function"]["strict"] is True
    assert "response_format" not in sent


async def test_an_unknown_price_is_no_cost_over_both_calls(server: StandIn) -> None:
    node = ExtractNode(catalog(provider(server.base_url, prices={})))
    server.script(Answer(json_content={}, usage=USAGE), Answer(json_content=GOOD, usage=USAGE))
    result = await run_step(node, CONFIG)
    assert result.tokens == TokenUsage(prompt=2000, completion=200, total=2200)
    assert result.cost is None


async def test_a_refusal_is_permanent(server: StandIn, node: ExtractNode) -> None:
    server.script(Answer(refusal="I can't read invoices."))
    error = await failed_step(node, CONFIG)
    assert error.category is ErrorCategory.permanent
    assert "refused: I can't read invoices." in error.message


async def test_a_failed_repair_call_keeps_its_category_and_the_first_calls_spend(
    server: StandIn, node: ExtractNode
) -> None:
    server.script(Answer(json_content={}, usage=USAGE), rate_limited("4"))
    error = await failed_step(node, CONFIG)
    assert error.category is ErrorCategory.quota
    assert error.retry_after_s == 4.0
    assert error.tokens == TokenUsage(prompt=1000, completion=100, total=1100)
    extract, repair = error.trace_spans or []
    assert extract["status"] == "ok" and repair["status"] == "error"
    assert error.metadata is not None and error.metadata["repair_round_trips"] == 1


async def test_a_server_error_is_transient(server: StandIn, node: ExtractNode) -> None:
    server.script(server_error())
    error = await failed_step(node, CONFIG)
    assert error.category is ErrorCategory.transient
    assert error.tokens is None


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "objekt"}, "not a valid JSON Schema at $.type"),
        ({"type": "array", "items": {}}, 'must describe an object ("type": "object")'),
        ({"type": "object", "properties": {"a": {"minimum": "zero"}}}, "at $.properties.a.minimum"),
    ],
)
def test_a_bad_schema_is_refused(schema: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ExtractConfig.model_validate({**CONFIG, "schema": schema})
    assert words in str(caught.value)
