"""The only way out of the sandbox: an HTTP proxy that lets through the operator's allow-list.

Every code job has a network namespace of its own with nothing in it. A job whose node asks
for `network: true`, on a server whose `STEPLINE_CODE_NETWORK` is an allow-list, gets the
loopback interface and a relay to this proxy (see `runtime.relay`), announced to it the
usual way (`HTTP_PROXY`, `HTTPS_PROXY` and their lowercase twins), which urllib, httpx,
requests and most clients follow. Nothing else leaves the namespace: a client that ignores
the proxy reaches nothing.

The proxy runs in the server's process on a Unix socket bound into the sandbox read-only.
It takes `CONNECT host:port` (HTTPS and any TCP) and plain-HTTP requests in absolute form,
checks the host and port against the allow-list, resolves the host itself, and refuses
loopback, link-local (cloud metadata) and unspecified addresses unless the allow-list
names that very address: an allowed name cannot be pointed back at the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from stepline.errors import Misconfigured

logger = logging.getLogger("stepline.sandbox")

SOCKET_NAME = "egress.sock"
_HEAD_LIMIT = 64 * 1024
_CONNECT_TIMEOUT_S = 10.0
_DROPPED_HEADERS = ("proxy-authorization", "proxy-connection", "connection", "keep-alive")


class AllowListError(Misconfigured, ValueError):
    """`STEPLINE_CODE_NETWORK` does not parse."""


@dataclass(frozen=True)
class Destination:
    """One allow-list entry: a host pattern (`api.example.com`, `*.example.com`, `*`, an IP
    address) and a port, or any port."""

    host: str
    port: int | None

    def allows(self, host: str, port: int) -> bool:
        if self.port is not None and self.port != port:
            return False
        return self.host == "*" or fnmatch.fnmatchcase(host.lower(), self.host)

    @property
    def address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
        with contextlib.suppress(ValueError):
            return ipaddress.ip_address(self.host.strip("[]"))
        return None


@dataclass(frozen=True)
class AllowList:
    entries: tuple[Destination, ...]

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """`none` (or empty) is no entry at all; else comma-separated `host[:port]`."""
        if text.strip().lower() in ("", "none"):
            return cls(())
        entries = []
        for raw in text.split(","):
            entry = raw.strip().lower()
            host, port = entry, None
            if entry.count(":") == 1 or entry.startswith("["):  # host:port or [v6]:port
                host, _, port_text = entry.rpartition(":")
                if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                    raise AllowListError(f"STEPLINE_CODE_NETWORK: bad port in {raw.strip()!r}")
                port = int(port_text)
            if not host or any(c in host for c in " /@"):
                raise AllowListError(f"STEPLINE_CODE_NETWORK: bad host in {raw.strip()!r}")
            entries.append(Destination(host.strip("[]"), port))
        return cls(tuple(entries))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, host: str, port: int) -> Destination | None:
        return next((entry for entry in self.entries if entry.allows(host, port)), None)


def _guarded(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Addresses only an entry naming them exactly may reach: the server's own machine and
    cloud metadata services."""
    return address.is_loopback or address.is_link_local or address.is_unspecified


class EgressProxy:
    """The allow-list's enforcer, listening on a Unix socket in `directory`."""

    def __init__(self, allow: AllowList, directory: str) -> None:
        self.allow = allow
        self.path = os.path.join(directory, SOCKET_NAME)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._server = await asyncio.start_unix_server(self._handle, self.path, limit=_HEAD_LIMIT)
        # Jobs run as another user (`nobody` when stepline is root): they may connect.
        os.chmod(self.path, 0o666)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except Exception:
            logger.exception("code sandbox egress proxy: a connection failed")
        finally:
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return await _refuse(writer, 400, "not an HTTP proxy request")
        method, target, version = parts
        if method == "CONNECT":
            host, _, port_text = target.rpartition(":")
            host = host.strip("[]")
        else:
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                return await _refuse(writer, 400, "only absolute http:// URLs and CONNECT")
            host, port_text = url.hostname, str(url.port or 80)
        if not port_text.isdigit():
            return await _refuse(writer, 400, f"bad port in {target!r}")
        port = int(port_text)
        address, refusal = await self._permitted(host, port)
        if address is None:
            logger.info("code sandbox egress refused: %s:%s (%s)", host, port, refusal)
            return await _refuse(writer, 403, refusal)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), _CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as exc:
            return await _refuse(writer, 502, f"cannot connect to {host}:{port}: {exc}")
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            url = urlsplit(target)
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [
                line
                for line in header_lines
                if line and line.split(":", 1)[0].strip().lower() not in _DROPPED_HEADERS
            ]
            upstream_writer.write(
                "\r\n".join(
                    [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
                ).encode("latin-1")
            )
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )
        upstream_writer.close()

    async def _permitted(self, host: str, port: int) -> tuple[str | None, str]:
        """The address to connect to, or None and why not."""
        entry = self.allow.match(host, port)
        if entry is None:
            return None, f"{host}:{port} is not in this server's STEPLINE_CODE_NETWORK"
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            return None, f"cannot resolve {host}: {exc}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not _guarded(address) or entry.address == address:
                return str(address), ""
        return None, f"{host} resolves to an address kept from code steps (loopback, link-local)"


async def _refuse(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    text = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}[status]
    body = reason.encode()
    writer.write(
        f"HTTP/1.1 {status} {text}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}"
        "\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    with contextlib.suppress(ConnectionError):
        await writer.drain()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(Exception):
            writer.write_eof()
