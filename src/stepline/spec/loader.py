"""Reading workflow files (JSON or YAML) into plain data, and fingerprinting definitions.

YAML is read the YAML 1.2 way where 1.1 surprises people: only `true`/`false` are
booleans (a branch named `yes` or `off` stays a string), dates stay strings (a definition
must round-trip through JSON), and a key written twice in one mapping is an error rather
than a silent overwrite.

A file is a document like any other (`stepline.documents`): bounded in depth and size,
exact JSON once read. YAML's depth is held while it is read, since PyYAML recurses once
per level and its scanner slows down with every flow level it keeps open: the scanner
refuses to open one flow (`[`, `{`) or block level past the limit, the composer counts the
two together.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from stepline.documents import DocumentError, DocumentLimits, check_definition
from stepline.documents.json_text import parse_json
from stepline.documents.limits import DEPTH_SETTING
from stepline.errors import InvalidRequest

_BOOL_TAG = "tag:yaml.org,2002:bool"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class WorkflowFileError(InvalidRequest):
    """A workflow file could not be read or parsed; says which file and where."""

    def __init__(
        self,
        message: str,
        *,
        filename: str,
        line: int | None = None,
        column: int | None = None,
        too_large: bool = False,
    ) -> None:
        where = filename if line is None else f"{filename}:{line}:{column or 1}"
        super().__init__(f"{where}: {message}")
        self.message = message
        self.filename = filename
        self.line = line
        self.column = column
        self.too_large = too_large
        """The file breaks a size limit (rather than being malformed or too deep)."""


class _TooDeep(yaml.MarkedYAMLError):
    """The YAML nests deeper than the loader's limit (not a syntax error)."""


class _WorkflowYamlLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, string dates and duplicate keys rejected, and
    at most `max_depth` levels of nesting."""

    max_depth = DocumentLimits().max_depth
    _depth = 0

    def fetch_flow_collection_start(self, TokenClass: type[yaml.Token]) -> None:
        if self.flow_level >= self.max_depth:
            raise self._too_deep()
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= self.max_depth:
            raise self._too_deep()
        return bool(super().add_indent(column))

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if not self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
            return super().compose_node(parent, index)
        if self._depth >= self.max_depth:
            raise self._too_deep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _too_deep(self, mark: yaml.Mark | None = None) -> _TooDeep:
        return _TooDeep(
            None,
            None,
            f"nested deeper than {self.max_depth} levels of sequences and mappings "
            f"(the limit, {DEPTH_SETTING})",
            mark or self.get_mark(),
        )

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


def read_workflow_file(path: str | Path, limits: DocumentLimits | None = None) -> dict[str, Any]:
    """The definition in a `.json`, `.yaml` or `.yml` file (other names are read as YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFileError(f"cannot read the file: {exc}", filename=str(path)) from exc
    return parse_workflow_text(text, filename=str(path), limits=limits)


def parse_workflow_text(
    text: str, *, filename: str, limits: DocumentLimits | None = None
) -> dict[str, Any]:
    """The definition in `text`; `filename`'s extension picks JSON or YAML.

    The definition is a document within `limits` (default: the defaults), else a
    WorkflowFileError says which limit it breaks.
    """
    limits = limits or DocumentLimits()
    if filename.lower().endswith(".json"):
        data = _parse_json(text, filename, limits.max_depth)
    else:
        # YAML is a superset of JSON, so any other name is read as YAML.
        data = _parse_yaml(text, filename, limits.max_depth)
    if not isinstance(data, dict):
        found = "an empty document" if data is None else f"a {type(data).__name__}"
        raise WorkflowFileError(
            f"the top level must be a mapping of workflow fields (name, nodes, ...), not {found}",
            filename=filename,
        )
    try:
        check_definition(data, limits)
    except DocumentError as exc:
        raise WorkflowFileError(str(exc), filename=filename, too_large=exc.too_large) from exc
    return data


def _parse_json(text: str, filename: str, max_depth: int) -> Any:
    try:
        return parse_json(text, max_depth=max_depth)
    except json.JSONDecodeError as exc:
        raise WorkflowFileError(
            f"invalid JSON: {exc.msg}", filename=filename, line=exc.lineno, column=exc.colno
        ) from exc
    except DocumentError as exc:
        raise WorkflowFileError(str(exc), filename=filename) from exc


def _parse_yaml(text: str, filename: str, max_depth: int) -> Any:
    try:
        # Constructing the loader already reads the text: an unprintable character
        # (a C0/C1 control, found by the fuzzer) is refused right here.
        loader = _WorkflowYamlLoader(text)  # safe: a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise WorkflowFileError(f"invalid YAML: {exc}", filename=filename) from exc
    loader.max_depth = max_depth
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
        if isinstance(exc, _TooDeep):
            message = str(problem)
        if mark is None:
            raise WorkflowFileError(message, filename=filename) from exc
        raise WorkflowFileError(
            message, filename=filename, line=mark.line + 1, column=mark.column + 1
        ) from exc
    finally:
        loader.dispose()


def canonical_json(definition: Any) -> str:
    """One spelling of a definition: sorted keys, no spaces, UTF-8 kept as is."""
    if isinstance(definition, BaseModel):
        definition = definition.model_dump(mode="json", by_alias=True)
    return json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def definition_digest(definition: Any) -> str:
    """The SHA-256 (hex) of the canonical JSON: equal definitions, equal digests."""
    return hashlib.sha256(canonical_json(definition).encode("utf-8")).hexdigest()
