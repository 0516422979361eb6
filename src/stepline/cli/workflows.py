"""`stepline workflows list|show|push|validate`: workflows on a stepline server."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from stepline.cli import remote
from stepline.cli.console import err, out, print_json, say
from stepline.cli.failures import EXIT_FAILED
from stepline.cli.inputs import load_file
from stepline.cli.options import json_flag, limit_option, server_option, workflow_file_argument

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.sdk import Workflow


@click.group(no_args_is_help=True)
def workflows() -> None:
    """Workflows on a stepline server (--server, STEPLINE_SERVER or the saved one)."""


def workflows_table(listed: Iterable[Workflow], width: int) -> Table:
    """Ids and names are never cut (they are what one types next); the description gives
    way to the terminal's width, down to nothing."""
    from rich.table import Table

    rows = list(listed)
    names = max((len(w.name) for w in rows), default=4)
    room = width - 36 - max(names, 4) - 7 - 13  # the other columns and the borders
    table = Table(title="Workflows", title_justify="left")
    table.add_column("workflow id", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("version", justify="right", no_wrap=True)
    if room >= 12:
        table.add_column("description", no_wrap=True)
    for w in rows:
        row = [str(w.id), w.name, str(w.latest_version)]
        if room >= 12:
            text = w.description.strip().split("\n", 1)[0]
            row.append(text if len(text) <= room else text[: room - 1] + "…")
        table.add_row(*row)
    return table


@workflows.command("list")
@limit_option(100, "How many workflows at most.")
@json_flag
@server_option
def workflows_list(limit: int, as_json: bool, server: str | None) -> None:
    """List the workflows on the server."""
    with remote.connect(server) as client:
        found: list[Workflow] = []
        for workflow in client.workflows.list(page_size=min(limit, 1000)):
            found.append(workflow)
            if len(found) >= limit:
                break
    if as_json:
        print_json([w.model_dump(mode="json") for w in found])
    else:
        out().print(workflows_table(found, out().width))


@workflows.command("show")
@click.argument("workflow", metavar="WORKFLOW")
@json_flag
@server_option
def workflows_show(workflow: str, as_json: bool, server: str | None) -> None:
    """Show one WORKFLOW (its id or name): its versions and its latest definition."""
    with remote.connect(server) as client:
        found = remote.resolve_workflow(client, workflow)
        if as_json:
            print_json(found.model_dump(mode="json"))
            return
        versions = list(client.workflows.versions(found.id))
    out().print(workflows_table([found], out().width))
    for version in versions:
        say(
            f"  v{version.version}  {version.created_at.isoformat(timespec='seconds')}"
            f"  sha256:{version.digest[:12]}"
        )
    if found.definition is not None:
        out().print("Definition:")
        print_json(found.definition)


@workflows.command("push")
@workflow_file_argument
@json_flag
@server_option
def workflows_push(file: Path, as_json: bool, server: str | None) -> None:
    """Create the FILE's workflow on the server, or update the one of the same name.

    An update with a changed definition makes a new version; an unchanged one keeps it.
    """
    definition = load_file(file)
    name = definition.get("name")
    with remote.connect(server) as client:
        existing = remote.find_workflow_by_name(client, name) if isinstance(name, str) else None
        if existing is None:
            saved, what = client.workflows.create(definition), "created"
        else:
            saved = client.workflows.update(existing.id, definition)
            changed = saved.latest_version != existing.latest_version
            what = "updated" if changed else "unchanged"
    if as_json:
        print_json({"action": what, **saved.model_dump(mode="json")})
        return
    say(f"{what} workflow {saved.name}: id {saved.id}, version {saved.latest_version}")


@workflows.command("validate")
@workflow_file_argument
@json_flag
@server_option
def workflows_validate(file: Path, as_json: bool, server: str | None) -> None:
    """Validate a workflow FILE on the server (its node kinds); exit 1 if it is not valid."""
    definition = load_file(file)
    with remote.connect(server) as client:
        result = client.workflows.validate(definition)
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.valid:
        say(f"{file}: valid")
    else:
        err().print(f"[red]{file}: {len(result.errors)} problem(s)[/red]")
        for issue in result.errors:
            where = f"{issue.path}: " if issue.path else ""
            node = f"[{issue.node_id}] " if issue.node_id else ""
            say(f"  {node}{where}{issue.message}")
    if not result.valid:
        raise click.exceptions.Exit(EXIT_FAILED)
