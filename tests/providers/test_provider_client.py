"""One chat completion over the `openai` client against the stand-in server: what is sent,
what is kept of the answer, and every failure's retry category."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stepline.providers.client import ClientPool, Endpoint, chat_completion
from stepline.providers.errors import ProviderError
from stepline.records import ErrorCategory, TokenUsage
from support.model_nodes import KEY, MODEL, provider
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

REQUEST = {"model": MODEL, "messages": [{"role": "user", "content": "Say hi"}]}


@pytest.fixture
def server() -> Iterator[StandIn]:
    with openai_stand_in(api_key=KEY) as running:
        yield running


def endpoint(server: StandIn, **overrides: object) -> Endpoint:
    settings = provider(server.base_url)
    fields: dict[str, object] = {
        "base_url": server.base_url,
        "api_key": KEY,
        "provider": "local",
        "prices": settings.price_table,
    }
    return Endpoint(**{**fields, **overrides})  # type: ignore[arg-type]


async def test_the_request_goes_as_given_and_the_answer_is_kept_as_sent(
    server: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operator's environment never reaches a workflow's request.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-operator")
    request = {**REQUEST, "temperature": 0.2, "top_k": 50, "repetition_penalty": 0}
    call = await chat_completion(endpoint(server), request, timeout_s=5)
    sent = server.completions[-1]
    assert sent.body == {**request, "stream": False}
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert "openai-organization" not in sent.headers
    assert "openai-project" not in sent.headers
    assert call.request == {**request, "stream": False}
    assert list(call.response) == ["id", "object", "created", "model", "choices", "usage"]
    assert call.message == {
        "role": "assistant",
        "content": "(stand-in answer) You said: Say hi",
        "tool_calls": [],
    }
    assert call.tokens == TokenUsage(prompt=2, completion=6, total=8)
    assert call.cost is not None and call.cost.breakdown().total == pytest.approx(3.9e-6)
    assert call.model == MODEL
    assert call.duration_ms >= 0


async def test_an_endpoint_without_a_key_sends_a_placeholder_not_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operator")
    with openai_stand_in() as server:
        await chat_completion(Endpoint(base_url=server.base_url), REQUEST, timeout_s=5)
        assert server.completions[-1].headers["authorization"] == "Bearer none"


async def test_a_shared_pool_reuses_one_client_per_endpoint_and_key(server: StandIn) -> None:
    pool = ClientPool()
    try:
        async with pool.lease(endpoint(server)) as first:
            pass
        async with pool.lease(endpoint(server)) as again:
            assert again is first
        async with pool.lease(endpoint(server, api_key="other")) as other:
            assert other is not first
        await chat_completion(endpoint(server), REQUEST, timeout_s=5, pool=pool)
        await chat_completion(endpoint(server), REQUEST, timeout_s=5, pool=pool)
        assert len(pool) == 2
    finally:
        await pool.aclose()
    assert len(pool) == 0
    assert len(server.completions) == 2


async def test_a_full_pool_lends_a_client_for_one_call(server: StandIn) -> None:
    pool = ClientPool(max_clients=1)
    try:
        async with pool.lease(endpoint(server)) as kept:
            pass
        async with pool.lease(endpoint(server, api_key="other")) as once:
            assert once is not kept
        assert once.is_closed()
        assert not kept.is_closed()
        assert len(pool) == 1
    finally:
        await pool.aclose()
    assert kept.is_closed()


@pytest.mark.parametrize(
    ("answer", "category", "code", "retry_after_s", "words"),
    [
        (rate_limited("2"), ErrorCategory.quota, "http_429", 2.0, "HTTP 429: Rate limit reached"),
        (
            Answer(status=429, headers={"retry-after-ms": "1500"}),
            ErrorCategory.quota,
            "http_429",
            1.5,
            "(retry after 1.5 s)",
        ),
        (
            Answer(status=400, error={"message": "slow down", "code": "rate_limit_exceeded"}),
            ErrorCategory.quota,
            "http_400",
            None,
            "slow down",
        ),
        (server_error(), ErrorCategory.transient, "http_500", None, "HTTP 500"),
        (
            Answer(status=503, headers={"Retry-After": "3"}),
            ErrorCategory.transient,
            "http_503",
            3.0,
            "503",
        ),
        (Answer(status=408), ErrorCategory.transient, "http_408", None, "HTTP 408"),
        (
            bad_request("Unknown parameter"),
            ErrorCategory.permanent,
            "http_400",
            None,
            "Unknown parameter",
        ),
        (
            Answer(status=404, error={"message": "model not found"}),
            ErrorCategory.permanent,
            "http_404",
            None,
            "model not found",
        ),
        (Answer(status=422), ErrorCategory.permanent, "http_422", None, "HTTP 422"),
        (malformed(), ErrorCategory.transient, "malformed_response", None, "invalid JSON"),
        (Answer(raw=b"[1, 2]"), ErrorCategory.transient, "malformed_response", None, "a JSON list"),
    ],
)
async def test_each_failure_has_its_retry_category(
    server: StandIn,
    answer: Answer,
    category: ErrorCategory,
    code: str,
    retry_after_s: float | None,
    words: str,
) -> None:
    server.script(answer)
    with pytest.raises(ProviderError) as caught:
        await chat_completion(endpoint(server), REQUEST, timeout_s=5)
    error = caught.value
    assert (error.category, error.code, error.retry_after_s) == (category, code, retry_after_s)
    assert words in error.message
    assert error.message.startswith(f"provider 'local' ({server.base_url})")
    assert KEY not in error.message and KEY not in (error.body or "")


async def test_a_wrong_key_is_permanent(server: StandIn) -> None:
    with pytest.raises(ProviderError) as caught:
        await chat_completion(endpoint(server, api_key="sk-wrong"), REQUEST, timeout_s=5)
    assert caught.value.category is ErrorCategory.permanent
    assert caught.value.status_code == 401
    assert "Incorrect API key provided" in caught.value.message


async def test_an_answer_slower_than_the_timeout_is_transient(server: StandIn) -> None:
    server.script(slow(5))
    with pytest.raises(ProviderError) as caught:
        await chat_completion(endpoint(server), REQUEST, timeout_s=0.3)
    assert (caught.value.category, caught.value.code) == (ErrorCategory.transient, "timeout")
    assert "did not answer within 0.3 s" in caught.value.message


async def test_an_endpoint_nobody_listens_on_is_transient() -> None:
    with openai_stand_in() as gone:
        url = gone.base_url
    with pytest.raises(ProviderError) as caught:
        await chat_completion(Endpoint(base_url=url), REQUEST, timeout_s=2)
    assert (caught.value.category, caught.value.code) == (ErrorCategory.transient, "connection")
    assert f"could not reach {url}" in caught.value.message
