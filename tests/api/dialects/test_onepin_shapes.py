"""Onepin's pure shapes, without a server: status mappings, attempts, ports, rows, errors."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from stepline.api.dialects.onepin import shapes
from stepline.api.dialects.onepin.envelope import CODES, envelope
from stepline.api.dialects.onepin.links import LINK_KEY_PURPOSE, LINK_LIFETIME, Export, LinkSigner
from stepline.api.errors import ErrorDetail, Failure
from stepline.records import Attempt, RunRecord, RunStatus, StepRecord, StepStatus
from stepline.secrets.cipher import derived_key, generate_key
from stepline.settings import Settings

T0 = datetime(2024, 1, 15, 9, 30, tzinfo=UTC)


def step(**fields: Any) -> StepRecord:
    base: dict[str, Any] = {
        "run_id": uuid4(),
        "workflow_id": uuid4(),
        "workflow_version": 1,
        "organization_id": uuid4(),
        "node_id": "n",
        "step_id": "n",
        "node_type": "code",
        "node_label": "N",
        "seq": 1,
    }
    return StepRecord(**{**base, **fields})


def test_every_stepline_status_has_an_onepin_status() -> None:
    assert set(shapes.RUN_STATUS) == set(RunStatus)
    assert set(shapes.STEP_STATUS) == set(StepStatus)
    assert set(shapes.RUN_STATUS.values()) == {
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
        "paused",
    }
    assert shapes.RUN_STATUS_FILTER["paused"] is RunStatus.waiting_for_human


def test_timestamps_are_utc_with_z() -> None:
    moment = datetime(2024, 1, 15, 11, 30, 0, 123456, tzinfo=UTC) + timedelta(hours=0)
    assert shapes.timestamp(moment) == "2024-01-15T11:30:00.123Z"
    assert shapes.timestamp(None) is None


def test_a_step_retried_twice_is_three_entries_the_last_with_the_result() -> None:
    attempts = [
        Attempt(
            number=i,
            started_at=T0 + timedelta(seconds=i),
            completed_at=T0 + timedelta(seconds=i, milliseconds=500),
            status=StepStatus.error if i < 3 else StepStatus.completed,
            error=f"boom {i}" if i < 3 else None,
        )
        for i in (1, 2, 3)
    ]
    record = step(
        status=StepStatus.completed,
        attempts=attempts,
        retry_count=2,
        outputs={"x": 1},
        started_at=T0,
        completed_at=T0 + timedelta(seconds=3, milliseconds=500),
    )
    entries = shapes.step_entries(record, {}, include_result=True)
    assert [e["status"] for e in entries] == ["failed", "failed", "completed"]
    assert [e["error"] for e in entries] == ["boom 1", "boom 2", None]
    assert [e["result"] for e in entries] == [None, None, {"x": 1}]
    assert [e["has_result"] for e in entries] == [False, False, True]
    assert entries[1]["started_at"] == "2024-01-15T09:30:02.000Z"
    assert [e["id"] for e in entries] == [str(shapes.attempt_id(record.id, n)) for n in (1, 2, 3)]
    assert len({e["id"] for e in entries}) == 3


def test_a_pending_step_is_one_entry_with_the_id_its_first_attempt_will_have() -> None:
    record = step()
    (entry,) = shapes.step_entries(record, {}, include_result=True)
    assert entry["status"] == "pending" and entry["started_at"] is None
    assert entry["id"] == str(shapes.attempt_id(record.id, 1))
    assert entry["active_ports"] is None and entry["has_result"] is False


def test_a_running_step_has_no_completion_time_yet() -> None:
    attempt = Attempt(number=1, started_at=T0, status=StepStatus.running)
    (entry,) = shapes.step_entries(
        step(status=StepStatus.running, attempts=[attempt], started_at=T0), {}, include_result=True
    )
    assert entry["status"] == "running" and entry["completed_at"] is None


def test_iterations_count_from_one() -> None:
    assert shapes.iteration_of(step()) == 1
    assert shapes.iteration_of(step(iteration=0, loop_id="l")) == 1
    assert shapes.iteration_of(step(iteration=4, loop_id="l")) == 5


def test_active_ports_follow_the_taken_handle_and_the_wired_default() -> None:
    definition = {
        "nodes": [{"id": "check"}, {"id": "yes"}, {"id": "log"}],
        "edges": [
            {"from": "check", "to": "yes", "handle": "yes"},
            {"from": "check", "to": "log"},
        ],
    }
    handles = shapes.outbound_handles(definition)
    taken = step(
        node_id="check", status=StepStatus.completed, step_metadata={"active_handle": "yes"}
    )
    assert shapes.active_ports(taken, handles) == ["yes", "default"]
    assert shapes.active_ports(taken, {}) == ["yes"]
    rejected = step(
        node_id="check",
        status=StepStatus.completed,
        step_metadata={"active_handle": "rejected", "exclusive_handle": True},
    )
    assert shapes.active_ports(rejected, handles) == ["rejected"]
    assert shapes.active_ports(step(status=StepStatus.completed), handles) == ["default"]
    assert shapes.active_ports(step(status=StepStatus.error), handles) is None


def test_a_result_that_is_not_an_object_is_under_output() -> None:
    record = step(status=StepStatus.completed, outputs="text")
    (entry,) = shapes.step_entries(record, {}, include_result=True)
    assert entry["result"] == {"output": "text"}


def test_output_rows() -> None:
    assert shapes.output_rows(None) == []
    assert shapes.output_rows({"a": 1}) == [{"a": 1}]
    assert shapes.output_rows([{"a": 1}, 2]) == [{"a": 1}, {"value": 2}]


def test_run_counts_steps_and_reports_tokens_as_an_int() -> None:
    run = RunRecord(
        workflow_id=uuid4(),
        workflow_version=1,
        organization_id=uuid4(),
        status=RunStatus.waiting_for_human,
        step_counts={"completed": 2, "waiting_for_human": 1, "pending": 1, "skipped": 1},
        total_tokens=None,
    )
    out = shapes.run_out(run, total_nodes=5, finished_nodes=3)
    assert out["status"] == "paused"
    assert out["total_steps"] == 5 and out["finished_steps"] == 3
    assert out["token_cost"] == 0 and out["credits"] is None


@pytest.mark.parametrize("status", sorted(CODES))
def test_every_status_has_an_error_code(status: int) -> None:
    answered, body = envelope(
        Failure(status, "x", "why", [ErrorDetail(field="query.limit", message="m")], "rid")
    )
    assert answered == status
    assert body["error"]["code"] == CODES[status]
    assert body["error"]["details"] == [{"field": "query.limit", "message": "m"}]
    assert body["meta"]["request_id"] == "rid"


def test_an_unparseable_body_is_a_422_and_details_are_left_out_when_none() -> None:
    status, body = envelope(Failure(400, "bad_request", "not JSON", [], None))
    assert status == 422 and body["error"]["code"] == "VALIDATION_ERROR"
    assert "details" not in body["error"]


def test_a_link_is_valid_until_it_expires_and_only_for_what_it_names() -> None:
    signer = LinkSigner(os.urandom(32))
    export = Export(uuid4(), None, uuid4(), uuid4(), "n", int((T0 + LINK_LIFETIME).timestamp()))
    signature = signer.sign(export)
    assert signer.valid(export, signature, T0)
    assert not signer.valid(export, signature, T0 + LINK_LIFETIME)
    assert not signer.valid(replace(export, node_id=None), signature, T0)
    assert not signer.valid(replace(export, expires=export.expires + 60), signature, T0)
    assert not LinkSigner(os.urandom(32)).valid(export, signature, T0)
    assert not signer.valid(export, "ünïcode", T0)


def test_a_step_waiting_for_its_retry_shows_its_failed_attempt_ended() -> None:
    failed = Attempt(
        number=1,
        started_at=T0,
        completed_at=T0 + timedelta(seconds=1),
        status=StepStatus.error,
        error="503",
    )
    record = step(status=StepStatus.running, attempts=[failed], started_at=T0, error="503")
    (entry,) = shapes.step_entries(record, {}, include_result=True)
    assert entry["status"] == "failed" and entry["error"] == "503"
    assert entry["completed_at"] == "2024-01-15T09:30:01.000Z"


def test_every_replica_sharing_the_secrets_key_signs_alike(tmp_path: Path) -> None:
    shared = generate_key()
    one = Settings(home=tmp_path / "a", secrets_key=shared)
    other = Settings(home=tmp_path / "b", secrets_key=shared)
    stranger = Settings(home=tmp_path / "c", secrets_key=generate_key())
    export = Export(uuid4(), None, uuid4(), uuid4(), None, int((T0 + LINK_LIFETIME).timestamp()))
    signature = LinkSigner(derived_key(one, LINK_KEY_PURPOSE)).sign(export)
    assert LinkSigner(derived_key(other, LINK_KEY_PURPOSE)).valid(export, signature, T0)
    assert not LinkSigner(derived_key(stranger, LINK_KEY_PURPOSE)).valid(export, signature, T0)
    # Not the secrets key itself, nor another purpose's key.
    assert derived_key(one, LINK_KEY_PURPOSE) != derived_key(one, "another purpose")
