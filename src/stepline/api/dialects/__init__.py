"""The four vendors' step APIs, each mounted under its own prefix so that a client of
Arcee Orchestra, Onepin, Trigify or Retab works by changing only its base URL to
`http://HOST:PORT/<vendor>` (../shared/seeds/SHAPES.md has every path and field).

A dialect is a module with a `PREFIX`, a FastAPI `router` of the vendor's exact paths and
an `envelope` (`api.errors.VendorEnvelope`) wording every failure under its prefix the
vendor's way. Its routes are thin callers of `stepline.service`; its shapes are pure
functions of the canonical run and step records (`stepline.records`). No dialect stores
or executes anything of its own.
"""

from __future__ import annotations

from types import ModuleType

from fastapi import FastAPI

from stepline.api.dialects import arcee, onepin, retab, trigify
from stepline.api.errors import use_envelope

DIALECTS: tuple[ModuleType, ...] = (arcee, onepin, trigify, retab)


def mount_dialects(app: FastAPI) -> None:
    """Include every dialect's router under its prefix, and its error envelope."""
    for dialect in DIALECTS:
        app.include_router(dialect.router, prefix=dialect.PREFIX)
        use_envelope(dialect.PREFIX, dialect.envelope)
