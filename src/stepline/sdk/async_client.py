"""The asynchronous client: the same surface as `Client`, with `await` and `async for`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
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
from stepline.sdk.client import POLL_FIRST_S, POLL_MAX_S
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
from stepline.sdk.pagination import AsyncPageIterator
from stepline.sdk.sse import SseDecoder

Id = UUID | str


class AsyncClient:
    """An asyncio client of a stepline server; see `Client` for the arguments.

    Use `async with AsyncClient() as client:` or call `await client.aclose()`.
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
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=build_headers(self.api_key, workspace_id),
            timeout=timeout,
        )
        self.workflows = AsyncWorkflows(self)
        self.runs = AsyncRuns(self)
        self.reviews = AsyncReviews(self)
        self.secrets = AsyncSecrets(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: Call[Any], *, stream: bool = False) -> httpx.Response:
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
                response = await self._http.send(request, stream=stream)
            except httpx.TransportError as exc:
                if not self.retry.retries_exception(call, exc, attempt):
                    raise transport_error(exc, self.base_url) from exc
                await asyncio.sleep(self.retry.delay(attempt))
                attempt += 1
                continue
            if response.is_success:
                return response
            if self.retry.retries_status(call, response.status_code, attempt):
                await response.aclose()
                await asyncio.sleep(self.retry.delay(attempt, response))
                attempt += 1
                continue
            try:
                if stream:
                    await response.aread()
                raise error_from_response(response)
            finally:
                await response.aclose()

    async def call(self, call: Call[T]) -> T:
        response = await self.send(call)
        return call.parse(response)


class AsyncWorkflows:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, definition: Mapping[str, Any]) -> Workflow:
        return await self._client.call(_api.create_workflow(definition))

    def list(self, *, page_size: int | None = None, **filters: Any) -> AsyncPageIterator[Workflow]:
        return AsyncPageIterator(
            lambda after: self._client.call(_api.list_workflows(filters, after, page_size))
        )

    async def get(self, workflow_id: Id) -> Workflow:
        return await self._client.call(_api.get_workflow(workflow_id))

    async def update(self, workflow_id: Id, definition: Mapping[str, Any]) -> Workflow:
        return await self._client.call(_api.update_workflow(workflow_id, definition))

    async def patch(
        self, workflow_id: Id, *, name: str | None = None, description: str | None = None
    ) -> Workflow:
        changes = {"name": name, "description": description}
        return await self._client.call(_api.patch_workflow(workflow_id, changes))

    async def delete(self, workflow_id: Id) -> None:
        await self._client.call(_api.delete_workflow(workflow_id))

    async def duplicate(self, workflow_id: Id, *, name: str | None = None) -> Workflow:
        return await self._client.call(_api.duplicate_workflow(workflow_id, name))

    async def validate(self, definition: Mapping[str, Any]) -> ValidationResult:
        return await self._client.call(_api.validate_workflow(definition))

    def versions(
        self, workflow_id: Id, *, page_size: int | None = None
    ) -> AsyncPageIterator[Version]:
        return AsyncPageIterator(
            lambda after: self._client.call(_api.list_versions(workflow_id, after, page_size))
        )

    async def version(self, workflow_id: Id, version: int) -> Version:
        """One version of the workflow (1, 2, ...)."""
        return await self._client.call(_api.get_version(workflow_id, version))

    async def upload(self, path: str | Path) -> Workflow:
        return await self._client.call(_api.upload_workflow(path))

    @overload
    async def diagram(self, workflow_id: Id, format: Literal["mermaid"] = "mermaid") -> str: ...
    @overload
    async def diagram(self, workflow_id: Id, format: Literal["json"]) -> dict[str, Any]: ...
    async def diagram(self, workflow_id: Id, format: str = "mermaid") -> Any:
        return await self._client.call(_api.workflow_diagram(workflow_id, format))


class AsyncSecrets:
    """The secrets of the key's organization (or workspace): admin or write scope."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def set(self, name: str, value: str) -> Secret:
        """Create the secret or replace its value; nodes read it as {{ secrets.NAME }}."""
        return await self._client.call(_api.set_secret(name, value))

    async def list(self) -> list[Secret]:
        """Every secret's name and times, by name (never a value)."""
        return await self._client.call(_api.list_secrets())

    async def get(self, name: str) -> Secret:
        return await self._client.call(_api.get_secret(name))

    async def delete(self, name: str) -> None:
        await self._client.call(_api.delete_secret(name))


class AsyncReviews:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self,
        *,
        workflow_id: Id | None = None,
        page_size: int | None = None,
    ) -> AsyncPageIterator[Review]:
        """The steps waiting for a person's decision, oldest first (of one workflow, when
        given), following cursors across pages."""
        filters = {"workflow_id": workflow_id}
        return AsyncPageIterator(
            lambda after: self._client.call(_api.list_reviews(filters, after, page_size))
        )


