"""The asynchronous client: the same surface as `Client`, with `await` and `async for`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, overload
from uuid import UUID

import httpx

from stepline.sdk import _api
from stepline.sdk._collections import AsyncCollections
from stepline.sdk._drivers import AsyncDriver
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
from stepline.sdk.pagination import AsyncPageIterator

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
        self._driver = AsyncDriver(self._http, Flows(self.base_url, self.retry), timeout)
        self.workflows = AsyncWorkflows(self)
        self.runs = AsyncRuns(self)
        self.reviews = AsyncReviews(self)
        self.secrets = AsyncSecrets(self)
        self.files = AsyncFiles(self)
        self.collections = AsyncCollections(self)

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
        return await self._driver.run(self._driver.flows.send(call, stream=stream))

    async def call(self, call: Call[T]) -> T:
        return await self._driver.run(self._driver.flows.call(call))


class AsyncWorkflows:
    """`Workflows` of `Client`, to await (its docstrings say what each method does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def create(self, definition: Mapping[str, Any]) -> Workflow:
        return await self._client.call(_api.create_workflow(definition))

    def list(self, *, page_size: int | None = None, **filters: Any) -> AsyncPageIterator[Workflow]:
        return AsyncPageIterator(
            self._client._driver, lambda after: _api.list_workflows(filters, after, page_size)
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
            self._client._driver, lambda after: _api.list_versions(workflow_id, after, page_size)
        )

    async def version(self, workflow_id: Id, version: int) -> Version:
        return await self._client.call(_api.get_version(workflow_id, version))

    async def upload(self, path: str | Path) -> Workflow:
        return await self._client.call(_api.upload_workflow(path))

    @overload
    async def diagram(self, workflow_id: Id, format: Literal["mermaid"] = "mermaid") -> str: ...
    @overload
    async def diagram(self, workflow_id: Id, format: Literal["json"]) -> dict[str, Any]: ...
    async def diagram(self, workflow_id: Id, format: str = "mermaid") -> Any:
        return await self._client.call(_api.workflow_diagram(workflow_id, format))


class AsyncFiles:
    """`Files` of `Client`, to await (its docstrings say what each method does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def upload(self, content: str | Path | bytes, *, filename: str | None = None) -> File:
        """Upload a file (a path, or bytes with a `filename`); its type is sniffed by the
        server. A run's inputs refer to it as `file.reference()`."""
        return await self._client.call(_api.upload_file(content, filename))

    def list(self, *, page_size: int | None = None) -> AsyncPageIterator[File]:
        """The organization's files, newest first, following cursors across pages."""
        return AsyncPageIterator(
            self._client._driver, lambda after: _api.list_files(after, page_size)
        )

    async def get(self, file_id: Id) -> File:
        return await self._client.call(_api.get_file(file_id))

    async def download(self, file_id: Id, to: str | Path | None = None) -> bytes:
        """The file's bytes; also written to the path `to`, when given."""
        data = await self._client.call(_api.download_file(file_id))
        if to is not None:
            _api.save_download(data, to)
        return data

    async def delete(self, file_id: Id) -> None:
        await self._client.call(_api.delete_file(file_id))


class AsyncSecrets:
    """`Secrets` of `Client`, to await (its docstrings say what each method does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    async def set(self, name: str, value: str) -> Secret:
        return await self._client.call(_api.set_secret(name, value))

    async def list(self) -> list[Secret]:
        return await self._client.call(_api.list_secrets())

    async def get(self, name: str) -> Secret:
        return await self._client.call(_api.get_secret(name))

    async def delete(self, name: str) -> None:
        await self._client.call(_api.delete_secret(name))


class AsyncReviews:
    """`Reviews` of `Client`, to await (its docstrings say what each method does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self,
        *,
        workflow_id: Id | None = None,
        page_size: int | None = None,
    ) -> AsyncPageIterator[Review]:
        filters = {"workflow_id": workflow_id}
        return AsyncPageIterator(
            self._client._driver, lambda after: _api.list_reviews(filters, after, page_size)
        )


class AsyncSteps:
    """`Steps` (`runs.steps`) of `Client`, to await (its docstrings say what each does)."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

    def list(
        self, workflow_id: Id, run_id: Id, *, page_size: int | None = None, **filters: Any
    ) -> AsyncPageIterator[Step]:
        return AsyncPageIterator(
            self._client._driver,
            lambda after: _api.list_steps(workflow_id, run_id, filters, after, page_size),
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
        call = _api.review_step(workflow_id, run_id, step_id, approved, output, comment)
        return await self._client.call(call)


class AsyncRuns:
    """`Runs` of `Client`, to await (its docstrings say what each method does)."""

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
            self._client._driver,
            lambda after: _api.list_runs(workflow_id, filters, after, page_size),
        )

    async def get(self, workflow_id: Id, run_id: Id) -> Run:
        return await self._client.call(_api.get_run(workflow_id, run_id))

    async def cancel(self, workflow_id: Id, run_id: Id) -> Run:
        return await self._client.call(_api.cancel_run(workflow_id, run_id))

    async def retry(self, workflow_id: Id, run_id: Id) -> Run:
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
        call = _api.replay_run(workflow_id, run_id, from_node, inputs, workflow_version)
        return await self._client.call(call)

    async def wait(self, workflow_id: Id, run_id: Id, timeout_s: float | None = None) -> Run:
        flows = self._client._driver.flows
        return await self._client._driver.run(
            flows.wait(_api.get_run(workflow_id, run_id), timeout_s)
        )

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
        if format == "ndjson":
            return AsyncStepStream(await self._client.send(call, stream=True), self._client._driver)
        return await self._client._driver.run(self._client._driver.flows.read_json(call))

    async def download_node(self, workflow_id: Id, run_id: Id, node_id: str) -> AsyncStepStream:
        call = _api.download_node(workflow_id, run_id, node_id, "ndjson")
        return AsyncStepStream(await self._client.send(call, stream=True), self._client._driver)

    def events(
        self, workflow_id: Id, run_id: Id, last_event_id: int | None = None
    ) -> AsyncEventStream:
        """The run's events in order until it ends (`async for`), resumed after a break."""
        return AsyncEventStream(self._client, workflow_id, run_id, last_event_id)


class AsyncEventStream:
    """A run's Server-Sent Events as `Event` objects, resumed after a broken connection;
    `last_event_id` is the id of the last event handed out."""

    def __init__(
        self, client: AsyncClient, workflow_id: Id, run_id: Id, last_event_id: int | None
    ) -> None:
        self._driver = client._driver
        self._workflow_id = workflow_id
        self._run_id = run_id
        self.last_event_id = last_event_id
        self._events: AsyncGenerator[Event, None] | None = None

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
        if self._events is not None:
            await self._events.aclose()
        self._events = None

    def __aiter__(self) -> AsyncIterator[Event]:
        flow = self._driver.flows.events(
            self, lambda last: _api.run_events(self._workflow_id, self._run_id, last)
        )
        self._events = self._driver.iterate(flow)
        return self._events


class AsyncStepStream:
    """Step records from an ndjson download, parsed one line at a time."""

    def __init__(self, response: httpx.Response, driver: AsyncDriver) -> None:
        self._response = response
        self._driver = driver
        self._steps: AsyncGenerator[Step, None] | None = None

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
        if self._steps is not None:
            await self._steps.aclose()
        await self._response.aclose()

    def __aiter__(self) -> AsyncIterator[Step]:
        self._steps = self._driver.iterate(self._driver.flows.steps(self._response))
        return self._steps
