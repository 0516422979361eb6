"""One real `stepline serve` for the API tests of this session, and keys to call it with.

Tests share the server, so each works in its own organization (`make_key` with a name of
its own, e.g. the test's name) and never assumes it sees an empty database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from support.server import ServeProcess, start_server
from support.server import make_key as mint_key

MakeKey = Callable[..., str]


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    server = start_server(tmp_path_factory.mktemp("serve") / "home")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def process_isolation_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server whose code steps run with process isolation only: for tests whose code steps
    read a file the test changes between attempts (a gate), which namespaces keep out of
    view. A module takes it as its `api_server` by overriding that fixture."""
    home = tmp_path_factory.mktemp("serve-process") / "home"
    server = start_server(home, env={"STEPLINE_CODE_ISOLATION": "process"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_key(api_server: ServeProcess) -> MakeKey:
    """make_key(org_name, scopes=("admin",), workspace_id=None) -> a new key's secret."""

    def make(organization: str, scopes: Iterable[str] = ("admin",), **options: object) -> str:
        return mint_key(api_server.database_url, organization, scopes, **options)

    return make


@pytest.fixture
def org_key(request: pytest.FixtureRequest, make_key: MakeKey) -> str:
    """An admin key of an organization of this test's own (named after the test)."""
    return make_key(f"org-{request.node.name}")


@pytest.fixture
def server_home(api_server: ServeProcess) -> Path:
    return api_server.home
