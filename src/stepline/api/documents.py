"""The documents the API takes in: every JSON body read as one, and each part held to its limits.

`DocumentRoute` (every router's route class) reads a JSON request body with
`stepline.documents.json_text.parse_json` instead of `json.loads`: its depth is bounded
before any parser recurses into it, and NaN, Infinity, integers too long to keep exactly,
NUL and lone surrogates are refused, each at its path; so are they in query and path
parameters (`storable_text`). A body may nest
`BODY_ENVELOPE_DEPTH` levels more than a document, for the request's own fields around
it (`{"inputs": {...}}`); the routes then check each document within it (a definition,
inputs, a review's output) against its own limits (`stepline.service.inputs`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from stepline.api.storable_text import parameter_problem, refuse
from stepline.documents import DocumentError, DocumentLimits
from stepline.documents.json_text import parse_json
from stepline.documents.limits import DEPTH_SETTING

BODY_ENVELOPE_DEPTH = 2
"""Levels a request body may nest beyond a document: the request's fields around it."""


def limits_of(request: Request) -> DocumentLimits:
    """The server's document limits (the defaults before its state is set up)."""
    state = getattr(request.app.state, "stepline", None)
    return state.limits if state is not None else DocumentLimits()


class DocumentRequest(Request):
    """A request whose JSON body is read as a document (`parse_json`), once."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            documents = limits_of(self).max_depth
            max_depth = documents + BODY_ENVELOPE_DEPTH
            try:
                self._json = parse_json(await self.body(), max_depth=max_depth)
            except DocumentError as exc:
                if not exc.too_deep:
                    raise
                raise DocumentError(
                    f"nested deeper than {max_depth} levels of arrays and objects: the "
                    f"documents in a request may nest {documents} ({DEPTH_SETTING}), the "
                    f"request's own fields around them {BODY_ENVELOPE_DEPTH} more",
                    path=exc.path,
                    too_deep=True,
                ) from None
        return self._json


class DocumentRoute(APIRoute):
    """A route whose handler sees a `DocumentRequest` (FastAPI's custom request recipe).

    FastAPI turns anything but a JSONDecodeError raised while reading the body into a
    400 whose cause is that error: `errors.install_error_handlers` answers a
    DocumentError cause with `DocumentError.at`.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def read_documents(request: Request) -> Response:
            # Query and path parameters are held to what both databases can store.
            found = parameter_problem(request)
            if found is not None:
                raise refuse(*found)
            return await handler(DocumentRequest(request.scope, request.receive))

        return read_documents
