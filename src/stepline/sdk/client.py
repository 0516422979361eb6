"""The synchronous client: `Client(base_url, api_key)` with `workflows`, `runs` and `runs.steps`."""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload
from uuid import UUID

import httpx

from stepline.sdk import _api
from stepline.sdk._collections import Collections
from stepline.sdk._drivers import SyncDriver
from stepline.sdk._flows import Flows
from stepline.sdk._http import Call, RetryPolicy, T, build_headers
from stepline.sdk.config import resolve_connection
from stepline.sdk.models import (
    Event,
    File,
    Review,
    ReviewResult,
    Run,
    RunData,
    RunSummary,
    Secret,
    Step,
    ValidationResult,
    Version,
    Workflow,
)
from stepline.sdk.pagination import PageIterator

Id = UUID | str


class Client:
    """A synchronous client of a stepline server.

    `base_url` defaults to `STEPLINE_SERVER`, then the server saved by `stepline serve`;
    `api_key` to `STEPLINE_API_KEY`, then the saved key (for that same server only).
    Idempotent calls are retried `max_retries` times on 429, 5xx and broken connections.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 30,
        max_retries: int = 3,
        workspace_id: Id | None = None,
    ) -> None:
        connection = resolve_connection(base_url, api_key)
        self.base_url = connection.base_url
        self.api_key = connection.api_key
        self.timeout = timeout
        self.retry = RetryPolicy(max_retries=max_retries)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=build_headers(self.api_key, workspace_id),
            timeout=timeout,
        )
        self._driver = SyncDriver(self._http, Flows(self.base_url, self.retry), timeout)
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.reviews = Reviews(self)
        self.secrets = Secrets(self)
        self.files = Files(self)
        self.collections = Collections(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
        """Send `call`, retrying as the policy allows; an error answer raises `ApiError`."""
        return self._driver.run(self._driver.flows.send(call, stream=stream))

    def call(self, call: Call[T]) -> T:
        return self._driver.run(self._driver.flows.call(call))


class Workflows:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, definition: Mapping[str, Any]) -> Workflow:
        return self._client.call(_api.create_workflow(definition))

    def list(self, *, page_size: int | None = None, **filters: Any) -> PageIterator[Workflow]:
        return PageIterator(
            self._client._driver, lambda after: _api.list_workflows(filters, after, page_size)
        )

    def get(self, workflow_id: Id) -> Workflow:
        return self._client.call(_api.get_workflow(workflow_id))

    def update(self, workflow_id: Id, definition: Mapping[str, Any]) -> Workflow:
        """Replace the definition: a new version when it changed."""
        return self._client.call(_api.update_workflow(workflow_id, definition))

    def patch(
        self, workflow_id: Id, *, name: str | None = None, description: str | None = None
    ) -> Workflow:
        changes = {"name": name, "description": description}
        return self._client.call(_api.patch_workflow(workflow_id, changes))

    def delete(self, workflow_id: Id) -> None:
        self._client.call(_api.delete_workflow(workflow_id))

    def duplicate(self, workflow_id: Id, *, name: str | None = None) -> Workflow:
        return self._client.call(_api.duplicate_workflow(workflow_id, name))

    def validate(self, definition: Mapping[str, Any]) -> ValidationResult:
        return self._client.call(_api.validate_workflow(definition))

    def versions(self, workflow_id: Id, *, page_size: int | None = None) -> PageIterator[Version]:
        return PageIterator(
            self._client._driver, lambda after: _api.list_versions(workflow_id, after, page_size)
        )

    def version(self, workflow_id: Id, version: int) -> Version:
        """One version of the workflow (1, 2, ...)."""
        return self._client.call(_api.get_version(workflow_id, version))

    def upload(self, path: str | Path) -> Workflow:
        """Create a workflow from a JSON or YAML file."""
        return self._client.call(_api.upload_workflow(path))

    @overload
    def diagram(self, workflow_id: Id, format: Literal["mermaid"] = "mermaid") -> str: ...
    @overload
    def diagram(self, workflow_id: Id, format: Literal["json"]) -> dict[str, Any]: ...
    def diagram(self, workflow_id: Id, format: str = "mermaid") -> Any:
        """Mermaid text, or (format="json") nodes and edges with the latest run's statuses."""
        return self._client.call(_api.workflow_diagram(workflow_id, format))


