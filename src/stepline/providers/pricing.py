"""What a model call costs: a price table per million prompt and completion tokens.

Prices are kept as Decimals (read from the TOML file as written), and a cost is computed
exactly, then given as a float: 36 tokens at 0.15 per million is 0.0000054, not
0.0000054000000000000004. A model without a price has no cost (null), never a cost of 0:
a free model is one priced at 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from stepline.records import CostBreakdown, TokenUsage

MILLION = Decimal(1_000_000)
DEFAULT_CURRENCY = "USD"


class ModelPrice(BaseModel):
    """A model's price per million tokens, in the provider's currency."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: Decimal = Field(ge=0, description="Per million prompt (input) tokens.")
    completion: Decimal = Field(ge=0, description="Per million completion (output) tokens.")


@dataclass(frozen=True)
class PriceTable:
    """A provider's prices by model name."""

    prices: Mapping[str, ModelPrice] = field(default_factory=dict)
    currency: str = DEFAULT_CURRENCY

    def price_of(self, *models: str | None) -> ModelPrice | None:
        """The price of the first of `models` that has one: the model as the provider
        answered it (often a dated version), then as it was asked for."""
        for model in models:
            if model is not None and model in self.prices:
                return self.prices[model]
        return None


NO_PRICES = PriceTable()


@dataclass(frozen=True)
class Cost:
    """An exact cost, split as the record shows it."""

    prompt: Decimal
    completion: Decimal
    currency: str

    @property
    def total(self) -> Decimal:
        return self.prompt + self.completion

    def breakdown(self) -> CostBreakdown:
        # Both spellings are filled: the seeds' step APIs call the parts prompt/completion
        # or input/output, and the canonical record carries the union.
        prompt, completion = float(self.prompt), float(self.completion)
        return CostBreakdown(
            total=float(self.total),
            prompt=prompt,
            completion=completion,
            input=prompt,
            output=completion,
            currency=self.currency,
        )


def cost_of(tokens: TokenUsage, price: ModelPrice, currency: str) -> Cost:
    return Cost(
        prompt=Decimal(tokens.prompt) * price.prompt / MILLION,
        completion=Decimal(tokens.completion) * price.completion / MILLION,
        currency=currency,
    )


def total_cost(costs: Iterable[Cost | None]) -> Cost | None:
    """The sum of several calls' costs; None when any of them has none (the total is then
    unknown, and a partial sum would pass for it)."""
    listed = list(costs)
    if not listed or any(cost is None for cost in listed):
        return None
    known = [cost for cost in listed if cost is not None]
    currencies = {cost.currency for cost in known}
    if len(currencies) != 1:
        return None  # not addable; one provider has one currency, so this is unexpected
    return Cost(
        prompt=sum((cost.prompt for cost in known), Decimal(0)),
        completion=sum((cost.completion for cost in known), Decimal(0)),
        currency=currencies.pop(),
    )
