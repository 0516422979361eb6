"""The service verbs' context on the `store` fixture (SQLite, and PostgreSQL when reachable),
with a worker wake-up that counts."""

from __future__ import annotations

import pytest

from stepline.service import ServiceContext
from stepline.store import Store
from support.engine import service_on


class Wakes:
    def __init__(self) -> None:
        self.count = 0
        self.cancelled: list[object] = []

    def wake(self) -> None:
        self.count += 1

    def cancel(self, run_id: object) -> bool:
        self.cancelled.append(run_id)
        return False


@pytest.fixture
def wakes() -> Wakes:
    return Wakes()


@pytest.fixture
def ctx(store: Store, wakes: Wakes) -> ServiceContext:
    context = service_on(store)
    context.wake_workers = wakes.wake
    context.cancel_local = wakes.cancel
    return context
