"""`stepline providers list|test NAME`: the language-model providers of this configuration.

They read the configuration file (STEPLINE_CONFIG, else $STEPLINE_HOME/stepline.toml).
`test` sends a tiny completion with the provider's key, read like `stepline run` reads
secrets: STEPLINE_SECRET_<NAME> from this environment, else the database's (an
organization's, `--org`), so run it where the server's database and secrets key are.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich.table import Table

from stepline.cli.keys import DEFAULT_ORGANIZATION, OrgOption, fail, open_store, out
from stepline.cli.render import dumps
from stepline.cli.secrets import local_vault
from stepline.providers.client import ChatCall, Endpoint, chat_completion
from stepline.providers.config import (
    ProviderCatalog,
    ProviderConfigError,
    ProviderSettings,
    configured_providers,
)
from stepline.providers.errors import ProviderError
from stepline.records import ErrorCategory
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError
from stepline.secrets.source import ENV_PREFIX, EnvironmentSecrets
from stepline.settings import get_settings

providers_app = typer.Typer(
    help="The language-model providers of the configuration file (STEPLINE_CONFIG): list "
    "them, or test one with a tiny completion.",
    no_args_is_help=True,
)

EXIT_FAILED = 1
_NO_ORG = UUID(int=0)
"""The environment's secrets belong to no organization; the source asks for one."""
TEST_PROMPT = "Reply with the single word: ok"

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]


def catalog() -> ProviderCatalog:
    try:
        return configured_providers()
    except ProviderConfigError as exc:
        fail(str(exc))


@providers_app.command("list")
def list_providers(as_json: JsonFlag = False) -> None:
    """The configured providers: base URL, default model, key secret and priced models."""
    providers = catalog()
    path = get_settings().config_path()
    if as_json:
        document = {
            "config": str(path),
            "providers": [describe(settings) for settings in providers.values()],
        }
        out.print(dumps(document), markup=False, soft_wrap=True)
        return
    if not providers:
        out.print(
            f"no providers configured: add a [providers.NAME] table to {path} "
            "(or point STEPLINE_CONFIG at a file that has one)",
            markup=False,
        )
        return
    table = Table("name", "base_url", "default model", "key secret", "priced models")
    for settings in providers.values():
        table.add_row(
            settings.name,
            settings.base_url,
            settings.default_model or "-",
            settings.api_key_secret or "(none)",
            ", ".join(sorted(settings.prices)) or "-",
        )
    out.print(f"from {path}", markup=False)
    out.print(table)


@providers_app.command("test")
def test_provider(
    name: Annotated[str, typer.Argument(help="The provider's name in the configuration.")],
    model: Annotated[
        str | None, typer.Option("--model", help="The model to ask (default: the provider's).")
    ] = None,
    org: OrgOption = DEFAULT_ORGANIZATION,
    timeout_s: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds to wait for the answer.")
    ] = 30.0,
    as_json: JsonFlag = False,
) -> None:
    """Send the provider a tiny completion and say what came back, or why nothing did."""
    providers = catalog()
    settings = providers.get(name)
    if settings is None:
        fail(providers.describe_missing(name))
    chosen = model or settings.default_model
    if chosen is None:
        fail(f"provider {name!r} has no default_model: say which with --model")
    endpoint = Endpoint(
        base_url=settings.base_url,
        api_key=asyncio.run(_key(settings, org)),
        provider=settings.name,
        prices=settings.price_table,
    )
    request = {"model": chosen, "messages": [{"role": "user", "content": TEST_PROMPT}]}
    try:
        call = asyncio.run(chat_completion(endpoint, request, timeout_s=timeout_s))
    except ProviderError as exc:
        _report_failure(name, exc, as_json)
    _report_success(name, call, as_json)


def describe(settings: ProviderSettings) -> dict[str, Any]:
    return {
        "name": settings.name,
        "base_url": settings.base_url,
        "default_model": settings.default_model,
        "api_key_secret": settings.api_key_secret,
        "structured_output": settings.structured_output,
        "currency": settings.currency,
        "prices": {
            model: {"prompt": str(price.prompt), "completion": str(price.completion)}
            for model, price in settings.prices.items()
        },
    }


async def _key(settings: ProviderSettings, org: str) -> str | None:
    """The provider's key: STEPLINE_SECRET_<NAME>, else the organization's secret."""
    secret = settings.api_key_secret
    if secret is None:
        return None
    environment = EnvironmentSecrets(os.environ)
    found = await environment.values(_NO_ORG, None, [secret])
    if secret in found:
        return found[secret]
    try:
        async with open_store() as store:
            organization = await store.get_organization_by_name(org)
            if organization is not None:
                found = await local_vault(store).values(organization.id, None, [secret])
    except (SecretKeyError, SecretDecryptError) as exc:
        fail(str(exc))
    if secret not in found:
        fail(
            f"secret {secret!r} (the key of provider {settings.name!r}) is not set for "
            f"organization {org!r}: `stepline secrets set {secret} --org {org}`, or "
            f"{ENV_PREFIX}{secret} in this command's environment"
        )
    return found[secret]


def _report_success(name: str, call: ChatCall, as_json: bool) -> None:
    content = call.message.get("content")
    tokens = call.tokens
    cost = call.cost
    if as_json:
        document = {
            "ok": True,
            "provider": name,
            "model": call.model,
            "content": content,
            "duration_ms": call.duration_ms,
            "tokens": None if tokens is None else tokens.model_dump(),
            "cost": None if cost is None else cost.breakdown().model_dump(),
        }
        out.print(dumps(document), markup=False, soft_wrap=True)
        return
    spent = "no usage reported"
    if tokens is not None:
        spent = f"{tokens.prompt} prompt + {tokens.completion} completion tokens"
    priced = (
        f"cost {cost.total:f} {cost.currency}"
        if cost is not None
        else f"no price configured for {call.model}"
    )
    out.print(
        f"provider {name!r} answered in {call.duration_ms} ms with model {call.model}: "
        f"{content!r} ({spent}; {priced})",
        markup=False,
        soft_wrap=True,
    )


_HINTS = {
    ErrorCategory.quota: "the provider's rate limit or quota: try again later",
    ErrorCategory.transient: "check that base_url is right and the provider is up",
    ErrorCategory.permanent: "check the key (its secret's value), base_url and the model",
}


def _report_failure(name: str, exc: ProviderError, as_json: bool) -> NoReturn:
    if as_json:
        document = {
            "ok": False,
            "provider": name,
            "error": exc.message,
            "category": str(exc.category),
            "code": exc.code,
            "status_code": exc.status_code,
        }
        out.print(dumps(document), markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILED)
    fail(
        f"provider {name!r} failed the test ({exc.category}): {exc.message}\n"
        f"hint: {_HINTS[exc.category]}",
        code=EXIT_FAILED,
    )
