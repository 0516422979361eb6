"""The `stepline` command: run a workflow file, inspect runs and steps, run a worker."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar
from uuid import UUID

import typer
from rich.console import Console

from stepline.cli import remote
from stepline.cli.keys import keys_app
from stepline.cli.progress import LiveProgress
from stepline.cli.providers import providers_app
from stepline.cli.render import (
    dumps,
    print_run_summary,
    run_document,
    runs_table,
    steps_table,
)
from stepline.cli.secrets import secrets_app
from stepline.documents import DocumentError, DocumentLimits, check_inputs
from stepline.documents.json_text import parse_json
from stepline.engine import NullObserver, RunObserver
from stepline.nodes.registry import default_registry
from stepline.providers.config import ProviderConfigError, configured_providers
from stepline.records import RunRecord, RunStatus
from stepline.runtime import open_runtime
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError, SecretsKeyUnusable
from stepline.secrets.source import MissingSecrets
from stepline.service import Caller, InvalidRunInputs, submit_run
from stepline.settings import get_settings
from stepline.spec.loader import WorkflowFileError, read_workflow_file
from stepline.spec.schema import workflow_json_schema
from stepline.spec.validate import SecretReference, WorkflowInvalid, validate_workflow
from stepline.store import Store

app = typer.Typer(
    name="stepline",
    help="A workflow engine in which every step of every run is on the record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
runs_app = typer.Typer(help="Inspect runs.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the database.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(secrets_app, name="secrets")
app.add_typer(providers_app, name="providers")
app.add_typer(remote.workflows_app, name="workflows")
app.add_typer(remote.reviews_app, name="reviews")

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

EXIT_FAILED_RUN = 1
EXIT_USAGE = 2
EXIT_WAITING = 3
"""The run paused for a person's review; `stepline serve` resumes it once it is decided."""

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON document to stdout.")]


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True)
    raise typer.Exit(code)


