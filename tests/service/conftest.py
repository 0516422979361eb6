"""The service verbs' context on the `store` fixture (SQLite, and PostgreSQL when reachable),
with a worker wake-up that counts."""

from __future__ import annotations

import pytest
from service_defs import Wakes

from stepline.service import ServiceContext
from stepline.store import Store
from support.engine import service_on


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def ctx(store: Store, wakes: Wakes) -> ServiceContext:
    context = service_on(store)
    context.wake_workers = wakes.wake
    context.cancel_local = wakes.cancel
    return context
