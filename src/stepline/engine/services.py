"""The long-lived resources a worker lends its node kinds, opened and closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from stepline.files.library import open_file_storage
from stepline.files.storage import FileStorage
from stepline.nodes.base import NodeServices
from stepline.providers.client import ClientPool
from stepline.sandbox import SandboxPool
from stepline.settings import Settings


@asynccontextmanager
async def open_node_services(
    settings: Settings, *, files: FileStorage | None = None, warm_sandbox: bool = True
) -> AsyncIterator[NodeServices]:
    """One HTTP client, one code sandbox (warm, unless `warm_sandbox` is False: then it
    starts on the first code step), the language-model clients and the file storage
    (`files`, the process's own when given), shared by every step of every run."""
    llm = ClientPool()
    try:
        async with (
            httpx.AsyncClient(timeout=settings.http_timeout_s) as http,
            SandboxPool(memory_mb=settings.code_memory_mb, warm=warm_sandbox) as sandbox,
        ):
            yield NodeServices(
                http=http,
                sandbox=sandbox,
                llm=llm,
                files=files or open_file_storage(settings),
                max_file_bytes=settings.max_file_bytes,
            )
    finally:
        await llm.aclose()
