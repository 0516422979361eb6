"""/v1/workers: the fleet's live workers, for an admin: each with its name, host, pid,
when it started, how long since its last heartbeat, how many runs it may drive at once,
and the runs of the caller's organization it holds now."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response
from pydantic import BaseModel, Field

from stepline.api.auth import AdminKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.service.workers import list_workers
from stepline.store.workers import LiveWorker

router = APIRouter(prefix="/v1/workers", tags=["workers"], route_class=DocumentRoute)


class WorkerOut(BaseModel):
    id: str = Field(description="The lease owner its runs carry; each step's step_metadata.worker.")
    name: str = Field(description="`stepline worker --name` (default: the host's name).")
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
    heartbeat_age_s: float = Field(description="Seconds since its last heartbeat (database clock).")
    concurrency: int = Field(description="How many runs it drives at once at most.")
    run_ids: list[UUID] = Field(description="The runs of your organization it holds now.")


class WorkersOut(BaseModel):
    data: list[WorkerOut]


def worker_out(worker: LiveWorker) -> WorkerOut:
    return WorkerOut(
        id=worker.info.id,
        name=worker.info.name,
        host=worker.info.host,
        pid=worker.info.pid,
        started_at=worker.started_at,
        heartbeat_at=worker.heartbeat_at,
        heartbeat_age_s=round(worker.heartbeat_age_s, 3),
        concurrency=worker.info.concurrency,
        run_ids=worker.run_ids,
    )


@router.get(
    "",
    response_model=WorkersOut,
    responses=error_responses(403),
    summary="The live workers of the fleet, oldest first",
)
async def get_workers(state: StateDep, principal: AdminKey) -> Response:
    found = await list_workers(state.service, principal.caller, lease_s=state.settings.lease_s)
    return json_response({"data": [worker_out(worker) for worker in found]})
