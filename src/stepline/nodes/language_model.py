"""What the model, classifier and extract kinds share: which endpoint a node calls, with
which key and model (their calls on the record are `stepline.nodes.model_calls`).

A node names a configured `provider` (whose API key is a secret of the run's
organization), or gives its own `base_url` and `api_key` (a template reading a secret).
Either way the key reaches the request only: the step records the request body, never
the key, and the run's redactor masks the secret's value wherever else it shows up.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepline.nodes.base import NodeContext, NodeError, NodeKind
from stepline.nodes.structured import Method
from stepline.providers.client import Endpoint
from stepline.providers.config import (
    ProviderCatalog,
    ProviderConfigError,
    check_base_url,
    configured_providers,
)
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage
from stepline.secrets.redact import MASK
from stepline.settings import get_settings
from stepline.spec.templates import TemplateError, get_templates, is_template

Providers = ProviderCatalog | Callable[[], ProviderCatalog]


class ConnectionConfig(BaseModel):
    """Where the node's requests go, to which model, and how long each may take."""

    model_config = ConfigDict(extra="forbid")

    provider: str | None = Field(
        default=None,
        description="A provider of the server's configuration (STEPLINE_CONFIG): its base URL, "
        "key and prices. Written as is, never a template. Or give `base_url` instead.",
    )
    base_url: str | None = Field(
        default=None,
        description="An OpenAI-compatible API of the node's own, e.g. http://127.0.0.1:11434/v1 "
        "(no price is known for it).",
    )
    api_key: str | None = Field(
        default=None,
        description='With base_url: the key, as a template reading a secret ("{{ '
        'secrets.MY_KEY }}"); leave out for an endpoint that takes none.',
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        description="The model to ask; default: the provider's default_model.",
    )
    timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Seconds one request may take; default the node's timeout_s, the "
        "provider's, then STEPLINE_MODEL_TIMEOUT_S.",
    )
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameters the provider takes beyond OpenAI's (e.g. top_k, "
        "repetition_penalty), sent in the request body as they are.",
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @model_validator(mode="after")
    def _one_endpoint(self) -> ConnectionConfig:
        if self.provider is None and self.base_url is None:
            raise ValueError("name a `provider` of the server's configuration, or give `base_url`")
        if self.provider is not None and self.base_url is not None:
            raise ValueError("give either `provider` or `base_url`, not both")
        if self.provider is not None and self.api_key is not None:
            raise ValueError("`api_key` goes with `base_url`; a provider's key is configured")
        reserved = set(self.extra) & self.request_fields()
        if reserved:
            names = ", ".join(sorted(reserved))
            raise ValueError(f"`extra` cannot set {names}: set them as the node's own fields")
        return self

    @classmethod
    def request_fields(cls) -> set[str]:
        """Request body fields the kind sets itself, which `extra` may not override."""
        return {"model", "messages", "stream"}


