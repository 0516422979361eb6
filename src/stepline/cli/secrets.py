"""`stepline secrets set|list|delete`: the secrets workflows read as `{{ secrets.NAME }}`.

With a server (`--server` or STEPLINE_SERVER) they go over HTTP with the API key, to the
key's organization; without one they work on the configured database directly, like
`stepline keys`, with the secrets key of this machine (STEPLINE_SECRETS_KEY or
$STEPLINE_HOME/secrets.key). A value is read from stdin when piped, else asked for
without echo: never from the command line, where shell history and `ps` would keep it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar
from uuid import UUID

import typer
from rich.table import Table

from stepline.cli import remote
from stepline.cli.keys import (
    DEFAULT_ORGANIZATION,
    OrgOption,
    fail,
    open_store,
    organization_id,
    out,
    parse_uuid,
)
from stepline.cli.keys import run as run_keys_command
from stepline.cli.render import dumps
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError, load_cipher
from stepline.secrets.names import name_problem, value_problem
from stepline.secrets.vault import Vault
from stepline.settings import get_settings
from stepline.store import Store
from stepline.store.secrets import SecretRecord

secrets_app = typer.Typer(
    help="Secrets that workflows read as {{ secrets.NAME }}: set, list, delete (on a server "
    "with --server or STEPLINE_SERVER, else on the database directly).",
    no_args_is_help=True,
)

T = TypeVar("T")

NameArgument = Annotated[str, typer.Argument(help="The secret's name, e.g. API_KEY.")]
WorkspaceOption = Annotated[
    str | None,
    typer.Option(
        "--workspace",
        help="A workspace's secret (UUID) instead of the organization's own.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]


def local_vault(store: Store) -> Vault:
    return Vault(store, lambda create: load_cipher(get_settings(), create=create))


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return run_keys_command(main)
    except (SecretKeyError, SecretDecryptError, ValueError) as exc:
        fail(str(exc))


def checked_name(name: str) -> str:
    problem = name_problem(name)
    if problem is not None:
        fail(problem)
    return name


def read_value(name: str) -> str:
    """The value: all of stdin when piped (less one final newline), else a hidden prompt."""
    if sys.stdin.isatty():
        value: str = typer.prompt(
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


@secrets_app.command("set")
def set_secret(
    name: NameArgument,
    org: Annotated[
        str,
        typer.Option("--org", help="Without a server: the organization (created if missing)."),
    ] = DEFAULT_ORGANIZATION,
    workspace: WorkspaceOption = None,
    server: remote.ServerOption = None,
) -> None:
    """Create a secret or replace its value, read from stdin or a hidden prompt."""
    checked_name(name)
    workspace_id = _workspace(workspace)
    value = read_value(name)
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            client.secrets.set(name, value)
        where = server
    else:

        async def main() -> None:
            async with open_store() as store:
                org_id = await store.ensure_organization(org)
                await local_vault(store).set(org_id, workspace_id, name, value)

        run(main)
        where = f"organization {org!r}"
    out.print(f"Secret {name} set for {where}.", markup=False, soft_wrap=True)


@secrets_app.command("list")
def list_secrets(
    org: OrgOption = DEFAULT_ORGANIZATION,
    workspace: WorkspaceOption = None,
    server: remote.ServerOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the secrets' names and when they were set (never their values)."""
    workspace_id = _workspace(workspace)
    documents: list[dict[str, Any]]
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            documents = [s.model_dump(mode="json") for s in client.secrets.list()]
    else:

        async def main() -> list[SecretRecord]:
            async with open_store() as store:
                org_id = await organization_id(store, org)
                return await local_vault(store).list(org_id, workspace_id)

        documents = [s.model_dump(mode="json") for s in run(main)]
    if as_json:
        out.print(dumps(documents), markup=False, soft_wrap=True)
    else:
        out.print(secrets_table(documents))


@secrets_app.command("delete")
def delete_secret(
    name: NameArgument,
    org: OrgOption = DEFAULT_ORGANIZATION,
    workspace: WorkspaceOption = None,
    server: remote.ServerOption = None,
) -> None:
    """Delete a secret; runs that read it can no longer start."""
    checked_name(name)
    workspace_id = _workspace(workspace)
    if server:
        with remote.connect(server, workspace_id=workspace_id) as client:
            client.secrets.delete(name)
    else:

        async def main() -> None:
            async with open_store() as store:
                org_id = await organization_id(store, org)
                await local_vault(store).delete(org_id, workspace_id, name)

        run(main)
    out.print(f"Secret {name} deleted.", markup=False, soft_wrap=True)


def secrets_table(documents: list[dict[str, Any]]) -> Table:
    table = Table(title="Secrets", title_justify="left")
    table.add_column("name")
    table.add_column("workspace")
    table.add_column("created")
    table.add_column("updated")
    for doc in documents:
        table.add_row(
            doc["name"],
            doc.get("workspace_id") or "",
            str(doc.get("created_at") or "")[:19],
            str(doc.get("updated_at") or "")[:19],
        )
    return table
