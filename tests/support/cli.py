"""Running the real `stepline` console script in a subprocess, against a private home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

STEPLINE = str(Path(sys.executable).parent / "stepline")


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STEPLINE_")}
    env.update({"STEPLINE_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"}, **extra)
    return env


def stepline(
    *args: str, home: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [STEPLINE, *args],
        env=cli_env(home, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stepline_json(*args: str, home: Path, **env: str) -> Any:
    done = stepline(*args, "--json", home=home, **env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


class Remote:
    """`stepline ...` with a server and key in the environment, as for a remote user."""

    def __init__(self, home: Path, server: str, key: str) -> None:
        self.home, self.server, self.key = home, server, key

    def __call__(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        settings = {"STEPLINE_SERVER": self.server, "STEPLINE_API_KEY": self.key, **env}
        return stepline(*args, home=self.home, **settings)

    def json(self, *args: str) -> Any:
        done = self(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)
