"""Stores a file in the local database (the one `stepline run` uses: STEPLINE_HOME or
STEPLINE_DATABASE_URL, and STEPLINE_FILES_DIR) as a file of its organization, and prints
a reference to it, for a workflow input:

    stepline run examples/invoice-documents.yaml \\
        -i invoice="$(python examples/store_file.py examples/invoice.pdf)"

It prints `{"file_id": "...", "filename": "...", "mime_type": "..."}`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from stepline.files.library import FileLibrary, open_file_storage
from stepline.settings import Settings
from stepline.store import Store


async def store_file(path: Path) -> dict[str, str]:
    settings = Settings()
    store = await Store.connect(settings.resolved_database_url(), home=settings.home)
    try:
        await store.upgrade()
        organization = await store.organizations.ensure()
        library = FileLibrary(store, open_file_storage(settings), max_bytes=settings.max_file_bytes)
        saved = await library.save(organization, path.read_bytes(), path.name)
    finally:
        await store.close()
    return {"file_id": str(saved.id), "filename": saved.filename, "mime_type": saved.mime_type}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        sys.stderr.write("usage: python examples/store_file.py FILE\n")
        return 2
    sys.stdout.write(json.dumps(asyncio.run(store_file(Path(argv[1])))) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
