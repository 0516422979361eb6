"""Redaction: a run's secret values, in any form they take on the way to a record, are
`***` in what is recorded; sensitive request headers are masked by name."""

from __future__ import annotations

import json
from urllib.parse import quote, quote_plus

from stepline.records import Attempt, ErrorDetails, StepRecord, StepStatus, new_id, utcnow
from stepline.secrets.redact import MASK, NO_REDACTION, Redactor, mask_headers

SECRET = 'sk-live/42 "x"+y'


def test_values_are_masked_inside_longer_text_and_nested_data() -> None:
    redactor = Redactor([SECRET, "pw-9"])
    data = {
        "url": f"https://api.example.com/v1?token={quote(SECRET, safe='')}&x=1",
        "form": f"a={quote_plus(SECRET)}",
        "json": json.dumps({"key": SECRET}),
        "repr": repr({"key": SECRET}),
        "list": [SECRET, 7, None, True, {"pw-9": "pw-9/pw-9"}],
    }
    masked = redactor.data(data)
    assert masked == {
        "url": "https://api.example.com/v1?token=***&x=1",
        "form": "a=***",
        "json": '{"key": "***"}',
        "repr": "{'key': '***'}",
        "list": [MASK, 7, None, True, {MASK: "***/***"}],
    }
    assert data["list"][0] == SECRET  # the original is left alone


def test_a_value_containing_another_is_masked_whole() -> None:
    assert Redactor(["abc", "abcdef"]).text("xabcdefx abc") == "x***x ***"


def test_no_secrets_is_a_no_op_that_copies_nothing() -> None:
    step = _step()
    assert not NO_REDACTION and NO_REDACTION.step(step) is step
    data = {"a": [1]}
    assert Redactor([""]).data(data) is data


def test_every_recorded_field_of_a_step_is_masked_and_the_step_kept() -> None:
    step = _step()
    step.inputs = {"headers": {"X": f"Bearer {SECRET}"}}
    step.outputs = {"echo": SECRET}
    step.error = f"HTTP 401 from GET https://x/?t={quote(SECRET, safe='')}"
    step.status_reason = f"because {SECRET}"
    step.error_details = ErrorDetails(
        type="E", message=SECRET, traceback=f"raise E({SECRET!r})", context={"url": SECRET}
    )
    step.attempts = [
        Attempt(number=1, started_at=utcnow(), status=StepStatus.error, error=f"x {SECRET}")
    ]
    step.step_metadata = {"stdout": f"{SECRET}\n", "stderr": ""}
    step.handle_outputs = {"out": SECRET}
    step.trace_spans = [{"name": SECRET}]

    recorded = Redactor([SECRET]).step(step)

    assert SECRET not in recorded.model_dump_json()
    assert quote(SECRET, safe="") not in recorded.model_dump_json()
    assert recorded.outputs == {"echo": MASK}
    assert recorded.attempts[0].status is StepStatus.error
    assert recorded.attempts[0].error == "x ***"
    assert recorded.error_details is not None and recorded.error_details.context == {"url": MASK}
    assert step.outputs == {"echo": SECRET}  # the live step keeps the real values


def test_sensitive_headers_are_masked_by_name_whatever_their_case() -> None:
    headers = {
        "Authorization": "Bearer a",
        "proxy-authorization": "Basic b",
        "COOKIE": "c=1",
        "X-Api-Key": "d",
        "api-key": "e",
        "Accept": "application/json",
        "X-Api-Keys": "kept",
    }
    assert mask_headers(headers) == {
        "Authorization": MASK,
        "proxy-authorization": MASK,
        "COOKIE": MASK,
        "X-Api-Key": MASK,
        "api-key": MASK,
        "Accept": "application/json",
        "X-Api-Keys": "kept",
    }


def _step() -> StepRecord:
    return StepRecord(
        run_id=new_id(),
        workflow_id=new_id(),
        workflow_version=1,
        organization_id=new_id(),
        node_id="n",
        step_id="n",
        node_type="api_call",
        node_label="n",
        seq=0,
    )
