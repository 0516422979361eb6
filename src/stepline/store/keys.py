"""API keys: minting, authenticating, listing and revoking them.

A key is shown once, when it is created; the database keeps only its sha256. Keys are
256 bits from `secrets`, so a fast hash is as good as a slow one here: nobody can guess
a preimage, and authenticating a request costs one indexed lookup.

On SQLite, a key found live is remembered for a few seconds (`KEY_CACHE_S`) so that a
burst of requests with one key costs one lookup: the remembered keys are all forgotten as
soon as anything commits to the database file (`PRAGMA data_version`, which sees commits
of every other connection and process: a `stepline keys revoke` next to a running server
takes effect at its next request), and a revoke through this store forgets them at once.
Expiry is checked on every use. PostgreSQL (shared by replicas) has no such signal here,
so it looks every key up.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from stepline.records import new_id, utcnow
from stepline.store import keys_sql as sql
from stepline.store import organizations_sql
from stepline.store.errors import NotFoundError
from stepline.store.paging import Page, read_page
from stepline.store.repository import Repository
from stepline.store.tables import api_keys

SCOPES = ("read", "run", "write", "admin")
"""admin grants everything; write and run each grant read."""

KEY_PREFIX = "stp_"

KEY_CACHE_S = 5.0
"""How long a live key is remembered at most (SQLite; see the module's docstring)."""
_KEY_CACHE_MAX = 1024


class ApiKeyNotFoundError(NotFoundError):
    """No such key in the organization."""


class ApiKeyRecord(BaseModel):
    """A key as stored: everything but the secret."""

    model_config = ConfigDict(extra="forbid")

    id: UUID = Field(default_factory=new_id)
    organization_id: UUID
    user_id: UUID | None = None
    workspace_id: UUID | None = None
    name: str
    prefix: str = Field(description="The key's first characters, to tell keys apart.")
    scopes: list[str]
    created_at: datetime = Field(default_factory=utcnow)
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CreatedKey:
    record: ApiKeyRecord
    secret: str
    """The key itself: shown to its owner once, never stored."""


def expand_scopes(scopes: Iterable[str]) -> frozenset[str]:
    """The scopes a key effectively holds (admin implies all; write and run imply read)."""
    granted = set(scopes)
    if "admin" in granted:
        return frozenset(SCOPES)
    if granted & {"write", "run"}:
        granted.add("read")
    return frozenset(granted)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes, de-duplicated in canonical order; ValueError naming an unknown one."""
    given = list(scopes)
    unknown = [scope for scope in given if scope not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}: choose from {', '.join(SCOPES)}")
    if not given:
        raise ValueError(f"a key needs at least one scope: choose from {', '.join(SCOPES)}")
    return [scope for scope in SCOPES if scope in given]


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_key(
    organization_id: UUID,
    *,
    name: str,
    scopes: Iterable[str],
    workspace_id: UUID | None = None,
    user_id: UUID | None = None,
    expires_at: datetime | None = None,
) -> CreatedKey:
    """A new random key and its record, not yet stored (insert `key_row(created)`)."""
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    record = ApiKeyRecord(
        organization_id=organization_id,
        user_id=user_id,
        workspace_id=workspace_id,
        name=name,
        prefix=secret[:12],
        scopes=check_scopes(scopes),
        expires_at=expires_at,
    )
    return CreatedKey(record, secret)


def key_row(created: CreatedKey) -> dict[str, Any]:
    """The api_keys row of a minted key: its record and the hash of its secret."""
    return created.record.model_dump() | {"key_hash": hash_key(created.secret)}


def _row_to_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord.model_validate(
        {c.name: row[c.name] for c in api_keys.c if c.name != "key_hash"}
    )


@dataclass
class _KeyCache:
    """Live keys by hash, valid while the database's data_version stays `version`."""

    version: int | None = None
    keys: dict[str, tuple[ApiKeyRecord, float]] = field(default_factory=dict)


class KeyRepository(Repository):
    """An organization's API keys."""

    _key_cache: _KeyCache | None = None

    async def create(
        self,
        organization_id: UUID,
        *,
        name: str,
        scopes: Iterable[str],
        workspace_id: UUID | None = None,
        user_id: UUID | None = None,
        expires_at: datetime | None = None,
    ) -> CreatedKey:
        """Mint a key for the organization; the secret is returned here and nowhere else."""
        created = mint_key(
            organization_id,
            name=name,
            scopes=scopes,
            workspace_id=workspace_id,
            user_id=user_id,
            expires_at=expires_at,
        )
        row = key_row(created)

        def op(conn: sa.Connection) -> None:
            params = {"organization_id": organization_id}
            if conn.execute(organizations_sql.EXISTS, params).first() is None:
                raise NotFoundError(f"organization {organization_id} not found")
            conn.execute(sql.INSERT, row)

        await self._write(op)
        return created

    async def authenticate(self, secret: str) -> ApiKeyRecord | None:
        """The live key whose secret this is: not revoked, not expired; else None."""
        if not secret.startswith(KEY_PREFIX) or len(secret) > 128:
            return None
        key_hash = hash_key(secret)
        cache, version = self._fresh_key_cache()
        cached = cache.keys.get(key_hash) if cache is not None else None
        if cached is not None and cached[1] > time.monotonic():
            key: ApiKeyRecord | None = cached[0]
        else:

            def read(conn: sa.Connection) -> ApiKeyRecord | None:
                row = conn.execute(sql.BY_HASH, {"key_hash": key_hash}).mappings().first()
                return None if row is None else _row_to_key(row)

            key = await self._read(read)
            if cache is not None and key is not None and key.revoked_at is None:
                # Only if nothing committed meanwhile: else the read may predate a revoke.
                if self._database_version() == version:
                    if len(cache.keys) >= _KEY_CACHE_MAX:
                        cache.keys.clear()
                    cache.keys[key_hash] = (key, time.monotonic() + KEY_CACHE_S)
        if key is None or key.revoked_at is not None:
            return None
        if key.expires_at is not None and key.expires_at <= utcnow():
            return None
        return key

    def _fresh_key_cache(self) -> tuple[_KeyCache | None, int | None]:
        """The key cache (None without one), emptied if the database changed since."""
        version = self._database_version()
        if version is None:
            return None, None
        cache = self._key_cache
        if cache is None:
            cache = self._key_cache = _KeyCache()
        if cache.version != version:
            cache.keys.clear()
            cache.version = version
        return cache, version

    def _database_version(self) -> int | None:
        data_version = getattr(self.database, "data_version", None)
        return None if data_version is None else int(data_version())

    def _forget_keys(self) -> None:
        if self._key_cache is not None:
            self._key_cache.keys.clear()

    async def page(
        self,
        organization_id: UUID,
        *,
        limit: int = 50,
        after: str | None = None,
        before: str | None = None,
    ) -> Page[ApiKeyRecord]:
        params = {"organization_id": organization_id}
        return await self._read(
            lambda conn: read_page(
                conn,
                sql.PAGE,
                sql.ORDER,
                limit=limit,
                after=after,
                before=before,
                params=params,
                key_of=lambda row: (row["created_at"], row["id"]),
                item_of=_row_to_key,
            )
        )

    async def revoke(self, organization_id: UUID, key_id: UUID) -> ApiKeyRecord:
        """Revoke the key (idempotent: a revoked key keeps its first revocation time)."""
        params = {"owner_id": organization_id, "key_id": key_id}

        self._forget_keys()

        def op(conn: sa.Connection) -> ApiKeyRecord:
            conn.execute(sql.REVOKE, {**params, "now": utcnow()})
            row = conn.execute(sql.ONE, params).mappings().first()
            if row is None:
                raise ApiKeyNotFoundError(f"API key {key_id} not found")
            return _row_to_key(row)

        try:
            return await self._write(op)
        finally:
            self._forget_keys()

    async def list(self, organization_id: UUID) -> list[ApiKeyRecord]:
        """The organization's keys, newest first (an organization has few keys)."""
        params = {"organization_id": organization_id}

        def read(conn: sa.Connection) -> list[ApiKeyRecord]:
            rows = conn.execute(sql.OF_ORGANIZATION, params).mappings()
            return [_row_to_key(row) for row in rows]

        return await self._read(read)
