"""What `stepline` writes to its home is private (0600 files, 0700 folders), whatever the
umask it is started with: real subprocesses on a fresh home."""

from __future__ import annotations

from pathlib import Path

from support.cli import stepline
from support.modes import UMASKS, loose, umask
from support.server import start_server


@UMASKS
def test_the_cli_creates_a_private_home(tmp_path: Path, mask: int) -> None:
    home = tmp_path / "home"
    with umask(mask):
        create_key = ["keys", "create", "--org", "acme", "--create-org", "--scope", "run"]
        for args in (["db", "upgrade"], create_key):
            done = stepline(*args, home=home)
            assert done.returncode == 0, done.stderr

    assert (home / "stepline.db").exists()
    assert loose(home) == {}


@UMASKS
def test_serve_first_start_keeps_the_database_and_credentials_private(
    tmp_path: Path, mask: int
) -> None:
    home = tmp_path / "home"
    with umask(mask):
        # The fixture makes the home (0755 or 0777 under this umask): serve tightens it.
        server = start_server(home)
    try:
        assert server.admin_key
        names = {p.name for p in home.iterdir()}
        # While the server runs, the WAL and its shared-memory index exist too.
        assert {"stepline.db", "stepline.db-wal", "stepline.db-shm", "credentials"} <= names
        assert loose(home, ignore={server.log_path}) == {}  # the log is the test's own file
    finally:
        server.stop()
    assert loose(home, ignore={server.log_path}) == {}