def run_async(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a command body, turning the errors a user can cause into messages and exit codes."""
    try:
        return asyncio.run(main())
    except WorkflowFileError as exc:
        fail(str(exc))
    except WorkflowInvalid as exc:
        fail("the workflow is not valid:\n" + "\n".join(f"  {i}" for i in exc.issues))
    except InvalidRunInputs as exc:
        fail("the inputs are not valid:\n" + "\n".join(f"  {i.message}" for i in exc.issues))
    except MissingSecrets as exc:
        names = sorted({ref.name for ref in exc.references})
        fail(
            "the workflow reads secrets that are not set:\n"
            + "\n".join(f"  {describe_missing(ref)}" for ref in exc.references)
            + f"\nset them with `stepline secrets set {names[0]}` (or STEPLINE_SECRET_{names[0]}"
            " in this command's environment)"
        )
    except (SecretKeyError, SecretDecryptError) as exc:
        fail(str(exc))
    except SecretsKeyUnusable as exc:
        fail(str(exc.cause))


@asynccontextmanager
async def open_store() -> AsyncIterator[Store]:
    """The configured database, migrated to the current schema."""
    async with open_runtime(get_settings(), worker=False) as runtime:
        yield runtime.store


def parse_inputs(pairs: list[str], inputs_json: str | None) -> dict[str, Any]:
    """`--input k=v` values are JSON when they parse (700 is a number), else strings.

    The inputs are a document within the configured limits (else exit code 2, saying why).
    """
    limits = DocumentLimits.of(get_settings())
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = parse_json(inputs_json, max_depth=limits.max_depth)
        except json.JSONDecodeError as exc:
            fail(f"--inputs-json is not valid JSON: {exc}")
        except DocumentError as exc:
            fail(f"--inputs-json: {exc}")
        if not isinstance(loaded, dict):
            fail("--inputs-json must be a JSON object")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--input {pair!r} must look like key=value")
        try:
            inputs[key] = json.loads(raw, parse_constant=_not_json)
        except ValueError:
            inputs[key] = raw
    try:
        check_inputs(inputs, limits, path="inputs")
    except DocumentError as exc:
        fail(f"the inputs cannot be used: {exc}")
    return inputs


def _not_json(constant: str) -> NoReturn:
    """NaN and Infinity are not JSON: `--input x=NaN` is the text."""
    raise ValueError(f"{constant} is not JSON")


def load_file(path: Path) -> dict[str, Any]:
    try:
        return read_workflow_file(path, DocumentLimits.of(get_settings()))
    except WorkflowFileError as exc:
        fail(str(exc))


@app.command()
def run(
    file: Annotated[Path, typer.Argument(help="A workflow file (YAML or JSON).")],
    input: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="An input as key=value (value parsed as JSON if it is)."
        ),
    ] = None,
    inputs_json: Annotated[
        str | None, typer.Option("--inputs-json", help="All inputs as one JSON object.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Run a workflow file here and now, showing each step as it happens."""
    definition = load_file(file)
    inputs = parse_inputs(input or [], inputs_json)

    async def main() -> tuple[RunRecord, list[Any]]:
        observer: RunObserver = NullObserver() if as_json else LiveProgress(err)
        # Here, and only here (no server), secrets may come from this environment too.
        async with open_runtime(
            get_settings(), observer=observer, environment_secrets=os.environ
        ) as runtime:
            store = runtime.store
            org = await store.ensure_organization()
            submission = await submit_run(
                runtime.service, Caller(org, actor="cli"), definition, inputs, trigger="cli"
            )
            if not as_json:
                err.print(
                    f"Running [bold]{submission.saved.workflow.name}[/bold] "
                    f"v{submission.saved.version.version}, run {submission.run.id}"
                )
            worker = runtime.worker
            if isinstance(observer, LiveProgress):
                with observer:
                    finished = await worker.claim_and_execute(submission.run.id)
            else:
                finished = await worker.claim_and_execute(submission.run.id)
            assert finished is not None, "a run this process just queued could not be claimed"
            full = await store.get_run(finished.id) or finished
            return full, await store.list_steps(finished.id)

    finished, steps = run_async(main)
    if as_json:
        out.print(dumps(run_document(finished, steps)), markup=False, soft_wrap=True)
    else:
        out.print(steps_table(steps))
        print_run_summary(out, finished)
        if finished.status is RunStatus.completed:
            out.print("Output:")
            out.print(dumps(finished.output), markup=False, soft_wrap=True)
        elif finished.status is RunStatus.waiting_for_human:
            err.print(
                "The run waits for a review. Start `stepline serve` (it resumes the run once "
                "decided), then `stepline reviews list` and `stepline reviews approve "
                f"{finished.id}` (or reject)."
            )
    if finished.status is RunStatus.waiting_for_human:
        raise typer.Exit(EXIT_WAITING)
    if finished.status is not RunStatus.completed:
        raise typer.Exit(EXIT_FAILED_RUN)


@app.command()
def validate(file: Annotated[Path, typer.Argument(help="A workflow file (YAML or JSON).")]) -> None:
    """Check a workflow file and print every problem in it, each with its node and path."""
    definition = load_file(file)
    _, issues = validate_workflow(definition, default_registry())
    if issues:
        err.print(f"[red]{file}: {len(issues)} problem(s)[/red]")
        for issue in issues:
            out.print(f"  {issue}", markup=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"{file}: valid", markup=False)


@app.command()
def schema() -> None:
    """Print the JSON Schema of a workflow document."""
    out.print(dumps(workflow_json_schema(default_registry())), markup=False, soft_wrap=True)


@runs_app.command("list")
def runs_list(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many runs.")] = 20,
    as_json: JsonFlag = False,
    server: remote.ServerOption = None,
    workflow: remote.WorkflowOption = None,
) -> None:
    """List runs, newest first."""
    if server:
        return remote.runs_list(server, workflow, limit, as_json)

    async def main() -> list[RunRecord]:
        async with open_store() as store:
            return await store.list_runs(limit=limit)

    runs = run_async(main)
    if as_json:
        out.print(dumps([r.model_dump(mode="json") for r in runs]), markup=False, soft_wrap=True)
    else:
        out.print(runs_table(runs))


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JsonFlag = False,
    server: remote.ServerOption = None,
    workflow: remote.WorkflowOption = None,
) -> None:
    """Show one run with its step counts and its steps."""
    if server:
        return remote.runs_show(server, workflow, run_id, as_json)
    rid = parse_uuid(run_id, "run id")

    async def main() -> tuple[RunRecord | None, list[Any]]:
        async with open_store() as store:
            found = await store.get_run(rid)
            return found, (await store.list_steps(rid)) if found else []

    found, steps = run_async(main)
    if found is None:
        fail(f"no run with id {run_id}")
    if as_json:
        out.print(dumps(run_document(found, steps)), markup=False, soft_wrap=True)
        return
    print_run_summary(out, found)
    out.print(steps_table(steps))
    if found.output is not None:
        out.print("Output:")
        out.print(dumps(found.output), markup=False, soft_wrap=True)


