"""`stepline keys create|list|revoke`: API keys, managed on the database directly.

No server is needed: these commands open the configured database (STEPLINE_DATABASE_URL,
or the embedded SQLite file under STEPLINE_HOME), so an operator can mint the first key
of an organization, or revoke a leaked one, while the API is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Annotated, Any, NoReturn, TypeVar
from uuid import UUID

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from stepline.cli.render import dumps
from stepline.settings import get_settings
from stepline.store import NotFoundError, Store
from stepline.store.keys import SCOPES, ApiKeyRecord, CreatedKey, check_scopes

keys_app = typer.Typer(
    help="Create, list and revoke API keys (on the database directly, no server needed).",
    no_args_is_help=True,
)

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_USAGE = 2
DEFAULT_ORGANIZATION = "default"

T = TypeVar("T")

OrgOption = Annotated[
    str,
    typer.Option("--org", help="The organization's name.", show_default=True),
]


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(main())
    except NotFoundError as exc:
        fail(str(exc))


@asynccontextmanager
async def open_store() -> AsyncIterator[Store]:
    settings = get_settings()
    store = await Store.connect(settings.resolved_database_url(), home=settings.home)
    try:
        await store.upgrade()
        yield store
    finally:
        await store.close()


async def organization_id(store: Store, name: str) -> UUID:
    found = await store.get_organization_by_name(name)
    if found is None:
        fail(f"no organization named {name!r} (`stepline keys create --org {name}` creates it)")
    return found.id


def parse_scopes(given: list[str]) -> list[str]:
    """`--scope read --scope run` or `--scope read,run`; unknown scopes are a usage error."""
    scopes = [part.strip() for value in given for part in value.split(",") if part.strip()]
    try:
        return check_scopes(scopes)
    except ValueError as exc:
        fail(str(exc))


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"{what} {value!r} is not a UUID")


@keys_app.command("create")
def create(
    org: Annotated[
        str, typer.Option("--org", help="The organization's name (created if it does not exist).")
    ],
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            "-s",
            help=f"A scope to grant ({', '.join(SCOPES)}); repeat it or separate with commas. "
            "Default: admin.",
        ),
    ] = None,
    name: Annotated[str, typer.Option("--name", help="A name to tell the key apart.")] = "cli",
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Limit the key to this workspace (UUID).")
    ] = None,
) -> None:
    """Create an API key and print it (alone, on the last line of stdout). It is shown once."""
    scopes = parse_scopes(scope or ["admin"])
    workspace_id = parse_uuid(workspace, "--workspace") if workspace else None
    if not name.strip():
        fail("--name must not be empty")

    async def main() -> CreatedKey:
        async with open_store() as store:
            org_id = await store.ensure_organization(org)
            return await store.create_api_key(
                org_id, name=name, scopes=scopes, workspace_id=workspace_id
            )

    created = run(main)
    record = created.record
    err.print(
        f"Created API key {record.id} ({record.name!r}) for organization {org!r} "
        f"with scopes {', '.join(record.scopes)}"
        + (f" in workspace {record.workspace_id}" if record.workspace_id else "")
        + ". It is shown once; store it now:",
        markup=False,
        soft_wrap=True,
    )
    typer.echo(created.secret)


@keys_app.command("list")
def list_keys(
    org: OrgOption = DEFAULT_ORGANIZATION,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON document to stdout.")
    ] = False,
) -> None:
    """List an organization's keys, newest first (never their secrets)."""

    async def main() -> list[ApiKeyRecord]:
        async with open_store() as store:
            return await store.list_api_keys(await organization_id(store, org))

    keys = run(main)
    if as_json:
        documents = [key.model_dump(mode="json") for key in keys]
        out.print(dumps(documents), markup=False, soft_wrap=True)
    else:
        out.print(keys_table(org, keys))


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `stepline keys list`).")],
    org: OrgOption = DEFAULT_ORGANIZATION,
) -> None:
    """Revoke a key: it stops working at once. Revoking it again changes nothing."""
    kid = parse_uuid(key_id, "key id")

    async def main() -> ApiKeyRecord:
        async with open_store() as store:
            return await store.revoke_api_key(await organization_id(store, org), kid)

    record = run(main)
    assert record.revoked_at is not None
    out.print(
        f"API key {record.id} ({record.prefix}…) revoked at "
        f"{record.revoked_at.isoformat(timespec='seconds')}",
        markup=False,
        soft_wrap=True,
    )


def keys_table(org: str, keys: list[ApiKeyRecord]) -> Table:
    table = Table(title=f"API keys of {org}", title_justify="left")
    table.add_column("key id")
    table.add_column("name")
    table.add_column("prefix")
    table.add_column("scopes")
    table.add_column("workspace")
    table.add_column("created")
    table.add_column("last used")
    table.add_column("expires")
    table.add_column("revoked")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.prefix + "…",
            ",".join(key.scopes),
            str(key.workspace_id) if key.workspace_id else "",
            key.created_at.isoformat(timespec="seconds"),
            key.last_used_at.isoformat(timespec="seconds") if key.last_used_at else "",
            key.expires_at.isoformat(timespec="seconds") if key.expires_at else "",
            Text(key.revoked_at.isoformat(timespec="seconds"), style="red")
            if key.revoked_at
            else Text("no", style="green"),
        )
    return table