def as_text(value: Any) -> str:
    """A rendered value as message text: a string as is, anything else as its JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


class LanguageModelKind(NodeKind):
    """A node kind that calls a language model; holds where providers come from."""

    raw_fields: ClassVar[frozenset[str]] = frozenset({"provider"})
    records_run_context: ClassVar[bool] = True

    def __init__(self, providers: Providers | None = None) -> None:
        self._providers = providers

    def providers(self) -> ProviderCatalog:
        """The configured providers (the server's configuration file unless given)."""
        if isinstance(self._providers, ProviderCatalog):
            return self._providers
        if self._providers is not None:
            return self._providers()
        return configured_providers()

    # -- validation hooks (spec.validate calls them on the node's raw config) ---------------

    def config_problems(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(path below config, message) for what only the configuration can tell."""
        problems: list[tuple[str, str]] = []
        provider = config.get("provider")
        if isinstance(provider, str):
            try:
                catalog = self.providers()
            except ProviderConfigError as exc:
                return [("provider", f"the server's provider configuration is broken: {exc}")]
            settings = catalog.get(provider)
            if settings is None:
                problems.append(("provider", catalog.describe_missing(provider)))
            elif config.get("model") is None and settings.default_model is None:
                problems.append(("model", f"required: provider {provider!r} has no default_model"))
        elif config.get("base_url") is not None and config.get("model") is None:
            problems.append(("model", "required with base_url"))
        api_key = config.get("api_key")
        if isinstance(api_key, str) and not _reads_a_secret(api_key):
            problems.append(
                (
                    "api_key",
                    'must read a secret, e.g. "{{ secrets.MY_KEY }}": a key written in the '
                    "workflow would be stored and shown with it",
                )
            )
        return problems

    def configured_secrets(self, config: Mapping[str, Any]) -> list[tuple[str, str]]:
        """(path below config, name) of each secret the node reads through its provider."""
        provider = config.get("provider")
        if not isinstance(provider, str):
            return []
        try:
            settings = self.providers().get(provider)
        except ProviderConfigError:
            return []  # reported by config_problems
        secret = None if settings is None else settings.api_key_secret
        return [] if secret is None else [("provider", secret)]

    # -- running -------------------------------------------------------------------------

    def endpoint(self, ctx: NodeContext, config: ConnectionConfig) -> Endpoint:
        """The endpoint and key of this step; a permanent input error when they are gone."""
        if config.provider is None:
            assert config.base_url is not None  # the config's own validator requires one
            return Endpoint(base_url=config.base_url, api_key=config.api_key)
        try:
            catalog = self.providers()
        except ProviderConfigError as exc:
            raise input_error(f"the server's provider configuration is broken: {exc}") from exc
        settings = catalog.get(config.provider)
        if settings is None:
            raise input_error(catalog.describe_missing(config.provider))
        api_key = None
        secret = settings.api_key_secret
        if secret is not None:
            api_key = (ctx.scope.get("secrets") or {}).get(secret)
            if not api_key:
                raise input_error(
                    f"secret {secret!r} (the key of provider {config.provider!r}) is not set "
                    "for this run's organization"
                )
        return Endpoint(
            base_url=settings.base_url,
            api_key=api_key,
            provider=settings.name,
            prices=settings.price_table,
            timeout_s=settings.timeout_s,
        )

    def model_of(self, config: ConnectionConfig) -> str:
        """The model asked for: the node's, else its provider's default."""
        if config.model is not None:
            return config.model
        if config.provider is not None:
            try:
                settings = self.providers().get(config.provider)
            except ProviderConfigError:
                settings = None
            if settings is not None and settings.default_model is not None:
                return settings.default_model
        raise input_error("no `model` is given, and no default_model is configured for it")

    def timeout_of(self, ctx: NodeContext, config: ConnectionConfig, endpoint: Endpoint) -> float:
        return (
            config.timeout_s
            or ctx.timeout_s
            or endpoint.timeout_s
            or get_settings().model_timeout_s
        )

    def structured_method(self, chosen: Method | None, provider: str | None) -> Method:
        """How to ask for JSON: the node's choice, else its provider's, else a JSON schema."""
        if chosen is not None:
            return chosen
        try:
            settings = self.providers().get(provider) if provider is not None else None
        except ProviderConfigError:
            settings = None
        return settings.structured_output if settings is not None else "json_schema"

    @abstractmethod
    def first_request(self, config: Any) -> dict[str, Any]:
        """The body of the step's (first) request for its validated config."""

    def recorded_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """The request body the step sends, never the key (a repair is in the trace spans).

        When no request can be made of it (its provider is gone: run() fails the step
        saying so), the config itself, an inline key masked (the redactor masks a secret's
        value anyway; this does not depend on it).
        """
        try:
            return self.first_request(self.config_model.model_validate(inputs))
        except Exception:
            if inputs.get("api_key") is None:
                return inputs
            return {**inputs, "api_key": MASK}


def input_error(message: str) -> NodeError:
    return NodeError(
        message,
        category=ErrorCategory.permanent,
        stage=ErrorStage.input_collection,
        details=ErrorDetails(type="ProviderUnavailable", message=message),
    )


def _reads_a_secret(value: str) -> bool:
    if not is_template(value):
        return False
    try:
        references = get_templates().references(value, expression=False, path="$.api_key")
    except TemplateError:
        return True  # the template check reports the syntax
    return any(ref.root == "secrets" for ref in references)
