"""Onepin (seed 002), served under /onepin: a client of Onepin's public API works with its
base URL set to `http://HOST:PORT/onepin`. docs/dialects/onepin.md documents the paths,
shapes and mappings. `shapes` holds the pure record-to-Onepin functions; `runs`,
`workflows` and `downloads` the thin routes; `links` signs download links; `envelope`
the success and error envelopes."""

from __future__ import annotations

from fastapi import APIRouter

from stepline.api.dialects.onepin import downloads, runs, workflows
from stepline.api.dialects.onepin.envelope import envelope

PREFIX = "/onepin"

router = APIRouter()
# Workflows first: its `/{workflow_id}` routes do not shadow the runs' deeper paths, and
# the runs' `/runs/summary` and `/runs/preview` are declared before `/runs/{run_id}`.
router.include_router(workflows.router)
router.include_router(runs.router)
router.include_router(downloads.router)

__all__ = ["PREFIX", "envelope", "router"]
