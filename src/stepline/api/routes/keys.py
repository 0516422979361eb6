"""/v1/keys: an admin lists, creates and revokes the API keys of its organization.

A new key's secret is in the creation response (field `key`) and nowhere else, ever: the
database holds only its hash, and listings show its first characters (`prefix`).
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from stepline.api.auth import AdminKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import ApiError, error_responses, invalid, one_direction
from stepline.api.models import ListResponse
from stepline.api.responses import json_response
from stepline.api.state import StateDep
from stepline.api.times import UtcDatetime
from stepline.records import utcnow
from stepline.store.keys import ApiKeyRecord
from stepline.store.paging import MAX_PAGE_SIZE

router = APIRouter(prefix="/v1/keys", tags=["keys"], route_class=DocumentRoute)

Scope = Literal["read", "run", "write", "admin"]
KeyId = Annotated[UUID, Path(description="The key's id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="Items per page.")]
After = Annotated[str | None, Query(description="A `next_cursor`: the page after it.")]
Before = Annotated[str | None, Query(description="A `prev_cursor`: the page before it.")]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="To tell the key apart.")
    scopes: list[Scope] = Field(
        min_length=1,
        description="admin grants everything; write and run each grant read.",
    )
    workspace_id: UUID | None = Field(
        default=None,
        description="Limit the key to one workspace (default: the caller's workspace, if any).",
    )
    expires_at: UtcDatetime | None = Field(
        default=None, description="When the key stops working (default: never)."
    )


class CreatedKeyOut(ApiKeyRecord):
    key: str = Field(description="The key itself. Shown in this response only: store it now.")


@router.get(
    "",
    response_model=ListResponse[ApiKeyRecord],
    responses=error_responses(403),
    summary="List the organization's API keys, newest first (never their secrets)",
)
async def list_keys(
    state: StateDep,
    principal: AdminKey,
    limit: Limit = 50,
    after: After = None,
    before: Before = None,
) -> Response:
    one_direction(after, before)
    page = await state.store.keys.page(
        principal.organization_id, limit=limit, after=after, before=before
    )
    return json_response(
        {"data": page.items, "next_cursor": page.next_cursor, "prev_cursor": page.prev_cursor}
    )


@router.post(
    "",
    status_code=201,
    response_model=CreatedKeyOut,
    responses=error_responses(403),
    summary="Create an API key (its secret is in `key`, shown this once)",
)
async def create_key(body: KeyCreate, state: StateDep, principal: AdminKey) -> Response:
    workspace_id = body.workspace_id or principal.workspace_id
    if principal.workspace_id is not None and workspace_id != principal.workspace_id:
        raise ApiError(
            403,
            f"a caller narrowed to workspace {principal.workspace_id} "
            f"cannot create keys for workspace {workspace_id}",
        )
    if body.expires_at is not None and body.expires_at <= utcnow():
        invalid("body.expires_at", "must be in the future")
    created = await state.store.keys.create(
        principal.organization_id,
        name=body.name,
        scopes=body.scopes,
        workspace_id=workspace_id,
        user_id=principal.user_id,
        expires_at=body.expires_at,
    )
    out = CreatedKeyOut(**dict(created.record), key=created.secret)
    return json_response(out, 201, headers={"Cache-Control": "no-store"})


@router.delete(
    "/{key_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404),
    summary="Revoke an API key (it stops working at once; revoking again is a no-op)",
)
async def revoke_key(key_id: KeyId, state: StateDep, principal: AdminKey) -> Response:
    # A key of another organization is ApiKeyNotFoundError: 404, as if it did not exist.
    await state.store.keys.revoke(principal.organization_id, key_id)
    return Response(status_code=204)
