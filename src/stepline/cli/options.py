"""The options several commands share, each declared once (plain Click decorators)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_ORGANIZATION = "default"


def json_flag(command: F) -> F:
    """`--json`: one JSON document on stdout instead of tables."""
    return click.option(
        "--json", "as_json", is_flag=True, help="Print one JSON document to stdout."
    )(command)


def server_option(command: F) -> F:
    """`--server URL` (or STEPLINE_SERVER): talk to a stepline server over HTTP."""
    return click.option(
        "--server",
        metavar="URL",
        envvar="STEPLINE_SERVER",
        show_envvar=True,
        help="A stepline server's URL: work over HTTP instead of on the local database.",
    )(command)


def workflow_option(
    help: str = "With --server: the run's workflow (id or name); found by searching otherwise.",
) -> Callable[[F], F]:
    """`--workflow/-w ID_OR_NAME`."""
    return click.option("--workflow", "-w", metavar="WORKFLOW", help=help)


def inputs_options(
    inputs_json_help: str = "All inputs as one JSON object.",
) -> Callable[[F], F]:
    """`--input/-i key=value` (repeatable) and `--inputs-json`, read by `inputs.parse_inputs`."""

    def decorate(command: F) -> F:
        command = click.option("--inputs-json", metavar="JSON", help=inputs_json_help)(command)
        return click.option(
            "--input",
            "-i",
            "input_pairs",
            metavar="KEY=VALUE",
            multiple=True,
            help="An input as key=value (value parsed as JSON if it is); repeatable.",
        )(command)

    return decorate


def watch_flag(help: str) -> Callable[[F], F]:
    """`--watch`: follow the run to its end."""
    return click.option("--watch", is_flag=True, help=help)


def limit_option(default: int, help: str, *, maximum: int | None = None) -> Callable[[F], F]:
    """`--limit N`."""
    return click.option(
        "--limit",
        metavar="N",
        type=click.IntRange(min=1, max=maximum),
        default=default,
        show_default=True,
        help=help,
    )


def org_option(
    help: str = "The organization's name.", *, default: str | None = DEFAULT_ORGANIZATION
) -> Callable[[F], F]:
    """`--org NAME` (required when there is no default)."""
    if default is None:
        return click.option("--org", metavar="NAME", required=True, help=help)
    return click.option("--org", metavar="NAME", default=default, show_default=True, help=help)


def workspace_option(help: str) -> Callable[[F], F]:
    """`--workspace UUID`."""
    return click.option("--workspace", metavar="UUID", help=help)


def run_id_argument(command: F) -> F:
    """`RUN_ID`: a run's whole id, or a unique prefix of one."""
    return click.argument("run_id", metavar="RUN_ID")(command)


def workflow_file_argument(command: F) -> F:
    """`FILE`: a workflow document (YAML or JSON), as a Path."""
    return click.argument("file", type=click.Path(path_type=Path, dir_okay=False))(command)
