"""The SDK as a package: what importing it loads, where it finds its server and key, its
models and SSE decoder, and the README's snippet run as written against `stepline serve`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from definitions import ADA, triage
from faces import Connect

from stepline import AsyncClient, Client
from stepline.sdk import Event, Step
from stepline.sdk.sse import SseDecoder
from stepline.settings import get_settings
from support.server import ServeProcess

ROOT = Path(__file__).resolve().parents[2]


def python(code: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


HEAVY = ("sqlalchemy", "alembic", "fastapi", "starlette", "uvicorn", "asyncpg", "aiosqlite")
OURS = ("stepline.engine", "stepline.store", "stepline.api", "stepline.service", "stepline.cli")


def test_importing_the_sdk_loads_no_engine_store_or_server() -> None:
    code = (
        "import sys, stepline.sdk\n"
        "from stepline.sdk import Client, AsyncClient\n"
        "Client('http://127.0.0.1:1', 'k').close()\n"
        "print(' '.join(sorted(sys.modules)))"
    )
    loaded = python(code).split()
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(OURS)]
    assert heavy == [] and "httpx" in loaded


def test_import_stepline_does_not_load_the_sdk() -> None:
    code = "import sys, stepline; print('httpx' in sys.modules, 'stepline.sdk' in sys.modules)"
    assert python(code).split() == ["False", "False"]
    code = "from stepline import Client, AsyncClient; print(Client.__module__)"
    assert python(code).strip() == "stepline.sdk.client"


async def test_both_faces_in_the_callers_event_loop(api_server: ServeProcess, org_key: str) -> None:
    """Without the tests' bridge: `AsyncClient` in the running loop, and `Client` beside it
    (the sync face does no asyncio, so a running loop does not stand in its way)."""
    async with AsyncClient(api_server.base_url, org_key) as client:
        workflow = await client.workflows.create(triage("native"))
        run = await client.runs.create(workflow.id, ADA)
        events = [e async for e in client.runs.events(workflow.id, run.id)]
        assert events[-1].type == "run.completed"
        assert [w.id async for w in client.workflows.list(name="native")] == [workflow.id]
        listing = client.runs.steps.list(workflow.id, run.id, page_size=2)
        assert [len(p.items) async for p in listing.pages()] == [2, 2, 1]
        assert len(await listing.to_list()) == 5
        assert len((await listing.first_page()).items) == 2
        async with await client.runs.download(workflow.id, run.id, "ndjson") as lines:
            streamed = [s.step_id async for s in lines]
        assert streamed == ["score", "route", "flag", "approve", "report"]
    with Client(api_server.base_url, org_key) as sync:
        assert sync.runs.get(workflow.id, run.id).status == "completed"


# -- where the client finds its server and key -------------------------------------------


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
    connect: Connect, api_server: ServeProcess
) -> None:
    with connect() as saved:
        assert saved.base_url == api_server.base_url
        assert saved.api_key == api_server.admin_key
        assert saved.workflows.validate(triage("ok")).valid
    # localhost is the same loopback server as 127.0.0.1: the saved key applies.
    with connect(f"http://localhost:{api_server.port}") as local:
        assert local.api_key == api_server.admin_key
    # Any other server never receives the saved key.
    with connect("http://127.0.0.1:1") as elsewhere:
        assert elsewhere.api_key is None


def test_the_environment_names_server_and_key(
    connect: Connect, api_server: ServeProcess, org_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STEPLINE_SERVER", api_server.base_url + "/")
    monkeypatch.setenv("STEPLINE_API_KEY", org_key)
    with connect() as from_env:
        assert from_env.base_url == api_server.base_url
        assert list(from_env.workflows.list(name="absent")) == []


# -- the README's snippet ----------------------------------------------------------------


def readme_sdk_snippet() -> str:
    """The first Python block of the README's section on `stepline serve`."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Serve: the REST API, the SDK and the CLI over HTTP") :]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_readme_snippet_runs_as_written(api_server: ServeProcess) -> None:
    """With the credentials `stepline serve` saved, as the README's reader has them; run
    twice, as after `stepline workflows push` of the same file (a 409 the snippet handles)."""
    snippet = readme_sdk_snippet()
    assert "8000" not in snippet and "definition" not in snippet
    env = {"STEPLINE_HOME": str(api_server.home), "STEPLINE_SERVER": "", "STEPLINE_API_KEY": ""}
    for _ in range(2):
        printed = python(snippet, **env).splitlines()
        assert [line.split()[0] for line in printed] == ["score", "route", "flag", "report"]
        assert printed[0].endswith("{'risk': 0.7}")


# -- models and the event-stream format --------------------------------------------------


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
