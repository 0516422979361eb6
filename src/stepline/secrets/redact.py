"""Masking: what a run records and serves holds `***` where a secret's value was.

A `Redactor` knows the values of the secrets a run uses and replaces each occurrence,
also inside longer text (`...?token=sk-...`, an error message, printed output), in the
forms a value commonly takes on its way there: as is, URL-encoded, and escaped as in
JSON or a Python repr. It masks strings (and mapping keys); numbers and booleans are
left as they are.

Sensitive request headers are masked by name instead (`mask_headers`), whatever their
value: a node kind uses it for what its step records of a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

from stepline.records import Attempt, ErrorDetails, StepRecord

MASK = "***"

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"}
)
"""Request headers whose values are recorded as `***` (names compared case-insensitively)."""

_TEXT_FIELDS = ("status_reason", "error", "model")
_DATA_FIELDS = (
    "inputs",
    "outputs",
    "handle_inputs",
    "handle_outputs",
    "input_document",
    "output_document",
    "split_documents",
    "trace_spans",
    "step_metadata",
)


def mask_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """`headers` with the value of each sensitive one replaced by `***`."""
    return {
        name: MASK if name.lower() in SENSITIVE_HEADERS else value
        for name, value in headers.items()
    }


def _forms(value: str) -> set[str]:
    """The spellings of `value` that may reach a record."""
    return {
        value,
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        repr(value)[1:-1],
    }


class Redactor:
    """Replaces the given secret values with `***`; false (a no-op) when it has none."""

    def __init__(self, values: Iterable[str] = ()) -> None:
        forms = {form for value in values if value for form in _forms(value) if form}
        # Longest first: a value that contains another is masked whole.
        ordered = sorted(forms, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None:
            return text
        return self._pattern.sub(MASK, text)

    def data(self, value: Any) -> Any:
        """`value` with every string inside it (dicts and lists walked) masked."""
        if self._pattern is None:
            return value
        return self._walk(value)

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                self.text(key) if isinstance(key, str) else key: self._walk(item)
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._walk(item) for item in value]
        return value

    def step(self, step: StepRecord) -> StepRecord:
        """A copy of `step` with what it holds masked; `step` itself when nothing to mask."""
        if self._pattern is None:
            return step
        changes: dict[str, Any] = {}
        for name in _TEXT_FIELDS:
            text = getattr(step, name)
            if text is not None:
                changes[name] = self.text(text)
        for name in _DATA_FIELDS:
            changes[name] = self._walk(getattr(step, name))
        if step.error_details is not None:
            changes["error_details"] = self.details(step.error_details)
        changes["attempts"] = [
            Attempt.model_validate(self._walk(attempt.model_dump())) for attempt in step.attempts
        ]
        return step.model_copy(update=changes)

    def details(self, details: ErrorDetails | None) -> ErrorDetails | None:
        if details is None or self._pattern is None:
            return details
        return ErrorDetails.model_validate(self._walk(details.model_dump()))


NO_REDACTION = Redactor()
