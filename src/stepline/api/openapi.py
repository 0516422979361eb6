"""The OpenAPI document, completed with what every operation shares, so that it lists every
status code a route can answer.

Routes declare their own outcomes (their 200s, and the 404s and 409s of their records).
What comes from the machinery around them is added here, by rule, to each operation:

- any operation: 500, in the error envelope (a fault of the server, with its request id);
- one that takes a key: 401 (no valid key) and 403 (a scope it lacks, or an
  X-Workspace-Id outside its workspace), and 422 (a malformed X-Workspace-Id);
- one with parameters or a body: 422 (a value that is not valid);
- one with a body: 400 (a body that cannot be parsed) and 413 (over the size limit);
- every response: the X-Request-Id header.

A vendor dialect's route (one declaring its vendor's error model) lists its own statuses
instead, in that model; only a 500 is added.

It also carries the schemas that no route returns as JSON (a run's events, sent as SSE).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from stepline.api.errors import ErrorEnvelope, error_response_doc
from stepline.api.event_schema import RUN_EVENT

COMPONENTS = "#/components/schemas/{model}"
EXTRA_SCHEMAS: dict[str, TypeAdapter[Any]] = {
    "ErrorEnvelope": TypeAdapter(ErrorEnvelope),
    "RunEvent": RUN_EVENT,
}
"""Named schemas for the components, beyond the routes' models (`$ref` them by name)."""

_FASTAPI_422 = "/HTTPValidationError"

_REQUEST_ID = {
    "description": "The request's id; quote it when reporting a problem.",
    "schema": {"type": "string"},
}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = completed(
                get_openapi(
                    title=app.title, version=app.version, summary=app.summary, routes=app.routes
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def completed(document: dict[str, Any]) -> dict[str, Any]:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, adapter in EXTRA_SCHEMAS.items():
        schema = adapter.json_schema(ref_template=COMPONENTS, mode="serialization")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    for path_item in document.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            vendor = _vendor_envelope(responses)
            if vendor is not None:
                _complete_vendor(responses, vendor)
            for status in _shared_statuses(operation) if vendor is None else ():
                responses.setdefault(str(status), error_response_doc(status))
            for status, response in responses.items():
                if int(status) >= 400 and vendor is None and not _is_envelope(response):
                    # FastAPI's own 422 (HTTPValidationError) is not what the handlers send.
                    responses[status] = response = error_response_doc(int(status))
                response.setdefault("headers", {})["X-Request-Id"] = _REQUEST_ID
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document


def _is_envelope(response: dict[str, Any]) -> bool:
    return _ref(response).endswith("/ErrorEnvelope")


def _ref(response: dict[str, Any]) -> str:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", ""))


def _vendor_envelope(responses: dict[str, Any]) -> dict[str, Any] | None:
    """The error response a vendor dialect's route declares (its vendor's envelope), if any:
    such a route lists its own statuses, as its envelope answers them."""
    for status, response in responses.items():
        ref = _ref(response)
        if int(status) >= 400 and ref and not ref.endswith(("/ErrorEnvelope", _FASTAPI_422)):
            return dict(response)
    return None


def _complete_vendor(responses: dict[str, Any], vendor: dict[str, Any]) -> None:
    """FastAPI's 422 is never sent (the vendor's envelope says how a request is invalid);
    a server fault is answered in the vendor's envelope too."""
    if _ref(responses.get("422", {})).endswith(_FASTAPI_422):
        del responses["422"]
    responses.setdefault("500", vendor | {"description": "The server failed."})


def _shared_statuses(operation: dict[str, Any]) -> set[int]:
    statuses = {500}
    if operation.get("security"):
        statuses |= {401, 403, 422}
    if operation.get("parameters"):
        statuses.add(422)
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    return statuses
