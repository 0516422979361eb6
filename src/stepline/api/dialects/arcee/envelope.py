"""Arcee Orchestra's error bodies: FastAPI's, as Arcee's API answers them.

Every failure is `{"detail": "<message>"}` with its status (401 without a valid key, 404
for a workflow or run the key cannot see, 413, 500...); a request that does not validate
is a 422 whose `detail` lists each problem as FastAPI does: `{"loc": ["path", "run_id"],
"msg": "...", "type": "<code>"}`.
"""

from __future__ import annotations

import re
from typing import Any

from stepline.api.errors import Failure

_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def location(field: str) -> list[str | int]:
    """'body.nodes[2].id' -> ['body', 'nodes', 2, 'id'] (FastAPI's `loc`)."""
    return [int(index) if index else name for index, name in _PART.findall(field)]


def envelope(failure: Failure) -> tuple[int, Any]:
    if failure.status == 422 and failure.details:
        problems = [
            {"loc": location(d.field), "msg": d.message, "type": failure.code}
            for d in failure.details
        ]
        return 422, {"detail": problems}
    return failure.status, {"detail": failure.message}
