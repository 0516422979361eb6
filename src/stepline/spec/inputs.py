"""Checking a run's inputs against the workflow's JSON Schema, every problem at once."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.exceptions import ValidationError as SchemaViolation

from stepline.spec.loader import canonical_json
from stepline.spec.templates import child_path
from stepline.spec.validate import ValidationIssue

_ROOT = "$.inputs"
_VALIDATORS_KEPT = 256
_VALIDATORS: dict[str, Draft202012Validator] = {}
"""Validators by the canonical JSON of their schema (a validator keeps no state between
validations)."""


def validate_run_inputs(schema: dict[str, Any], inputs: Any) -> list[ValidationIssue]:
    """Each way `inputs` breaks `schema` (Draft 2020-12), at `$.inputs.<field>`."""
    try:
        validator = _validator_of(schema)
    except SchemaError as exc:
        return [
            ValidationIssue(
                path="$.inputs",
                message=f"the workflow's inputs schema is not a valid JSON Schema: {exc.message}",
                code="inputs_schema",
            )
        ]
    issues: dict[tuple[str, str], ValidationIssue] = {}
    for error in validator.iter_errors(inputs):
        for issue in _issues_for(error):
            issues.setdefault((issue.path, issue.message), issue)
    return sorted(issues.values(), key=lambda issue: issue.path)


def _validator_of(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of a schema (SchemaError if it is not one), checked against the
    metaschema once per distinct schema: that check costs more than most validations."""
    key = canonical_json(schema)
    validator = _VALIDATORS.get(key)
    if validator is None:
        own = json.loads(key)  # the cache shares no object with the caller's schema
        Draft202012Validator.check_schema(own)
        validator = Draft202012Validator(own, format_checker=Draft202012Validator.FORMAT_CHECKER)
        if len(_VALIDATORS) >= _VALIDATORS_KEPT:
            _VALIDATORS.pop(next(iter(_VALIDATORS)))
        _VALIDATORS[key] = validator
    return validator


def _issues_for(error: SchemaViolation) -> Iterable[ValidationIssue]:
    location = list(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "required" and isinstance(error.instance, dict):
        # jsonschema says "'x' is a required property" at the parent; point at the field.
        for name in schema.get("required", []):
            if name not in error.instance and repr(name) in error.message:
                yield _issue([*location, name], "required property is missing")
        return
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(schema.get("properties", {}))
        extra = [name for name in error.instance if name not in allowed]
        if extra and "patternProperties" not in schema:
            for name in extra:
                yield _issue([*location, name], "unexpected property (not in the schema)")
            return
    yield _issue(location, error.message)


def _issue(location: list[Any], message: str) -> ValidationIssue:
    path = _ROOT
    for part in location:
        path = child_path(path, part if isinstance(part, int) else str(part))
    field = path[len(_ROOT) :].lstrip(".") or "inputs"
    return ValidationIssue(path=path, message=f"{field}: {message}", code="input")
