"""What the service verbs work with, and who asks: plain values, no web framework.

`ServiceContext` is opened once per process by `stepline.runtime.open_runtime`; every edge
(the API, the CLI) passes it to the verbs of `stepline.service` with a `Caller`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from uuid import UUID

from stepline.documents import DocumentLimits
from stepline.files.library import FileLibrary
from stepline.nodes.base import NodeKind
from stepline.records import WorkflowVersion
from stepline.secrets.source import SecretSource
from stepline.spec.loader import definition_digest
from stepline.spec.validate import (
    SecretReference,
    ValidationIssue,
    WorkflowInvalid,
    load_workflow,
    may_read_secrets,
    secret_references,
    validate_workflow,
)
from stepline.store import Store

if TYPE_CHECKING:
    from stepline.retrieval.library import KnowledgeLibrary

SECRET_REFERENCES_CACHE = 256
VALID_DIGESTS_CACHE = 1024
"""Workflow versions whose secret references are remembered (a version never changes)."""


def _no_worker() -> None:
    """Without a worker in this process, a separate `stepline worker` polls for queued runs."""


def _not_running_here(run_id: UUID) -> bool:
    """Without a worker in this process, the worker holding a run notices its cancel by polling."""
    return False


@dataclass(frozen=True, slots=True)
class Caller:
    """Who asks: an organization, optionally narrowed to one workspace, and how records
    name the caller (a run's creator, a reviewer)."""

    organization_id: UUID
    workspace_id: UUID | None = None
    user_id: UUID | None = None
    actor: str = "local"

    def sees(self, workspace_id: UUID | None) -> bool:
        """Whether a record of `workspace_id` is visible to the caller."""
        return self.workspace_id is None or workspace_id == self.workspace_id


@dataclass
class ServiceContext:
    store: Store
    kinds: Mapping[str, NodeKind]
    limits: DocumentLimits
    secrets: SecretSource | None = None
    """Where a new run's secrets are looked up (the organizations' vault)."""
    files: FileLibrary | None = None
    """The organizations' files (`stepline.service.files`)."""
    wake_workers: Callable[[], None] = field(default=_no_worker)
    """Called after queueing a run, so that an idle worker in this process claims it at once."""
    cancel_local: Callable[[UUID], bool] = field(default=_not_running_here)
    """Called after a cancel request: the worker of this process stops the run if it holds it."""
    knowledge: KnowledgeLibrary | None = None
    """The organizations' knowledge collections (with the files a source may be read from)."""
    _secret_references: dict[str, tuple[SecretReference, ...]] = field(
        default_factory=dict, init=False, repr=False
    )
    _valid_digests: dict[str, None] = field(default_factory=dict, init=False, repr=False)

    async def definition_issues(self, definition: Any) -> list[ValidationIssue]:
        """Every problem of the definition (none: it is valid), validated off the event
        loop; a definition found valid once (by digest) is not validated again, so that
        running an unchanged workflow file again does not pay for it (1.4 ms at 100 nodes)."""
        try:
            digest: str | None = definition_digest(definition)
        except (TypeError, ValueError):
            digest = None  # not JSON: validation says what is wrong
        if digest is not None and digest in self._valid_digests:
            return []
        _, issues = await asyncio.to_thread(validate_workflow, definition, self.kinds)
        if not issues and digest is not None:
            if len(self._valid_digests) >= VALID_DIGESTS_CACHE:
                self._valid_digests.pop(next(iter(self._valid_digests)))
            self._valid_digests[digest] = None
        return issues

    async def secret_references(self, version: WorkflowVersion) -> tuple[SecretReference, ...]:
        """The secrets a stored version reads; validated once per digest, off the loop.

        A version that no longer validates (a plugin kind gone) names none here: its run
        fails in the worker, which says why.
        """
        found = self._secret_references.get(version.digest)
        if found is not None:
            return found
        if not may_read_secrets(version.definition, self.kinds):
            found = ()  # the common case, told without validating a large workflow again
        else:
            try:
                spec = await asyncio.to_thread(load_workflow, version.definition, self.kinds)
            except WorkflowInvalid:
                return ()
            found = secret_references(spec)
        if len(self._secret_references) >= SECRET_REFERENCES_CACHE:
            self._secret_references.pop(next(iter(self._secret_references)))
        self._secret_references[version.digest] = found
        return found
