"""What the README tells a newcomer to type: the one command that starts the stand-ins,
then `stepline run` of seed 000's example and of the Slack/webhook one, with the settings
it prints (on free ports here, so the URLs it prints are passed too)."""

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
        [sys.executable, "-m", "tests.support.standins", "--openai-port", "0", *ports],
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
        if not process.stdout.closed:  # the test reads the rest when it gets that far
            process.stdout.close()


def test_the_examples_run_offline_as_the_readme_says(
    standins: tuple[subprocess.Popen[str], list[str]], tmp_path: Path
) -> None:
    process, banner = standins
    text = "\n".join(banner)
    urls = dict(re.findall(r"^(openai|slack|webhook) +(\S+)", text, re.M))
    assert set(urls) == {"openai", "slack", "webhook"}, text
    exports = dict(re.findall(r"export (STEPLINE_\w+)=(\S+)", text))
    assert exports.pop("STEPLINE_CONFIG") == "examples/stepline.toml"
    assert set(exports) == {
        "STEPLINE_SECRET_SLACK_BOT_TOKEN",
        "STEPLINE_SECRET_WEBHOOK_SIGNING_SECRET",
    }
    config = tmp_path / "stepline.toml"
    shipped = (ROOT / "examples" / "stepline.toml").read_text()
    assert "http://127.0.0.1:8901/v1" in shipped  # the command's default port
    config.write_text(shipped.replace("http://127.0.0.1:8901/v1", urls["openai"]))

    joke = stepline(
        "run",
        str(ROOT / "examples" / "joke-to-slack.yaml"),
        "-i", "prompt=Tell me a joke about the weather",
        "-i", f"slack_api={urls['slack']}",
        home=tmp_path / "home",
        STEPLINE_CONFIG=str(config),
        **exports,
    )  # fmt: skip
    assert joke.returncode == 0, joke.stdout + joke.stderr
    notify = stepline(
        "run",
        str(ROOT / "examples" / "order-notify.yaml"),
        "-i", "order_id=42",
        "-i", "customer=Ada",
        "-i", "amount=700",
        "-i", f"slack_api={urls['slack']}",
        "-i", f"webhook_url={urls['webhook']}",
        home=tmp_path / "home",
        **exports,
    )  # fmt: skip
    assert notify.returncode == 0, notify.stdout + notify.stderr

    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    assert re.search(r"^slack chat\.meMessage .*weather.* -> 200 ok$", rest, re.M), rest
    assert re.search(r"^slack chat\.postMessage .*Order 42 from Ada.* -> 200 ok$", rest, re.M), rest
    assert re.search(r"^webhook /hooks .*order\.notified.* -> 200 ok$", rest, re.M), rest
