"""An exception that no route or handler took: logged once, answered with a 500 (a 503
with Retry-After when the database is away).

Starlette's own last resort (ServerErrorMiddleware) sits outside every middleware: its
500 carried no X-Request-Id, its log line no request id, and it re-raised the exception,
so that uvicorn logged the traceback a second time and closed the keep-alive connection
under the client's next request. The request middleware calls `answer_unhandled` instead,
while the request id is still in context.
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from stepline.api.errors import error_response
from stepline.store.errors import is_outage

log = logging.getLogger("stepline.api")

INTERNAL_ERROR = "internal error; quote the request id when reporting it"
RETRY_AFTER_S = 2
"""What a 503 for a database outage tells clients to wait before asking again."""

_LOGGED = "_stepline_logged"


async def answer_unhandled(
    exc: Exception,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    request_id: str,
    response_started: bool,
    response_complete: bool,
) -> None:
    """Log `exc` with its traceback, then answer the 500 if nothing was sent yet.

    A response cut short mid-body is re-raised: only closing the connection tells the
    client its body is incomplete. It is marked logged, for `SkipLoggedTwice`.
    """
    if is_outage(exc) and not response_started:
        # The database is away (restarting, unreachable): nothing was done, the client may
        # ask again. The worker and the pool's connections recover when it is back.
        log.warning("database unavailable on %s %s: %s", scope["method"], scope["path"], exc)
        unavailable = error_response(
            request_id,
            503,
            "the database is unavailable; try again shortly",
            code="unavailable",
            headers={"Retry-After": str(RETRY_AFTER_S)},
            path=scope["path"],
        )
        await unavailable(scope, receive, send)
        return
    log.error("unhandled error on %s %s", scope["method"], scope["path"], exc_info=exc)
    if not response_started:
        await error_response(request_id, 500, INTERNAL_ERROR, path=scope["path"])(
            scope, receive, send
        )
        return
    if response_complete:
        return  # the client has its whole answer; the connection stays usable
    setattr(exc, _LOGGED, True)
    raise exc


class SkipLoggedTwice(logging.Filter):
    """Drops the server's own record of an exception `answer_unhandled` logged already."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not getattr(exc, _LOGGED, False)
