"""/v1/secrets: an organization's secrets (admin or write scope): set, list, delete.

A value goes in and never comes out: responses carry a secret's name and times only.
A caller narrowed to a workspace (its key's, or X-Workspace-Id) works on that
workspace's secrets; any other caller on the organization's own. Another
organization's secret is a 404, as if it did not exist.

Starting a run asks them for every secret the workflow reads (`stepline.service.inputs`).
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline.api.auth import WriteKey
from stepline.api.documents import DocumentRoute
from stepline.api.errors import error_responses, not_found
from stepline.api.models import ListResponse
from stepline.api.responses import json_response
from stepline.api.state import AppState, StateDep
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError, SecretsKeyUnusable
from stepline.secrets.names import MAX_NAME_LENGTH, NAME_PATTERN, value_problem
from stepline.store.secrets import SecretRecord

router = APIRouter(prefix="/v1/secrets", tags=["secrets"], route_class=DocumentRoute)

SecretName = Annotated[
    str,
    Path(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        description="Letters, digits and underscores, not starting with a digit.",
    ),
]


class SecretValue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    value: str = Field(description="The secret's value; stored encrypted, never returned.")

    @field_validator("value")
    @classmethod
    def _bounded(cls, value: str) -> str:
        problem = value_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class SecretCreate(SecretValue):
    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=MAX_NAME_LENGTH,
        description="How nodes read it: {{ secrets.NAME }}.",
    )


@router.get(
    "",
    response_model=ListResponse[SecretRecord],
    responses=error_responses(403),
    summary="List the secrets' names and times, by name (never their values)",
)
async def list_secrets(state: StateDep, principal: WriteKey) -> Response:
    secrets = await state.vault.list(principal.organization_id, principal.workspace_id)
    return json_response({"data": secrets, "next_cursor": None, "prev_cursor": None})


@router.post(
    "",
    status_code=201,
    response_model=SecretRecord,
    responses={**error_responses(403), 200: {"model": SecretRecord, "description": "Replaced."}},
    summary="Create a secret, or replace the value of the one of that name",
)
async def create_secret(body: SecretCreate, state: StateDep, principal: WriteKey) -> Response:
    return await _put(state, principal.organization_id, principal.workspace_id, body.name, body)


@router.put(
    "/{name}",
    status_code=201,
    response_model=SecretRecord,
    responses={**error_responses(403), 200: {"model": SecretRecord, "description": "Replaced."}},
    summary="Set a secret's value: created (201) or replaced (200)",
)
async def put_secret(
    name: SecretName,
    body: Annotated[SecretValue, Body()],
    state: StateDep,
    principal: WriteKey,
) -> Response:
    return await _put(state, principal.organization_id, principal.workspace_id, name, body)


@router.get(
    "/{name}",
    response_model=SecretRecord,
    responses=error_responses(403, 404),
    summary="One secret's name and times (never its value)",
)
async def get_secret(name: SecretName, state: StateDep, principal: WriteKey) -> Response:
    found = await state.store.secrets.get(principal.organization_id, principal.workspace_id, name)
    if found is None:
        not_found("secret", repr(name))
    return json_response(found)


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    responses=error_responses(403, 404),
    summary="Delete a secret (runs that read it then fail to start)",
)
async def delete_secret(name: SecretName, state: StateDep, principal: WriteKey) -> Response:
    # None of that name here (or only in another organization) is SecretNotFoundError: 404.
    await state.vault.delete(principal.organization_id, principal.workspace_id, name)
    return Response(status_code=204)


async def _put(
    state: AppState, organization_id: UUID, workspace_id: UUID | None, name: str, body: SecretValue
) -> Response:
    try:
        record, created = await state.vault.set(organization_id, workspace_id, name, body.value)
    except (SecretKeyError, SecretDecryptError) as exc:
        # The operator's key is wrong, not the request: say so, without a stack trace.
        raise SecretsKeyUnusable(exc) from None
    return json_response(record, 201 if created else 200, headers={"Cache-Control": "no-store"})
