"""What every route reaches through `StateDep`: the store, the settings, the node kinds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from stepline.documents import DocumentLimits
from stepline.nodes.base import NodeKind
from stepline.nodes.registry import NodeRegistry
from stepline.records import WorkflowVersion
from stepline.secrets.cipher import load_cipher
from stepline.secrets.vault import Vault
from stepline.settings import Settings
from stepline.spec.validate import (
    SecretReference,
    WorkflowInvalid,
    load_workflow,
    may_read_secrets,
    secret_references,
)
from stepline.store import Store

SECRET_REFERENCES_CACHE = 256
"""Workflow versions whose secret references are remembered (a version never changes)."""


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
    vault: Vault = field(init=False)
    """The organizations' secrets, with the key of `settings` (opened on first need)."""
    limits: DocumentLimits = field(init=False)
    """How deep and large the documents the API takes may be (from `settings`)."""
    _secret_references: dict[str, tuple[SecretReference, ...]] = field(
        default_factory=dict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        self.vault = Vault(self.store, lambda create: load_cipher(self.settings, create=create))
        self.limits = DocumentLimits.of(self.settings)

    @property
    def kinds(self) -> Mapping[str, NodeKind]:
        return self.registry

    async def secret_references(self, version: WorkflowVersion) -> tuple[SecretReference, ...]:
        """The secrets a stored version reads; validated once per digest, off the loop.

        A version that no longer validates (a plugin kind gone) names none here: its run
        fails in the worker, which says why.
        """
        found = self._secret_references.get(version.digest)
        if found is not None:
            return found
        if not may_read_secrets(version.definition, self.registry):
            found = ()  # the common case, told without validating a large workflow again
        else:
            try:
                spec = await run_in_threadpool(load_workflow, version.definition, self.registry)
            except WorkflowInvalid:
                return ()
            found = secret_references(spec)
        if len(self._secret_references) >= SECRET_REFERENCES_CACHE:
            self._secret_references.pop(next(iter(self._secret_references)))
        self._secret_references[version.digest] = found
        return found


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency in a worker thread, on every request.
    state: AppState = request.app.state.stepline
    return state


StateDep = Annotated[AppState, Depends(get_state)]
