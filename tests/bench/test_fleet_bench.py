"""Smoke test of the fleet bench: `bench/fleet.py --quick` prints a figure for every
configuration and metric. Timings are never asserted (machines here are noisy); what must
hold is that each configuration ran its batch, checked, so the bench does not rot."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

FLEET = Path(__file__).resolve().parents[2] / "bench" / "fleet.py"
CONFIGURATIONS = [
    "sqlite-embedded",
    "postgres-1-worker",
    "postgres-2-workers",
    "postgres-4-workers",
]
METRICS = [
    "throughput (steps/s)",
    "run latency p50 (ms)",
    "run latency p95 (ms)",
    "queueing (runs/s)",
]


def postgres_listens() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def fleet(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FLEET), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def rows(table: str) -> dict[tuple[str, str], list[str]]:
    """(configuration, metric) -> the row's cells, from the markdown table."""
    found = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("configuration", "---"):
            found[(cells[0], cells[1])] = cells
    return found


@pytest.mark.timeout(300)
def test_quick_prints_a_figure_for_every_configuration() -> None:
    if not postgres_listens() and os.environ.get("STEPLINE_REQUIRE_POSTGRES") != "1":
        pytest.skip("PostgreSQL is not listening on 127.0.0.1:5432")
    done = fleet("--quick", timeout=280)
    assert done.returncode == 0, done.stderr[-5000:]
    found = rows(done.stdout)
    assert sorted(found) == sorted((c, m) for c in CONFIGURATIONS for m in METRICS), done.stdout
    for key, cells in found.items():
        assert float(cells[2].replace(",", "")) > 0, f"{key} has no figure: {cells}"
        low, high = (float(v.replace(",", "")) for v in cells[3].split("-"))
        assert 0 < low <= high, f"{key}: {cells}"
    # Every row is relative to embedded SQLite, measured in the same run.
    assert found[("sqlite-embedded", METRICS[0])][4] == "baseline"
    assert found[("postgres-4-workers", METRICS[0])][4].endswith("x")


def test_quick_refuses_peers() -> None:
    done = fleet("--quick", "--peers", timeout=30)
    assert done.returncode == 2
    assert "--quick runs no peers" in done.stderr


def test_a_batch_needs_runs() -> None:
    done = fleet("--runs", "0", timeout=30)
    assert done.returncode == 2
    assert "--runs and --reps must be at least 1" in done.stderr
