"""Who is calling: an API key in any of the four accepted places, and what it may do.

A key is read from `Authorization: Bearer`, `x-api-key`, `Api-Key` or `?access_token=`
(in that order). No key or an unknown, revoked or expired one is 401; a key without the
scope an operation needs is 403. Records of other organizations are never looked up with
the caller's organization, so they answer 404, as if they did not exist.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Header, Request
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from stepline.api.errors import ApiError, ErrorDetail
from stepline.api.state import AppState, StateDep
from stepline.service import Caller
from stepline.store.keys import expand_scopes

# Declared as FastAPI security schemes so that OpenAPI documents every accepted form.
# Each its own scheme_name: the default is the class's name, under which two header
# schemes would be one in the document.
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <key>")
_x_api_key = APIKeyHeader(name="x-api-key", scheme_name="XApiKey", auto_error=False)
_api_key = APIKeyHeader(name="Api-Key", scheme_name="ApiKey", auto_error=False)
_access_token = APIKeyQuery(name="access_token", scheme_name="AccessToken", auto_error=False)

WORKSPACE_HEADER = "X-Workspace-Id"


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller, as its API key describes it."""

    organization_id: UUID
    key_id: UUID
    user_id: UUID | None
    scopes: frozenset[str]
    """Expanded: admin holds every scope; write and run also hold read."""
    workspace_id: UUID | None
    """From X-Workspace-Id or the key's own workspace: lists narrow to it when set."""

    @property
    def actor(self) -> str:
        """How the caller is named in records (a reviewer, a run's creator)."""
        return str(self.user_id) if self.user_id else f"key:{self.key_id}"

    @property
    def caller(self) -> Caller:
        """The caller as the service verbs take it."""
        return Caller(self.organization_id, self.workspace_id, self.user_id, self.actor)


async def authenticate(
    request: Request,
    state: StateDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Depends(_x_api_key)],
    api_key: Annotated[str | None, Depends(_api_key)],
    access_token: Annotated[str | None, Depends(_access_token)],
    workspace: Annotated[
        str | None,
        Header(
            alias=WORKSPACE_HEADER,
            json_schema_extra={"format": "uuid"},
            description="Narrow to this workspace (a UUID): listings show only its records, "
            "others are 404s. A key limited to a workspace accepts only its own (else 403).",
        ),
    ] = None,
) -> Principal:
    """The request's principal (401 without a live key); cached on the request.

    `workspace` is declared for the document only: `_workspace` reads the header, as the
    fast lane (`principal_of`) does too."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    secret = (bearer.credentials if bearer else None) or x_api_key or api_key or access_token
    principal = await _principal(request, state, secret)
    request.state.principal = principal
    return principal


async def principal_of(request: Request, state: AppState, scope: str) -> Principal:
    """What `require_scope(scope)` resolves, without FastAPI's dependency machinery (for
    a route's fast lane): the same key sources, in the same order, and the same errors."""
    bearer = await _bearer(request)
    secret = (
        (bearer.credentials if bearer else None)
        or await _x_api_key(request)
        or await _api_key(request)
        or await _access_token(request)
    )
    return check_scope(await _principal(request, state, secret), scope)


async def _principal(request: Request, state: AppState, secret: str | None) -> Principal:
    if not secret:
        raise ApiError(
            401,
            "no API key: send Authorization: Bearer <key>, x-api-key, Api-Key or ?access_token=",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = await state.store.keys.authenticate(secret.strip())
    if key is None:
        raise ApiError(
            401,
            "the API key is not valid (unknown, revoked or expired)",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return Principal(
        organization_id=key.organization_id,
        key_id=key.id,
        user_id=key.user_id,
        scopes=expand_scopes(key.scopes),
        workspace_id=_workspace(request, key.workspace_id),
    )


def check_scope(principal: Principal, scope: str) -> Principal:
    """The principal, if its key holds `scope` (else 403)."""
    if scope not in principal.scopes:
        held = ", ".join(sorted(principal.scopes)) or "none"
        raise ApiError(403, f"this API key lacks the {scope!r} scope (it holds: {held})")
    return principal


def _workspace(request: Request, key_workspace: UUID | None) -> UUID | None:
    raw = request.headers.get(WORKSPACE_HEADER)
    if raw is None or not raw.strip():
        return key_workspace
    try:
        workspace_id = UUID(raw.strip())
    except ValueError:
        message = f"{WORKSPACE_HEADER} must be a UUID, got {raw!r}"
        raise ApiError(
            422,
            message,
            details=[ErrorDetail(field=f"header.{WORKSPACE_HEADER}", message=message)],
        ) from None
    if key_workspace is not None and workspace_id != key_workspace:
        raise ApiError(403, f"this API key is limited to workspace {key_workspace}")
    return workspace_id


def require_scope(scope: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the principal, if its key holds `scope` (else 403)."""

    async def dependency(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        return check_scope(principal, scope)

    dependency.__name__ = f"require_{scope}"
    return dependency


ReadKey = Annotated[Principal, Depends(require_scope("read"))]
RunKey = Annotated[Principal, Depends(require_scope("run"))]
WriteKey = Annotated[Principal, Depends(require_scope("write"))]
AdminKey = Annotated[Principal, Depends(require_scope("admin"))]
