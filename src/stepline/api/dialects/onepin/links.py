"""Short-lived signed links to a run's export: what Onepin's download endpoints hand out.

A link names what it opens (organization, workspace, workflow, run, node) and when it
expires, and carries an HMAC-SHA256 of exactly that: whoever holds it may download that
export until then, without an API key, and cannot change what it names. The key is derived
from the secrets key (`secrets.cipher.derived_key`), so a link works on every API replica
sharing STEPLINE_SECRETS_KEY, across restarts, until it expires.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

LINK_LIFETIME = timedelta(minutes=15)
LINK_KEY_PURPOSE = "onepin-export-links"


@dataclass(frozen=True, slots=True)
class Export:
    """What a link opens."""

    organization_id: UUID
    workspace_id: UUID | None
    workflow_id: UUID
    run_id: UUID
    node_id: str | None
    expires: int
    """Unix seconds."""

    def message(self) -> bytes:
        parts = (
            "onepin-export-v1",
            str(self.organization_id),
            str(self.workspace_id or "-"),
            str(self.workflow_id),
            str(self.run_id),
            self.node_id if self.node_id is not None else "",
            str(self.expires),
        )
        return "\n".join(parts).encode()

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


class LinkSigner:
    """Signs and checks export links with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, export: Export) -> str:
        return hmac.new(self._key, export.message(), hashlib.sha256).hexdigest()

    def valid(self, export: Export, signature: str, now: datetime) -> bool:
        """Whether the signature is this key's for `export` and the link has not expired."""
        expected = self.sign(export).encode()
        given = signature.encode("utf-8", "replace")
        return hmac.compare_digest(expected, given) and now.timestamp() < export.expires


def expiry(now: datetime) -> int:
    return int((now + LINK_LIFETIME).timestamp())
