"""What every route reaches through `StateDep`: the store, the settings, the node kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request

from stepline.nodes.base import NodeKind
from stepline.nodes.registry import NodeRegistry
from stepline.settings import Settings
from stepline.store import Store


def _no_worker() -> None:
    """Without an embedded worker, a separate `stepline worker` polls for queued runs."""


def _not_running_here(run_id: UUID) -> bool:
    """Without an embedded worker, the worker holding a run notices its cancel by polling."""
    return False


@dataclass
class AppState:
    store: Store
    settings: Settings
    registry: NodeRegistry
    wake_workers: Callable[[], None] = field(default=_no_worker)
    """Call after queueing a run, so that an idle embedded worker claims it at once."""
    cancel_local: Callable[[UUID], bool] = field(default=_not_running_here)
    """Call after `Store.request_cancel`: the embedded worker stops the run now if it holds it."""

    @property
    def kinds(self) -> Mapping[str, NodeKind]:
        return self.registry


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in a worker thread, on every request.
    state: AppState = request.app.state.stepline
    return state


StateDep = Annotated[AppState, Depends(get_state)]
