"""The `stepline` command: its root group, the entry point, and the one error boundary.

Command modules import only Click and the CLI's shared helpers at module level (heavy
modules, such as SQLAlchemy, httpx, rich, pydantic and the engine, are imported inside
the commands), so that `stepline --help` starts at once.
"""

from __future__ import annotations

from typing import Any

import click

from stepline.cli.collections import collections
from stepline.cli.failures import explain, fail
from stepline.cli.files import run, schema, validate
from stepline.cli.keys import keys
from stepline.cli.providers import providers
from stepline.cli.reviews import reviews
from stepline.cli.runs import runs, steps
from stepline.cli.secrets import secrets
from stepline.cli.server import db, serve, worker
from stepline.cli.stored_files import files
from stepline.cli.workflows import workflows


class Stepline(click.Group):
    """The root group: every error a command lets through is explained here, once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            failure = explain(exc)
            if failure is None:
                raise
            fail(failure.message, code=failure.exit_code)


@click.group(
    cls=Stepline,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="stepline")
def cli() -> None:
    """A workflow engine in which every step of every run is on the record."""


for command in (run, validate, schema, runs, steps, workflows, reviews):
    cli.add_command(command)
for command in (secrets, keys, providers, serve, worker, db, files, collections):
    cli.add_command(command)


def main() -> None:
    """The console script."""
    cli(prog_name="stepline")
