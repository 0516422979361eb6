"""Smoke test of the benchmark harness: `bench/run.py --quick` prints every requested row.

Timings are never asserted (CI machines are noisy); what must hold is that each scenario
ran on each system and produced a figure, so that the bench does not rot unnoticed.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run_quick(tmp_path: Path, *scenarios: str) -> tuple[str, str]:
    """Run the quick bench on `scenarios`; the table (stdout) and the results file."""
    output = tmp_path / "results.md"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run.py"),
            "--quick",
            "--output",
            str(output),
            "--only",
            *scenarios,
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, output.read_text()


def rows(table: str) -> dict[tuple[str, str, str], list[str]]:
    """(scenario, metric, system) -> the row's cells, from the markdown table."""
    found = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0] not in ("scenario", "---"):
            found[(cells[0], cells[1], cells[2])] = cells
    return found


def assert_rows(table: str, expected: list[tuple[str, str, str]]) -> None:
    found = rows(table)
    assert sorted(found) == sorted(expected), table
    for key, cells in found.items():
        median = cells[3].replace(",", "")
        assert float(median) > 0, f"{key} has no figure: {cells}\n{table}"


def test_engine_scenarios_print_every_row(tmp_path: Path) -> None:
    table, written = run_quick(tmp_path, "chain-100", "fanout-1000", "code-100")
    assert_rows(
        table,
        [
            ("chain-100", "per step (ms)", "raw-sqlite"),
            ("chain-100", "per step (ms)", "stepline"),
            ("fanout-1000", "whole run (ms)", "raw-sqlite"),
            ("fanout-1000", "whole run (ms)", "stepline"),
            ("code-100", "per step (ms)", "fresh-process"),
            ("code-100", "per step (ms)", "stepline"),
            ("code-100", "per step (ms)", "stepline (process isolation)"),
        ],
    )
    assert table in written
    # The baseline row of each scenario is marked, and stepline's cost is relative to it.
    assert rows(table)[("chain-100", "per step (ms)", "raw-sqlite")][5] == "baseline"
    assert rows(table)[("chain-100", "per step (ms)", "stepline")][5].endswith("x")


def test_read_scenarios_print_every_row(tmp_path: Path) -> None:
    table, written = run_quick(tmp_path, "read-10k", "api-steps", "memory")
    expected = [
        ("read-10k", "first page of 100 (ms)", "raw-sqlite"),
        ("read-10k", "first page of 100 (ms)", "stepline"),
        ("read-10k", "whole run (steps/s)", "raw-sqlite"),
        ("read-10k", "whole run (steps/s)", "stepline"),
        ("memory", "peak RSS (MB)", "stepline"),
    ]
    if shutil.which("wrk") is not None:
        expected += [
            ("api-steps", "throughput (req/s)", "stepline"),
            ("api-steps", "p50 latency (ms)", "stepline"),
            ("api-steps", "p99 latency (ms)", "stepline"),
        ]
    else:
        assert "api-steps skipped: wrk is not installed" in written
    assert_rows(table, expected)


def test_quick_refuses_peers() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--peers"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--quick runs no peers" in done.stderr


def test_unknown_scenario_is_refused() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH / "run.py"), "--quick", "--only", "nonsense"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
