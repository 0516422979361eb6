"""`--help` of every command: plain Click help, and fast (no heavy import)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator

import click
from click.testing import CliRunner

from stepline.cli.app import cli
from stepline.cli.keys import SCOPE_NAMES
from stepline.store.keys import SCOPES

HEAVY = ("sqlalchemy", "httpx", "rich", "pydantic", "stepline.engine", "stepline.store")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield prefix
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))
        else:
            yield (*prefix, name)


def test_no_help_shows_a_type_metavar() -> None:
    paths = list(command_paths(cli))
    assert ("runs", "list") in paths and ("keys", "create") in paths and len(paths) > 25
    for path in paths:
        done = CliRunner().invoke(cli, [*path, "--help"], prog_name="stepline")
        assert done.exit_code == 0, (path, done.output)
        assert not re.search(r"<\w+(\[\w+\])?>", done.output), (path, done.output)
        assert "Usage: stepline" in done.output


def test_serve_help_names_host_and_port() -> None:
    done = CliRunner().invoke(cli, ["serve", "--help"])
    assert "--host" in done.output and "--port" in done.output


def test_the_scopes_named_in_help_are_the_stores() -> None:
    assert SCOPE_NAMES == ", ".join(SCOPES)


PROBE = """
import json, sys
args, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
from stepline.cli.app import main
sys.argv = ["stepline", *args]
try:
    main()
except SystemExit:
    pass
loaded = [m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy)]
print(json.dumps(sorted(loaded)))
"""


def test_help_imports_no_heavy_module() -> None:
    for args in (["--help"], ["runs", "--help"], ["runs", "list", "--help"], ["keys", "--help"]):
        done = subprocess.run(
            [sys.executable, "-c", PROBE, json.dumps(args), json.dumps(HEAVY)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        loaded = json.loads(done.stdout.strip().splitlines()[-1])
        assert loaded == [], (args, loaded)
