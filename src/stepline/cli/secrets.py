"""`stepline secrets set|list|delete`: the secrets workflows read as `{{ secrets.NAME }}`.

With a server (`--server` or STEPLINE_SERVER) they go over HTTP with the API key, to the
key's organization; without one they work on the configured database directly, like
`stepline keys`, with the secrets key of this machine (STEPLINE_SECRETS_KEY or
$STEPLINE_HOME/secrets.key). A value is read from stdin when piped, else asked for
without echo: never from the command line, where shell history and `ps` would keep it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from uuid import UUID

import click

from stepline.cli import local, remote
from stepline.cli.console import out, print_json, say
from stepline.cli.failures import fail
from stepline.cli.ids import parse_uuid
from stepline.cli.options import (
    DEFAULT_ORGANIZATION,
    json_flag,
    org_option,
    server_option,
    workspace_option,
)

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.store.secrets import SecretRecord

NAME = "NAME"
in_workspace = workspace_option("A workspace's secret (UUID) instead of the organization's.")


@click.group(no_args_is_help=True)
def secrets() -> None:
    """Secrets that workflows read as {{ secrets.NAME }}: set, list, delete.

    On a server with --server or STEPLINE_SERVER, else on the database directly.
    """


def checked_name(name: str) -> str:
    from stepline.secrets.names import name_problem

    problem = name_problem(name)
    if problem is not None:
        fail(problem)
    return name


def read_value(name: str) -> str:
    """The value: all of stdin when piped (less one final newline), else a hidden prompt."""
    from stepline.secrets.names import value_problem

    if sys.stdin.isatty():
        value: str = click.prompt(
            f"Value of {name}", hide_input=True, confirmation_prompt=True, err=True
        )
    else:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    problem = value_problem(value)
    if problem is not None:
        fail(problem + (" (nothing came on stdin)" if not value else ""))
    return value


def _workspace(workspace: str | None) -> UUID | None:
    return parse_uuid(workspace, "--workspace") if workspace else None


@secrets.command("set")
@click.argument("name", metavar=NAME)
@org_option("Without a server: the organization; it must exist, unless --create-org.")
@click.option(
    "--create-org",
    is_flag=True,
    help="Without a server: create the organization if there is none of that name.",
)
@in_workspace
@server_option
def set_secret(
    name: str, org: str, create_org: bool, workspace: str | None, server: str | None
) -> None:
    """Create a secret NAME or replace its value, read from stdin or a hidden prompt."""
    checked_name(name)
    workspace_id = _workspace(workspace)
    value = read_value(name)
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            client.secrets.set(name, value)
        where = server
    else:

        async def main() -> None:
            async with local.open_local() as runtime:
                # `default` is made on first use, as by every other command.
                create = create_org or org == DEFAULT_ORGANIZATION
                org_id = await local.organization_id(runtime.store, org, create=create)
                await runtime.vault.set(org_id, workspace_id, name, value)

        local.run_async(main)
        where = f"organization {org!r}"
    say(f"Secret {name} set for {where}.")


@secrets.command("list")
@org_option()
@in_workspace
@server_option
@json_flag
def list_secrets(org: str, workspace: str | None, server: str | None, as_json: bool) -> None:
    """List the secrets' names and when they were set (never their values)."""
    workspace_id = _workspace(workspace)
    documents: list[dict[str, Any]]
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            documents = [s.model_dump(mode="json") for s in client.secrets.list()]
    else:

        async def main() -> list[SecretRecord]:
            async with local.open_local() as runtime:
                org_id = await local.organization_id(runtime.store, org)
                return await runtime.vault.list(org_id, workspace_id)

        documents = [s.model_dump(mode="json") for s in local.run_async(main)]
    if as_json:
        print_json(documents)
    else:
        out().print(secrets_table(documents))


@secrets.command("delete")
@click.argument("name", metavar=NAME)
@org_option()
@in_workspace
@server_option
def delete_secret(name: str, org: str, workspace: str | None, server: str | None) -> None:
    """Delete a secret NAME; runs that read it can no longer start."""
    checked_name(name)
    workspace_id = _workspace(workspace)
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            client.secrets.delete(name)
    else:

        async def main() -> None:
            async with local.open_local() as runtime:
                org_id = await local.organization_id(runtime.store, org)
                await runtime.vault.delete(org_id, workspace_id, name)

        local.run_async(main)
    say(f"Secret {name} deleted.")


def secrets_table(documents: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table(title="Secrets", title_justify="left")
    for column in ("name", "workspace", "created", "updated"):
        table.add_column(column)
    for doc in documents:
        table.add_row(
            doc["name"],
            doc.get("workspace_id") or "",
            str(doc.get("created_at") or "")[:19],
            str(doc.get("updated_at") or "")[:19],
        )
    return table
