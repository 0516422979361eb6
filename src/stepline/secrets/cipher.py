"""Encryption at rest: AES-256-GCM with the operator's key, bound to where a secret lives.

The key is `STEPLINE_SECRETS_KEY` (32 bytes in URL-safe base64, the format of
`Fernet.generate_key()`), else `$STEPLINE_HOME/secrets.key`, created 0600 on first use.
Every worker that runs workflows with secrets needs the same key.

Each value is sealed with its organization, workspace and name as associated data, so a
ciphertext copied to another organization's row (by someone who can write the database
but not read the key) does not decrypt there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from stepline.errors import Misconfigured
from stepline.settings import Settings

KEY_FILE = "secrets.key"
_KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"
"""The first byte of every ciphertext: its format, so that a later one can be told apart."""

KEY_HELP = (
    "32 random bytes in URL-safe base64, e.g. the output of `python -c "
    '"from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`'
)


class SecretKeyError(Misconfigured):
    """The secrets key is missing, malformed or unreadable."""


class SecretDecryptError(Misconfigured):
    """A stored secret does not open with this key (another key, or a tampered row)."""


class SecretsKeyUnusable(Misconfigured):
    """The server cannot use its secrets key (a SecretKeyError or SecretDecryptError, told
    to a caller who is not at fault: the operator's settings are)."""

    code = "secrets_key_error"

    def __init__(self, cause: SecretKeyError | SecretDecryptError) -> None:
        super().__init__(f"the server cannot use its secrets key: {cause}")
        self.cause = cause


def generate_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(_KEY_BYTES)).decode()


def parse_key(text: str, *, source: str) -> bytes:
    """The 32 key bytes in `text`; SecretKeyError naming `source` otherwise."""
    try:
        key = base64.urlsafe_b64decode(text.strip().encode())
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_BYTES:
        raise SecretKeyError(f"{source} is not a valid secrets key: it must be {KEY_HELP}")
    return key


class SecretCipher:
    """Seals and opens secret values with one key."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(
        self, value: str, *, organization_id: UUID, workspace_id: UUID | None, name: str
    ) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        bound = _associated_data(organization_id, workspace_id, name)
        return _VERSION + nonce + self._aead.encrypt(nonce, value.encode(), bound)

    def decrypt(
        self, blob: bytes, *, organization_id: UUID, workspace_id: UUID | None, name: str
    ) -> str:
        if blob[:1] != _VERSION or len(blob) <= 1 + _NONCE_BYTES:
            raise SecretDecryptError(f"secret {name!r} is not in a format this stepline reads")
        nonce, sealed = blob[1 : 1 + _NONCE_BYTES], blob[1 + _NONCE_BYTES :]
        bound = _associated_data(organization_id, workspace_id, name)
        try:
            return self._aead.decrypt(nonce, sealed, bound).decode()
        except InvalidTag:
            raise SecretDecryptError(
                f"secret {name!r} cannot be decrypted with this key: it was stored with "
                "another STEPLINE_SECRETS_KEY (or secrets.key), or its row was altered"
            ) from None


def _associated_data(organization_id: UUID, workspace_id: UUID | None, name: str) -> bytes:
    return f"stepline-secret:{organization_id}:{workspace_id or '-'}:{name}".encode()


def load_cipher(settings: Settings, *, create: bool = True) -> SecretCipher:
    """The cipher of the configured key: STEPLINE_SECRETS_KEY, else the key file (made
    when missing only if `create`: a key made to read secrets would never open them)."""
    return SecretCipher(_configured_key(settings, create=create))


def derived_key(settings: Settings, purpose: str) -> bytes:
    """A key for `purpose` (signing links...) derived from the secrets key: the same in
    every process that shares STEPLINE_SECRETS_KEY, yet useless for opening secrets."""
    master = _configured_key(settings, create=True)
    return hmac.new(master, f"stepline-derived-key:{purpose}".encode(), hashlib.sha256).digest()


def _configured_key(settings: Settings, *, create: bool) -> bytes:
    if settings.secrets_key is not None:
        return parse_key(settings.secrets_key.get_secret_value(), source="STEPLINE_SECRETS_KEY")
    return key_from_file(settings.home / KEY_FILE, create=create)


def key_from_file(path: Path, *, create: bool = True) -> bytes:
    """The key in `path`, which is created (0600, with a new random key) if missing."""
    try:
        return parse_key(path.read_text(), source=str(path))
    except FileNotFoundError:
        if not create:
            raise SecretKeyError(
                f"secrets are stored here but there is no key to read them: set "
                f"STEPLINE_SECRETS_KEY to the key they were stored with (or copy {path.name} "
                f"of the machine that stored them to {path})"
            ) from None
    except OSError as exc:
        raise SecretKeyError(f"cannot read the secrets key {path}: {exc}") from exc
    try:
        _create_key_file(path)
        return parse_key(path.read_text(), source=str(path))
    except OSError as exc:
        raise SecretKeyError(f"cannot create the secrets key {path}: {exc}") from exc


def _create_key_file(path: Path) -> None:
    """Write a new key to `path` whole or not at all: another process may race us.

    The key goes to a private temporary file first, then is linked into place; a link
    fails if `path` exists, so whoever links first wins and every process reads one key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(generate_key() + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
