"""Where the client finds its server and key when it is not told.

Server: the argument, else `STEPLINE_SERVER`, else the saved credentials' server.
Key: the argument, else `STEPLINE_API_KEY`, else the saved credentials' key, but only
when they were saved for that same server, so that a local admin key is never sent to
another host.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from stepline.sdk._http import normalize_base_url
from stepline.sdk.errors import ConfigurationError

SERVER_ENV = "STEPLINE_SERVER"
API_KEY_ENV = "STEPLINE_API_KEY"
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Connection:
    base_url: str
    api_key: str | None


def _saved_credentials() -> Any | None:
    """The credentials `stepline serve` saved on first start, if any."""
    try:
        from stepline.credentials import load_credentials
    except ImportError:  # pragma: no cover - the module ships with stepline
        return None
    try:
        return load_credentials()
    except (OSError, ValueError):
        return None


def same_server(a: str, b: str) -> bool:
    """Whether two base URLs name one server (loopback names count as one host)."""
    left, right = urlsplit(normalize_base_url(a)), urlsplit(normalize_base_url(b))
    if left.scheme != right.scheme or left.port != right.port:
        return False
    if left.path.rstrip("/") != right.path.rstrip("/"):
        return False
    lhost, rhost = (left.hostname or "").lower(), (right.hostname or "").lower()
    return lhost == rhost or (lhost in _LOOPBACK and rhost in _LOOPBACK)


def resolve_connection(base_url: str | None = None, api_key: str | None = None) -> Connection:
    saved = None
    server = base_url or os.environ.get(SERVER_ENV) or None
    if server is None:
        saved = _saved_credentials()
        server = getattr(saved, "server", None)
    if not server:
        raise ConfigurationError(
            "no stepline server: pass base_url, set STEPLINE_SERVER, "
            "or start one with `stepline serve` (it saves its URL and key)"
        )
    server = normalize_base_url(server)
    key = api_key or os.environ.get(API_KEY_ENV) or None
    if key is None:
        saved = saved or _saved_credentials()
        saved_server = getattr(saved, "server", None)
        if saved_server and same_server(saved_server, server):
            key = getattr(saved, "api_key", None)
    return Connection(base_url=server, api_key=key)
