"""The Python SDK against a real `stepline serve`: every method, its models and its errors.

Retries are the one thing tested against a scripted loopback server (support.http_server):
they are the client's own protocol behaviour, and a real server cannot be made to answer
503 twice on purpose.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from stepline import AsyncClient, Client
from stepline.sdk import (
    AuthenticationError,
    ConflictError,
    Event,
    NotFoundError,
    PermissionDeniedError,
    Run,
    ServerError,
    Step,
    TransportError,
    ValidationError,
    Workflow,
)
from stepline.sdk.sse import SseDecoder
from stepline.settings import get_settings
from support.http_server import loopback_server
from support.server import ServeProcess, free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def triage(name: str) -> dict[str, Any]:
    """The order-triage example under a name of the test's own."""
    definition: dict[str, Any] = yaml.safe_load((EXAMPLES / "order-triage.yaml").read_text())
    definition["name"] = name
    return definition


def fan_out(name: str, width: int) -> dict[str, Any]:
    """A workflow of `width` independent reshape steps joined by one end step."""
    nodes: list[dict[str, Any]] = [
        {"id": f"n{i:03d}", "type": "reshape", "config": {"output": {"i": i}}} for i in range(width)
    ]
    nodes.append({"id": "done", "type": "end", "config": {"output": "{{ nodes.n000.output }}"}})
    edges = [{"from": f"n{i:03d}", "to": "done"} for i in range(width)]
    return {"name": name, "nodes": nodes, "edges": edges}


@pytest.fixture
def client(api_server: ServeProcess, org_key: str) -> Iterator[Client]:
    with Client(api_server.base_url, org_key) as sdk:
        yield sdk


# -- workflows ---------------------------------------------------------------------------


def test_workflow_lifecycle(client: Client) -> None:
    created = client.workflows.create(triage("lifecycle"))
    assert isinstance(created, Workflow)
    assert created.name == "lifecycle" and created.latest_version == 1
    assert created.definition is not None and created.definition["name"] == "lifecycle"

    assert client.workflows.get(created.id).id == created.id
    assert [w.id for w in client.workflows.list(name="lifecycle")] == [created.id]

    changed = triage("lifecycle")
    changed["description"] = "second version"
    updated = client.workflows.update(created.id, changed)
    assert updated.latest_version == 2
    assert updated.definition is not None
    assert updated.definition["description"] == "second version"
    assert [v.version for v in client.workflows.versions(created.id)] == [2, 1]
    first = client.workflows.version(created.id, 1)
    assert first.definition["description"] != "second version" and len(first.digest) == 64

    patched = client.workflows.patch(created.id, description="patched")
    assert patched.description == "patched" and patched.latest_version == 2

    copy = client.workflows.duplicate(created.id, name="lifecycle-copy")
    assert copy.id != created.id and copy.name == "lifecycle-copy"

    mermaid = client.workflows.diagram(created.id)
    assert mermaid.startswith("flowchart") and "score" in mermaid
    graph = client.workflows.diagram(created.id, format="json")
    assert {n["id"] for n in graph["nodes"]} == {"score", "route", "flag", "approve", "report"}

    client.workflows.delete(copy.id)
    with pytest.raises(NotFoundError):
        client.workflows.get(copy.id)


def test_validate_reports_every_problem_without_saving(client: Client) -> None:
    assert client.workflows.validate(triage("v")).valid
    broken = triage("v")
    broken["nodes"].append({"id": "ghost", "type": "teleport"})
    result = client.workflows.validate(broken)
    assert not result.valid
    issue = next(i for i in result.errors if i.node_id == "ghost")
    assert issue.code == "unknown_type" and "teleport" in issue.message
    assert list(client.workflows.list(name="v")) == []


def test_upload_reads_a_yaml_file(client: Client, tmp_path: Path) -> None:
    path = tmp_path / "uploaded.yaml"
    path.write_text(yaml.safe_dump(triage("uploaded")))
    uploaded = client.workflows.upload(path)
    assert uploaded.name == "uploaded"
    assert uploaded.definition == triage("uploaded")


