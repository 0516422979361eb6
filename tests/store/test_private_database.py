"""The database, its WAL and shared memory, and the folders holding them are private
(0600/0700) whatever the umask; files and a home from older versions are tightened."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from stepline.bootstrap import first_start
from stepline.settings import Settings
from stepline.store import Store
from support.modes import UMASKS, loose, mode, umask

SERVER = "http://127.0.0.1:8123"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@UMASKS
async def test_a_fresh_home_holds_only_private_files(tmp_path: Path, mask: int) -> None:
    home = tmp_path / "home"
    with umask(mask):
        store = await Store.connect(sqlite_url(home / "stepline.db"), home=home)
        try:
            await store.upgrade()
            assert await first_start(store, Settings(home=home), SERVER) is not None
            names = {p.name for p in home.iterdir()}
            # While open: the WAL and its shared-memory index exist, private too.
            assert {"stepline.db", "stepline.db-wal", "stepline.db-shm", "credentials"} <= names
            assert loose(home) == {}
        finally:
            await store.close()
    assert loose(home) == {}


@UMASKS
async def test_folders_made_for_a_database_in_home_are_private(tmp_path: Path, mask: int) -> None:
    home = tmp_path / "home"
    with umask(mask):
        store = await Store.connect(sqlite_url(home / "data" / "runs" / "x.db"), home=home)
        try:
            await store.upgrade()
            assert (home / "data" / "runs" / "x.db-wal").exists()
            assert loose(home) == {}
        finally:
            await store.close()


@UMASKS
async def test_a_database_outside_home_is_private_but_not_the_folder_it_was_put_in(
    tmp_path: Path, mask: int
) -> None:
    chosen = tmp_path / "chosen"
    chosen.mkdir()
    chosen.chmod(0o755)
    home = tmp_path / "home"
    with umask(mask):
        store = await Store.connect(sqlite_url(chosen / "new" / "x.db"), home=home)
        try:
            await store.upgrade()
            assert (chosen / "new" / "x.db-shm").exists()
            assert loose(chosen / "new") == {}
        finally:
            await store.close()

    assert mode(chosen) == 0o755  # the user's folder, not stepline's
    assert not home.exists()  # nothing was written there


async def test_an_older_loose_database_and_home_are_tightened_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    home = tmp_path / "home"
    database = home / "stepline.db"
    with umask(0o022):
        home.mkdir()
        # An older stepline's database, still open (in WAL mode) by its server: the file,
        # its WAL and shared memory are all 0644.
        older = sqlite3.connect(database)
    try:
        older.execute("PRAGMA journal_mode=WAL")
        older.execute("CREATE TABLE t (x)")
        older.execute("INSERT INTO t VALUES (1)")
        older.commit()
        assert {mode(p) for p in home.iterdir()} == {0o644}
        assert mode(home) == 0o755

        with caplog.at_level(logging.WARNING, logger="stepline.private_files"):
            store = await Store.connect(sqlite_url(database), home=home)
        try:
            await store.upgrade()
            assert loose(home) == {}
        finally:
            await store.close()
    finally:
        older.close()

    logged = "\n".join(r.getMessage() for r in caplog.records)
    for path in (home, database, home / "stepline.db-wal", home / "stepline.db-shm"):
        assert f"{path} was readable by other users (mode 0" in logged
    assert "changed to 0600" in logged
    assert "changed to 0700" in logged
