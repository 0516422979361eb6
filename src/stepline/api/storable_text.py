"""Only text that both databases can store gets in: no NUL character (U+0000), which
PostgreSQL's text and jsonb refuse, and no lone surrogate (U+D800 to U+DFFF), which is no
Unicode character and has no UTF-8 form. Either, anywhere in a request (a query or path
parameter, a JSON body at any depth, its keys too, an uploaded workflow), is a 422 naming
where, on SQLite as well: what one database takes, the other must not refuse later.

`api.documents.DocumentRoute`, the route class of the /v1 routers, checks the parameters
before the route runs (JSON bodies are checked as they are parsed, `documents.json_text`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from stepline.api.errors import ApiError, ErrorDetail
from stepline.store.types import text_problem

# What a JSON text spells the refused characters with (raw, either is invalid JSON or
# invalid UTF-8, refused before this): most bodies have neither, and are not walked.
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")


def unstorable_text(document: Any, path: str = "") -> tuple[str, str] | None:
    """(where, why) of the first string or key in `document` that cannot be stored.

    Iterative, so that a document of any depth is walked without recursion.
    """
    stack: list[tuple[str, Any]] = [(path, document)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                return where, problem
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem is not None:
                    return where, f"has a key that {problem}"
                stack.append((f"{where}.{key}", item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
    return None


def refuse(where: str, problem: str) -> ApiError:
    return ApiError(422, f"{where}: {problem}", details=[ErrorDetail(field=where, message=problem)])


def parameter_problem(request: Request) -> tuple[str, str] | None:
    """(where, why) of the first query or path parameter that cannot be stored."""
    for name, value in request.query_params.multi_items():
        problem = text_problem(name + value)
        if problem is not None:
            return f"query.{name}", problem
    for name, value in request.path_params.items():
        problem = text_problem(value) if isinstance(value, str) else None
        if problem is not None:
            return f"path.{name}", problem
    return None
