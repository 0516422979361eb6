"""The `classifier` node kind against the stand-in server: the category is the handle taken,
its reason and spend on the record; a useless answer fails for good."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.nodes.classifier import ClassifierConfig, ClassifierNode
from stepline.records import CostBreakdown, ErrorCategory, TokenUsage
from support.model_nodes import KEY, MODEL, catalog, failed_step, provider, run_step
from support.openai_server import Answer, StandIn, openai_stand_in, rate_limited, server_error

CATEGORIES = [
    {"name": "billing", "description": "invoices, refunds, charges"},
    {"name": "bug", "description": "something in the product is broken"},
    {"name": "other", "description": "anything else"},
]
CONFIG: dict[str, Any] = {
    "provider": "local",
    "input": "I was charged twice, please refund one of the charges",
    "categories": CATEGORIES,
}


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture
def node(server: StandIn) -> ClassifierNode:
    return ClassifierNode(catalog(provider(server.base_url)))


async def test_the_category_is_the_output_and_the_handle(
    server: StandIn, node: ClassifierNode
) -> None:
    server.script(
        Answer(
            json_content={"category": "billing", "reason": "It is about a double charge."},
            usage={"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120},
        )
    )
    result = await run_step(node, CONFIG)
    output = {"category": "billing", "reason": "It is about a double charge."}
    assert result.output == output
    assert result.handle == "billing"
    assert result.handle_outputs == {"billing": {"type": "json", "data": output}}
    assert result.model == MODEL
    assert result.tokens == TokenUsage(prompt=100, completion=20, total=120)
    assert result.cost == CostBreakdown(
        total=0.000027, prompt=0.000015, completion=0.000012, input=0.000015, output=0.000012
    )
    assert result.metadata == {"provider": "local", "base_url": server.base_url}
    (span,) = result.trace_spans or []
    assert span["name"] == "classify"
    assert span["request"] == server.completions[-1].body
    assert json.loads(span["response"]["choices"][0]["message"]["content"]) == output


async def test_the_request_offers_the_categories_as_a_json_schema_enum(
    server: StandIn, node: ClassifierNode
) -> None:
    await run_step(
        node, {**CONFIG, "instructions": "Refund requests are billing.", "temperature": 0}
    )
    sent = server.completions[-1].body
    assert (
        node.recorded_inputs(
            {**CONFIG, "instructions": "Refund requests are billing.", "temperature": 0}
        )
        == sent
    )
    assert sent["model"] == MODEL
    assert sent["temperature"] == 0
    system, user = sent["messages"]
    assert system["role"] == "system"
    assert system["content"] == (
        "Classify the input into exactly one of these categories:\n"
        "- billing: invoices, refunds, charges\n"
        "- bug: something in the product is broken\n"
        "- other: anything else\n"
        "\n"
        "Refund requests are billing.\n"
        "\n"
        'Answer with JSON: "category" (one of the names above) and "reason" (one short '
        "sentence saying why)."
    )
    assert user == {"role": "user", "content": CONFIG["input"]}
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "classify",
            "description": "The category the input belongs to.",
            "schema": {
                "type": "object",
                "properties": {
                    "category": {"type": "string", "enum": ["billing", "bug", "other"]},
                    "reason": {"type": "string"},
                },
                "required": ["category", "reason"],
                "additionalProperties": False,
            },
            "strict": True,
        },
    }


async def test_unscripted_the_stand_in_picks_by_shared_words(node: ClassifierNode) -> None:
    result = await run_step(node, CONFIG)
    assert result.handle == "billing"
    result = await run_step(node, {**CONFIG, "input": "The export button is broken"})
    assert result.handle == "bug"


async def test_without_explain_no_reason_is_asked_or_recorded(
    server: StandIn, node: ClassifierNode
) -> None:
    server.script(Answer(json_content={"category": "other"}))
    result = await run_step(node, {**CONFIG, "explain": False})
    assert result.output == {"category": "other", "reason": None}
    schema = server.completions[-1].body["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == ["category"]


async def test_a_provider_with_tools_is_asked_for_a_function_call(server: StandIn) -> None:
    node = ClassifierNode(catalog(provider(server.base_url, structured_output="tools")))
    server.script(Answer(tool_call=("classify", {"category": "bug", "reason": "broken"})))
    result = await run_step(node, CONFIG)
    assert result.output == {"category": "bug", "reason": "broken"}
    sent = server.completions[-1].body
    assert "response_format" not in sent
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "classify"}}
    assert sent["tools"][0]["function"]["name"] == "classify"
    assert sent["tools"][0]["function"]["parameters"]["properties"]["category"]["enum"] == [
        "billing",
        "bug",
        "other",
    ]


async def test_an_unknown_price_is_no_cost(server: StandIn) -> None:
    node = ClassifierNode(catalog(provider(server.base_url, prices={})))
    result = await run_step(node, CONFIG)
    assert result.tokens is not None and result.tokens.total > 0
    assert result.cost is None


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (
            Answer(json_content={"category": "spam", "reason": "r"}),
            "answered category 'spam', which is not one of billing, bug, other",
        ),
        (Answer(content="billing, I think"), "the answer is not JSON"),
        (Answer(content=""), "the model's answer is empty"),
        (Answer(refusal="I won't."), "refused: I won't."),
    ],
)
async def test_a_useless_answer_fails_for_good_with_what_it_spent(
    server: StandIn, node: ClassifierNode, answer: Answer, words: str
) -> None:
    server.script(answer)
    error = await failed_step(node, CONFIG)
    assert error.category is ErrorCategory.permanent
    assert words in error.message
    assert error.tokens is not None
    assert error.cost is not None
    assert error.trace_spans is not None and len(error.trace_spans) == 1


@pytest.mark.parametrize(
    ("answer", "category"),
    [(rate_limited("3"), ErrorCategory.quota), (server_error(), ErrorCategory.transient)],
)
async def test_provider_failures_keep_their_category(
    server: StandIn, node: ClassifierNode, answer: Answer, category: ErrorCategory
) -> None:
    server.script(answer)
    error = await failed_step(node, CONFIG)
    assert error.category is category
    assert error.retry_after_s == (3.0 if category is ErrorCategory.quota else None)
    assert error.tokens is None and error.cost is None


def test_each_category_is_an_output_handle() -> None:
    node = ClassifierNode(catalog())
    config = ClassifierConfig.model_validate({**CONFIG, "provider": "p"})
    assert node.output_handles(config) == {"billing", "bug", "other"}


@pytest.mark.parametrize(
    ("categories", "words"),
    [
        ([{"name": "a"}], "at least 2 items"),
        ([{"name": "a"}, {"name": "a"}], "category 'a' is listed more than once"),
        ([{"name": "a"}, {"name": "rejected"}], "the handle a rejected review follows"),
        ([{"name": "a"}, {"name": "has space"}], "should match pattern"),
        ([{"name": "a"}, {"name": "b", "colour": "red"}], "Extra inputs are not permitted"),
    ],
)
def test_bad_categories_are_refused(categories: list[dict[str, Any]], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ClassifierConfig.model_validate({**CONFIG, "categories": categories})
    assert words in str(caught.value)
