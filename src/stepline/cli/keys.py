"""`stepline keys create|list|revoke`: API keys, managed on the database directly.

No server is needed: these commands open the configured database (STEPLINE_DATABASE_URL,
or the embedded SQLite file under STEPLINE_HOME), so an operator can mint the first key
of an organization, or revoke a leaked one, while the API is down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from stepline.cli import local
from stepline.cli.console import note, out, print_json, say
from stepline.cli.failures import fail
from stepline.cli.ids import parse_uuid
from stepline.cli.options import json_flag, org_option, workspace_option

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.store.keys import ApiKeyRecord, CreatedKey

SCOPE_NAMES = "read, run, write, admin"
COLUMNS = (
    "key id", "name", "prefix", "scopes", "workspace", "created", "last used", "expires", "revoked"
)  # fmt: skip


@click.group(no_args_is_help=True)
def keys() -> None:
    """Create, list and revoke API keys (on the database directly, no server needed)."""


def parse_scopes(given: tuple[str, ...]) -> list[str]:
    """`--scope read --scope run` or `--scope read,run`; unknown scopes are a usage error."""
    from stepline.store.keys import check_scopes

    scopes = [part.strip() for value in given for part in value.split(",") if part.strip()]
    try:
        return check_scopes(scopes)
    except ValueError as exc:
        fail(str(exc))


@keys.command("create")
@org_option("The organization's name; it must exist, unless --create-org.", default=None)
@click.option(
    "--create-org",
    is_flag=True,
    help="Create the organization if there is none of that name.",
)
@click.option(
    "--scope",
    "-s",
    "scopes",
    metavar="SCOPE",
    multiple=True,
    help=f"A scope to grant ({SCOPE_NAMES}); repeat it or separate with commas. Default: admin.",
)
@click.option("--name", default="cli", show_default=True, help="A name to tell the key apart.")
@workspace_option("Limit the key to this workspace (UUID).")
def create(
    org: str, create_org: bool, scopes: tuple[str, ...], name: str, workspace: str | None
) -> None:
    """Create an API key and print it (alone, on the last line of stdout). It is shown once."""
    granted = parse_scopes(scopes or ("admin",))
    workspace_id = parse_uuid(workspace, "--workspace") if workspace else None
    if not name.strip():
        fail("--name must not be empty")

    async def main() -> CreatedKey:
        async with local.open_store() as store:
            org_id = await local.organization_id(store, org, create=create_org)
            return await store.keys.create(
                org_id, name=name, scopes=granted, workspace_id=workspace_id
            )

    created = local.run_async(main)
    record = created.record
    note(
        f"Created API key {record.id} ({record.name!r}) for organization {org!r} "
        f"with scopes {', '.join(record.scopes)}"
        + (f" in workspace {record.workspace_id}" if record.workspace_id else "")
        + ". It is shown once; store it now:"
    )
    click.echo(created.secret)


@keys.command("list")
@org_option()
@json_flag
def list_keys(org: str, as_json: bool) -> None:
    """List an organization's keys, newest first (never their secrets)."""

    async def main() -> list[ApiKeyRecord]:
        async with local.open_store() as store:
            return await store.keys.list(await local.organization_id(store, org))

    found = local.run_async(main)
    if as_json:
        print_json([key.model_dump(mode="json") for key in found])
    else:
        out().print(keys_table(org, found))


@keys.command("revoke")
@click.argument("key_id", metavar="KEY_ID")
@org_option()
def revoke(key_id: str, org: str) -> None:
    """Revoke a key (its id: see `stepline keys list`): it stops working at once.

    Revoking it again changes nothing.
    """
    kid = parse_uuid(key_id, "key id")

    async def main() -> ApiKeyRecord:
        async with local.open_store() as store:
            return await store.keys.revoke(await local.organization_id(store, org), kid)

    record = local.run_async(main)
    assert record.revoked_at is not None
    say(
        f"API key {record.id} ({record.prefix}…) revoked at "
        f"{record.revoked_at.isoformat(timespec='seconds')}"
    )


def keys_table(org: str, found: list[ApiKeyRecord]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=f"API keys of {org}", title_justify="left")
    table.add_column(COLUMNS[0], no_wrap=True, min_width=36)  # whole: `keys revoke` takes it
    for column in COLUMNS[1:]:
        table.add_column(column)
    for key in found:
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
