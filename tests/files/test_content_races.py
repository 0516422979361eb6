"""Saving and deleting the same content from several processes at once, on SQLite and
PostgreSQL: no file that exists afterwards has lost its content."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepline.files import LocalFileStorage
from stepline.files.library import FileLibrary
from stepline.store import Store
from support.file_races import CONTENT

PROCESSES = 4
ROUNDS = 60


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_saves_and_deletes_of_one_content_in_several_processes_keep_every_live_blob(
    store: Store, store_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "files"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    organizations = [f"racer-{n}" for n in range(PROCESSES)]
    # The organizations exist before the racers start: only the files race.
    for name in organizations:
        await store.organizations.ensure(name)
    racers = [
        subprocess.Popen(
            [sys.executable, "-m", "support.file_races", store_url, str(root), name, str(ROUNDS)],
            env=env,
        )
        for name in organizations
    ]
    for racer in racers:
        assert racer.wait(240) == 0

    library = FileLibrary(store, LocalFileStorage(root))
    live = []
    for name in organizations:
        org = await store.organizations.ensure(name)
        page = await store.files.page(org, limit=100)
        live += [(org, record) for record in page.items]
    assert len(live) == PROCESSES
    for org, record in live:
        _, data = await library.read(org, record.id)
        assert data == CONTENT
    # Contents were withdrawn (the race did happen) and purged; nothing is left staged.
    assert list((root / "tmp").iterdir()) == []
    assert (root / "withdrawn").is_dir()
    assert list((root / "withdrawn").iterdir()) == []
