"""The one place where an error becomes what the CLI says on stderr, and its exit code.

Every command lets the errors a user can cause propagate; the root group (`app.Stepline`)
hands each to `explain` once. A `stepline.errors.SteplineError` says everything itself:
its `message`, its `details` and its kind's `exit_code`. An error the server answered
(the SDK's `ApiError`) is explained by its envelope `code` and HTTP status, mapped onto
the same kinds. For a few kinds the CLI can say more (`WORDING`). Anything else is a bug,
and keeps its traceback.

This module stays cheap to import (`stepline --help` imports it): a class of `WORDING` is
looked up only if its module was already imported, since an exception of a module that
was never loaded cannot have been raised.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from stepline import errors
from stepline.errors import EXIT_FAILED, EXIT_USAGE, EXIT_WAITING, SteplineError

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "EXIT_WAITING", "Failure", "explain", "fail"]


def fail(message: str, *, code: int = EXIT_USAGE) -> NoReturn:
    """Say `error: message` on stderr and exit with `code` (2: the request cannot be done)."""
    click.echo(f"{click.style('error:', fg='red')} {message}", err=True)
    raise click.exceptions.Exit(code)


@dataclass(frozen=True, slots=True)
class Failure:
    """What the CLI says about an error, and the exit code it ends with."""

    message: str
    exit_code: int


def explain(exc: BaseException) -> Failure | None:
    """The message and exit code of an error a user can cause; None for a bug."""
    if _is_http_answer(exc):
        return _answered(exc)
    if not isinstance(exc, SteplineError):
        return None
    for module, name, describe in WORDING:
        cls = _loaded(module, name)
        if cls is not None and isinstance(exc, cls):
            return Failure(describe(exc), exc.exit_code)
    return Failure(exc.message + _details(exc.details), exc.exit_code)


# -- errors a server answered ---------------------------------------------------------------

KINDS: tuple[type[SteplineError], ...] = (
    errors.TooLarge,
    errors.InvalidRequest,
    errors.Unauthenticated,
    errors.Forbidden,
    errors.NotFound,
    errors.Conflict,
    errors.Misconfigured,
    errors.Unavailable,
)


def kind_of_answer(code: str, status: int) -> type[SteplineError]:
    """The kind of an error envelope: by its `code`, else its HTTP status (a 5xx of no
    known code is a fault of the server, exit 1)."""
    known: tuple[type[SteplineError], ...] = (*KINDS, SteplineError)
    for kind in known:
        if kind.code == code:
            return kind
    if status >= 500:
        return errors.Unavailable if status == errors.Unavailable.status else SteplineError
    for kind in KINDS:
        if kind.status == status:
            return kind
    return errors.InvalidRequest


def _is_http_answer(exc: BaseException) -> bool:
    api_error = _loaded("stepline.sdk.errors", "ApiError")
    if api_error is not None and isinstance(exc, api_error):
        return True
    return isinstance(exc, SteplineError) and hasattr(exc, "request_id")


ANSWERED: dict[type[SteplineError], str] = {
    errors.Unauthenticated: "the API key was refused ({status}: {message})",
    errors.Forbidden: "the API key may not do this ({status}: {message})",
    errors.NotFound: "not found: {message}",
    errors.Conflict: "conflict ({status}): {message}",
    errors.InvalidRequest: "the server refused the request ({status}: {message})",
    errors.TooLarge: "the server refused the request ({status}: {message})",
}
"""How each kind of answer reads; any other is `the server answered STATUS CODE: ...`."""


def _answered(exc: Any) -> Failure:
    status: int = exc.status
    code: str = exc.code
    kind = kind_of_answer(code, status)
    template = ANSWERED.get(kind, "the server answered {status} {code}: {message}")
    text = template.format(status=status, code=code, message=exc.message)
    text += _details(exc.details)
    if kind.exit_code == EXIT_FAILED and exc.request_id:
        text += f"\n(request id {exc.request_id}: the server's log has the cause)"
    return Failure(text, kind.exit_code)


def _details(details: Iterable[Any]) -> str:
    return "".join(
        f"\n  {d.field}: {d.message}" if d.field else f"\n  {d.message}" for d in details
    )


# -- where the CLI says more than the error itself ------------------------------------


def _issues(exc: Any) -> str:
    return "".join(f"\n  {issue}" for issue in exc.issues)


def _invalid_inputs(exc: Any) -> str:
    return "the inputs are not valid:" + "".join(f"\n  {i.message}" for i in exc.issues)


def _missing_secrets(exc: Any) -> str:
    lines = []
    for ref in exc.references:
        where = f"node {ref.node_id!r}, field {ref.path}" if ref.node_id else ref.path
        lines.append(f"\n  {where}: secret {ref.name!r}")
    first = sorted({ref.name for ref in exc.references})[0]
    return (
        "the workflow reads secrets that are not set:"
        + "".join(lines)
        + f"\nset them with `stepline secrets set {first}` (or STEPLINE_SECRET_{first}"
        " in this command's environment)"
    )


Describe = Callable[[Any], str]

WORDING: tuple[tuple[str, str, Describe], ...] = (
    (
        "stepline.spec.validate",
        "WorkflowInvalid",
        lambda e: "the workflow is not valid:" + _issues(e),
    ),
    ("stepline.service.inputs", "InvalidRunInputs", _invalid_inputs),
    ("stepline.spec.loader", "WorkflowFileError", str),  # with the file, line and column
    ("stepline.secrets.source", "MissingSecrets", _missing_secrets),
    # Said to a server's caller; here the operator is the one at the keyboard.
    ("stepline.secrets.cipher", "SecretsKeyUnusable", lambda e: str(e.cause)),
)
"""(module, class, its message): where the CLI can say more than the error's own message
(each problem on a line of its own, the command that fixes it)."""


def _loaded(module: str, name: str) -> type[BaseException] | None:
    found = getattr(sys.modules.get(module), name, None)
    return found if isinstance(found, type) and issubclass(found, BaseException) else None
