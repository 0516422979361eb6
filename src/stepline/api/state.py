"""What every route reaches through `StateDep`: the runtime the server opened, and the
service context its routes hand to the verbs of `stepline.service`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from stepline.documents import DocumentLimits
from stepline.nodes.base import NodeKind
from stepline.nodes.registry import NodeRegistry
from stepline.runtime import Runtime
from stepline.secrets.vault import Vault
from stepline.service import ServiceContext
from stepline.settings import Settings
from stepline.store import Store


@dataclass
class AppState:
    runtime: Runtime

    @property
    def service(self) -> ServiceContext:
        return self.runtime.service

    @property
    def store(self) -> Store:
        return self.runtime.store

    @property
    def settings(self) -> Settings:
        return self.runtime.settings

    @property
    def registry(self) -> NodeRegistry:
        return self.runtime.registry

    @property
    def kinds(self) -> Mapping[str, NodeKind]:
        return self.runtime.registry

    @property
    def vault(self) -> Vault:
        """The organizations' secrets, with the key of `settings` (opened on first need)."""
        return self.runtime.vault

    @property
    def limits(self) -> DocumentLimits:
        """How deep and large the documents the API takes may be (from `settings`)."""
        return self.runtime.service.limits


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in a worker thread, on every request.
    state: AppState = request.app.state.stepline
    return state


StateDep = Annotated[AppState, Depends(get_state)]
