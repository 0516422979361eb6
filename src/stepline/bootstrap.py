"""The first start: a database without any API key gets an organization and an admin key.

So that a newcomer can `stepline serve` and call the API at once, the first start mints
an admin key for organization "default", saves it to the credentials file where the CLI
and the SDK find it, and hands it back for `serve` to print once. Any later start, or a
second server racing the first, finds a key and does nothing.

Organizations without any key do not stop it: `stepline run` creates "default" before
anyone serves, and that organization is reused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import sqlalchemy as sa

from stepline.credentials import save_credentials
from stepline.records import new_id, utcnow
from stepline.settings import Settings
from stepline.store import Store
from stepline.store.keys import CreatedKey, key_row, mint_key
from stepline.store.tables import api_keys, organizations, workflows

log = logging.getLogger(__name__)

DEFAULT_ORGANIZATION = "default"
BOOTSTRAP_KEY_NAME = "bootstrap"

# pg_advisory_xact_lock key ("stepboot"): two servers starting on one PostgreSQL database
# take turns, so the second sees the first one's key instead of minting its own.
_BOOTSTRAP_LOCK = 0x73746570626F6F74


@dataclass(frozen=True, slots=True)
class FirstStart:
    """What the first start made: the admin key (its secret), and what was there before."""

    secret: str
    created_organization: bool
    """Organization "default" did not exist and was created."""
    empty_database: bool
    """The database had no organization, workflow or key at all: truly the first start."""

    def announcement(self, credentials_file: Path) -> str:
        """What `serve` prints, the key alone on the last line (for people and scripts)."""
        org = DEFAULT_ORGANIZATION
        if self.empty_database:
            what = f"first start on an empty database: created organization '{org}' and"
        elif self.created_organization:
            what = f"the database has no API key yet: created organization '{org}' and"
        else:
            what = f"the database has no API key yet: created for organization '{org}'"
        what += " an admin API key"
        return f"stepline: {what} (saved to {credentials_file}); it is shown only once:\n"


async def first_start(store: Store, settings: Settings, server_url: str | None) -> str | None:
    """Mint and save the admin key if the database has no API key; return it, else None."""
    made = await bootstrap(store, settings, server_url)
    return made.secret if made is not None else None


async def bootstrap(store: Store, settings: Settings, server_url: str | None) -> FirstStart | None:
    """Mint and save the admin key if the database has no API key, saying what was there."""
    made = await store.writer.submit(_mint_first_key)
    if made is None:
        return None
    created, created_organization, empty_database = made
    log.info(
        "first start: created admin key %s for organization %r",
        created.record.id,
        DEFAULT_ORGANIZATION,
    )
    try:
        save_credentials(
            created.secret,
            server=server_url,
            organization_id=created.record.organization_id,
            home=settings.home,
        )
    except OSError as exc:
        # The key exists now and `serve` prints it; losing the file must not stop the server.
        log.warning("could not save the admin key to %s: %s", settings.home, exc)
    return FirstStart(created.secret, created_organization, empty_database)


def _mint_first_key(conn: sa.Connection) -> tuple[CreatedKey, bool, bool] | None:
    """In one write transaction: if no key exists, an admin key of organization "default"
    (and whether the organization was created, and whether the database was empty)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_BOOTSTRAP_LOCK)))
    if conn.execute(sa.select(api_keys.c.id).limit(1)).first() is not None:
        return None
    empty = (
        conn.execute(sa.select(organizations.c.id).limit(1)).first() is None
        and conn.execute(sa.select(workflows.c.id).limit(1)).first() is None
    )
    organization_id: UUID | None = conn.execute(
        sa.select(organizations.c.id).where(organizations.c.name == DEFAULT_ORGANIZATION)
    ).scalar()
    created_organization = organization_id is None
    if organization_id is None:
        organization_id = new_id()
        conn.execute(
            organizations.insert(),
            {"id": organization_id, "name": DEFAULT_ORGANIZATION, "created_at": utcnow()},
        )
    created = mint_key(organization_id, name=BOOTSTRAP_KEY_NAME, scopes=["admin"])
    conn.execute(api_keys.insert(), key_row(created))
    return created, created_organization, empty