class Files:
    """The files of the key's organization: upload, list, read, download, delete."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def upload(self, content: str | Path | bytes, *, filename: str | None = None) -> File:
        """Upload a file (a path, or bytes with a `filename`); its type is sniffed by the
        server. A run's inputs refer to it as `file.reference()`."""
        return self._client.call(_api.upload_file(content, filename))

    def list(self, *, page_size: int | None = None) -> PageIterator[File]:
        """The organization's files, newest first, following cursors across pages."""
        return PageIterator(self._client._driver, lambda after: _api.list_files(after, page_size))

    def get(self, file_id: Id) -> File:
        return self._client.call(_api.get_file(file_id))

    def download(self, file_id: Id, to: str | Path | None = None) -> bytes:
        """The file's bytes; also written to the path `to`, when given."""
        data = self._client.call(_api.download_file(file_id))
        if to is not None:
            _api.save_download(data, to)
        return data

    def delete(self, file_id: Id) -> None:
        self._client.call(_api.delete_file(file_id))


class Secrets:
    """The secrets of the key's organization (or workspace): admin or write scope."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def set(self, name: str, value: str) -> Secret:
        """Create the secret or replace its value; nodes read it as {{ secrets.NAME }}."""
        return self._client.call(_api.set_secret(name, value))

    def list(self) -> list[Secret]:
        """Every secret's name and times, by name (never a value)."""
        return self._client.call(_api.list_secrets())

    def get(self, name: str) -> Secret:
        return self._client.call(_api.get_secret(name))

    def delete(self, name: str) -> None:
        self._client.call(_api.delete_secret(name))


class Reviews:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self,
        *,
        workflow_id: Id | None = None,
        page_size: int | None = None,
    ) -> PageIterator[Review]:
        """The steps waiting for a person's decision, oldest first (of one workflow, when
        given), following cursors across pages."""
        filters = {"workflow_id": workflow_id}
        return PageIterator(
            self._client._driver, lambda after: _api.list_reviews(filters, after, page_size)
        )


class Steps:
    def __init__(self, client: Client) -> None:
        self._client = client

    def list(
        self, workflow_id: Id, run_id: Id, *, page_size: int | None = None, **filters: Any
    ) -> PageIterator[Step]:
        """Every step of a run in execution order, following cursors across pages.

        Filters: status, node_id, node_type, loop_id, iteration, include_io.
        """
        return PageIterator(
            self._client._driver,
            lambda after: _api.list_steps(workflow_id, run_id, filters, after, page_size),
        )

    def get(self, workflow_id: Id, run_id: Id, step_id: Id) -> Step:
        return self._client.call(_api.get_step(workflow_id, run_id, step_id))

    def review(
        self,
        workflow_id: Id,
        run_id: Id,
        step_id: Id,
        *,
        approved: bool,
        output: Any = _api.UNSET,
        comment: str | None = None,
    ) -> ReviewResult:
        """Decide a step waiting for review (by its UUID or step_id): approve it, with an
        edited `output` if given (None is a value), or reject it; the run then resumes.

        Deciding again the same way returns `changed=False`; differently, ConflictError.
        """
        call = _api.review_step(workflow_id, run_id, step_id, approved, output, comment)
        return self._client.call(call)


