"""The synchronous client: `Client(base_url, api_key)` with `workflows`, `runs` and `runs.steps`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload
from uuid import UUID

import httpx

from stepline.sdk import _api
from stepline.sdk._http import (
    Call,
    RetryPolicy,
    T,
    build_headers,
    timeout_for,
    transport_error,
)
from stepline.sdk.config import resolve_connection
from stepline.sdk.errors import error_from_response
from stepline.sdk.models import (
    Event,
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
from stepline.sdk.sse import SseDecoder

Id = UUID | str

# How often `runs.wait` looks at the run: quickly at first, then at most once a second.
POLL_FIRST_S = 0.05
POLL_MAX_S = 1.0


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
        self.workflows = Workflows(self)
        self.runs = Runs(self)
        self.reviews = Reviews(self)
        self.secrets = Secrets(self)

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
        attempt = 0
        while True:
            request = self._http.build_request(
                call.method,
                call.path,
                params=call.params,
                json=call.json if call.files is None else None,
                files=call.files,
                headers=call.headers,
                timeout=timeout_for(call, self.timeout),
            )
            try:
                response = self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self.retry.retries_exception(call, exc, attempt):
                    raise transport_error(exc, self.base_url) from exc
                time.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            if self.retry.retries_status(call, response.status_code, attempt):
                response.close()
                time.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            try:
                if stream:
                    response.read()
                raise error_from_response(response)
            finally:
                response.close()

    def call(self, call: Call[T]) -> T:
        response = self.send(call)
        return call.parse(response)


class Workflows:
    def __init__(self, client: Client) -> None:
        self._client = client

    def create(self, definition: Mapping[str, Any]) -> Workflow:
        return self._client.call(_api.create_workflow(definition))

    def list(self, *, page_size: int | None = None, **filters: Any) -> PageIterator[Workflow]:
        return PageIterator(
            lambda after: self._client.call(_api.list_workflows(filters, after, page_size))
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
            lambda after: self._client.call(_api.list_versions(workflow_id, after, page_size))
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
            lambda after: self._client.call(_api.list_reviews(filters, after, page_size))
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
            lambda after: self._client.call(
                _api.list_steps(workflow_id, run_id, filters, after, page_size)
            )
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
            lambda after: self._client.call(_api.list_runs(workflow_id, filters, after, page_size))
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
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pause = POLL_FIRST_S
        while True:
            run = self.get(workflow_id, run_id)
            if run.settled:
                return run
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return run
                pause = min(pause, left)
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

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
        response = self._client.send(call, stream=True)
        if format == "ndjson":
            return StepStream(response, self._client.base_url)
        try:
            return json.loads(response.read())
        except httpx.TransportError as exc:
            raise transport_error(exc, self._client.base_url) from exc
        finally:
            response.close()

    def download_node(self, workflow_id: Id, run_id: Id, node_id: str) -> StepStream:
        """Every step of one node (one per iteration), streamed as ndjson."""
        call = _api.download_node(workflow_id, run_id, node_id, "ndjson")
        return StepStream(self._client.send(call, stream=True), self._client.base_url)

    def events(self, workflow_id: Id, run_id: Id, last_event_id: int | None = None) -> EventStream:
        """The run's events in order until it ends; reconnects with Last-Event-ID if the
        connection breaks. Use as an iterator (and `with` to close it early)."""
        return EventStream(self._client, workflow_id, run_id, last_event_id)


class EventStream:
    """A run's Server-Sent Events as `Event` objects, resumed after a broken connection."""

    def __init__(
        self, client: Client, workflow_id: Id, run_id: Id, last_event_id: int | None
    ) -> None:
        self._client = client
        self._workflow_id = workflow_id
        self._run_id = run_id
        self.last_event_id = last_event_id
        self._response: httpx.Response | None = None

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
        if self._response is not None:
            self._response.close()
            self._response = None

    def __iter__(self) -> Iterator[Event]:
        breaks = 0
        retry = self._client.retry
        while True:
            call = _api.run_events(self._workflow_id, self._run_id, self.last_event_id)
            self._response = self._client.send(call, stream=True)
            decoder = SseDecoder()
            try:
                for line in self._response.iter_lines():
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    breaks = 0
                    if event.id is not None:
                        self.last_event_id = event.id
                    yield event
                    if event.is_terminal:
                        return
                return  # the server ended the stream
            except httpx.ReadTimeout:
                pass  # a quiet run: ask again from the last event we saw
            except httpx.TransportError as exc:
                if breaks >= retry.max_retries:
                    raise transport_error(exc, self._client.base_url) from exc
                time.sleep(retry.delay(breaks))
                breaks += 1
            finally:
                self.close()


class StepStream:
    """Step records from an ndjson download, parsed one line at a time."""

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self._response = response
        self._base_url = base_url

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
        self._response.close()

    def __iter__(self) -> Iterator[Step]:
        try:
            for line in self._response.iter_lines():
                if line.strip():
                    yield Step.model_validate_json(line)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._base_url) from exc
        finally:
            self.close()
