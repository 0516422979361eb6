"""Costs from the price table, exact; no price, no cost; tokens from a completion's usage."""

from __future__ import annotations

from decimal import Decimal

from stepline.providers.pricing import ModelPrice, PriceTable, cost_of, total_cost
from stepline.providers.usage import tokens_of, total_tokens
from stepline.records import CostBreakdown, TokenUsage

PRICE = ModelPrice(prompt=Decimal("0.15"), completion=Decimal("0.6"))


def test_a_cost_is_exact_and_given_under_both_names() -> None:
    cost = cost_of(TokenUsage(prompt=36, completion=48, total=84), PRICE, "USD")
    assert cost.prompt == Decimal("0.0000054")
    assert cost.completion == Decimal("0.0000288")
    assert cost.breakdown() == CostBreakdown(
        total=0.0000342,
        prompt=0.0000054,
        completion=0.0000288,
        input=0.0000054,
        output=0.0000288,
        currency="USD",
    )


def test_the_answered_model_is_priced_first_then_the_asked_one() -> None:
    cheap = ModelPrice(prompt=Decimal(1), completion=Decimal(1))
    table = PriceTable({"gpt-x": PRICE, "gpt-x-2024-07-18": cheap}, "EUR")
    assert table.price_of("gpt-x-2024-07-18", "gpt-x") is cheap
    assert table.price_of("gpt-x-2099-01-01", "gpt-x") is PRICE
    assert table.price_of("unknown", None) is None
    assert table.currency == "EUR"


def test_a_free_model_costs_zero_but_an_unpriced_one_costs_nothing_known() -> None:
    free = cost_of(
        TokenUsage(prompt=10, completion=10, total=20), ModelPrice(prompt=0, completion=0), "USD"
    )
    assert free.breakdown().total == 0.0
    assert total_cost([free, None]) is None
    assert total_cost([]) is None


def test_costs_of_several_calls_add_up_exactly() -> None:
    one = cost_of(TokenUsage(prompt=1, completion=2, total=3), PRICE, "USD")
    two = cost_of(TokenUsage(prompt=3, completion=4, total=7), PRICE, "USD")
    summed = total_cost([one, two])
    assert summed is not None
    assert summed.prompt == Decimal("0.0000006")
    assert summed.completion == Decimal("0.0000036")
    assert summed.total == Decimal("0.0000042")


def test_tokens_from_usage() -> None:
    usage = {"prompt_tokens": 36, "completion_tokens": 48, "total_tokens": 84}
    assert tokens_of(usage) == TokenUsage(prompt=36, completion=48, total=84)
    # A provider that leaves out the total: the sum.
    assert tokens_of({"prompt_tokens": 3, "completion_tokens": 4}) == TokenUsage(
        prompt=3, completion=4, total=7
    )
    assert tokens_of(None) is None
    assert tokens_of({}) is None
    assert tokens_of({"prompt_tokens": True, "completion_tokens": -1, "total_tokens": "9"}) is None


def test_token_totals_skip_the_unknown() -> None:
    a = TokenUsage(prompt=1, completion=2, total=3)
    b = TokenUsage(prompt=10, completion=20, total=30)
    assert total_tokens([a, None, b]) == TokenUsage(prompt=11, completion=22, total=33)
    assert total_tokens([None]) is None
