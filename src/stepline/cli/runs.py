"""`stepline runs list|show|start|retry|replay` and `stepline steps`.

`list`, `show` and `steps` read the local database, or a server with `--server`; `start`,
`retry` and `replay` always talk to a server. A run id may be a unique prefix of one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from stepline.cli import local, remote
from stepline.cli.console import err, out, print_json, say
from stepline.cli.inputs import parse_inputs
from stepline.cli.options import (
    inputs_options,
    json_flag,
    limit_option,
    run_id_argument,
    server_option,
    watch_flag,
    workflow_option,
)
from stepline.cli.stored_files import file_inputs, file_option

if TYPE_CHECKING:
    from stepline.records import RunRecord, StepRecord
    from stepline.sdk import Client, Run

WATCH_HELP = "Follow the run to its end or its next review (exit 0 completed, 3 waiting, else 1)."


@click.group(no_args_is_help=True)
def runs() -> None:
    """Inspect, start, retry and replay runs."""


@runs.command("list")
@limit_option(20, "How many runs.", maximum=1000)
@json_flag
@server_option
@workflow_option("With --server: only the runs of this workflow (id or name).")
def runs_list(limit: int, as_json: bool, server: str | None, workflow: str | None) -> None:
    """List runs, newest first, with their whole ids."""
    from stepline.cli.render import runs_table

    listed: list[RunRecord]
    if server:
        with remote.connect(server) as client:
            remote_runs, names = remote.newest_runs(client, workflow, limit)
        listed = list(remote_runs)
        documents = [r.model_dump(mode="json", exclude={"steps"}) for r in remote_runs]
    else:
        listed, names = local.run_async(lambda: local.newest_runs(limit))
        documents = [r.model_dump(mode="json") for r in listed]
    if as_json:
        print_json(documents)
    else:
        out().print(runs_table(listed, names, out().width))


@runs.command("show")
@run_id_argument
@json_flag
@server_option
@workflow_option()
def runs_show(run_id: str, as_json: bool, server: str | None, workflow: str | None) -> None:
    """Show one run with its step counts and its steps (RUN_ID: an id or a unique prefix)."""
    from stepline.cli.render import print_run_summary, run_document, steps_table

    found: RunRecord
    records: list[StepRecord]
    if server:
        with remote.connect(server) as client:
            found = remote.find_run(client, run_id, workflow)
            records = list(remote.all_steps(client, found))
    else:
        finished = local.run_async(lambda: local.run_with_steps(run_id))
        found, records = finished.run, list(finished.steps)
    if as_json:
        print_json(run_document(found, records))
        return
    print_run_summary(out(), found)
    out().print(steps_table(records))
    if found.output is not None:
        out().print("Output:")
        print_json(found.output)


@click.command()
@run_id_argument
@json_flag
@server_option
@workflow_option()
def steps(run_id: str, as_json: bool, server: str | None, workflow: str | None) -> None:
    """Print every step record of a run (the full canonical records with --json)."""
    from stepline.cli.render import steps_table

    records: list[StepRecord]
    if server:
        with remote.connect(server) as client:
            run = remote.find_run(client, run_id, workflow)
            if as_json:
                # Streamed to stdout page by page: a 10,000-step run is never held whole.
                write = out().file.write
                write("[")
                for n, step in enumerate(client.runs.steps.list(run.workflow_id, run.id)):
                    write(",\n" if n else "\n")
                    write(step.model_dump_json(indent=2))
                write("\n]\n")
                return
            records = list(remote.all_steps(client, run))
    else:
        records = list(local.run_async(lambda: local.run_with_steps(run_id)).steps)
    if as_json:
        print_json([s.model_dump(mode="json") for s in records])
    else:
        out().print(steps_table(records))


@runs.command("start")
@click.argument("workflow", metavar="WORKFLOW")
@inputs_options()
@file_option
@watch_flag("Show the steps live until the run ends.")
@json_flag
@server_option
def runs_start(
    workflow: str,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    file_pairs: tuple[str, ...],
    watch: bool,
    as_json: bool,
    server: str | None,
) -> None:
    """Start a run of a workflow (its id or name) on a server; with --watch follow it.

    Without --watch it prints the run's id and returns at once. With --watch the exit
    code is 0 if the run completed, 1 if it failed or was cancelled, 3 if it waits for
    a review.
    """
    from stepline.cli import watch as watching

    inputs = parse_inputs(input_pairs, inputs_json)
    uploads = file_inputs(file_pairs)
    with remote.connect(server) as client:
        target = remote.resolve_workflow(client, workflow)
        for name, path in uploads.items():
            inputs[name] = client.files.upload(path).reference()
        run = client.runs.create(target.id, inputs)
        if not watch:
            if as_json:
                print_json(run.model_dump(mode="json", exclude={"steps"}))
            else:
                err().print(f"Started run of [bold]{target.name}[/bold] v{run.workflow_version}")
                say(str(run.id))
            return
        if not as_json:
            err().print(f"Running [bold]{target.name}[/bold] v{run.workflow_version}, run {run.id}")
        finished = watching.follow_run(client, run, live=not as_json)
        records = remote.all_steps(client, finished)
    watching.show_finished(finished, records, as_json=as_json)
    watching.exit_for(finished, watching.remote_waiting_hint(finished))


def _report(client: Client, run: Run, what: str, *, watch: bool, as_json: bool) -> None:
    """After a retry or replay: the run's id, or with --watch the run once it ended."""
    from stepline.cli import watch as watching

    if not as_json:
        err().print(what, markup=False, soft_wrap=True)
    if not watch:
        if as_json:
            print_json(run.model_dump(mode="json", exclude={"steps"}))
        else:
            say(str(run.id))
        return
    finished = client.runs.wait(run.workflow_id, run.id)
    watching.show_finished(finished, remote.all_steps(client, finished), as_json=as_json)
    watching.exit_for(finished, watching.remote_waiting_hint(finished))


