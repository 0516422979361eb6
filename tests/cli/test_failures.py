"""The CLI's one error mapping: each kind of `stepline.errors` (and each error a server
answered) becomes one line on stderr and the kind's exit code, through the root group."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner, Result

from stepline import errors
from stepline.cli.app import Stepline
from stepline.cli.failures import WORDING, explain, kind_of_answer
from stepline.sdk import errors as sdk_errors
from stepline.store.errors import NotFoundError as StoreNotFound


def invoke_raising(exc: BaseException) -> Result:
    """Run a command that raises `exc` under the real root group."""

    @click.group(cls=Stepline)
    def root() -> None:
        pass

    @root.command()
    def boom() -> None:
        raise exc

    return CliRunner().invoke(root, ["boom"])


@pytest.mark.parametrize(
    ("kind", "exit_code"),
    [
        (errors.InvalidRequest, 2),
        (errors.TooLarge, 2),
        (errors.Unauthenticated, 2),
        (errors.Forbidden, 2),
        (errors.NotFound, 2),
        (errors.Conflict, 2),
        (errors.Misconfigured, 2),
        (errors.Unavailable, 1),
        (errors.SteplineError, 1),
    ],
)
def test_each_kind_is_its_message_details_and_exit_code(
    kind: type[errors.SteplineError], exit_code: int
) -> None:
    exc = kind("what went wrong", details=[errors.Detail("body.amount", "must be a number")])
    done = invoke_raising(exc)
    assert done.exit_code == exit_code == kind.exit_code
    assert done.stderr == "error: what went wrong\n  body.amount: must be a number\n"
    assert done.stdout == ""


def test_not_found_is_exit_2_with_its_message() -> None:
    done = invoke_raising(errors.NotFound("run 3fa8 not found"))
    assert (done.exit_code, done.stderr) == (2, "error: run 3fa8 not found\n")


def test_a_server_fault_is_exit_1_with_the_request_id() -> None:
    exc = sdk_errors.ServerError(500, "internal_error", "boom", [], "req-17")
    done = invoke_raising(exc)
    assert done.exit_code == 1
    assert "500 internal_error: boom" in done.stderr and "request id req-17" in done.stderr
    unavailable = sdk_errors.ServerError(503, "unavailable", "the database is down", [], None)
    assert invoke_raising(unavailable).exit_code == 1


def test_a_refused_request_is_exit_2_naming_status_and_fields() -> None:
    detail = sdk_errors.ErrorDetail(field="body.inputs.amount", message="required")
    exc = sdk_errors.ValidationError(422, "validation_error", "bad inputs", [detail], "r1")
    done = invoke_raising(exc)
    assert done.exit_code == 2
    assert "422" in done.stderr and "body.inputs.amount: required" in done.stderr
    missing = sdk_errors.NotFoundError(404, "not_found", "workflow 12 not found", [], None)
    done = invoke_raising(missing)
    assert done.exit_code == 2 and "workflow 12 not found" in done.stderr
    refused = sdk_errors.AuthenticationError(401, "unauthorized", "invalid key", [], None)
    assert "the API key was refused" in invoke_raising(refused).stderr


def test_an_answer_is_classified_by_its_code_before_its_status() -> None:
    assert kind_of_answer("misconfigured", 500) is errors.Misconfigured  # exit 2
    assert kind_of_answer("internal_error", 500) is errors.SteplineError  # exit 1
    assert kind_of_answer("http_502", 502) is errors.SteplineError
    assert kind_of_answer("payload_too_large", 413) is errors.TooLarge
    assert kind_of_answer("http_400", 400) is errors.InvalidRequest


def test_module_errors_are_kinds_and_speak_for_themselves() -> None:
    done = invoke_raising(StoreNotFound("API key 7 not found"))
    assert (done.exit_code, done.stderr) == (2, "error: API key 7 not found\n")
    unreachable = sdk_errors.TransportError("cannot reach the stepline server at http://x")
    done = invoke_raising(unreachable)
    assert done.exit_code == 1 and "cannot reach" in done.stderr
    for module, name, _ in WORDING:
        cls = getattr(importlib.import_module(module), name)
        assert issubclass(cls, errors.SteplineError), (module, name)


def test_a_bug_keeps_its_traceback() -> None:
    assert explain(RuntimeError("a bug")) is None
    done = invoke_raising(RuntimeError("a bug"))
    assert isinstance(done.exception, RuntimeError)
