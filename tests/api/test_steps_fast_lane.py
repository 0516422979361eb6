"""The steps page's fast lane itself: it answers the plain requests (so the route's
FastAPI machinery is really skipped) and leaves everything else to the route.

In-process on a real SQLite file: the app's lifespan opens the store as `stepline serve`
does (no worker), and `list_steps_fast` gets the ASGI scope the middleware would pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from stepline.api.app import create_app
from stepline.api.routes.runs import list_steps_fast
from stepline.api.state import AppState
from stepline.records import RunRecord, StepRecord
from stepline.settings import Settings


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = Settings(home=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    app = create_app(settings, worker=False)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def seeded(app: FastAPI) -> tuple[str, str, str]:
    """(workflow path, run id, read key) of a run with three steps."""
    state: AppState = app.state.stepline
    store = state.store
    org = await store.organizations.ensure("fast-lane")
    saved = await store.workflows.save(org, {"name": "w", "nodes": [], "edges": []})
    run = await store.runs.create(
        RunRecord(workflow_id=saved.workflow.id, workflow_version=1, organization_id=org)
    )
    await store.steps.insert(
        [
            StepRecord(
                run_id=run.id,
                workflow_id=run.workflow_id,
                workflow_version=1,
                organization_id=org,
                node_id=f"n{i}",
                step_id=f"n{i}",
                node_type="reshape",
                node_label=f"n{i}",
                seq=i,
            )
            for i in range(3)
        ]
    )
    key = await store.keys.create(org, name="k", scopes=["read"])
    return f"/v1/workflows/{saved.workflow.id}/runs/{run.id}/steps", str(run.id), key.secret


def _scope(app: FastAPI, path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
        "app": app,
    }


async def test_plain_requests_are_answered_here(app: FastAPI, seeded: tuple[str, str, str]) -> None:
    path, _, key = seeded
    auth = {"Authorization": f"Bearer {key}"}
    for query in ["", "limit=2", "include_io=false&limit=100", "status=pending&node_id=n1"]:
        response = await list_steps_fast(_scope(app, path, query, auth))
        assert response is not None, query
        assert response.status_code == 200 and response.body.startswith(b'{"data":[')


@pytest.mark.parametrize(
    ("path_of", "query", "headers_of"),
    [
        (lambda p: p, "limit=0", lambda k: {"Authorization": f"Bearer {k}"}),
        (lambda p: p, "after=x&before=y", lambda k: {"Authorization": f"Bearer {k}"}),
        (lambda p: p, "after=bm9wZQ", lambda k: {"Authorization": f"Bearer {k}"}),
        (lambda p: p, "", lambda k: {}),
        (lambda p: p, "", lambda k: {"Authorization": "Bearer stp_unknown"}),
        (lambda p: p, "", lambda k: {"Authorization": f"Bearer {k}", "X-Workspace-Id": "x"}),
        (lambda p: p.replace("/runs/", "/runs/not-a-uuid/x/"), "", lambda k: {}),
        (lambda p: p + "/", "", lambda k: {"Authorization": f"Bearer {k}"}),
        (
            lambda p: p.split("/runs/")[0] + "/runs/00000000-0000-4000-8000-000000000000/steps",
            "",
            lambda k: {"Authorization": f"Bearer {k}"},
        ),
    ],
    ids=[
        "bad-limit",
        "two-cursors",
        "bad-cursor",
        "no-key",
        "unknown-key",
        "bad-workspace",
        "other-path",
        "trailing-slash",
        "unknown-run",
    ],
)
async def test_anything_else_is_left_to_the_route(
    app: FastAPI, seeded: tuple[str, str, str], path_of: Any, query: str, headers_of: Any
) -> None:
    path, _, key = seeded
    assert await list_steps_fast(_scope(app, path_of(path), query, headers_of(key))) is None