@runs.command("retry")
@run_id_argument
@watch_flag(WATCH_HELP)
@json_flag
@server_option
@workflow_option()
def runs_retry(
    run_id: str, watch: bool, as_json: bool, server: str | None, workflow: str | None
) -> None:
    """Continue a failed or cancelled run from its failed steps, on a server.

    The same run is queued again: its completed steps keep their outputs and do not run
    again. Any other run is a conflict (exit 2).
    """
    with remote.connect(server) as client:
        run = remote.find_run(client, run_id, workflow)
        retried = client.runs.retry(run.workflow_id, run.id)
        what = f"Retrying run {retried.id} (it was {run.status})"
        _report(client, retried, what, watch=watch, as_json=as_json)


@runs.command("replay")
@run_id_argument
@click.option(
    "--from-node",
    required=True,
    metavar="NODE",
    help="Run again from this top-level node; what is upstream is reused.",
)
@inputs_options("All inputs as one JSON object (default: the run's).")
@click.option(
    "--workflow-version",
    type=click.IntRange(min=1),
    help="The version to run (default: the run's).",
)
@watch_flag(WATCH_HELP)
@json_flag
@server_option
@workflow_option()
def runs_replay(
    run_id: str,
    from_node: str,
    input_pairs: tuple[str, ...],
    inputs_json: str | None,
    workflow_version: int | None,
    watch: bool,
    as_json: bool,
    server: str | None,
    workflow: str | None,
) -> None:
    """Start a new run from a node of an earlier one, on a server.

    The new run (replay_of the original) copies the original's steps upstream of
    --from-node and runs the rest, with the original's inputs unless new ones are given.
    """
    given = input_pairs or inputs_json
    inputs = parse_inputs(input_pairs, inputs_json) if given else None
    with remote.connect(server) as client:
        run = remote.find_run(client, run_id, workflow)
        replay = client.runs.replay(
            run.workflow_id,
            run.id,
            from_node=from_node,
            inputs=inputs,
            workflow_version=workflow_version,
        )
        what = f"Replaying run {run.id} from {from_node!r} as run {replay.id}"
        _report(client, replay, what, watch=watch, as_json=as_json)