runs_app.command("start")(remote.runs_start)
runs_app.command("retry")(remote.runs_retry)
runs_app.command("replay")(remote.runs_replay)


@app.command()
def steps(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JsonFlag = False,
    server: remote.ServerOption = None,
    workflow: remote.WorkflowOption = None,
) -> None:
    """Print every step record of a run (the full canonical records with --json)."""
    if server:
        return remote.steps_list(server, workflow, run_id, as_json)
    rid = parse_uuid(run_id, "run id")

    async def main() -> tuple[RunRecord | None, list[Any]]:
        async with open_store() as store:
            found = await store.get_run(rid)
            return found, (await store.list_steps(rid)) if found else []

    found, records = run_async(main)
    if found is None:
        fail(f"no run with id {run_id}")
    if as_json:
        docs = [s.model_dump(mode="json") for s in records]
        out.print(dumps(docs), markup=False, soft_wrap=True)
    else:
        out.print(steps_table(records))


@app.command()
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="Drain queued and orphaned runs, then exit.")
    ] = False,
) -> None:
    """Run a worker on the configured database: claim runs and execute them."""
    check_providers()

    async def main() -> int:
        async with open_runtime(get_settings()) as runtime:
            w = runtime.worker
            if once:
                finished = await w.drain()
                for run_record in finished:
                    err.print(f"run {run_record.id}: {run_record.status}")
                return len(finished)
            stop = asyncio.Event()
            err.print(f"worker {w.worker_id} waiting for runs (Ctrl-C to stop)")
            await w.serve(stop)
            return 0

    try:
        run_async(main)
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    no_worker: Annotated[
        bool, typer.Option("--no-worker", help="Serve the API only; run `stepline worker`s apart.")
    ] = False,
) -> None:
    """Serve the REST API (and, unless --no-worker, execute runs in the same process)."""
    import uvicorn

    from stepline.api.app import create_app
    from stepline.api.logs import configure_logging

    settings = get_settings()
    check_providers()
    configure_logging(settings.log_level)
    api = create_app(settings, worker=not no_worker, public_url=f"http://{host}:{port}")
    uvicorn.run(api, host=host, port=port, log_config=None, access_log=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the current version."""

    async def main() -> None:
        async with open_store():
            pass

    run_async(main)
    out.print(f"database at {get_settings().resolved_database_url()} is up to date", markup=False)


def check_providers() -> None:
    """Refuse to start on a configuration file whose providers are wrong (rather than
    failing each model step later with the same message)."""
    try:
        configured_providers()
    except ProviderConfigError as exc:
        fail(str(exc))


def parse_uuid(value: str, what: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        fail(f"{what} {value!r} is not a UUID")


def describe_missing(ref: SecretReference) -> str:
    where = f"node {ref.node_id!r}, field {ref.path}" if ref.node_id else ref.path
    return f"{where}: secret {ref.name!r}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
