"""Each error answer is raised as the SDK's class of its status, which is also the kind of
`stepline.errors` of that status, carrying the envelope's message, code, details (as
`stepline.errors.Detail`), request id and status: on both faces, from a real server where
it can be made to answer so, else from a scripted one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from definitions import INPUTS_LIMIT, triage
from faces import Connect
from scripted import Reply, envelope, scripted_server

from stepline import Client, errors
from stepline.sdk import (
    ApiError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    ErrorDetail,
    MisconfiguredError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerError,
    SteplineError,
    ValidationError,
)
from stepline.settings import get_settings
from support.server import ServeProcess


def test_the_sdks_base_error_is_stepline_errors_base() -> None:
    assert SteplineError is errors.SteplineError and ErrorDetail is errors.Detail


def test_a_missing_record_is_not_found(sdk: Client) -> None:
    missing = uuid.uuid4()
    with pytest.raises(errors.NotFound) as caught:
        sdk.workflows.get(missing)
    error = caught.value
    assert isinstance(error, NotFoundError) and isinstance(error, LookupError)
    assert error.status == 404 and error.code == "not_found" and error.exit_code == 2
    assert str(missing) in error.message and str(missing) in str(error)
    uuid.UUID(error.request_id or "")


def test_a_taken_name_is_a_conflict(sdk: Client) -> None:
    sdk.workflows.create(triage("taken"))
    with pytest.raises(errors.Conflict) as caught:
        sdk.workflows.create(triage("taken"))
    assert isinstance(caught.value, ConflictError)
    assert caught.value.status == 409 and caught.value.code == "conflict"
    assert caught.value.request_id


def test_an_invalid_field_is_an_invalid_request_naming_it(sdk: Client) -> None:
    with pytest.raises(errors.InvalidRequest) as caught:
        sdk.workflows.get("not-a-uuid")
    error = caught.value
    assert isinstance(error, ValidationError) and error.status == 422
    assert error.code == "validation_error"
    assert all(isinstance(d, errors.Detail) for d in error.details)
    assert [d.field for d in error.details] == ["path.workflow_id"]


def test_inputs_past_the_limit_are_too_large(sdk: Client) -> None:
    workflow = sdk.workflows.create(triage("big"))
    with pytest.raises(errors.TooLarge) as caught:
        sdk.runs.create(workflow.id, {"amount": 1, "customer": "x" * INPUTS_LIMIT})
    error = caught.value
    assert isinstance(error, PayloadTooLargeError) and isinstance(error, errors.InvalidRequest)
    assert error.status == 413 and error.code == "payload_too_large"


def test_a_refused_key_is_unauthenticated(connect: Connect, api_server: ServeProcess) -> None:
    with (
        connect(api_server.base_url, "stp_not_a_key") as stranger,
        pytest.raises(errors.Unauthenticated) as caught,
    ):
        list(stranger.workflows.list())
    assert isinstance(caught.value, AuthenticationError)
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert caught.value.request_id


def test_a_key_without_the_scope_is_forbidden(
    connect: Connect, api_server: ServeProcess, make_key: Any, request: pytest.FixtureRequest
) -> None:
    reader = make_key(f"readers-{request.node.name}", scopes=("read",))
    with (
        connect(api_server.base_url, reader) as read_only,
        pytest.raises(errors.Forbidden) as caught,
    ):
        read_only.workflows.create(triage("nope"))
    assert isinstance(caught.value, PermissionDeniedError)
    assert caught.value.status == 403 and caught.value.code == "forbidden"


def test_another_organizations_workflow_is_not_found(
    connect: Connect, sdk: Client, api_server: ServeProcess, make_key: Any
) -> None:
    mine = sdk.workflows.create(triage("private"))
    other = make_key(f"other-{uuid.uuid4()}")
    with connect(api_server.base_url, other) as outsider, pytest.raises(errors.NotFound):
        outsider.workflows.get(mine.id)


PATH = f"/v1/workflows/{uuid.uuid4()}"


@pytest.mark.parametrize(
    ("reply", "sdk_class", "kind"),
    [
        (envelope(400, "bad_request"), BadRequestError, errors.InvalidRequest),
        (envelope(503, "unavailable"), ServerError, errors.Unavailable),
        (envelope(500, "misconfigured"), MisconfiguredError, errors.Misconfigured),
        (envelope(418, "teapot"), ApiError, errors.SteplineError),
    ],
    ids=["400", "503", "500-misconfigured", "418"],
)
def test_scripted_answers_map_to_their_kinds(
    connect: Connect, reply: Reply, sdk_class: type[ApiError], kind: type[errors.SteplineError]
) -> None:
    with (
        scripted_server({PATH: lambda hit: reply}) as server,
        connect(server.url, "k", max_retries=0) as sdk,
        pytest.raises(kind) as caught,
    ):
        sdk.workflows.get(PATH.rsplit("/", 1)[1])
    assert isinstance(caught.value, sdk_class) and caught.value.status == reply.status


def test_an_answer_without_an_envelope_keeps_its_text(connect: Connect) -> None:
    reply = Reply(502, b"bad gateway from the proxy")
    with (
        scripted_server({PATH: lambda hit: reply}) as server,
        connect(server.url, "k", max_retries=0) as sdk,
        pytest.raises(ServerError) as caught,
    ):
        sdk.workflows.get(PATH.rsplit("/", 1)[1])
    assert caught.value.code == "http_502" and caught.value.message == "bad gateway from the proxy"


def test_no_server_anywhere_is_a_configuration_error(
    connect: Connect, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.delenv("STEPLINE_SERVER", raising=False)
    monkeypatch.setenv("STEPLINE_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        with pytest.raises(errors.Misconfigured) as caught:
            connect()
    finally:
        get_settings.cache_clear()
    assert isinstance(caught.value, ConfigurationError) and "STEPLINE_SERVER" in str(caught.value)
