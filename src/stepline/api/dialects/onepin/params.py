"""What Onepin's routes share: their tag, path ids and offset paging parameters."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query

from stepline.api.dialects.onepin.models import failures
from stepline.api.documents import DocumentRoute
from stepline.store.types import MAX_INT

TAG = "Onepin dialect"
MAX_LIMIT = 100
ROOT = "/api/v1/workflows"

WorkflowId = Annotated[UUID, Path(description="The workflow's id (a UUID).")]
RunId = Annotated[UUID, Path(description="The run's id (a UUID).")]
Offset = Annotated[int, Query(ge=0, le=MAX_INT, description="Items to skip.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page, 1 to 100.")]


def onepin_router() -> APIRouter:
    """A router of Onepin's paths (below the dialect's prefix)."""
    return APIRouter(
        prefix=ROOT,
        tags=[TAG],
        route_class=DocumentRoute,
        responses=failures(401, 403, 422, 500),
    )
