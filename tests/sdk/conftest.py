"""One real `stepline serve` for the SDK tests, keys to call it with, and the face under test.

Every test that takes `connect` or `sdk` runs twice: on `Client` and on `AsyncClient`
(through `faces.synced`). Tests share the server, so each works in an organization of its
own (named after the test, its face included) and never assumes an empty database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import pytest
from definitions import INPUTS_LIMIT
from faces import FACES, Connect, LoopThread, connector

from stepline import Client
from support.server import ServeProcess, start_server
from support.server import make_key as mint_key


@pytest.fixture(scope="session")
def api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """Code steps run with process isolation only: the control tests' steps read a gate
    file on the host, which namespaces keep out of view."""
    home = tmp_path_factory.mktemp("sdk-serve") / "home"
    env = {"STEPLINE_CODE_ISOLATION": "process", "STEPLINE_MAX_INPUTS_BYTES": str(INPUTS_LIMIT)}
    server = start_server(home, env=env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_key(api_server: ServeProcess) -> Callable[..., str]:
    """make_key(org_name, scopes=("admin",)) -> a new key's secret."""

    def make(organization: str, scopes: Iterable[str] = ("admin",)) -> str:
        return mint_key(api_server.database_url, organization, scopes)

    return make


@pytest.fixture
def org_key(request: pytest.FixtureRequest, make_key: Callable[..., str]) -> str:
    """An admin key of an organization of this test's own."""
    return make_key(f"org-{request.node.name}")


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture(params=FACES)
def connect(request: pytest.FixtureRequest, loop_thread: LoopThread) -> Connect:
    """connect(base_url, api_key, **options): a client of the face under test."""
    return connector(request.param, loop_thread)


@pytest.fixture
def sdk(connect: Connect, api_server: ServeProcess, org_key: str) -> Iterator[Client]:
    """A client of the face under test, with an admin key of the test's organization."""
    with connect(api_server.base_url, org_key) as client:
        yield client