def test_list_follows_cursors_across_pages(client: Client) -> None:
    made = {client.workflows.create(triage(f"paged-{i}")).id for i in range(7)}
    listing = client.workflows.list(page_size=3)
    pages = list(listing.pages())
    assert [len(p.items) for p in pages] == [3, 3, 1]
    assert pages[-1].next_cursor is None
    seen = [w.id for w in listing]
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made


# -- errors ------------------------------------------------------------------------------


def test_errors_carry_status_code_message_and_request_id(
    api_server: ServeProcess, client: Client, make_key: Any
) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFoundError) as not_found:
        client.workflows.get(missing)
    assert not_found.value.status == 404 and not_found.value.code == "not_found"
    assert str(missing) in not_found.value.message
    uuid.UUID(not_found.value.request_id or "")

    client.workflows.create(triage("taken"))
    with pytest.raises(ConflictError) as conflict:
        client.workflows.create(triage("taken"))
    assert conflict.value.status == 409 and conflict.value.code == "conflict"

    with pytest.raises(ValidationError) as invalid:
        client.workflows.get("not-a-uuid")
    assert invalid.value.status == 422
    assert [d.field for d in invalid.value.details] == ["path.workflow_id"]

    with (
        Client(api_server.base_url, "stp_not_a_key") as stranger,
        pytest.raises(AuthenticationError) as refused,
    ):
        list(stranger.workflows.list())
    assert refused.value.status == 401 and refused.value.code == "unauthorized"
    assert refused.value.request_id

    reader = make_key(f"readers-{uuid.uuid4()}", scopes=("read",))
    with (
        Client(api_server.base_url, reader) as read_only,
        pytest.raises(PermissionDeniedError) as denied,
    ):
        read_only.workflows.create(triage("nope"))
    assert denied.value.status == 403 and denied.value.code == "forbidden"


def test_another_organizations_workflow_is_not_found(
    api_server: ServeProcess, client: Client, make_key: Any
) -> None:
    mine = client.workflows.create(triage("private"))
    other = make_key(f"other-{uuid.uuid4()}")
    with Client(api_server.base_url, other) as outsider, pytest.raises(NotFoundError):
        outsider.workflows.get(mine.id)


def test_an_unreachable_server_is_a_transport_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with Client(url, "stp_x", max_retries=1) as nowhere, pytest.raises(TransportError) as broken:
        nowhere.workflows.get(uuid.uuid4())
    assert url in broken.value.message and "cannot reach" in broken.value.message
    assert time.monotonic() - started < 5


# -- configuration -----------------------------------------------------------------------


