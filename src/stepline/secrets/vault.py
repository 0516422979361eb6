"""An organization's secrets: set, list, delete, and read for a run, encrypted at rest.

The cipher is opened on first need, so a server whose workflows use no secrets never
creates a key file; and only setting a secret may create one: a key made to read secrets
stored with another would never open them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from uuid import UUID

from stepline.secrets.cipher import SecretCipher
from stepline.secrets.names import check_name, check_value
from stepline.store.secrets import SecretRecord, SecretRepository


class Vault:
    """Secrets over the store's secrets repository and the operator's key."""

    def __init__(self, secrets: SecretRepository, cipher: Callable[[bool], SecretCipher]) -> None:
        """`cipher(create)` opens the key's cipher, making a new key only if `create`."""
        self.secrets = secrets
        self._open_cipher = cipher
        self._cipher: SecretCipher | None = None

    def _key(self, *, create: bool) -> SecretCipher:
        """The key's cipher; SecretKeyError when the key is missing, malformed or unreadable."""
        if self._cipher is None:
            self._cipher = self._open_cipher(create)
        return self._cipher

    async def set(
        self, organization_id: UUID, workspace_id: UUID | None, name: str, value: str
    ) -> tuple[SecretRecord, bool]:
        """Create or replace a secret (ValueError for a bad name or value); whether new."""
        check_name(name)
        check_value(value)
        ciphertext = self._key(create=True).encrypt(
            value, organization_id=organization_id, workspace_id=workspace_id, name=name
        )
        return await self.secrets.put(organization_id, workspace_id, name, ciphertext)

    async def list(
        self, organization_id: UUID, workspace_id: UUID | None = None
    ) -> list[SecretRecord]:
        return await self.secrets.list(organization_id, workspace_id)

    async def delete(self, organization_id: UUID, workspace_id: UUID | None, name: str) -> None:
        await self.secrets.delete(organization_id, workspace_id, name)

    async def values(
        self, organization_id: UUID, workspace_id: UUID | None, names: Collection[str]
    ) -> dict[str, str]:
        """The decrypted values of the named secrets a run of the workspace reads (the
        workspace's before the organization's); names not set are left out."""
        stored = await self.secrets.ciphertexts(organization_id, workspace_id, names)
        return {
            name: self._key(create=False).decrypt(
                secret.ciphertext,
                organization_id=organization_id,
                workspace_id=secret.workspace_id,
                name=name,
            )
            for name, secret in stored.items()
        }
