"""A real `stepline serve` in a subprocess, on a free loopback port and a private home."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from stepline.store import Store
from support.cli import STEPLINE, cli_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ServeProcess:
    """`stepline serve` running; `admin_key` is the key its first start printed."""

    home: Path
    port: int
    process: subprocess.Popen[str]
    admin_key: str = ""
    log_path: Path = field(default_factory=Path)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database_url(self) -> str:
        return f"sqlite+aiosqlite:///{self.home / 'stepline.db'}"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def log_entries(self) -> list[dict[str, Any]]:
        """The JSON lines of the log."""
        return [json.loads(line) for line in self.log().splitlines() if line.startswith("{")]

    def request_log(self, request_id: str, timeout_s: float = 5) -> list[dict[str, Any]]:
        """The log's entries naming `request_id`, once its access line is there (written
        after the response, so a client may read the log before it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            entries = [e for e in self.log_entries() if e.get("request_id") == request_id]
            if any(e.get("logger") == "stepline.api.access" for e in entries):
                return entries
            if time.monotonic() > deadline:
                raise AssertionError(f"no access line for request {request_id}:\n{self.log()}")
            time.sleep(0.02)

    def stop(self) -> int:
        """SIGTERM, then wait: returns the exit code (SIGKILL after 15 s)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)


def start_server(
    home: Path, *, args: Iterable[str] = (), env: dict[str, str] | None = None, port: int = 0
) -> ServeProcess:
    """Start `stepline serve` and wait until /healthz answers (60 s at most: on a loaded
    machine, with the suite on two workers, a first start and its migrations can take 20 s)."""
    port = port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"serve-{port}.log"
    log_file = log_path.open("a")
    process = subprocess.Popen(
        [STEPLINE, "serve", "--port", str(port), *args],
        env=cli_env(home, **(env or {})),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    log_file.close()
    server = ServeProcess(home=home, port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"stepline serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise RuntimeError(f"stepline serve did not answer /healthz:\n{server.log()}")
        time.sleep(0.05)
    server.admin_key = _printed_key(server.log())
    return server


def _printed_key(log: str) -> str:
    """The key the first start printed alone on its line ('' when none was printed)."""
    for line in log.splitlines():
        if line.startswith("stp_"):
            return line.strip()
    return ""


def make_key(
    database_url: str, organization: str, scopes: Iterable[str] = ("admin",), **options: object
) -> str:
    """A new key of `organization` (created if missing), minted straight in the database."""

    async def create() -> str:
        store = await Store.connect(database_url)
        try:
            org_id = await store.organizations.ensure(organization)
            created = await store.keys.create(
                org_id,
                name=f"test-{organization}",
                scopes=list(scopes),
                **options,  # type: ignore[arg-type]
            )
            return created.secret
        finally:
            await store.close()

    return asyncio.run(create())