@pytest.fixture
def saved_home(api_server: ServeProcess, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The environment of a user whose `stepline serve` saved its URL and key."""
    monkeypatch.setenv("STEPLINE_HOME", str(api_server.home))
    monkeypatch.delenv("STEPLINE_SERVER", raising=False)
    monkeypatch.delenv("STEPLINE_API_KEY", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("saved_home")
def test_the_saved_credentials_are_used_for_their_own_server_only(
    api_server: ServeProcess,
) -> None:
    with Client() as saved:
        assert saved.base_url == api_server.base_url
        assert saved.api_key == api_server.admin_key
        saved.workflows.validate(triage("ok"))
    # localhost is the same loopback server as 127.0.0.1: the saved key applies.
    with Client(f"http://localhost:{api_server.port}") as local:
        assert local.api_key == api_server.admin_key
    # Any other server never receives the saved key.
    with Client("http://127.0.0.1:1") as elsewhere:
        assert elsewhere.api_key is None


def test_the_environment_names_server_and_key(
    api_server: ServeProcess, org_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLINE_SERVER", api_server.base_url + "/")
    monkeypatch.setenv("STEPLINE_API_KEY", org_key)
    with Client() as from_env:
        assert from_env.base_url == api_server.base_url
        assert list(from_env.workflows.list(name="absent")) == []


# -- retries (scripted loopback server) --------------------------------------------------


def _workflow_json(workflow_id: str) -> dict[str, Any]:
    now = "2026-01-01T00:00:00+00:00"
    return {
        "id": workflow_id,
        "organization_id": str(uuid.uuid4()),
        "name": "scripted",
        "latest_version": 1,
        "created_at": now,
        "updated_at": now,
        "definition": {},
    }


def _flaky(failures: int, status: int = 503, headers: dict[str, str] | None = None) -> Any:
    """A route that fails `failures` times, then answers a workflow."""

    def route(hit: int, body: Any) -> tuple[int, dict[str, str], Any]:
        if hit <= failures:
            error = {"error": {"code": "unavailable", "message": "busy", "details": []}}
            return status, headers or {}, {**error, "request_id": f"req-{hit}"}
        return 200, {}, _workflow_json(WORKFLOW_ID)

    return route


WORKFLOW_ID = str(uuid.uuid4())
WORKFLOW_PATH = f"/v1/workflows/{WORKFLOW_ID}"
RUNS_PATH = f"{WORKFLOW_PATH}/runs"


def test_idempotent_calls_are_retried_on_5xx_until_they_succeed() -> None:
    with loopback_server({WORKFLOW_PATH: _flaky(2)}) as server, Client(server.url, "k") as sdk:
        assert str(sdk.workflows.get(WORKFLOW_ID).id) == WORKFLOW_ID
        assert server.hit_count(WORKFLOW_PATH) == 3


def test_retries_stop_after_max_retries_with_the_last_error() -> None:
    with (
        loopback_server({WORKFLOW_PATH: _flaky(10)}) as server,
        Client(server.url, "k", max_retries=2) as sdk,
    ):
        with pytest.raises(ServerError) as failed:
            sdk.workflows.get(WORKFLOW_ID)
        assert server.hit_count(WORKFLOW_PATH) == 3
        assert failed.value.status == 503 and failed.value.request_id == "req-3"


def test_a_429_waits_as_long_as_retry_after_says() -> None:
    route = _flaky(1, status=429, headers={"Retry-After": "1"})
    with loopback_server({WORKFLOW_PATH: route}) as server, Client(server.url, "k") as sdk:
        started = time.monotonic()
        sdk.workflows.get(WORKFLOW_ID)
        assert time.monotonic() - started >= 0.95
        assert server.hit_count(WORKFLOW_PATH) == 2


def test_starting_a_run_is_retried_only_with_an_idempotency_key() -> None:
    def run_route(hit: int, body: Any) -> tuple[int, dict[str, str], Any]:
        if hit in (1, 2):
            return 503, {}, {"error": {"code": "unavailable", "message": "busy"}}
        return 202, {}, _run_json()

    with loopback_server({RUNS_PATH: run_route}) as server, Client(server.url, "k") as sdk:
        with pytest.raises(ServerError):
            sdk.runs.create(WORKFLOW_ID, {"a": 1})
        assert server.hit_count(RUNS_PATH) == 1  # not retried: it might have started a run
        run = sdk.runs.create(WORKFLOW_ID, {"a": 1}, idempotency_key="once")
        assert isinstance(run, Run) and server.hit_count(RUNS_PATH) == 3


def _run_json() -> dict[str, Any]:
    now = "2026-01-01T00:00:00+00:00"
    return {
        "id": str(uuid.uuid4()),
        "workflow_id": WORKFLOW_ID,
        "workflow_version": 1,
        "organization_id": str(uuid.uuid4()),
        "status": "queued",
        "created_at": now,
        "updated_at": now,
        "total_steps": 0,
        "finished_steps": 0,
    }


async def test_the_async_client_retries_the_same_way() -> None:
    with loopback_server({WORKFLOW_PATH: _flaky(2)}) as server:
        async with AsyncClient(server.url, "k") as sdk:
            assert str((await sdk.workflows.get(WORKFLOW_ID)).id) == WORKFLOW_ID
        assert server.hit_count(WORKFLOW_PATH) == 3


def _sse(event_id: int, event_type: str) -> bytes:
    return f'id: {event_id}\nevent: {event_type}\ndata: {{"status": "x"}}\n\n'.encode()


@contextmanager
def broken_event_server() -> Iterator[tuple[str, list[str | None]]]:
    """Serves a run's events: the first connection breaks after two events, the next one
    resumes after the Last-Event-ID it is sent. Yields the URL and each Last-Event-ID."""
    resumed_from: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            resumed_from.append(self.headers.get("Last-Event-ID"))
            first = len(resumed_from) == 1
            body = _sse(1, "run.running") + _sse(2, "step.running") if first else b""
            body += b"" if first else _sse(3, "run.completed")
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            # The first answer promises more than it sends, then the connection drops.
            self.send_header("content-length", str(len(body) + (100 if first else 0)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", resumed_from
    finally:
        server.shutdown()
        server.server_close()


def test_an_event_stream_resumes_after_a_broken_connection() -> None:
    with broken_event_server() as (url, resumed_from), Client(url, "k") as sdk:
        events = list(sdk.runs.events(WORKFLOW_ID, uuid.uuid4()))
    assert [(e.id, e.type) for e in events] == [
        (1, "run.running"),
        (2, "step.running"),
        (3, "run.completed"),
    ]
    assert resumed_from == [None, "2"]


# -- the async client --------------------------------------------------------------------


async def test_async_client_parity(api_server: ServeProcess, org_key: str) -> None:
    async with AsyncClient(api_server.base_url, org_key) as sdk:
        created = await sdk.workflows.create(triage("async"))
        assert (await sdk.workflows.get(created.id)).name == "async"
        listed = [w.id async for w in sdk.workflows.list(name="async")]
        assert listed == [created.id]
        assert (await sdk.workflows.validate(triage("x"))).valid
        assert [v.version async for v in sdk.workflows.versions(created.id)] == [1]
        assert "flowchart" in await sdk.workflows.diagram(created.id)
        with pytest.raises(NotFoundError) as missing:
            await sdk.workflows.get(uuid.uuid4())
        assert missing.value.request_id
        await sdk.workflows.delete(created.id)


def test_models_accept_fields_a_newer_server_adds() -> None:
    step = Step.model_validate(
        {
            "run_id": str(uuid.uuid4()),
            "workflow_id": str(uuid.uuid4()),
            "workflow_version": 1,
            "organization_id": str(uuid.uuid4()),
            "node_id": "a",
            "step_id": "a",
            "node_type": "code",
            "node_label": "a",
            "seq": 0,
            "added_in_a_later_release": True,
        }
    )
    assert step.step_id == "a"
    event = Event(id=3, type="step.completed", data={"step_id": "a", "status": "completed"})
    assert event.step_change is not None and event.step_change.status == "completed"
    assert not event.is_terminal and Event(type="run.failed").is_terminal


def test_sse_decoder_joins_data_lines_and_skips_comments() -> None:
    stream = [
        ": keep-alive",
        "",
        "event: step.running",
        "id: 7",
        'data: {"step_id": "a",',
        'data: "status": "running"}',
        "",
        "retry: 1000",
        "event: run.completed",
        "id: 8",
        'data: {"status": "completed"}',
        "",
        "data: incomplete at the end",
    ]
    decoder = SseDecoder()
    events = [e for e in map(decoder.feed, stream) if e is not None]
    assert [(e.id, e.type) for e in events] == [(7, "step.running"), (8, "run.completed")]
    assert events[0].data == {"step_id": "a", "status": "running"}
    assert events[1].run_status == "completed" and events[1].is_terminal


def test_import_stepline_does_not_load_the_sdk() -> None:
    import subprocess
    import sys

    code = "import sys, stepline; print('httpx' in sys.modules, 'stepline.sdk' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    code = "from stepline import Client, AsyncClient; print(Client.__module__)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "stepline.sdk.client"


# -- runs --------------------------------------------------------------------------------

ADA = {"amount": 700, "customer": "Ada"}


@pytest.fixture
def workflow(client: Client, request: pytest.FixtureRequest) -> Workflow:
    return client.workflows.create(triage(f"triage-{request.node.name}"))


def test_a_run_starts_at_once_and_wait_returns_it_finished(
    client: Client, workflow: Workflow
) -> None:
    run = client.runs.create(workflow.id, ADA)
    assert isinstance(run, Run) and run.workflow_id == workflow.id
    assert run.inputs == ADA and run.steps is None
    done = client.runs.wait(workflow.id, run.id, timeout_s=60)
    assert done.finished and done.status == "completed"
    assert done.output == {"message": "Review Ada: risk 0.7"}
    assert done.total_steps == 5 and done.finished_steps == 5
    assert done.step_counts == {"completed": 4, "skipped": 1}
    assert client.runs.get(workflow.id, run.id) == done


def test_create_with_wait_returns_the_run_with_its_steps(
    client: Client, workflow: Workflow
) -> None:
    run = client.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    assert run.status == "completed" and run.steps is not None
    assert [s.step_id for s in run.steps] == ["score", "route", "flag", "approve", "report"]
    assert run.steps[0].inputs["inputs"] == {"amount": 700}


def test_invalid_inputs_are_a_422_naming_each_field(client: Client, workflow: Workflow) -> None:
    with pytest.raises(ValidationError) as invalid:
        client.runs.create(workflow.id, {"amount": "lots"})
    fields = {d.field for d in invalid.value.details}
    assert {"body.inputs.amount", "body.inputs.customer"} <= fields
    assert list(client.runs.list(workflow.id)) == []


def test_a_repeated_idempotency_key_returns_the_first_run(
    client: Client, workflow: Workflow
) -> None:
    first = client.runs.create(workflow.id, ADA, idempotency_key="order-1")
    again = client.runs.create(workflow.id, ADA, idempotency_key="order-1")
    other = client.runs.create(workflow.id, ADA, idempotency_key="order-2")
    assert again.id == first.id and other.id != first.id
    assert {r.id for r in client.runs.list(workflow.id)} == {first.id, other.id}


def test_runs_list_filters_and_is_newest_first(client: Client, workflow: Workflow) -> None:
    ok = client.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    bo = client.runs.create(workflow.id, {"amount": 1, "customer": "Bo"}, wait=True, timeout_s=60)
    assert [r.id for r in client.runs.list(workflow.id, page_size=1)] == [bo.id, ok.id]
    assert [r.id for r in client.runs.list(workflow.id, status="failed")] == []
    assert len(list(client.runs.list(workflow.id, status="completed"))) == 2


def test_summary_data_and_downloads(client: Client, workflow: Workflow) -> None:
    run = client.runs.create(workflow.id, ADA, wait=True, timeout_s=60)
    summary = client.runs.summary(workflow.id)
    assert summary.workflow_id == workflow.id
    assert summary.total == 1 and summary.counts["completed"] == 1
    assert summary.success_rate == 1.0 and summary.p50_duration_ms is not None

    data = client.runs.data(workflow.id, run.id)
    assert data.output == {"message": "Review Ada: risk 0.7"}

    document = client.runs.download(workflow.id, run.id)
    assert document["run"]["id"] == str(run.id)
    assert [s["step_id"] for s in document["steps"]] == [
        "score",
        "route",
        "flag",
        "approve",
        "report",
    ]
    with client.runs.download(workflow.id, run.id, format="ndjson") as lines:
        streamed = list(lines)
    assert all(isinstance(s, Step) for s in streamed)
    assert [s.step_id for s in streamed] == [s["step_id"] for s in document["steps"]]
    node = list(client.runs.download_node(workflow.id, run.id, "score"))
    assert [s.node_id for s in node] == ["score"] and node[0].outputs == {"risk": 0.7}


def test_events_arrive_in_order_and_resume_after_an_id(client: Client, workflow: Workflow) -> None:
    run = client.runs.create(workflow.id, ADA)
    events = list(client.runs.events(workflow.id, run.id))
    ids = [e.id or 0 for e in events]
    assert all(e.id is not None for e in events) and ids == sorted(set(ids))
    assert events[-1].type == "run.completed" and events[-1].is_terminal
    run_types = [e.type for e in events if e.type.startswith("run.")]
    assert run_types[0] in {"run.queued", "run.running"}
    finished = {
        e.step_change.step_id: e.step_change.status
        for e in events
        if e.step_change is not None and e.type in {"step.completed", "step.skipped"}
    }
    assert finished == {
        "score": "completed",
        "route": "completed",
        "flag": "completed",
        "approve": "skipped",
        "report": "completed",
    }
    middle = events[len(events) // 2]
    rest = list(client.runs.events(workflow.id, run.id, last_event_id=middle.id))
    assert [e.id for e in rest] == [e.id for e in events if (e.id or 0) > (middle.id or 0)]


def sleeper(name: str, seconds: float) -> dict[str, Any]:
    code = f"import time\n\ndef main(inputs):\n    time.sleep({seconds})\n    return {{}}\n"
    return {
        "name": name,
        "nodes": [
            {"id": "nap", "type": "code", "config": {"inputs": {}, "code": code}},
            {"id": "end", "type": "end", "config": {"output": "{{ nodes.nap.output }}"}},
        ],
        "edges": [{"from": "nap", "to": "end"}],
    }


def test_cancel_stops_a_run_and_is_idempotent(client: Client) -> None:
    slow = client.workflows.create(sleeper("slow-cancel", 20))
    run = client.runs.create(slow.id, {})
    client.runs.cancel(slow.id, run.id)
    again = client.runs.cancel(slow.id, run.id)
    assert again.id == run.id
    done = client.runs.wait(slow.id, run.id, timeout_s=30)
    assert done.status == "cancelled"


def test_wait_returns_the_unfinished_run_when_time_is_up(client: Client) -> None:
    slow = client.workflows.create(sleeper("slow-wait", 5))
    run = client.runs.create(slow.id, {}, wait=True, timeout_s=0.5)
    assert not run.finished
    assert not client.runs.wait(slow.id, run.id, timeout_s=0.3).finished
    client.runs.cancel(slow.id, run.id)


def test_steps_iterator_crosses_pages_without_gaps_or_repeats(client: Client) -> None:
    wide = client.workflows.create(fan_out("wide", 120))
    run = client.runs.create(wide.id, {}, wait=True, timeout_s=120)
    assert run.status == "completed" and run.total_steps == 121

    listing = client.runs.steps.list(wide.id, run.id, page_size=7)
    pages = list(listing.pages())
    assert len(pages) == 18 and all(len(p.items) == 7 for p in pages[:-1])
    steps = [s for page in pages for s in page.items]
    assert len({s.id for s in steps}) == 121
    assert [s.step_id for s in steps] == [s.step_id for s in run.steps or []]
    assert [s.seq for s in steps] == sorted(s.seq for s in steps)
    assert [s.step_id for s in client.runs.steps.list(wide.id, run.id, page_size=50)] == [
        s.step_id for s in steps
    ]

    only = list(client.runs.steps.list(wide.id, run.id, node_id="n005", include_io=False))
    assert [s.step_id for s in only] == ["n005"] and only[0].outputs is None
    full = client.runs.steps.get(wide.id, run.id, only[0].id)
    assert full.outputs == {"i": 5}
    assert list(client.runs.steps.list(wide.id, run.id, status="error")) == []


async def test_async_runs_parity(api_server: ServeProcess, org_key: str) -> None:
    async with AsyncClient(api_server.base_url, org_key) as sdk:
        workflow = await sdk.workflows.create(triage("async-runs"))
        run = await sdk.runs.create(workflow.id, ADA)
        events = [e async for e in sdk.runs.events(workflow.id, run.id)]
        assert events[-1].type == "run.completed"
        done = await sdk.runs.wait(workflow.id, run.id, timeout_s=30)
        assert done.status == "completed"
        assert [r.id async for r in sdk.runs.list(workflow.id)] == [run.id]
        steps = [s async for s in sdk.runs.steps.list(workflow.id, run.id, page_size=2)]
        assert [s.step_id for s in steps] == ["score", "route", "flag", "approve", "report"]
        assert (await sdk.runs.steps.get(workflow.id, run.id, steps[0].id)).step_id == "score"
        streamed = [s.step_id async for s in await sdk.runs.download(workflow.id, run.id, "ndjson")]
        assert streamed == [s.step_id for s in steps]
        document = await sdk.runs.download(workflow.id, run.id)
        assert document["run"]["status"] == "completed"
        assert (await sdk.runs.data(workflow.id, run.id)).output == done.output
        assert (await sdk.runs.summary(workflow.id)).total == 1
        assert (await sdk.runs.cancel(workflow.id, run.id)).status == "completed"
