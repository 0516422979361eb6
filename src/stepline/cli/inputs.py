"""What a command reads from the user: run inputs and workflow files."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from stepline.cli.failures import fail


def parse_inputs(pairs: Sequence[str], inputs_json: str | None) -> dict[str, Any]:
    """`--input k=v` values are JSON when they parse (700 is a number), else strings.

    The inputs are a document within the configured limits (else exit code 2, saying why).
    """
    from stepline.documents import DocumentError, DocumentLimits, check_inputs
    from stepline.documents.json_text import parse_json
    from stepline.settings import get_settings

    limits = DocumentLimits.of(get_settings())
    inputs: dict[str, Any] = {}
    if inputs_json:
        try:
            loaded = parse_json(inputs_json, max_depth=limits.max_depth)
        except json.JSONDecodeError as exc:
            fail(f"--inputs-json is not valid JSON: {exc}")
        except DocumentError as exc:
            fail(f"--inputs-json: {exc}")
        if not isinstance(loaded, dict):
            fail("--inputs-json must be a JSON object")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"--input {pair!r} must look like key=value")
        try:
            inputs[key] = json.loads(raw, parse_constant=_not_json)
        except ValueError:
            inputs[key] = raw
    try:
        check_inputs(inputs, limits, path="inputs")
    except DocumentError as exc:
        fail(f"the inputs cannot be used: {exc}")
    return inputs


def _not_json(constant: str) -> NoReturn:
    """NaN and Infinity are not JSON: `--input x=NaN` is the text."""
    raise ValueError(f"{constant} is not JSON")


def load_file(path: Path) -> dict[str, Any]:
    """A workflow file (YAML or JSON) within the configured limits; a bad one is exit 2."""
    from stepline.documents import DocumentLimits
    from stepline.settings import get_settings
    from stepline.spec.loader import read_workflow_file

    return read_workflow_file(path, DocumentLimits.of(get_settings()))


def parse_json_option(value: str, option: str) -> Any:
    """The JSON value of an option such as `--output-json`."""
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        fail(f"{option} is not valid JSON: {exc}")
