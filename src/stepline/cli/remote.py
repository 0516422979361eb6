"""The CLI over HTTP: `runs`, `steps`, `workflows` and `reviews` against a stepline server.

`--server URL` (or STEPLINE_SERVER) switches `runs list|show` and `steps` from the local
database to a server; `workflows ...`, `reviews ...` and `runs start|retry|replay` always
talk to a server (the saved one when none is named). The key is STEPLINE_API_KEY, else
the one `stepline serve` saved.
Every failure a user can cause ends with one line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn
from uuid import UUID

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from stepline.cli.render import (
    dumps,
    format_duration,
    print_run_summary,
    run_document,
    runs_table,
    status_text,
    steps_table,
)
from stepline.documents import DocumentLimits
from stepline.records import FINISHED_STEP_STATUSES, RunStatus
from stepline.sdk import (
    ApiError,
    AuthenticationError,
    Client,
    ConfigurationError,
    ConflictError,
    Event,
    NotFoundError,
    PermissionDeniedError,
    Review,
    Run,
    Step,
    StepChange,
    TransportError,
    ValidationError,
    Workflow,
)
from stepline.settings import get_settings
from stepline.spec.loader import WorkflowFileError, read_workflow_file

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_FAILED_RUN = 1
EXIT_USAGE = 2
EXIT_WAITING = 3

ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        envvar="STEPLINE_SERVER",
        show_envvar=True,
        help="A stepline server's URL: work over HTTP instead of on the local database.",
    ),
]
WorkflowOption = Annotated[
    str | None,
    typer.Option(
        "--workflow",
        "-w",
        help="With --server: the run's workflow (id or name); found by searching otherwise.",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]

workflows_app = typer.Typer(
    help="Workflows on a stepline server (--server, STEPLINE_SERVER or the saved one).",
    no_args_is_help=True,
)
reviews_app = typer.Typer(
    help="Steps waiting for a person's review, on a stepline server: list, approve, reject.",
    no_args_is_help=True,
)


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    err.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


def print_json(document: Any) -> None:
    out.print(dumps(document), markup=False, soft_wrap=True)


def _details(exc: ApiError) -> str:
    return "".join(f"\n  {d.field}: {d.message}" for d in exc.details)


@contextmanager
def connect(server: str | None, *, workspace_id: UUID | None = None) -> Iterator[Client]:
    """A client of `server` (or the configured one); API errors become one-line messages."""
    try:
        client = Client(base_url=server, workspace_id=workspace_id)
    except ConfigurationError as exc:
        fail(str(exc))
    try:
        with client:
            yield client
    except AuthenticationError as exc:
        if client.api_key is None:
            fail(
                f"no API key for {client.base_url}: set STEPLINE_API_KEY "
                "(`stepline keys create` makes one)"
            )
        fail(f"the API key was refused by {client.base_url} (401: {exc.message})")
    except PermissionDeniedError as exc:
        fail(f"the API key may not do this (403: {exc.message})")
    except NotFoundError as exc:
        fail(f"not found: {exc.message}")
    except ValidationError as exc:
        fail(f"the server refused the request (422: {exc.message}){_details(exc)}")
    except ConflictError as exc:
        fail(f"conflict (409): {exc.message}")
    except ApiError as exc:
        suffix = f" (request id {exc.request_id})" if exc.request_id else ""
        fail(f"the server answered {exc.status} {exc.code}: {exc.message}{_details(exc)}{suffix}")
    except TransportError as exc:
        fail(exc.message)


# -- finding things by id or name --------------------------------------------------------


def as_uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def find_workflow_by_name(client: Client, name: str) -> Workflow | None:
    matches = [w for w in client.workflows.list(name=name) if w.name == name]
    if len(matches) > 1:
        ids = ", ".join(str(w.id) for w in matches)
        fail(f"{len(matches)} workflows are named {name!r} ({ids}): name one by its id")
    return matches[0] if matches else None


def resolve_workflow(client: Client, ref: str) -> Workflow:
    """A workflow named by its id or its name."""
    workflow_id = as_uuid(ref)
    if workflow_id is not None:
        return client.workflows.get(workflow_id)
    found = find_workflow_by_name(client, ref)
    if found is None:
        fail(f"no workflow named {ref!r} on {client.base_url}")
    return found


def find_run(client: Client, run_ref: str, workflow_ref: str | None) -> Run:
    """The run with this id; the API nests runs under workflows, so without --workflow
    each workflow is asked in turn (newest first)."""
    run_id = as_uuid(run_ref)
    if run_id is None:
        fail(f"run id {run_ref!r} is not a UUID")
    if workflow_ref is not None:
        return client.runs.get(resolve_workflow(client, workflow_ref).id, run_id)
    for workflow in client.workflows.list():
        try:
            return client.runs.get(workflow.id, run_id)
        except NotFoundError:
            continue
    fail(f"no run with id {run_ref} on {client.base_url}")


def all_steps(client: Client, run: Run) -> list[Step]:
    return list(client.runs.steps.list(run.workflow_id, run.id, page_size=1000))


# -- runs and steps ----------------------------------------------------------------------


def runs_list(server: str | None, workflow_ref: str | None, limit: int, as_json: bool) -> None:
    """`stepline runs list --server`: the newest runs of one workflow, or of all."""
    with connect(server) as client:
        if workflow_ref is not None:
            workflow = resolve_workflow(client, workflow_ref)
            runs = client.runs.list(workflow.id, page_size=limit).first_page().items
        else:
            runs = []
            for workflow in client.workflows.list():
                runs += client.runs.list(workflow.id, page_size=limit).first_page().items
            runs.sort(key=lambda r: r.created_at, reverse=True)
        runs = runs[:limit]
    if as_json:
        print_json([r.model_dump(mode="json", exclude={"steps"}) for r in runs])
    else:
        out.print(runs_table(runs))


def runs_show(server: str | None, workflow_ref: str | None, run_ref: str, as_json: bool) -> None:
    """`stepline runs show RUN --server`: the run, its step counts and its steps."""
    with connect(server) as client:
        run = find_run(client, run_ref, workflow_ref)
        steps = all_steps(client, run)
    if as_json:
        print_json(run_document(run, steps))
        return
    print_run_summary(out, run)
    out.print(steps_table(steps))
    if run.output is not None:
        out.print("Output:")
        print_json(run.output)


def steps_list(server: str | None, workflow_ref: str | None, run_ref: str, as_json: bool) -> None:
    """`stepline steps RUN --server`: every step record of a run, page after page."""
    with connect(server) as client:
        run = find_run(client, run_ref, workflow_ref)
        if as_json:
            # Streamed to stdout page by page: a 10,000-step run is never held whole.
            out.file.write("[")
            for n, step in enumerate(client.runs.steps.list(run.workflow_id, run.id)):
                out.file.write(",\n" if n else "\n")
                out.file.write(step.model_dump_json(indent=2))
            out.file.write("\n]\n")
            return
        steps = all_steps(client, run)
    out.print(steps_table(steps))


def runs_start(
    workflow: Annotated[str, typer.Argument(help="The workflow's id or name.")],
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="An input as key=value (value parsed as JSON if it is)."
        ),
    ] = None,
    inputs_json: Annotated[
        str | None, typer.Option("--inputs-json", help="All inputs as one JSON object.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Show the steps live until the run ends.")
    ] = False,
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """Start a run of a workflow on a server; with --watch follow it to the end.

    Without --watch it prints the run's id and returns at once.

    With --watch the exit code is 0 if the run completed, 1 if it failed or was cancelled,
    3 if it waits for a review.
    """
    from stepline.cli.main import parse_inputs

    inputs = parse_inputs(input or [], inputs_json)
    with connect(server) as client:
        target = resolve_workflow(client, workflow)
        run = client.runs.create(target.id, inputs)
        if not watch:
            if as_json:
                print_json(run.model_dump(mode="json", exclude={"steps"}))
            else:
                err.print(f"Started run of [bold]{target.name}[/bold] v{run.workflow_version}")
                out.print(str(run.id), markup=False)
            return
        if not as_json:
            err.print(
                f"Running [bold]{target.name}[/bold] v{run.workflow_version}, run {run.id}",
                highlight=False,
            )
        finished = follow_run(client, run, live=not as_json)
        steps = all_steps(client, finished)
    if as_json:
        print_json(run_document(finished, steps))
    else:
        out.print(steps_table(steps))
        print_run_summary(out, finished)
        if finished.status is RunStatus.completed:
            out.print("Output:")
            print_json(finished.output)
    exit_for(finished)


class RunView:
    """What `--watch` shows: one row per step, in the order the steps appeared."""

    def __init__(self, run: Run) -> None:
        self.run_id = run.id
        self.status: str = run.status
        self.steps: dict[str, StepChange] = {}
        self.started = time.monotonic()

    def apply(self, event: Event) -> None:
        change = event.step_change
        if change is not None:
            self.steps[change.step_id] = change
        elif event.run_status is not None:
            self.status = event.run_status

    def render(self) -> Group:
        table = Table(title="Steps", title_justify="left")
        table.add_column("step")
        table.add_column("status")
        table.add_column("duration", justify="right")
        table.add_column("error / note", overflow="fold")
        now = datetime.now(UTC)
        for step in self.steps.values():
            note = step.error or step.status_reason or ""
            table.add_row(
                step.step_id,
                status_text(step.status),
                format_duration(_elapsed_ms(step, now)),
                Text(note, style="red" if step.error else "dim"),
            )
        finished = sum(1 for s in self.steps.values() if s.status in FINISHED_STEP_STATUSES)
        elapsed = format_duration(int((time.monotonic() - self.started) * 1000))
        header = Text.assemble(
            "Run ",
            (str(self.run_id), "bold"),
            " ",
            status_text(self.status),
            f"  {finished}/{len(self.steps)} steps finished, {elapsed}",
        )
        return Group(header, table)


def _elapsed_ms(step: StepChange, now: datetime) -> int | None:
    if step.started_at is None:
        return None
    end = step.completed_at or now
    return max(0, int((end - step.started_at).total_seconds() * 1000))


def follow_run(client: Client, run: Run, *, live: bool) -> Run:
    """Read the run's events until it ends or waits for a review (a live table on stderr
    when `live`)."""
    view = RunView(run)
    screen = Live(view.render(), console=err, refresh_per_second=8, transient=True)
    with screen if live else nullcontext(), client.runs.events(run.workflow_id, run.id) as events:
        for event in events:
            view.apply(event)
            if live:
                screen.update(view.render())
            # An earlier pause may be replayed from the stream's start: stop only if the
            # run still waits now.
            if event.type == "run.waiting_for_human":
                current = client.runs.get(run.workflow_id, run.id)
                if current.status is RunStatus.waiting_for_human:
                    return current
    return client.runs.get(run.workflow_id, run.id)


def exit_for(run: Run) -> None:
    """A watched run's exit: 0 completed, 3 waiting for a review (and how to decide), else 1."""
    if run.status is RunStatus.waiting_for_human:
        err.print(
            f"The run waits for a review: `stepline reviews list`, then `stepline reviews "
            f"approve {run.id}` (or reject); the server resumes it once decided."
        )
        raise typer.Exit(EXIT_WAITING)
    if run.status is not RunStatus.completed:
        raise typer.Exit(EXIT_FAILED_RUN)


