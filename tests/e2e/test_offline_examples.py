"""What the README tells a newcomer to type: the stand-ins command, then `stepline run` of
the Slack/webhook example with the secrets it prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.cli import stepline

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def standins() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    """`python -m tests.support.standins` on free ports; yields it and its lines so far."""
    ports = ["--slack-port", "0", "--webhook-port", "0", "--smtp-port", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.standins", *ports],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 20
    while not lines or not lines[-1].startswith("ready"):
        line = process.stdout.readline()
        assert line, f"the stand-ins exited: {''.join(lines)}"
        lines.append(line.rstrip("\n"))
        assert time.monotonic() < deadline, lines
    try:
        yield process, lines
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(10)


def test_the_example_runs_offline_as_the_readme_says(
    standins: tuple[subprocess.Popen[str], list[str]], tmp_path: Path
) -> None:
    process, banner = standins
    text = "\n".join(banner)
    slack_api = re.search(r"^slack +(\S+)", text, re.M)
    webhook_url = re.search(r"^webhook +(\S+)", text, re.M)
    assert slack_api and webhook_url, text
    exports = dict(re.findall(r"export (STEPLINE_SECRET_\w+)=(\S+)", text))
    assert set(exports) == {
        "STEPLINE_SECRET_SLACK_BOT_TOKEN",
        "STEPLINE_SECRET_WEBHOOK_SIGNING_SECRET",
    }

    done = stepline(
        "run",
        str(ROOT / "examples" / "order-notify.yaml"),
        "-i", "order_id=42",
        "-i", "customer=Ada",
        "-i", "amount=700",
        "-i", f"slack_api={slack_api[1]}",
        "-i", f"webhook_url={webhook_url[1]}",
        home=tmp_path,
        **exports,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert re.search(r"^slack chat\.postMessage .*Order 42 from Ada.* -> 200 ok$", rest, re.M), rest
    assert re.search(r"^webhook /hooks .*order\.notified.* -> 200 ok$", rest, re.M), rest
