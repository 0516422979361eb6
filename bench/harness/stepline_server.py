"""A real `stepline serve` on a seeded home, and reading a big run back through it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.procs import free_port, peak_rss_mb

START_TIMEOUT_S = 60.0
PAGE_REQUESTS = 20
"""First-page requests timed per repetition (after one warm-up); their median is kept."""


@dataclass(frozen=True)
class SeededRun:
    """A finished run in a stepline home, and a key that may read it."""

    home: Path
    workflow_id: str
    run_id: str
    api_key: str
    steps: int

    @property
    def run_path(self) -> str:
        return f"/v1/workflows/{self.workflow_id}/runs/{self.run_id}"

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


class StepLineServer:
    """`stepline serve` (API and embedded worker, as users run it) on the seeded home."""

    def __init__(self, home: Path) -> None:
        self.port = free_port()
        self.log_path = home / f"serve-{self.port}.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
        env.update(STEPLINE_HOME=str(home), STEPLINE_LOG_LEVEL="WARNING")
        stepline = str(Path(sys.executable).parent / "stepline")
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [stepline, "serve", "--port", str(self.port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def peak_rss_mb(self) -> float:
        return peak_rss_mb(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stepline serve exited; see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"stepline serve did not answer /healthz; see {self.log_path}")


class RoutesMissing(Exception):
    """The server does not serve the runs/steps routes (yet)."""


def steps_url(server: StepLineServer, run: SeededRun) -> str:
    return f"{server.base_url}{run.run_path}/steps?limit=100&include_io=false"


def download_url(server: StepLineServer, run: SeededRun) -> str:
    return f"{server.base_url}{run.run_path}/download?format=ndjson"


def read_back(server: StepLineServer, run: SeededRun) -> dict[str, float]:
    """Time the first page (median of PAGE_REQUESTS) and the whole run streamed as NDJSON."""
    with httpx.Client(headers=run.headers, timeout=120) as http:
        _first_page(http, steps_url(server, run))  # warm-up
        timings = []
        for _ in range(PAGE_REQUESTS):
            started = time.perf_counter()
            _first_page(http, steps_url(server, run))
            timings.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        lines = _download(http, download_url(server, run))
        whole_s = time.perf_counter() - started
    if lines < run.steps:
        raise RuntimeError(f"the NDJSON download held {lines} lines for {run.steps} steps")
    timings.sort()
    return {"first_page_ms": timings[len(timings) // 2], "steps_per_s": run.steps / whole_s}


def _first_page(http: httpx.Client, url: str) -> None:
    response = http.get(url)
    _check(response, url)
    count = len(response.json()["data"])
    if count != 100:
        raise RuntimeError(f"the first page held {count} steps, not 100")


def _download(http: httpx.Client, url: str) -> int:
    lines = 0
    with http.stream("GET", url) as response:
        if response.status_code != 200:
            response.read()
        _check(response, url)
        for line in response.iter_lines():
            if line.strip():
                lines += 1
    return lines


def _check(response: httpx.Response, url: str) -> None:
    if response.status_code in (404, 405):
        raise RoutesMissing(
            f"GET {url} answered {response.status_code} (is the route served yet?): "
            f"{response.text[:200]}"
        )
    response.raise_for_status()
