"""Fast JSON responses: pydantic-core serializes models, dicts and lists straight to bytes.

Routes declare `response_model=` for the OpenAPI document but return `json_response(...)`,
so a record is serialized once instead of validated again and then serialized.
"""

from __future__ import annotations

from typing import Any

import pydantic_core
from fastapi.responses import Response


def to_json(content: Any, *, exclude: set[str] | None = None) -> bytes:
    return pydantic_core.to_json(content, exclude=exclude)


def json_response(
    content: Any, status_code: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        to_json(content), status_code=status_code, headers=headers, media_type="application/json"
    )