# -- workflows ---------------------------------------------------------------------------


def workflows_table(workflows: Iterable[Workflow], width: int) -> Table:
    """Ids and names are never cut (they are what one types next); the description gives
    way to the terminal's width, down to nothing."""
    listed = list(workflows)
    names = max((len(w.name) for w in listed), default=4)
    room = width - 36 - max(names, 4) - 7 - 13  # the other columns and the borders
    table = Table(title="Workflows", title_justify="left")
    table.add_column("workflow id", no_wrap=True)
    table.add_column("name", no_wrap=True)
    table.add_column("version", justify="right", no_wrap=True)
    if room >= 12:
        table.add_column("description", no_wrap=True)
    for w in listed:
        row = [str(w.id), w.name, str(w.latest_version)]
        if room >= 12:
            text = w.description.strip().split("\n", 1)[0]
            row.append(text if len(text) <= room else text[: room - 1] + "…")
        table.add_row(*row)
    return table


def load_definition(path: Path) -> dict[str, Any]:
    try:
        return read_workflow_file(path, DocumentLimits.of(get_settings()))
    except WorkflowFileError as exc:
        fail(str(exc))


@workflows_app.command("list")
def workflows_list(
    limit: Annotated[int, typer.Option(min=1, help="How many workflows at most.")] = 100,
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """List the workflows on the server."""
    with connect(server) as client:
        workflows: list[Workflow] = []
        for workflow in client.workflows.list(page_size=min(limit, 1000)):
            workflows.append(workflow)
            if len(workflows) >= limit:
                break
    if as_json:
        print_json([w.model_dump(mode="json") for w in workflows])
    else:
        out.print(workflows_table(workflows, out.width))


@workflows_app.command("show")
def workflows_show(
    workflow: Annotated[str, typer.Argument(help="The workflow's id or name.")],
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """Show one workflow: its versions and its latest definition."""
    with connect(server) as client:
        found = resolve_workflow(client, workflow)
        if as_json:
            print_json(found.model_dump(mode="json"))
            return
        versions = list(client.workflows.versions(found.id))
    out.print(workflows_table([found], out.width))
    for version in versions:
        out.print(
            f"  v{version.version}  {version.created_at.isoformat(timespec='seconds')}"
            f"  sha256:{version.digest[:12]}",
            markup=False,
        )
    if found.definition is not None:
        out.print("Definition:")
        print_json(found.definition)


@workflows_app.command("push")
def workflows_push(
    file: Annotated[Path, typer.Argument(help="A workflow file (YAML or JSON).")],
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """Create the file's workflow on the server, or update the one of the same name.

    An update with a changed definition makes a new version; an unchanged one keeps it.
    """
    definition = load_definition(file)
    name = definition.get("name")
    with connect(server) as client:
        existing = find_workflow_by_name(client, name) if isinstance(name, str) else None
        if existing is None:
            saved, what = client.workflows.create(definition), "created"
        else:
            saved = client.workflows.update(existing.id, definition)
            changed = saved.latest_version != existing.latest_version
            what = "updated" if changed else "unchanged"
    if as_json:
        print_json({"action": what, **saved.model_dump(mode="json")})
        return
    out.print(
        f"{what} workflow {saved.name}: id {saved.id}, version {saved.latest_version}",
        markup=False,
        soft_wrap=True,
    )


@workflows_app.command("validate")
def workflows_validate(
    file: Annotated[Path, typer.Argument(help="A workflow file (YAML or JSON).")],
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """Validate a workflow file on the server (its node kinds); exit 1 if it is not valid."""
    definition = load_definition(file)
    with connect(server) as client:
        result = client.workflows.validate(definition)
    if as_json:
        print_json(result.model_dump(mode="json"))
    elif result.valid:
        out.print(f"{file}: valid", markup=False)
    else:
        err.print(f"[red]{file}: {len(result.errors)} problem(s)[/red]")
        for issue in result.errors:
            where = f"{issue.path}: " if issue.path else ""
            node = f"[{issue.node_id}] " if issue.node_id else ""
            out.print(f"  {node}{where}{issue.message}", markup=False, soft_wrap=True)
    if not result.valid:
        raise typer.Exit(1)


# -- retry and replay --------------------------------------------------------------------

WatchFlag = Annotated[
    bool,
    typer.Option(
        "--watch",
        help="Follow the run to its end or its next review (exit 0 completed, 3 waiting, else 1).",
    ),
]


def _report_run(client: Client, run: Run, what: str, *, watch: bool, as_json: bool) -> None:
    """After a retry or replay: the run's id, or with --watch the run once it ended."""
    if not watch:
        if as_json:
            print_json(run.model_dump(mode="json", exclude={"steps"}))
        else:
            err.print(what, highlight=False)
            out.print(str(run.id), markup=False)
        return
    if not as_json:
        err.print(what, highlight=False)
    finished = client.runs.wait(run.workflow_id, run.id)
    steps = all_steps(client, finished)
    if as_json:
        print_json(run_document(finished, steps))
    else:
        out.print(steps_table(steps))
        print_run_summary(out, finished)
        if finished.status is RunStatus.completed:
            out.print("Output:")
            print_json(finished.output)
    exit_for(finished)


def runs_retry(
    run_id: Annotated[str, typer.Argument(help="The failed or cancelled run's id.")],
    watch: WatchFlag = False,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    workflow: WorkflowOption = None,
) -> None:
    """Continue a failed or cancelled run from its failed steps, on a server.

    The same run is queued again: its completed steps keep their outputs and do not run
    again. Any other run is a conflict (exit 2).
    """
    with connect(server) as client:
        run = find_run(client, run_id, workflow)
        retried = client.runs.retry(run.workflow_id, run.id)
        _report_run(
            client,
            retried,
            f"Retrying run {retried.id} (it was {run.status})",
            watch=watch,
            as_json=as_json,
        )


def runs_replay(
    run_id: Annotated[str, typer.Argument(help="The run to replay.")],
    from_node: Annotated[
        str,
        typer.Option(
            "--from-node", help="Run again from this top-level node; what is upstream is reused."
        ),
    ],
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="An input as key=value (value parsed as JSON if it is)."
        ),
    ] = None,
    inputs_json: Annotated[
        str | None,
        typer.Option("--inputs-json", help="All inputs as one JSON object (default: the run's)."),
    ] = None,
    workflow_version: Annotated[
        int | None,
        typer.Option("--workflow-version", min=1, help="The version to run (default: the run's)."),
    ] = None,
    watch: WatchFlag = False,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    workflow: WorkflowOption = None,
) -> None:
    """Start a new run from a node of an earlier one, on a server.

    The new run (replay_of the original) copies the original's steps upstream of
    --from-node and runs the rest, with the original's inputs unless new ones are given.
    """
    from stepline.cli.main import parse_inputs

    given = input or inputs_json
    inputs = parse_inputs(input or [], inputs_json) if given else None
    with connect(server) as client:
        run = find_run(client, run_id, workflow)
        replay = client.runs.replay(
            run.workflow_id,
            run.id,
            from_node=from_node,
            inputs=inputs,
            workflow_version=workflow_version,
        )
        _report_run(
            client,
            replay,
            f"Replaying run {run.id} from {from_node!r} as run {replay.id}",
            watch=watch,
            as_json=as_json,
        )


# -- reviews -----------------------------------------------------------------------------


def reviews_table(reviews: Iterable[Review]) -> Table:
    table = Table(title="Pending reviews", title_justify="left")
    table.add_column("run id", no_wrap=True)
    table.add_column("step", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("waiting since", no_wrap=True)
    table.add_column("instructions / proposed output", overflow="fold")
    for review in reviews:
        metadata = review.step_metadata or {}
        instructions = metadata.get("instructions")
        proposal = json.dumps(review.outputs, default=str)
        if len(proposal) > 120:
            proposal = proposal[:119] + "…"
        note = f"{instructions}\n{proposal}" if instructions else proposal
        since = review.updated_at.isoformat(timespec="seconds")
        table.add_row(str(review.run_id), review.step_id, review.node_type, since, note)
    return table


@reviews_app.command("list")
def reviews_list(
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", help="Only reviews of this workflow (id or name)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many reviews at most.")] = 100,
    as_json: JsonFlag = False,
    server: ServerOption = None,
) -> None:
    """List the steps waiting for a person's review, oldest first."""
    with connect(server) as client:
        workflow_id = resolve_workflow(client, workflow).id if workflow is not None else None
        reviews: list[Review] = []
        listing = client.reviews.list(workflow_id=workflow_id, page_size=min(limit, 1000))
        for review in listing:
            reviews.append(review)
            if len(reviews) >= limit:
                break
    if as_json:
        print_json([r.model_dump(mode="json") for r in reviews])
    elif not reviews:
        err.print("No step is waiting for a review.")
    else:
        out.print(reviews_table(reviews))


RunArgument = Annotated[str, typer.Argument(help="The run's id.")]
StepArgument = Annotated[
    str | None,
    typer.Argument(
        help="The step's step_id (or record id); optional when the run waits on one review."
    ),
]
_NO_OUTPUT: Any = object()
CommentOption = Annotated[
    str | None, typer.Option("--comment", "-m", help="Why: recorded with the decision.")
]


def _decide(
    server: str | None,
    workflow_ref: str | None,
    run_ref: str,
    step_ref: str | None,
    *,
    approved: bool,
    output: Any,
    comment: str | None,
    as_json: bool,
) -> None:
    from stepline.sdk._api import UNSET

    with connect(server) as client:
        run = find_run(client, run_ref, workflow_ref)
        if step_ref is None:
            waiting = [
                r.step_id
                for r in client.reviews.list(workflow_id=run.workflow_id)
                if r.run_id == run.id
            ]
            if len(waiting) != 1:
                if not waiting:
                    fail(f"run {run.id} has no step waiting for a review")
                fail(
                    f"run {run.id} waits on {len(waiting)} reviews: name the step "
                    f"({', '.join(waiting)})"
                )
            step_ref = waiting[0]
        result = client.runs.steps.review(
            run.workflow_id,
            run.id,
            step_ref,
            approved=approved,
            output=UNSET if output is _NO_OUTPUT else output,
            comment=comment,
        )
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    verdict = "approved" if approved else "rejected"
    step = result.step
    if not result.changed:
        out.print(f"step {step.step_id} of run {run.id} was already {verdict}", markup=False)
    else:
        out.print(
            f"{verdict} step {step.step_id} of run {run.id}; the run is {result.run.status}",
            markup=False,
        )


@reviews_app.command("approve")
def reviews_approve(
    run_id: RunArgument,
    step: StepArgument = None,
    output_json: Annotated[
        str | None,
        typer.Option("--output-json", help="The step's output instead of the proposed one (JSON)."),
    ] = None,
    comment: CommentOption = None,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    workflow: WorkflowOption = None,
) -> None:
    """Approve a step waiting for review, optionally with an edited output; the run resumes."""
    output: Any = _NO_OUTPUT
    if output_json is not None:
        try:
            output = json.loads(output_json)
        except json.JSONDecodeError as exc:
            fail(f"--output-json is not valid JSON: {exc}")
    _decide(
        server,
        workflow,
        run_id,
        step,
        approved=True,
        output=output,
        comment=comment,
        as_json=as_json,
    )


@reviews_app.command("reject")
def reviews_reject(
    run_id: RunArgument,
    step: StepArgument = None,
    comment: CommentOption = None,
    as_json: JsonFlag = False,
    server: ServerOption = None,
    workflow: WorkflowOption = None,
) -> None:
    """Reject a step waiting for review: its `rejected` edge is taken, or the step fails."""
    _decide(
        server,
        workflow,
        run_id,
        step,
        approved=False,
        output=_NO_OUTPUT,
        comment=comment,
        as_json=as_json,
    )
