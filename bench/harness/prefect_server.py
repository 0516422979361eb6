"""A Prefect server of the bench's own: private PREFECT_HOME, analytics and UI off.

Prefect's server records task runs from events after a flow returns, and a backlog left
by one run slows the next several times over: `wait_idle` lets it finish first.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx

from harness.procs import free_port, peak_rss_mb, wait_idle

START_TIMEOUT_S = 180.0


class PrefectServer:
    """`prefect server start` on a free loopback port, on the database in `home`."""

    def __init__(self, peers_python: Path, home: Path, port: int | None = None) -> None:
        self.home = home
        self.port = port or free_port()
        self.log_path = home / f"server-{self.port}.log"
        home.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [
                    *(str(peers_python.parent / "prefect"), "server", "start"),
                    *("--host", "127.0.0.1", "--port", str(self.port)),
                ],
                env=self.client_env() | {"PREFECT_UI_ENABLED": "false"},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def client_env(self) -> dict[str, str]:
        """The environment of a Prefect process that talks to this server."""
        return self.env_for(self.home, self.port)

    @staticmethod
    def env_for(home: Path, port: int) -> dict[str, str]:
        """The environment of Prefect processes (server and clients) on `home` and `port`."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(
            PREFECT_HOME=str(home),
            PREFECT_API_URL=f"http://127.0.0.1:{port}/api",
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            PREFECT_SERVER_UI_ENABLED="false",
        )
        return env

    def wait_idle(self) -> None:
        wait_idle(self.process.pid, timeout_s=600)

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the Prefect server exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the Prefect server did not answer /api/health; see {self.log_path}")
