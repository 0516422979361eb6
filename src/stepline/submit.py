"""Turning a definition and inputs into a queued run: the verbs the CLI and the API share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from stepline.nodes.base import NodeKind
from stepline.records import RunRecord
from stepline.secrets.redact import Redactor
from stepline.secrets.source import MissingSecrets, SecretSource, resolve_secrets
from stepline.spec.inputs import validate_run_inputs
from stepline.spec.validate import (
    ValidationIssue,
    WorkflowInvalid,
    load_workflow,
    secret_references,
)
from stepline.store import SavedWorkflow, Store


class InvalidRunInputs(Exception):
    """The inputs do not match the workflow's input schema."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        super().__init__("; ".join(issue.message for issue in issues))


@dataclass(frozen=True)
class Submission:
    saved: SavedWorkflow
    run: RunRecord


async def save_definition(
    store: Store, organization_id: UUID, definition: dict[str, Any], kinds: Mapping[str, NodeKind]
) -> SavedWorkflow:
    """Validate a definition and save it; a changed definition becomes a new version."""
    load_workflow(definition, kinds)
    return await store.save_workflow(organization_id, definition)


async def submit_run(
    store: Store,
    organization_id: UUID,
    definition: dict[str, Any],
    inputs: dict[str, Any],
    kinds: Mapping[str, NodeKind],
    *,
    trigger: str = "api",
    secrets: SecretSource | None = None,
) -> Submission:
    """Save the definition (pinning its version) and queue a run of it with `inputs`.

    Every secret the workflow reads must be set in `secrets` (else MissingSecrets); an
    input holding one of their values is recorded, and so runs, as `***`.
    """
    spec = load_workflow(definition, kinds)
    issues = validate_run_inputs(spec.inputs, inputs)
    if issues:
        raise InvalidRunInputs(issues)
    values = await resolve_secrets(secrets, secret_references(spec), organization_id, None)
    inputs = Redactor(values.values()).data(inputs)
    saved = await store.save_workflow(organization_id, definition)
    run = await store.create_run(
        RunRecord(
            workflow_id=saved.workflow.id,
            workflow_version=saved.version.version,
            organization_id=organization_id,
            trigger=trigger,
            inputs=inputs,
        )
    )
    return Submission(saved, run)


__all__ = [
    "InvalidRunInputs",
    "MissingSecrets",
    "Submission",
    "WorkflowInvalid",
    "save_definition",
    "submit_run",
]