class Runs:
    def __init__(self, client: Client) -> None:
        self._client = client
        self.steps = Steps(client)

    def create(
        self,
        workflow_id: Id,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        """Start a run. With `wait=True` the server answers when it ends (with its steps),
        or when `timeout_s` is up (the run still going)."""
        call = _api.create_run(
            workflow_id,
            inputs,
            wait=wait,
            timeout_s=timeout_s,
            idempotency_key=idempotency_key,
            client_timeout=self._client.timeout,
        )
        return self._client.call(call)

    def list(
        self, workflow_id: Id, *, page_size: int | None = None, **filters: Any
    ) -> PageIterator[Run]:
        """The workflow's runs, newest first."""
        return PageIterator(
            self._client._driver,
            lambda after: _api.list_runs(workflow_id, filters, after, page_size),
        )

    def get(self, workflow_id: Id, run_id: Id) -> Run:
        return self._client.call(_api.get_run(workflow_id, run_id))

    def cancel(self, workflow_id: Id, run_id: Id) -> Run:
        return self._client.call(_api.cancel_run(workflow_id, run_id))

    def retry(self, workflow_id: Id, run_id: Id) -> Run:
        """Continue a failed or cancelled run from its failed steps (the same run, queued
        again; completed steps are not run again). ConflictError for any other run."""
        return self._client.call(_api.retry_run(workflow_id, run_id))

    def replay(
        self,
        workflow_id: Id,
        run_id: Id,
        *,
        from_node: str,
        inputs: Mapping[str, Any] | None = None,
        workflow_version: int | None = None,
    ) -> Run:
        """A new run (`replay_of` the original) that reuses the original's outputs for
        every step upstream of `from_node` and runs the rest; inputs and version default
        to the original's."""
        call = _api.replay_run(workflow_id, run_id, from_node, inputs, workflow_version)
        return self._client.call(call)

    def wait(self, workflow_id: Id, run_id: Id, timeout_s: float | None = None) -> Run:
        """The run once it ended or waits for a review (`run.settled`), or as it is when
        `timeout_s` is up."""
        flows = self._client._driver.flows
        return self._client._driver.run(flows.wait(_api.get_run(workflow_id, run_id), timeout_s))

    def summary(self, workflow_id: Id, **window: Any) -> RunSummary:
        return self._client.call(_api.run_summary(workflow_id, window))

    def data(self, workflow_id: Id, run_id: Id) -> RunData:
        return self._client.call(_api.run_data(workflow_id, run_id))

    @overload
    def download(
        self, workflow_id: Id, run_id: Id, format: Literal["json"] = "json"
    ) -> dict[str, Any]: ...
    @overload
    def download(self, workflow_id: Id, run_id: Id, format: Literal["ndjson"]) -> StepStream: ...
    def download(self, workflow_id: Id, run_id: Id, format: str = "json") -> Any:
        """The run, its version and every step as one document; with format="ndjson" a
        stream of step records read line by line (iterate it; `with` closes it early)."""
        call = _api.download_run(workflow_id, run_id, format)
        if format == "ndjson":
            return StepStream(self._client.send(call, stream=True), self._client._driver)
        return self._client._driver.run(self._client._driver.flows.read_json(call))

    def download_node(self, workflow_id: Id, run_id: Id, node_id: str) -> StepStream:
        """Every step of one node (one per iteration), streamed as ndjson."""
        call = _api.download_node(workflow_id, run_id, node_id, "ndjson")
        return StepStream(self._client.send(call, stream=True), self._client._driver)

    def events(self, workflow_id: Id, run_id: Id, last_event_id: int | None = None) -> EventStream:
        """The run's events in order until it ends; reconnects with Last-Event-ID if the
        connection breaks. Use as an iterator (and `with` to close it early)."""
        return EventStream(self._client, workflow_id, run_id, last_event_id)


class EventStream:
    """A run's Server-Sent Events as `Event` objects, resumed after a broken connection;
    `last_event_id` is the id of the last event handed out."""

    def __init__(
        self, client: Client, workflow_id: Id, run_id: Id, last_event_id: int | None
    ) -> None:
        self._driver = client._driver
        self._workflow_id = workflow_id
        self._run_id = run_id
        self.last_event_id = last_event_id
        self._events: Generator[Event, None, None] | None = None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
        self._events = None

    def __iter__(self) -> Iterator[Event]:
        flow = self._driver.flows.events(
            self, lambda last: _api.run_events(self._workflow_id, self._run_id, last)
        )
        self._events = self._driver.iterate(flow)
        return self._events


class StepStream:
    """Step records from an ndjson download, parsed one line at a time."""

    def __init__(self, response: httpx.Response, driver: SyncDriver) -> None:
        self._response = response
        self._driver = driver
        self._steps: Generator[Step, None, None] | None = None

    def __enter__(self) -> StepStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._steps is not None:
            self._steps.close()
        self._response.close()

    def __iter__(self) -> Iterator[Step]:
        self._steps = self._driver.iterate(self._driver.flows.steps(self._response))
        return self._steps
