"""The `model` node kind against the stand-in server: its output as seed 000 shows it, what
it records (request, model, tokens, cost), and each failure's retry category."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from stepline.nodes.base import NodeError, NodeServices
from stepline.nodes.model import ModelConfig, ModelNode
from stepline.providers.client import ClientPool
from stepline.records import CostBreakdown, ErrorCategory, ErrorStage, TokenUsage
from support.model_nodes import (
    KEY,
    KEY_SECRET,
    MODEL,
    catalog,
    context,
    failed_step,
    provider,
    run_step,
)
from support.openai_server import (
    Answer,
    StandIn,
    bad_request,
    malformed,
    openai_stand_in,
    rate_limited,
    server_error,
    slow,
)

SEED_000_CONTENT = (
    "Why was the weather forecast sad?\n\nBecause it had a lot of problems and was feeling a "
    'little "forecast-ticular."'
)


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


@pytest.fixture
def node(server: StandIn) -> ModelNode:
    return ModelNode(catalog(provider(server.base_url)))


async def test_the_output_is_the_completion_plus_content_and_confidence_info(
    server: StandIn, node: ModelNode
) -> None:
    server.script(
        Answer(
            content=SEED_000_CONTENT,
            model="virtuoso-medium",
            usage={
                "prompt_tokens": 36,
                "total_tokens": 84,
                "completion_tokens": 48,
                "prompt_tokens_details": None,
            },
        )
    )
    config = {
        "provider": "local",
        "model": "virtuoso-medium",
        "prompt": "Tell me a joke about the weather",
        "temperature": 0.7,
        "top_p": 1,
        "max_tokens": 8192,
        "extra": {"top_k": 50, "repetition_penalty": 0},
    }
    result = await run_step(node, config)
    output = result.output
    assert list(output) == [
        "id", "object", "created", "model", "choices", "usage", "content", "confidence_info",
    ]  # fmt: skip
    assert output["object"] == "chat.completion"
    assert output["model"] == "virtuoso-medium"
    assert output["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": SEED_000_CONTENT, "tool_calls": []},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    assert output["usage"] == {
        "prompt_tokens": 36,
        "total_tokens": 84,
        "completion_tokens": 48,
        "prompt_tokens_details": None,
    }
    assert output["content"] == SEED_000_CONTENT
    assert output["confidence_info"] == {
        "error": "No logprobs available - model/provider may not support confidence calculation",
        "confidence_score": None,
        "mean_entropy": None,
        "total_entropy": None,
    }
    assert result.model == "virtuoso-medium"
    assert result.tokens == TokenUsage(prompt=36, completion=48, total=84)
    # virtuoso-medium has no price: no cost, not a cost of 0.
    assert result.cost is None
    assert result.metadata == {
        "provider": "local",
        "base_url": server.base_url,
        "finish_reason": "stop",
    }
    (span,) = result.trace_spans or []
    assert span["name"] == "completion" and span["status"] == "ok"
    assert span["tokens"] == {"prompt": 36, "completion": 48, "total": 84}
    assert span["cost"] is None
    assert "request" not in span  # the request is the step's inputs, the answer its output


async def test_the_recorded_inputs_are_the_request_sent(server: StandIn, node: ModelNode) -> None:
    config = {
        "provider": "local",
        "model": "virtuoso-medium",
        "prompt": "Tell me a joke about the weather",
        "max_tokens": 8192,
        "temperature": 0.7,
        "top_p": 1,
        "extra": {"top_k": 50, "repetition_penalty": 0},
    }
    await run_step(node, config)
    sent = server.completions[-1].body
    assert (
        node.recorded_inputs(config)
        == sent
        == {
            "model": "virtuoso-medium",
            "stream": False,
            "messages": [{"role": "user", "content": "Tell me a joke about the weather"}],
            "temperature": 0.7,
            "top_p": 1,
            "max_tokens": 8192,
            "top_k": 50,
            "repetition_penalty": 0,
        }
    )


async def test_every_parameter_reaches_the_request(server: StandIn, node: ModelNode) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    config = {
        "provider": "local",
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": {"n": 1}},
        ],
        "temperature": 0,
        "top_p": 0.5,
        "max_tokens": 5,
        "stop": ["\n"],
        "seed": 7,
        "response_format": {"type": "json_object"},
        "tools": tools,
        "tool_choice": "auto",
        "logprobs": True,
        "top_logprobs": 2,
        "timeout_s": 9,
    }
    await run_step(node, config)
    assert server.completions[-1].body == {
        "model": MODEL,  # the provider's default_model
        "stream": False,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": '{"n": 1}'},  # a non-text value as its JSON
        ],
        "temperature": 0,
        "top_p": 0.5,
        "max_tokens": 5,
        "stop": ["\n"],
        "seed": 7,
        "response_format": {"type": "json_object"},
        "tools": tools,
        "tool_choice": "auto",
        "logprobs": True,
        "top_logprobs": 2,
    }
    assert server.completions[-1].headers["x-stainless-read-timeout"] == "9.0"


async def test_cost_comes_from_the_price_table(server: StandIn, node: ModelNode) -> None:
    server.script(
        Answer(usage={"prompt_tokens": 1000, "completion_tokens": 2000, "total_tokens": 3000})
    )
    result = await run_step(node, {"provider": "local", "prompt": "hi"})
    assert result.model == MODEL
    # 1000 x 0.15 / 1e6 and 2000 x 0.6 / 1e6
    assert result.cost == CostBreakdown(
        total=0.00135,
        prompt=0.00015,
        completion=0.0012,
        input=0.00015,
        output=0.0012,
        currency="USD",
    )
    assert (result.trace_spans or [])[0]["cost"] == result.cost.model_dump()


async def test_the_answered_model_is_recorded_and_priced(server: StandIn) -> None:
    dated = f"{MODEL}-2025-01-01"
    settings = provider(server.base_url, prices={dated: {"prompt": 1, "completion": 1}})
    server.script(
        Answer(model=dated, usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})
    )
    result = await run_step(ModelNode(catalog(settings)), {"provider": "local", "prompt": "hi"})
    assert result.model == dated
    assert result.cost is not None and result.cost.total == 0.000002


async def test_without_usage_there_are_no_tokens_and_no_cost(
    server: StandIn, node: ModelNode
) -> None:
    server.script(Answer(omit_usage=True))
    result = await run_step(node, {"provider": "local", "prompt": "hi"})
    assert result.tokens is None
    assert result.cost is None


async def test_confidence_info_from_logprobs(server: StandIn, node: ModelNode) -> None:
    server.script(
        Answer(
            content="Yes",
            logprobs=[
                {"token": "Yes", "logprob": math.log(0.8), "top_logprobs": [
                    {"token": "Yes", "logprob": math.log(0.8)},
                    {"token": "No", "logprob": math.log(0.2)},
                ]},
            ],
        )
    )  # fmt: skip
    result = await run_step(
        node, {"provider": "local", "prompt": "?", "logprobs": True, "top_logprobs": 2}
    )
    info = result.output["confidence_info"]
    entropy = -(0.8 * math.log(0.8) + 0.2 * math.log(0.2))
    assert info["error"] is None
    assert info["confidence_score"] == pytest.approx(0.8)
    assert info["mean_entropy"] == pytest.approx(entropy)
    assert info["total_entropy"] == pytest.approx(entropy)


async def test_a_tool_call_answer_has_no_content(server: StandIn, node: ModelNode) -> None:
    server.script(Answer(tool_call=("lookup", {"city": "Paris"})))
    result = await run_step(node, {"provider": "local", "prompt": "weather?", "tools": []})
    assert result.output["content"] is None
    (call,) = result.output["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "lookup", "arguments": '{"city": "Paris"}'}
    assert result.output["choices"][0]["finish_reason"] == "tool_calls"


async def test_an_inline_base_url_and_key(server: StandIn) -> None:
    config = {
        "base_url": server.base_url,
        "api_key": KEY,
        "model": "any-model",
        "prompt": "hi",
    }
    result = await run_step(ModelNode(catalog()), config)
    assert server.completions[-1].headers["authorization"] == f"Bearer {KEY}"
    assert result.cost is None  # a node's own endpoint has no price table
    assert result.metadata is not None and result.metadata["provider"] is None
    recorded = ModelNode(catalog()).recorded_inputs(config)
    assert KEY not in str(recorded)


async def test_a_shared_client_pool_is_used_when_the_worker_lends_one(
    server: StandIn, node: ModelNode
) -> None:
    pool = ClientPool()
    try:
        await run_step(node, {"provider": "local", "prompt": "a"}, services=NodeServices(llm=pool))
        await run_step(node, {"provider": "local", "prompt": "b"}, services=NodeServices(llm=pool))
        assert len(pool) == 1
    finally:
        await pool.aclose()


@pytest.mark.parametrize(
    ("answer", "category", "retry_after_s"),
    [
        (rate_limited("7"), ErrorCategory.quota, 7.0),
        (server_error(), ErrorCategory.transient, None),
        (malformed(), ErrorCategory.transient, None),
        (bad_request(), ErrorCategory.permanent, None),
        (Answer(refusal="I can't help with that."), ErrorCategory.permanent, None),
        (Answer(content="", finish_reason="content_filter"), ErrorCategory.permanent, None),
        (Answer(raw=b'{"id": "x", "choices": []}'), ErrorCategory.permanent, None),
    ],
)
async def test_each_failure_is_categorized_for_retries(
    server: StandIn,
    node: ModelNode,
    answer: Answer,
    category: ErrorCategory,
    retry_after_s: float | None,
) -> None:
    server.script(answer)
    error = await failed_step(node, {"provider": "local", "prompt": "hi"})
    assert error.category is category
    assert error.stage is ErrorStage.execution
    assert error.retry_after_s == retry_after_s
    assert error.details.type == "ProviderError"
    assert error.metadata == {"provider": "local", "base_url": server.base_url}
    assert error.trace_spans is not None and error.trace_spans[0]["name"] == "completion"


async def test_a_refusal_keeps_what_the_call_spent(server: StandIn, node: ModelNode) -> None:
    server.script(
        Answer(
            refusal="No.", usage={"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}
        )
    )
    error = await failed_step(node, {"provider": "local", "prompt": "hi"})
    assert "refused: No." in error.message
    assert error.tokens == TokenUsage(prompt=10, completion=1, total=11)
    assert error.cost is not None and error.cost.total == pytest.approx(0.0000021)
    assert error.model == MODEL


async def test_a_timeout_is_transient(server: StandIn, node: ModelNode) -> None:
    server.script(slow(5))
    error = await failed_step(node, {"provider": "local", "prompt": "hi", "timeout_s": 0.3})
    assert error.category is ErrorCategory.transient
    assert "did not answer within 0.3 s" in error.message
    (span,) = error.trace_spans or []
    assert span["status"] == "error" and span["error_category"] == "transient"


async def test_a_wrong_key_is_permanent(server: StandIn, node: ModelNode) -> None:
    error = await failed_step(
        node, {"provider": "local", "prompt": "hi"}, secrets={KEY_SECRET: "sk-wrong"}
    )
    assert error.category is ErrorCategory.permanent
    assert "HTTP 401" in error.message
    assert error.details.context == {"status_code": 401, "body": server_body_of_401()}


def server_body_of_401() -> str:
    return (
        '{"error": {"param": null, "code": "invalid_api_key", "message": "Incorrect API key '
        'provided", "type": "invalid_request_error"}}'
    )


async def test_a_provider_key_missing_from_the_run_is_an_input_error(node: ModelNode) -> None:
    error = await failed_step(node, {"provider": "local", "prompt": "hi"}, secrets={"OTHER": "x"})
    assert error.stage is ErrorStage.input_collection
    assert error.category is ErrorCategory.permanent
    assert f"secret {KEY_SECRET!r} (the key of provider 'local') is not set" in error.message


async def test_a_provider_gone_from_the_configuration_is_an_input_error(server: StandIn) -> None:
    node = ModelNode(catalog())
    ctx = context(
        ModelNode(catalog(provider(server.base_url))), {"provider": "local", "prompt": "hi"}
    )
    with pytest.raises(NodeError) as caught:
        await node.run(ctx)
    assert caught.value.stage is ErrorStage.input_collection
    assert "no provider 'local' is configured" in caught.value.message


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"provider": "p"}, "give either `messages` or `prompt`"),
        (
            {"provider": "p", "prompt": "a", "messages": [{"role": "user", "content": "b"}]},
            "either `messages` or `prompt`",
        ),
        ({"prompt": "a"}, "name a `provider`"),
        ({"provider": "p", "base_url": "http://h/v1", "prompt": "a"}, "not both"),
        ({"provider": "p", "api_key": "k", "prompt": "a"}, "`api_key` goes with `base_url`"),
        ({"base_url": "file:///etc", "prompt": "a"}, "http:// or https://"),
        ({"provider": "p", "prompt": "a", "top_logprobs": 3}, "needs `logprobs: true`"),
        (
            {"provider": "p", "prompt": "a", "extra": {"temperature": 1}},
            "`extra` cannot set temperature",
        ),
        ({"provider": "p", "prompt": "a", "temperature": 3}, "less than or equal to 2"),
        ({"provider": "p", "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"provider": "p", "prompt": "a", "tempreature": 1}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_config_is_refused(config: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ModelConfig.model_validate(config)
    assert words in str(caught.value)
