"""The offline stand-ins, started together, so that the examples run without Slack, a
webhook receiver or a mail server:

    python -m tests.support.standins

(from the repository root, with the dev dependencies installed). It starts the
OpenAI-compatible stand-in (http://127.0.0.1:8901/v1, the `local` provider of
examples/stepline.toml), the Slack Web API stand-in (http://127.0.0.1:8010/api), the
webhook receiver that checks signatures (http://127.0.0.1:8011/hooks) and a plain SMTP
server (127.0.0.1:8025), prints the settings to run the examples with, then one line for
each Slack call, webhook delivery or message that arrives, until Ctrl-C. `--help` lists
the options (ports: 0 picks free ones).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from contextlib import ExitStack
from types import FrameType

from .openai_server import openai_stand_in
from .slack_api import SlackStandIn
from .smtp_server import SmtpStandIn
from .webhook_receiver import WebhookReceiver

OFFLINE_SLACK_TOKEN = "xoxb-offline-stand-in"
OFFLINE_SIGNING_SECRET = "whsec_offline_stand_in"


def _say(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.standins", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--openai-port", type=int, default=8901)
    parser.add_argument("--slack-port", type=int, default=8010)
    parser.add_argument("--webhook-port", type=int, default=8011)
    parser.add_argument("--smtp-port", type=int, default=8025)
    parser.add_argument("--slack-token", default=OFFLINE_SLACK_TOKEN)
    parser.add_argument("--signing-secret", default=OFFLINE_SIGNING_SECRET)
    args = parser.parse_args(argv)

    slack = SlackStandIn(token=args.slack_token, port=args.slack_port, log=_say)
    hooks = WebhookReceiver(secret=args.signing_secret, port=args.webhook_port, log=_say)
    smtp = SmtpStandIn(port=args.smtp_port, log=_say)
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    with ExitStack() as running:
        model = running.enter_context(openai_stand_in(port=args.openai_port))
        for stand_in in (slack, hooks, smtp):
            running.enter_context(stand_in)
        _say(f"openai  {model.base_url}  (provider `local` in examples/stepline.toml)")
        _say(f"slack   {slack.base_url}  (channels: {', '.join(slack.channels)})")
        _say(f"webhook {hooks.url}  (checks X-Stepline-Signature)")
        _say(f"smtp    {smtp.host}:{smtp.port}  (plain, no AUTH: security none)")
        _say("run the examples with:")
        _say("  export STEPLINE_CONFIG=examples/stepline.toml")
        _say(f"  export STEPLINE_SECRET_SLACK_BOT_TOKEN={args.slack_token}")
        _say(f"  export STEPLINE_SECRET_WEBHOOK_SIGNING_SECRET={args.signing_secret}")
        _say("ready (Ctrl-C stops)")
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
