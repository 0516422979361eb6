"""The fuzzing tier: schemathesis (`st run`) against a real `stepline serve`, every operation
of its OpenAPI document, with admin and read-only keys of two organizations.

Checks: no server error, and status codes, content types and response bodies as the
document says (each SSE event against its schema too). Path ids are drawn mostly from
records seeded in both organizations (`support.fuzz_seed`), so that requests get past
"no such workflow", and the other organization's ids must stay 404s.

Budget: the coverage phase (each parameter's boundary and wrong-type values), then
STEPLINE_FUZZ_EXAMPLES generated cases per operation (default below: about a minute for
both databases); STEPLINE_FUZZ_SEED seeds it (fixed by default, so that a CI run is
reproducible). A longer local run (README, "Testing"), whose timeout grows with it:
`STEPLINE_FUZZ_EXAMPLES=500 STEPLINE_FUZZ_SEED=$RANDOM pytest tests/fuzz -s`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import cli_env
from support.databases import serving
from support.fuzz_config import fuzz_config, toml
from support.fuzz_seed import FuzzTarget, seed

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
DEFAULT_EXAMPLES = 25
DEFAULT_SEED = 17
ST = str(Path(sys.executable).parent / "st")
TESTS = Path(__file__).resolve().parents[1]


def _budget() -> tuple[int, int]:
    examples = int(os.environ.get("STEPLINE_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
    return examples, int(os.environ.get("STEPLINE_FUZZ_SEED", DEFAULT_SEED))


@pytest.fixture(scope="module", params=DATABASES)
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzTarget]:
    """A seeded `stepline serve` on a database of its own: SQLite, then PostgreSQL."""
    with serving(request.param, tmp_path_factory.mktemp("fuzz") / "home") as (server, url):
        yield seed(server, url)


@pytest.mark.fuzz
# A guard against a hang, far above a quiet machine's minute: the suite runs on two
# pytest-xdist workers, and a loaded machine has taken over 3 minutes.
@pytest.mark.timeout(180 + 6 * _budget()[0])
def test_fuzz_every_operation(fuzz_target: FuzzTarget, tmp_path: Path) -> None:
    examples, fuzz_seed = _budget()
    config = tmp_path / "schemathesis.toml"
    config.write_text(toml(fuzz_config(fuzz_target, examples=examples, fuzz_seed=fuzz_seed)))
    keys = [key for org in fuzz_target.organizations for key in (org.admin_key, org.read_key)]
    env = {
        **cli_env(fuzz_target.server.home),
        "PYTHONPATH": str(TESTS),
        "SCHEMATHESIS_HOOKS": "support.fuzz_hooks",
        "STEPLINE_FUZZ_KEYS": json.dumps(keys),
        "STEPLINE_FUZZ_PARENTS": json.dumps(fuzz_target.parents()),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    done = subprocess.run(
        [
            ST,
            "--config-file",
            str(config),
            "run",
            f"{fuzz_target.server.base_url}/openapi.json",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    summary = done.stdout[done.stdout.find("WARNINGS") :]
    print(f"fuzzed in {time.monotonic() - started:.1f} s (seed {fuzz_seed}):\n{summary}")
    assert done.returncode == 0, done.stdout + done.stderr
