"""Every error stepline raises on purpose, in one hierarchy.

Each class says what kind of failure it is, and so how every edge reports it: the HTTP
status and envelope `code` (mapped once, in `stepline.api.errors`) and the CLI's exit code
(mapped once, in `stepline.cli.failures`). A module raises a subclass of its own (a
workflow that is not valid, a run that is not found...) under one of these kinds; the SDK's
errors for an HTTP answer are the same kinds, so a caller catches `NotFound` whether the
run was looked up in-process or over HTTP.

SteplineError                       HTTP  code                 exit
├── InvalidRequest                  422   validation_error     2   a definition, inputs, a field
│   └── TooLarge                    413   payload_too_large    2   past a size limit
├── Unauthenticated                 401   unauthorized         2   no key, or a refused one
├── Forbidden                       403   forbidden            2   the key lacks the scope
├── NotFound                        404   not_found            2   not in the caller's organization
├── Conflict                        409   conflict             2   the record's state forbids it
├── Misconfigured                   500   misconfigured        2   the operator's settings
└── Unavailable                     503   unavailable          1   the database, the sandbox...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

EXIT_FAILED = 1
"""A run failed, or something the caller did not cause did (an outage)."""
EXIT_USAGE = 2
"""The caller's request cannot be done as asked."""
EXIT_WAITING = 3
"""The run paused for a person's review."""


@dataclass(frozen=True, slots=True)
class Detail:
    """One thing wrong, and where: `body.inputs.amount`, `nodes[2].config.url`, `query.limit`."""

    field: str
    message: str


class SteplineError(Exception):
    """Base of every error stepline raises on purpose. Unexpected exceptions are bugs."""

    status: int = 500
    code: str = "internal_error"
    exit_code: int = EXIT_FAILED

    def __init__(self, message: str, *, details: Sequence[Detail] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Detail] = list(details)


class InvalidRequest(SteplineError):
    """What was asked is not valid: a workflow, run inputs, a field of a request."""

    status = 422
    code = "validation_error"
    exit_code = EXIT_USAGE


class TooLarge(InvalidRequest):
    """A document or body is past a size limit (the message names the limit)."""

    status = 413
    code = "payload_too_large"


class Unauthenticated(SteplineError):
    status = 401
    code = "unauthorized"
    exit_code = EXIT_USAGE


class Forbidden(SteplineError):
    status = 403
    code = "forbidden"
    exit_code = EXIT_USAGE


class NotFound(SteplineError, LookupError):
    """No such record in the caller's organization (another organization's is not found too)."""

    status = 404
    code = "not_found"
    exit_code = EXIT_USAGE


class Conflict(SteplineError):
    """The record's current state does not allow the change, or a name is taken."""

    status = 409
    code = "conflict"
    exit_code = EXIT_USAGE


class Misconfigured(SteplineError):
    """The operator's settings are wrong (secrets key, provider file): not the caller's fault."""

    status = 500
    code = "misconfigured"
    exit_code = EXIT_USAGE


class Unavailable(SteplineError):
    """Something stepline needs cannot be used now (the database, the code sandbox)."""

    status = 503
    code = "unavailable"
    exit_code = EXIT_FAILED


__all__ = [
    "EXIT_FAILED",
    "EXIT_USAGE",
    "EXIT_WAITING",
    "Conflict",
    "Detail",
    "Forbidden",
    "InvalidRequest",
    "Misconfigured",
    "NotFound",
    "SteplineError",
    "TooLarge",
    "Unauthenticated",
    "Unavailable",
]
