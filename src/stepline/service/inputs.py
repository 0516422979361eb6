"""What a new run is given: inputs checked against the workflow's schema, and the secrets
it reads set (their values masked wherever the run is recorded)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from stepline.documents import DocumentError, DocumentLimits, check_inputs, check_output
from stepline.errors import Detail, InvalidRequest
from stepline.secrets.cipher import SecretDecryptError, SecretKeyError, SecretsKeyUnusable
from stepline.secrets.redact import Redactor
from stepline.secrets.source import SecretSource, resolve_secrets
from stepline.spec.inputs import validate_run_inputs
from stepline.spec.validate import SecretReference, ValidationIssue


class InvalidRunInputs(InvalidRequest):
    """The inputs do not match the workflow's input schema; `issues` lists every way."""

    def __init__(self, issues: list[ValidationIssue], *, prefix: str = "body") -> None:
        self.issues = issues
        details = [Detail(prefix + issue.path.removeprefix("$"), issue.message) for issue in issues]
        summary = "; ".join(f"{d.field}: {d.message}" for d in details[:3])
        super().__init__(f"the run's inputs are invalid: {summary}", details=details)


def check_inputs_document(inputs: Any, limits: DocumentLimits, field: str) -> None:
    """TooLarge or InvalidRequest unless a run's inputs are a document within `limits`."""
    try:
        check_inputs(inputs, limits)
    except DocumentError as exc:
        raise exc.at(field) from None


def check_output_document(output: Any, limits: DocumentLimits, field: str) -> None:
    """TooLarge or InvalidRequest unless a step's output (a reviewer's edit) is a document
    within `limits`."""
    try:
        check_output(output, limits)
    except DocumentError as exc:
        raise exc.at(field) from None


def check_run_inputs(schema: dict[str, Any], inputs: Any) -> None:
    """InvalidRunInputs listing every way `inputs` misses the input `schema`, if it does."""
    issues = validate_run_inputs(schema, inputs)
    if issues:
        raise InvalidRunInputs(issues)


async def run_redactor(
    secrets: SecretSource | None,
    references: Sequence[SecretReference],
    organization_id: UUID,
    workspace_id: UUID | None,
) -> Redactor:
    """The masking of a new run's secrets; MissingSecrets naming each node and field that
    reads a secret not set for the run's organization (and workspace)."""
    if not references:
        return Redactor()
    try:
        values = await resolve_secrets(secrets, references, organization_id, workspace_id)
    except (SecretKeyError, SecretDecryptError) as exc:
        raise SecretsKeyUnusable(exc) from None
    return Redactor(values.values())
