"""Structured logs: one JSON object per line, with the request id of the request at hand."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from stepline.api.failures import SkipLoggedTwice

request_id_var: ContextVar[str | None] = ContextVar("stepline_request_id", default=None)

# LogRecord attributes that are not extra fields given by the caller.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's ANSI-coloured copy of the message
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id is not None:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(level: str = "INFO") -> None:
    """JSON lines on stderr for stepline and uvicorn; uvicorn's access log is replaced by
    ours; the HTTP client's own request lines are left out."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    server_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, SkipLoggedTwice) for f in server_errors.filters):
        server_errors.addFilter(SkipLoggedTwice())
    logging.getLogger("uvicorn.access").disabled = True
    # Workflows' HTTP calls are on the run's record, masked; httpx would log each URL
    # (query strings, tokens in them) at INFO, unmasked, whatever the level asked for.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
