"""The long-lived resources a worker lends its node kinds, opened and closed together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from stepline.nodes.base import NodeServices
from stepline.sandbox import SandboxPool
from stepline.settings import Settings


@asynccontextmanager
async def open_node_services(settings: Settings) -> AsyncIterator[NodeServices]:
    """One HTTP client and one warm code sandbox, shared by every step of every run."""
    async with (
        httpx.AsyncClient(timeout=settings.http_timeout_s) as http,
        SandboxPool(memory_mb=settings.code_memory_mb) as sandbox,
    ):
        yield NodeServices(http=http, sandbox=sandbox)
