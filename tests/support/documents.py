"""Running document workflows end to end: a real store, a real file storage on disk, the
engine and a worker, with files uploaded to the run's organization first."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any
from uuid import UUID

from stepline.documents import DocumentLimits
from stepline.engine import Engine
from stepline.files import LocalFileStorage
from stepline.files.library import FileLibrary
from stepline.nodes.base import NodeServices
from stepline.nodes.registry import default_registry
from stepline.records import RunRecord, StepRecord
from stepline.store import Store
from stepline.store.files import FileRecord
from stepline.worker import Worker
from support.engine import submit_run


@dataclass
class Finished:
    run: RunRecord
    steps: dict[str, StepRecord]


@dataclass
class DocumentBench:
    store: Store
    storage: LocalFileStorage
    organization_id: UUID
    max_file_bytes: int = 50 * 1024 * 1024
    limits: DocumentLimits = field(default_factory=DocumentLimits)

    @classmethod
    async def open(cls, store: Store, root: Path, **options: Any) -> DocumentBench:
        org = await store.organizations.ensure()
        return cls(store, LocalFileStorage(root / "files"), org, **options)

    @property
    def library(self) -> FileLibrary:
        return FileLibrary(self.store, self.storage, max_bytes=self.max_file_bytes)

    async def upload(self, data: bytes, filename: str) -> FileRecord:
        return await self.library.save(self.organization_id, data, filename)

    async def read(self, document: dict[str, Any]) -> tuple[FileRecord, bytes]:
        return await self.library.read(self.organization_id, UUID(document["file_id"]))

    async def run(self, nodes: list[dict[str, Any]], inputs: dict[str, Any]) -> Finished:
        definition = {
            "name": "documents",
            "nodes": nodes,
            "edges": [{"from": a["id"], "to": b["id"]} for a, b in pairwise(nodes)],
        }
        submission = await submit_run(
            self.store, self.organization_id, definition, inputs, default_registry()
        )
        services = NodeServices(files=self.storage, max_file_bytes=self.max_file_bytes)
        engine = Engine(self.store, default_registry(), services=services, limits=self.limits)
        finished = await Worker(engine, lease_s=30).claim_and_execute(submission.run.id)
        assert finished is not None
        stored = await self.store.runs.get(finished.id)
        assert stored is not None
        steps = {s.step_id: s for s in await self.store.steps.list(finished.id)}
        return Finished(stored, steps)


def handle(record: FileRecord) -> dict[str, Any]:
    """A file record as a handle's payload, in Retab's shape."""
    return {"type": "file", "document": document(record)}


def document(record: FileRecord) -> dict[str, Any]:
    return {"file_id": str(record.id), "filename": record.filename, "mime_type": record.mime_type}
