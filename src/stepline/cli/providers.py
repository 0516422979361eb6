"""`stepline providers list|test NAME`: the language-model providers of this configuration.

They read the configuration file (STEPLINE_CONFIG, else $STEPLINE_HOME/stepline.toml).
`test` sends a tiny completion with the provider's key, read like `stepline run` reads
secrets: STEPLINE_SECRET_<NAME> from this environment, else the database's (an
organization's, `--org`), so run it where the server's database and secrets key are.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NoReturn
from uuid import UUID

import click

from stepline.cli import local
from stepline.cli.console import print_json, say
from stepline.cli.failures import EXIT_FAILED, fail
from stepline.cli.options import json_flag, org_option

if TYPE_CHECKING:
    from stepline.providers.client import ChatCall
    from stepline.providers.config import ProviderCatalog, ProviderSettings
    from stepline.providers.errors import ProviderError

_NO_ORG = UUID(int=0)
"""The environment's secrets belong to no organization; the source asks for one."""
TEST_PROMPT = "Reply with the single word: ok"


@click.group(no_args_is_help=True)
def providers() -> None:
    """The language-model providers of the configuration file (STEPLINE_CONFIG).

    List them, or test one with a tiny completion.
    """


def catalog() -> ProviderCatalog:
    from stepline.providers.config import configured_providers

    return configured_providers()


@providers.command("list")
@json_flag
def list_providers(as_json: bool) -> None:
    """The configured providers: base URL, default model, key secret and priced models."""
    from rich.table import Table

    from stepline.cli.console import out
    from stepline.settings import get_settings

    configured = catalog()
    path = get_settings().config_path()
    if as_json:
        document = {
            "config": str(path),
            "providers": [describe(settings) for settings in configured.values()],
        }
        print_json(document)
        return
    if not configured:
        say(
            f"no providers configured: add a [providers.NAME] table to {path} "
            "(or point STEPLINE_CONFIG at a file that has one)"
        )
        return
    table = Table("name", "base_url", "default model", "key secret", "priced models")
    for settings in configured.values():
        table.add_row(
            settings.name,
            settings.base_url,
            settings.default_model or "-",
            settings.api_key_secret or "(none)",
            ", ".join(sorted(settings.prices)) or "-",
        )
    say(f"from {path}")
    out().print(table)


@providers.command("test")
@click.argument("name", metavar="NAME")
@click.option("--model", help="The model to ask (default: the provider's).")
@org_option()
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the answer.",
)
@json_flag
def test_provider(name: str, model: str | None, org: str, timeout_s: float, as_json: bool) -> None:
    """Send the provider NAME a tiny completion and say what came back, or why nothing did."""
    import asyncio

    from stepline.providers.client import Endpoint, chat_completion
    from stepline.providers.errors import ProviderError

    configured = catalog()
    settings = configured.get(name)
    if settings is None:
        fail(configured.describe_missing(name))
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
    from stepline.secrets.source import ENV_PREFIX, EnvironmentSecrets

    secret = settings.api_key_secret
    if secret is None:
        return None
    environment = EnvironmentSecrets(os.environ)
    found = await environment.values(_NO_ORG, None, [secret])
    if secret in found:
        return found[secret]
    async with local.open_local() as runtime:
        organization = await runtime.store.organizations.find(org)
        if organization is not None:
            found = await runtime.vault.values(organization.id, None, [secret])
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
        print_json(document)
        return
    spent = "no usage reported"
    if tokens is not None:
        spent = f"{tokens.prompt} prompt + {tokens.completion} completion tokens"
    priced = (
        f"cost {cost.total:f} {cost.currency}"
        if cost is not None
        else f"no price configured for {call.model}"
    )
    say(
        f"provider {name!r} answered in {call.duration_ms} ms with model {call.model}: "
        f"{content!r} ({spent}; {priced})"
    )


_HINTS = {
    "quota": "the provider's rate limit or quota: try again later",
    "transient": "check that base_url is right and the provider is up",
    "permanent": "check the key (its secret's value), base_url and the model",
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
        print_json(document)
        raise click.exceptions.Exit(EXIT_FAILED)
    fail(
        f"provider {name!r} failed the test ({exc.category}): {exc.message}\n"
        f"hint: {_HINTS[str(exc.category)]}",
        code=EXIT_FAILED,
    )
