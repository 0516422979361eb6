"""`stepline reviews list|approve|reject`: steps waiting for a person, on a server."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import click

from stepline.cli import remote
from stepline.cli.console import err, out, print_json, say
from stepline.cli.failures import fail
from stepline.cli.inputs import parse_json_option
from stepline.cli.options import (
    json_flag,
    limit_option,
    run_id_argument,
    server_option,
    workflow_option,
)

if TYPE_CHECKING:
    from rich.table import Table

    from stepline.sdk import Review

STEP = "[STEP]"


@click.group(no_args_is_help=True)
def reviews() -> None:
    """Steps waiting for a person's review, on a stepline server: list, approve, reject.

    STEP is the step's step_id (or record id); it may be left out when the run waits on
    one review. RUN_ID may be a unique prefix of the run's id.
    """


def reviews_table(pending: Iterable[Review]) -> Table:
    from rich.table import Table

    table = Table(title="Pending reviews", title_justify="left")
    table.add_column("run id", no_wrap=True, min_width=36)  # whole: it is what one types next
    table.add_column("step", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("waiting since", no_wrap=True)
    table.add_column("instructions / proposed output", overflow="fold")
    for review in pending:
        metadata = review.step_metadata or {}
        instructions = metadata.get("instructions")
        proposal = json.dumps(review.outputs, default=str)
        if len(proposal) > 120:
            proposal = proposal[:119] + "…"
        note = f"{instructions}\n{proposal}" if instructions else proposal
        since = review.updated_at.isoformat(timespec="seconds")
        table.add_row(str(review.run_id), review.step_id, review.node_type, since, note)
    return table


@reviews.command("list")
@workflow_option("Only reviews of this workflow (id or name).")
@limit_option(100, "How many reviews at most.")
@json_flag
@server_option
def reviews_list(workflow: str | None, limit: int, as_json: bool, server: str | None) -> None:
    """List the steps waiting for a person's review, oldest first."""
    with remote.connect(server) as client:
        workflow_id = remote.resolve_workflow(client, workflow).id if workflow is not None else None
        pending: list[Review] = []
        for review in client.reviews.list(workflow_id=workflow_id, page_size=min(limit, 1000)):
            pending.append(review)
            if len(pending) >= limit:
                break
    if as_json:
        print_json([r.model_dump(mode="json") for r in pending])
    elif not pending:
        err().print("No step is waiting for a review.")
    else:
        out().print(reviews_table(pending))


def decide(
    server: str | None,
    workflow_ref: str | None,
    run_ref: str,
    step_ref: str | None,
    *,
    approved: bool,
    output: dict[str, Any],
    comment: str | None,
    as_json: bool,
) -> None:
    """Approve or reject the step (the only one waiting, when `step_ref` is None);
    `output` holds the edited output, if one was given."""
    with remote.connect(server) as client:
        run = remote.find_run(client, run_ref, workflow_ref)
        if step_ref is None:
            waiting = [
                r.step_id
                for r in client.reviews.list(workflow_id=run.workflow_id)
                if r.run_id == run.id
            ]
            if not waiting:
                fail(f"run {run.id} has no step waiting for a review")
            if len(waiting) > 1:
                fail(
                    f"run {run.id} waits on {len(waiting)} reviews: name the step "
                    f"({', '.join(waiting)})"
                )
            step_ref = waiting[0]
        result = client.runs.steps.review(
            run.workflow_id, run.id, step_ref, approved=approved, comment=comment, **output
        )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    verdict = "approved" if approved else "rejected"
    step = result.step
    if not result.changed:
        say(f"step {step.step_id} of run {run.id} was already {verdict}")
    else:
        say(f"{verdict} step {step.step_id} of run {run.id}; the run is {result.run.status}")


comment_option = click.option(
    "--comment", "-m", metavar="TEXT", help="Why: recorded with the decision."
)


@reviews.command("approve")
@run_id_argument
@click.argument("step", metavar=STEP, required=False)
@click.option(
    "--output-json", metavar="JSON", help="The step's output instead of the proposed one (JSON)."
)
@comment_option
@json_flag
@server_option
@workflow_option()
def reviews_approve(
    run_id: str,
    step: str | None,
    output_json: str | None,
    comment: str | None,
    as_json: bool,
    server: str | None,
    workflow: str | None,
) -> None:
    """Approve a step waiting for review, optionally with an edited output; the run resumes."""
    output = (
        {} if output_json is None else {"output": parse_json_option(output_json, "--output-json")}
    )
    decide(
        server, workflow, run_id, step,
        approved=True, output=output, comment=comment, as_json=as_json,
    )  # fmt: skip


@reviews.command("reject")
@run_id_argument
@click.argument("step", metavar=STEP, required=False)
@comment_option
@json_flag
@server_option
@workflow_option()
def reviews_reject(
    run_id: str,
    step: str | None,
    comment: str | None,
    as_json: bool,
    server: str | None,
    workflow: str | None,
) -> None:
    """Reject a step waiting for review: its `rejected` edge is taken, or the step fails."""
    decide(
        server, workflow, run_id, step,
        approved=False, output={}, comment=comment, as_json=as_json,
    )  # fmt: skip