class AsyncSteps:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self, workflow_id: Id, run_id: Id, *, page_size: int | None = None, **filters: Any
    ) -> AsyncPageIterator[Step]:
        return AsyncPageIterator(
            lambda after: self._client.call(
                _api.list_steps(workflow_id, run_id, filters, after, page_size)
            )
        )

    async def get(self, workflow_id: Id, run_id: Id, step_id: Id) -> Step:
        return await self._client.call(_api.get_step(workflow_id, run_id, step_id))

    async def review(
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
        return await self._client.call(call)


class AsyncRuns:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        self.steps = AsyncSteps(client)

    async def create(
        self,
        workflow_id: Id,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> Run:
        call = _api.create_run(
            workflow_id,
            inputs,
            wait=wait,
            timeout_s=timeout_s,
            idempotency_key=idempotency_key,
            client_timeout=self._client.timeout,
        )
        return await self._client.call(call)

    def list(
        self, workflow_id: Id, *, page_size: int | None = None, **filters: Any
    ) -> AsyncPageIterator[Run]:
        return AsyncPageIterator(
            lambda after: self._client.call(_api.list_runs(workflow_id, filters, after, page_size))
        )

    async def get(self, workflow_id: Id, run_id: Id) -> Run:
        return await self._client.call(_api.get_run(workflow_id, run_id))

    async def cancel(self, workflow_id: Id, run_id: Id) -> Run:
        return await self._client.call(_api.cancel_run(workflow_id, run_id))

    async def retry(self, workflow_id: Id, run_id: Id) -> Run:
        """Continue a failed or cancelled run from its failed steps (the same run, queued
        again; completed steps are not run again). ConflictError for any other run."""
        return await self._client.call(_api.retry_run(workflow_id, run_id))

    async def replay(
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
        return await self._client.call(call)

    async def wait(self, workflow_id: Id, run_id: Id, timeout_s: float | None = None) -> Run:
        """The run once it ended or waits for a review (`run.settled`), or as it is when
        `timeout_s` is up."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        pause = POLL_FIRST_S
        while True:
            run = await self.get(workflow_id, run_id)
            if run.settled:
                return run
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return run
                pause = min(pause, left)
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    async def summary(self, workflow_id: Id, **window: Any) -> RunSummary:
        return await self._client.call(_api.run_summary(workflow_id, window))

    async def data(self, workflow_id: Id, run_id: Id) -> RunData:
        return await self._client.call(_api.run_data(workflow_id, run_id))

    @overload
    async def download(
        self, workflow_id: Id, run_id: Id, format: Literal["json"] = "json"
    ) -> dict[str, Any]: ...
    @overload
    async def download(
        self, workflow_id: Id, run_id: Id, format: Literal["ndjson"]
    ) -> AsyncStepStream: ...
    async def download(self, workflow_id: Id, run_id: Id, format: str = "json") -> Any:
        """As `Client.runs.download`; with format="ndjson" use `async for` on the result."""
        call = _api.download_run(workflow_id, run_id, format)
        response = await self._client.send(call, stream=True)
        if format == "ndjson":
            return AsyncStepStream(response, self._client.base_url)
        try:
            return json.loads(await response.aread())
        except httpx.TransportError as exc:
            raise transport_error(exc, self._client.base_url) from exc
        finally:
            await response.aclose()

    async def download_node(self, workflow_id: Id, run_id: Id, node_id: str) -> AsyncStepStream:
        call = _api.download_node(workflow_id, run_id, node_id, "ndjson")
        response = await self._client.send(call, stream=True)
        return AsyncStepStream(response, self._client.base_url)

    def events(
        self, workflow_id: Id, run_id: Id, last_event_id: int | None = None
    ) -> AsyncEventStream:
        """The run's events in order until it ends (`async for`), resumed after a break."""
        return AsyncEventStream(self._client, workflow_id, run_id, last_event_id)


class AsyncStepStream:
    """Step records from an ndjson download, parsed one line at a time."""

    def __init__(self, response: httpx.Response, base_url: str) -> None:
        self._response = response
        self._base_url = base_url

    async def __aenter__(self) -> AsyncStepStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()

    async def __aiter__(self) -> AsyncIterator[Step]:
        try:
            async for line in self._response.aiter_lines():
                if line.strip():
                    yield Step.model_validate_json(line)
        except httpx.TransportError as exc:
            raise transport_error(exc, self._base_url) from exc
        finally:
            await self.aclose()


class AsyncEventStream:
    """A run's Server-Sent Events as `Event` objects, resumed after a broken connection."""

    def __init__(
        self, client: AsyncClient, workflow_id: Id, run_id: Id, last_event_id: int | None
    ) -> None:
        self._client = client
        self._workflow_id = workflow_id
        self._run_id = run_id
        self.last_event_id = last_event_id
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._response is not None:
            await self._response.aclose()
            self._response = None

    async def __aiter__(self) -> AsyncIterator[Event]:
        breaks = 0
        retry = self._client.retry
        while True:
            call = _api.run_events(self._workflow_id, self._run_id, self.last_event_id)
            self._response = await self._client.send(call, stream=True)
            decoder = SseDecoder()
            try:
                async for line in self._response.aiter_lines():
                    event = decoder.feed(line)
                    if event is None:
                        continue
                    breaks = 0
                    if event.id is not None:
                        self.last_event_id = event.id
                    yield event
                    if event.is_terminal:
                        return
                return
            except httpx.ReadTimeout:
                pass
            except httpx.TransportError as exc:
                if breaks >= retry.max_retries:
                    raise transport_error(exc, self._client.base_url) from exc
                await asyncio.sleep(retry.delay(breaks))
                breaks += 1
            finally:
                await self.aclose()
