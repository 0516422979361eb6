"""`stepline run|validate|schema`: a workflow file, here and now, on the local database."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from stepline.cli import local
from stepline.cli.console import err, print_json, say
from stepline.cli.failures import EXIT_FAILED
from stepline.cli.inputs import load_file, parse_inputs
from stepline.cli.options import inputs_options, json_flag, workflow_file_argument
from stepline.cli.stored_files import file_inputs, file_option

if TYPE_CHECKING:
    from stepline.service import Submission


@click.command()
@workflow_file_argument
@inputs_options()
@file_option
@json_flag
def run(
    file: Path,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    file_pairs: tuple[str, ...],
    as_json: bool,
) -> None:
    """Run a workflow FILE (YAML or JSON) here and now, showing each step as it happens.

    Exit code 0 if the run completed, 1 if it failed, 2 for invalid usage, inputs or
    workflow, 3 if it waits for a person's review.
    """
    from stepline.cli import watch
    from stepline.cli.progress import LiveProgress
    from stepline.engine import NullObserver, RunObserver

    definition = load_file(file)
    inputs = parse_inputs(input_pairs, inputs_json)
    uploads = file_inputs(file_pairs)

    def started(submission: Submission) -> None:
        if not as_json:
            err().print(
                f"Running [bold]{submission.saved.workflow.name}[/bold] "
                f"v{submission.saved.version.version}, run {submission.run.id}"
            )

    observer: RunObserver = NullObserver() if as_json else LiveProgress(err())
    finished = local.run_async(
        lambda: local.run_here(definition, inputs, observer, started, uploads=uploads)
    )
    watch.show_finished(finished.run, finished.steps, as_json=as_json)
    watch.exit_for(
        finished.run,
        "The run waits for a review. Start `stepline serve` (it resumes the run once "
        "decided), then `stepline reviews list` and `stepline reviews approve "
        f"{finished.run.id}` (or reject).",
    )


@click.command()
@workflow_file_argument
def validate(file: Path) -> None:
    """Check a workflow FILE and print every problem in it, each with its node and path."""
    from stepline.nodes.registry import default_registry
    from stepline.spec.validate import validate_workflow

    definition = load_file(file)
    _, issues = validate_workflow(definition, default_registry())
    if issues:
        err().print(f"[red]{file}: {len(issues)} problem(s)[/red]")
        for issue in issues:
            say(f"  {issue}")
        raise click.exceptions.Exit(EXIT_FAILED)
    say(f"{file}: valid")


@click.command()
def schema() -> None:
    """Print the JSON Schema of a workflow document."""
    from stepline.nodes.registry import default_registry
    from stepline.spec.schema import workflow_json_schema

    print_json(workflow_json_schema(default_registry()))
