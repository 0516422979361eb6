"""A process that saves and deletes the same content over and over (`python -m
support.file_races URL ROOT ORGANIZATION ROUNDS`): one side of the content race test.

Each round saves the content, reads it back (nobody else may delete this file, so its
content must be there) and deletes it; the last round's file is kept. The number of
rounds whose read found the content missing is the exit status's message."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from stepline.files import LocalFileStorage
from stepline.files.library import FileLibrary, FileNotFound
from stepline.store import Store

CONTENT = b"the same bytes, saved and deleted by every process at once\n"


async def hammer(url: str, root: Path, organization: str, rounds: int) -> None:
    store = await Store.connect(url)
    try:
        library = FileLibrary(store, LocalFileStorage(root))
        org = await store.organizations.ensure(organization)
        lost = 0
        for round_ in range(rounds):
            saved = await library.save(org, CONTENT, f"r{round_}.txt")
            try:
                await library.read(org, saved.id)
            except FileNotFound:
                lost += 1
            if round_ < rounds - 1:
                await library.delete(org, saved.id)
    finally:
        await store.close()
    if lost:
        raise SystemExit(f"{lost} of {rounds} saved files had lost their content")


if __name__ == "__main__":
    url, root, organization, rounds = sys.argv[1:5]
    asyncio.run(hammer(url, Path(root), organization, int(rounds)))
