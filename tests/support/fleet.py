"""A fleet on one PostgreSQL database, as an operator runs it: `stepline serve --no-worker`
and `stepline worker` processes, started, killed and drained for real."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from support.cli import STEPLINE, cli_env
from support.databases import drop_database, fresh_database
from support.server import ServeProcess, start_server

SETTLED = {"completed", "failed", "cancelled", "waiting_for_human"}


@dataclass
class WorkerProcess:
    name: str
    process: subprocess.Popen[str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.process.kill()


@dataclass
class Fleet:
    home: Path
    database_url: str
    api: ServeProcess
    env: dict[str, str]
    workers: list[WorkerProcess] = field(default_factory=list)

    _client: httpx.Client | None = None

    @property
    def http(self) -> httpx.Client:
        """One client, kept alive across requests (safe to share between threads)."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.api.base_url,
                headers={"Authorization": f"Bearer {self.api.admin_key}"},
                timeout=30,
            )
        return self._client

    def start_worker(self, name: str, *args: str) -> WorkerProcess:
        log_path = self.home / f"worker-{name}.log"
        with log_path.open("a") as log_file:
            process = subprocess.Popen(
                [STEPLINE, "worker", "--name", name, *args],
                env=cli_env(self.home, **self.env),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                text=True,
            )
        worker = WorkerProcess(name, process, log_path)
        self.workers.append(worker)
        return worker

    def create_workflow(self, definition: dict[str, Any]) -> str:
        created = self.http.post("/v1/workflows", json=definition)
        assert created.status_code == 201, created.text
        workflow_id: str = created.json()["id"]
        return workflow_id

    def start_runs(self, workflow_id: str, count: int) -> list[str]:
        def start(index: int) -> str:
            answer = self.http.post(
                f"/v1/workflows/{workflow_id}/runs", json={"inputs": {"n": index}}
            )
            assert answer.status_code == 202, answer.text
            run_id: str = answer.json()["id"]
            return run_id

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(start, range(count)))

    def run(self, workflow_id: str, run_id: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/workflows/{workflow_id}/runs/{run_id}")
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def steps(self, workflow_id: str, run_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after = None
        while True:
            params = {"limit": 500, **({"after": after} if after else {})}
            page = self.http.get(f"/v1/workflows/{workflow_id}/runs/{run_id}/steps", params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            found.extend(body["data"])
            after = body.get("next_cursor")
            if not after:
                return found

    def wait_settled(self, workflow_id: str, run_ids: list[str], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(run_ids)
        while pending:
            pending = [r for r in pending if self.run(workflow_id, r)["status"] not in SETTLED]
            if not pending:
                return
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.name}\n{w.log()[-3000:]}" for w in self.workers)
                raise AssertionError(
                    f"{len(pending)} runs never settled, e.g. {pending[0]}\n{logs}"
                )
            time.sleep(0.5)


@contextmanager
def fleet(home: Path, name: str, *, database_url: str | None = None, **env: str) -> Iterator[Fleet]:
    """An API process (no worker of its own) on a new PostgreSQL database (or on
    `database_url`); workers are started by the test. Every process is stopped, and a
    database made here dropped, afterwards."""
    database = f"stepline_fleet_{os.getpid()}_{name}"[:63]
    url = database_url or fresh_database(database)
    env = {"STEPLINE_DATABASE_URL": url, **env}
    api = start_server(home, args=["--no-worker"], env=env)
    crew = Fleet(home, url, api, env)
    try:
        yield crew
    finally:
        for worker in crew.workers:
            if worker.process.poll() is None:
                worker.kill()
                worker.process.wait(10)
        if crew._client is not None:
            crew._client.close()
        api.stop()
        if database_url is None:
            drop_database(database)
