"""The saved credentials: which server to talk to and with which API key.

`<STEPLINE_HOME>/credentials` (default ~/.stepline/credentials) is one JSON object,
`{"server": url, "api_key": key, "organization_id": uuid}`, readable by its owner only
(mode 0600, in a folder made 0700). The first start of `stepline serve` writes it;
the CLI and the SDK read it when `STEPLINE_API_KEY` is not set.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from stepline.errors import Misconfigured
from stepline.private_files import private_home
from stepline.settings import get_settings

API_KEY_ENV = "STEPLINE_API_KEY"
FILE_NAME = "credentials"


class CredentialsError(Misconfigured, ValueError):
    """The credentials file exists but cannot be used; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    server: str | None = None
    organization_id: UUID | None = None


def credentials_path(home: Path | None = None) -> Path:
    """Where the credentials live: `<home>/credentials`, home from the settings by default."""
    return (home if home is not None else get_settings().home) / FILE_NAME


def save_credentials(
    api_key: str,
    *,
    server: str | None = None,
    organization_id: UUID | None = None,
    home: Path | None = None,
) -> Path:
    """Write the credentials file atomically (a reader never sees half of it), mode 0600."""
    if not api_key:
        raise ValueError("save_credentials: api_key must not be empty")
    path = credentials_path(home)
    private_home(path.parent)
    document = {
        "server": server,
        "api_key": api_key,
        "organization_id": str(organization_id) if organization_id else None,
    }
    data = (json.dumps(document, indent=2) + "\n").encode()
    # mkstemp creates the file 0600 from the start: the key is never readable by others,
    # not even between the write and the rename.
    fd, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    _fsync_directory(path.parent)
    return path


def load_credentials(home: Path | None = None) -> Credentials | None:
    """The saved credentials; None if there is no file; CredentialsError if it is unusable."""
    path = credentials_path(home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"cannot read the credentials file {path}: {exc}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _corrupt(path, f"it is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise _corrupt(path, "it must hold a JSON object")
    api_key = document.get("api_key")
    if not isinstance(api_key, str) or not api_key:
        raise _corrupt(path, "'api_key' must be a non-empty string")
    server = document.get("server")
    if server is not None and not isinstance(server, str):
        raise _corrupt(path, "'server' must be a string or null")
    raw_org = document.get("organization_id")
    try:
        organization_id = UUID(raw_org) if raw_org is not None else None
    except (ValueError, TypeError, AttributeError):
        raise _corrupt(path, f"'organization_id' must be a UUID, got {raw_org!r}") from None
    return Credentials(api_key=api_key, server=server, organization_id=organization_id)


def find_api_key(home: Path | None = None) -> str | None:
    """The key to call the API with: `STEPLINE_API_KEY` if set, else the saved one."""
    from_env = os.environ.get(API_KEY_ENV, "").strip()
    if from_env:
        return from_env
    saved = load_credentials(home)
    return saved.api_key if saved else None


def _corrupt(path: Path, why: str) -> CredentialsError:
    return CredentialsError(
        f"the credentials file {path} is not usable: {why}; "
        f"delete it or set {API_KEY_ENV} (`stepline keys create` makes a new key)"
    )


def _fsync_directory(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
