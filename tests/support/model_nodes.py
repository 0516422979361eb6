"""Running the language-model node kinds one step at a time, against the stand-in server."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import uuid4

from stepline.nodes.base import NodeContext, NodeError, NodeResult, NodeServices
from stepline.nodes.language_model import LanguageModelKind
from stepline.providers.config import ProviderCatalog, ProviderSettings
from stepline.providers.pricing import ModelPrice
from stepline.spec.models import NodeSpec

KEY = "sk-stand-in-5e2f/9a+k"
"""The stand-in's key, held by the secret KEY_SECRET."""
KEY_SECRET = "LOCAL_KEY"
MODEL = "stand-in-small"
PROMPT_PRICE = Decimal("0.15")
COMPLETION_PRICE = Decimal("0.6")


def provider(base_url: str, **overrides: Any) -> ProviderSettings:
    """Provider `local` at `base_url`: key in KEY_SECRET, MODEL priced, unless overridden."""
    settings: dict[str, Any] = {
        "name": "local",
        "base_url": base_url,
        "api_key": "{{ secrets." + KEY_SECRET + " }}",
        "default_model": MODEL,
        "prices": {MODEL: ModelPrice(prompt=PROMPT_PRICE, completion=COMPLETION_PRICE)},
    }
    return ProviderSettings.model_validate({**settings, **overrides})


def catalog(*providers: ProviderSettings) -> ProviderCatalog:
    return ProviderCatalog({p.name: p for p in providers})


def context(
    kind: LanguageModelKind,
    config: Mapping[str, Any],
    *,
    secrets: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    services: NodeServices | None = None,
) -> NodeContext:
    """A step of `kind` with `config` as its resolved inputs, the provider's key in scope."""
    inputs = dict(config)
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id="step", type=kind.type, config=inputs),
        step_id="step",
        attempt=1,
        inputs=inputs,
        config=kind.config_model.model_validate(inputs),
        timeout_s=timeout_s,
        evaluate=lambda expression: None,
        scope={"inputs": {}, "nodes": {}, "secrets": dict(secrets or {KEY_SECRET: KEY})},
        services=services or NodeServices(),
    )


async def run_step(kind: LanguageModelKind, config: Mapping[str, Any], **kwargs: Any) -> NodeResult:
    return await kind.run(context(kind, config, **kwargs))


async def failed_step(
    kind: LanguageModelKind, config: Mapping[str, Any], **kwargs: Any
) -> NodeError:
    try:
        await kind.run(context(kind, config, **kwargs))
    except NodeError as exc:
        return exc
    raise AssertionError("the step did not fail")
