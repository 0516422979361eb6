"""Reading workflow files (JSON or YAML) into plain data, and fingerprinting definitions.

YAML is read the YAML 1.2 way where 1.1 surprises people: only `true`/`false` are
booleans (a branch named `yes` or `off` stays a string), dates stay strings (a definition
must round-trip through JSON), and a key written twice in one mapping is an error rather
than a silent overwrite.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class WorkflowFileError(Exception):
    """A workflow file could not be read or parsed; says which file and where."""

    def __init__(
        self, message: str, *, filename: str, line: int | None = None, column: int | None = None
    ) -> None:
        where = filename if line is None else f"{filename}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}")
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column


class _WorkflowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, string dates and duplicate keys rejected."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key; SafeLoader reports it below
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


_WorkflowYamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_BOOL_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_WorkflowYamlLoader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def read_workflow_file(path: str | Path) -> dict[str, Any]:
    """The definition in a `.json`, `.yaml` or `.yml` file (other names are read as YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFileError(f"cannot read the file: {exc}", filename=str(path)) from exc
    return parse_workflow_text(text, filename=str(path))


def parse_workflow_text(text: str, *, filename: str) -> dict[str, Any]:
    """The definition in `text`; `filename`'s extension picks JSON or YAML."""
    if filename.lower().endswith(".json"):
        data = _parse_json(text, filename)
    else:
        # YAML is a superset of JSON, so any other name is read as YAML.
        data = _parse_yaml(text, filename)
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        raise WorkflowFileError(
            f"the top level must be a mapping of workflow fields (name, nodes, ...), not {found}",
            filename=filename,
        )
    return data


def _parse_json(text: str, filename: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFileError(
            f"invalid JSON: {exc.msg}", filename=filename, line=exc.lineno, column=exc.colno
        ) from exc


def _parse_yaml(text: str, filename: str) -> Any:
    try:
        return yaml.load(text, Loader=_WorkflowYamlLoader)  # safe: a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        if mark is None:
            raise WorkflowFileError(message, filename=filename) from exc
        raise WorkflowFileError(
            message, filename=filename, line=mark.line + 1, column=mark.column + 1
        ) from exc


def canonical_json(definition: Any) -> str:
    """One spelling of a definition: sorted keys, no spaces, UTF-8 kept as is."""
    if isinstance(definition, BaseModel):
        definition = definition.model_dump(mode="json", by_alias=True)
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_digest(definition: Any) -> str:
    """The SHA-256 (hex) of the canonical JSON: equal definitions, equal digests."""
    return hashlib.sha256(canonical_json(definition).encode("utf-8")).hexdigest()
