"""An embedder from the server's provider configuration and an organization's secrets: the
one way the `knowledge_retrieval` kind and the collections' edges make one.

A provider's key is a secret of the organization (`api_key: "{{ secrets.NAME }}"`); the
caller looks it up (a run's resolved secrets, or the vault) and passes its value.
"""

from __future__ import annotations

from collections.abc import Mapping

from stepline.errors import InvalidRequest
from stepline.providers.client import ClientPool, Endpoint
from stepline.providers.config import ProviderCatalog, ProviderConfigError, ProviderSettings
from stepline.retrieval.embeddings import OpenAIEmbedder


class EmbeddingsUnavailable(InvalidRequest):
    """The embeddings provider named is not configured, or its key is not set."""


def embeddings_provider(providers: ProviderCatalog, name: str) -> ProviderSettings:
    """The provider of that name; EmbeddingsUnavailable (saying why) if there is none."""
    try:
        settings = providers.get(name)
        missing = None if settings else providers.describe_missing(name)
    except ProviderConfigError as exc:
        settings, missing = None, f"the server's provider configuration is broken: {exc}"
    if settings is None:
        raise EmbeddingsUnavailable(missing or f"provider {name!r} is not configured")
    return settings


def provider_embedder(
    settings: ProviderSettings,
    model: str,
    secrets: Mapping[str, str],
    *,
    pool: ClientPool | None = None,
    timeout_s: float | None = None,
    whose: str = "this run's organization",
) -> OpenAIEmbedder:
    """The embedder of `model` at the provider, with its key from `secrets` (by the
    secret's name); EmbeddingsUnavailable when the key is not set."""
    api_key = None
    if settings.api_key_secret is not None:
        api_key = secrets.get(settings.api_key_secret)
        if not api_key:
            raise EmbeddingsUnavailable(
                f"secret {settings.api_key_secret!r} (the key of provider "
                f"{settings.name!r}) is not set for {whose}"
            )
    endpoint = Endpoint(
        base_url=settings.base_url,
        api_key=api_key,
        provider=settings.name,
        timeout_s=settings.timeout_s,
    )
    return OpenAIEmbedder(endpoint, model, pool, timeout_s or settings.timeout_s or 60.0)
