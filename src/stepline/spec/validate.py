"""Validating a workflow document: every problem at once, each with its node id and JSON path.

The node kinds are passed in (`KindInfo`), so definitions never import node
implementations. Issue codes, for callers that branch on them:

- `structure`: the document does not fit the workflow model (pydantic);
- `unknown_type`, `duplicate_id`, `config`: a node's type, id or config is wrong;
- `unknown_node`, `unknown_handle`, `no_inbound`, `no_outbound`, `duplicate_edge`: an edge;
- `cycle`: the edges loop;
- `template_syntax`, `unknown_name`, `not_upstream`: a template or expression;
- `secret_name`: a `secrets` reference that is not `secrets.NAME` with a valid name;
- `inputs_schema`: the workflow's `inputs` is not a valid JSON Schema;
- `unknown_node`, `field_path`, `duplicate_id`, `duplicate_label`: a column of
  `column_config` (see spec.columns);
- `kind_error`: a node kind failed while describing a config (a bug in the kind).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import ValidationError

from stepline.errors import InvalidRequest
from stepline.secrets.names import name_problem
from stepline.spec.ceilings import defaults_problems, timeout_problems
from stepline.spec.columns import column_problems
from stepline.spec.graph import WorkflowGraph
from stepline.spec.kind_info import KindInfo as KindInfo
from stepline.spec.models import REJECTED_HANDLE, ColumnSpec, EdgeSpec, NodeSpec, WorkflowSpec
from stepline.spec.reporting import (
    join_path,
    loc_path,
    pydantic_message,
    salvage,
    salvage_nodes,
    suggest,
)

# Re-exported: callers found them here before they had a module of their own.
from stepline.spec.secret_references import SecretReference as SecretReference
from stepline.spec.secret_references import may_read_secrets as may_read_secrets
from stepline.spec.secret_references import secret_references as secret_references
from stepline.spec.templates import (
    KNOWN_ROOTS,
    Reference,
    TemplateError,
    Templates,
    child_path,
    get_templates,
    is_template,
    iter_strings,
)

_NODE_PATH = re.compile(r"^\$\.nodes\[(\d+)\]")
_OUTPUT_ROOTS = frozenset({"inputs", "nodes", "run"})


@dataclass(frozen=True)
class ValidationIssue:
    """One problem in a workflow document (or a run's inputs): where, which node, what."""

    path: str
    message: str
    node_id: str | None = None
    code: str = "invalid"

    def __str__(self) -> str:
        match = _NODE_PATH.match(self.path)
        if match and self.node_id is not None:
            return f"nodes[{match.group(1)}] (id {self.node_id!r}) {self.path}: {self.message}"
        return f"{self.path}: {self.message}"


class WorkflowInvalid(InvalidRequest):
    """A workflow document has problems; `issues` lists every one."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        count = len(issues)
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"the workflow is invalid ({count} problem{'s' * (count != 1)}):\n{lines}")
        self.issues = issues


def load_workflow(document: Any, kinds: Mapping[str, KindInfo]) -> WorkflowSpec:
    """The workflow in `document`, or WorkflowInvalid listing every problem."""
    spec, issues = validate_workflow(document, kinds)
    if issues or spec is None:
        raise WorkflowInvalid(issues)
    return spec


def validate_workflow(
    document: Any, kinds: Mapping[str, KindInfo]
) -> tuple[WorkflowSpec | None, list[ValidationIssue]]:
    """The parsed workflow (None if its structure is broken) and every problem found.

    Structure problems do not stop the other checks: the nodes and edges that do parse
    are still checked, so one pass reports everything.
    """
    if isinstance(document, WorkflowSpec):
        document = document.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if not isinstance(document, Mapping):
        found = type(document).__name__
        message = f"a workflow must be a mapping of fields (name, nodes, ...), not {found}"
        return None, [ValidationIssue(path="$", message=message, code="structure")]
    return _Checker(document, kinds).run()


@dataclass
class _NodeState:
    """What the checks learned about one parsed node."""

    base: str
    """Its JSON path, e.g. `$.nodes[2]` or, in a loop body, `$.nodes[2].body.nodes[0]`."""
    node: NodeSpec
    kind: KindInfo | None
    in_graph: bool
    config_ok: bool = False
    config_strict: bool = False
    handles_known: bool = False
    handles: frozenset[str] | None = None


@dataclass
class _Checker:
    document: Mapping[str, Any]
    kinds: Mapping[str, KindInfo]
    templates: Templates = field(default_factory=get_templates)
    issues: list[ValidationIssue] = field(default_factory=list)
    secrets: list[SecretReference] = field(default_factory=list)
    all_states: list[_NodeState] = field(default_factory=list)
    ids: dict[str, _NodeState] = field(default_factory=dict)
    """The first node of each id at any depth: ids are unique across bodies too."""

    def run(self) -> tuple[WorkflowSpec | None, list[ValidationIssue]]:
        spec = self._parse_structure()
        if spec is not None:
            nodes = [(index, node, True) for index, node in enumerate(spec.nodes)]
            edges = list(enumerate(spec.edges))
        else:
            nodes = salvage_nodes(self.document.get("nodes"))
            edges = salvage(self.document.get("edges"), EdgeSpec)
        top = self._check_level("$", nodes, edges)
        node_ids = set(self.ids)
        self._check_level_templates(top, node_ids, frozenset())
        self._check_output(node_ids)
        self._check_columns(spec, node_ids)
        self._check_inputs_schema()
        if spec is not None and spec.defaults is not None:
            for path, message in defaults_problems(spec.defaults.timeout_s):
                self._add(path, message, None)
        if spec is not None:
            spec._secret_references = tuple(self.secrets)
        return spec, self.issues

    def _check_level(
        self,
        base: str,
        nodes: list[tuple[int, NodeSpec, bool]],
        edges: list[tuple[int, EdgeSpec]],
    ) -> _Level:
        """One graph (the workflow, or a container's body) and, recursively, its bodies."""
        states, level_states = self._register_nodes(base, nodes)
        graph_edges = self._check_edges(base, edges, states)
        graph = WorkflowGraph.from_parts(
            (state.node for state in states.values()), (edge for _, edge in graph_edges)
        )
        self._check_cycle(base, graph, graph_edges)
        level = _Level(graph, level_states, [])
        for state in level.states:
            body = state.node.body if state.kind is not None else None
            if body is not None and _is_container(state.kind):
                body_base = f"{state.base}.body"
                body_nodes = [(i, n, True) for i, n in enumerate(body.nodes)]
                child = self._check_level(body_base, body_nodes, list(enumerate(body.edges)))
                level.bodies.append((state, child))
        return level

    def _check_level_templates(
        self, level: _Level, node_ids: set[str], visible: frozenset[str]
    ) -> None:
        """Templates of one graph; a body also sees what is upstream of its container."""
        bodies = {state.node.id: child for state, child in level.bodies}
        for state in level.states:
            child = bodies.get(state.node.id)
            inner = frozenset(child.graph.nodes) if child is not None else frozenset()
            self._check_node_templates(state, level.graph, node_ids, visible | inner)
            self._check_review(state, level.graph, node_ids, visible)
        for state, child in level.bodies:
            if not state.in_graph:
                continue
            seen = visible | level.graph.upstream(state.node.id)
            self._check_level_templates(child, node_ids, seen)
            body = state.node.body
            if body is not None:
                roots = KNOWN_ROOTS
                path = f"{state.base}.body.output"
                for where, source in iter_strings(body.output, path):
                    if is_template(source):
                        refs = self._references(source, where, state.node.id, expression=False)
                        everything = seen | frozenset(child.graph.nodes)
                        self._check_references(
                            refs, state.node.id, None, None, node_ids, roots, everything
                        )

    def _check_review(
        self, state: _NodeState, graph: WorkflowGraph, node_ids: set[str], visible: frozenset[str]
    ) -> None:
        review = state.node.review
        if review is None or review.when == "always" or state.kind is None:
            return
        path = f"{state.base}.review.when"
        refs = self._references(review.when, path, state.node.id, expression=True)
        reader = state.node.id if state.in_graph else None
        roots = KNOWN_ROOTS | {"output"}
        self._check_references(refs, state.node.id, reader, graph, node_ids, roots, visible)

    # -- structure -------------------------------------------------------------------------

    def _parse_structure(self) -> WorkflowSpec | None:
        try:
            return WorkflowSpec.model_validate(self.document)
        except ValidationError as exc:
            for error in exc.errors():
                loc = error["loc"]
                self._add(loc_path("$", loc), pydantic_message(error), self._raw_node_id(loc))
            return None

    def _raw_node_id(self, loc: tuple[int | str, ...]) -> str | None:
        """The id written on the node (or an edge's source) that a structure error is in."""
        if len(loc) < 2 or loc[0] not in ("nodes", "edges") or not isinstance(loc[1], int):
            return None
        items = self.document.get(loc[0])
        if not isinstance(items, list) or loc[1] >= len(items):
            return None
        item = items[loc[1]]
        key = "id" if loc[0] == "nodes" else "from"
        value = item.get(key) if isinstance(item, Mapping) else None
        return value if isinstance(value, str) else None

    # -- nodes -----------------------------------------------------------------------------

    def _register_nodes(
        self, prefix: str, nodes: list[tuple[int, NodeSpec, bool]]
    ) -> tuple[dict[str, _NodeState], list[_NodeState]]:
        """The first node of each id; duplicates are reported but still checked alone.

        A node whose own structure is broken (already reported) still holds its id, so
        edges and templates naming it do not cascade into more issues; it is not checked.
        """
        unique: dict[str, _NodeState] = {}
        level_states: list[_NodeState] = []
        for index, node, parsed in nodes:
            base = f"{prefix}.nodes[{index}]"
            kind = self.kinds.get(node.type) if parsed else None
            first = self.ids.get(node.id)
            state = _NodeState(base, node, kind, in_graph=first is None)
            if first is None:
                unique[node.id] = state
                self.ids[node.id] = state
            else:
                message = f"duplicate node id {node.id!r} (first used by {first.base})"
                self._add(f"{base}.id", message, node.id, "duplicate_id")
            self.all_states.append(state)
            level_states.append(state)
            if not parsed:
                continue
            if kind is None:
                known = ", ".join(sorted(self.kinds)) or "none registered"
                hint = suggest(node.type, self.kinds)
                message = f"unknown node type {node.type!r}{hint}; known types: {known}"
                self._add(f"{base}.type", message, node.id, "unknown_type")
                continue
            self._check_config(state, kind)
            self._check_kind_rules(state, kind)
            self._check_container(state, kind)
            self._check_ceilings(state, kind)
        return unique, level_states

    def _check_ceilings(self, state: _NodeState, kind: KindInfo) -> None:
        defaults = self.document.get("defaults")
        default_timeout = defaults.get("timeout_s") if isinstance(defaults, dict) else None
        if not isinstance(default_timeout, int | float):
            default_timeout = None
        for path, message in timeout_problems(state.node, kind, state.base, default_timeout):
            self._add(path, message, state.node.id, "config")

    def _check_container(self, state: _NodeState, kind: KindInfo) -> None:
        node = state.node
        container = _is_container(kind)
        if container and node.body is None:
            message = f"a {node.type!r} node needs a `body`: the nodes (and edges) to iterate"
            self._add(f"{state.base}.body", message, node.id, "config")
        elif not container and node.body is not None:
            message = f"only container nodes (for_each, while_loop) take a body, not {node.type!r}"
            self._add(f"{state.base}.body", message, node.id, "config")
        if container and node.retry is not None:
            message = "a loop is not retried as a whole; set `retry` on the nodes of its body"
            self._add(f"{state.base}.retry", message, node.id, "config")

    def _check_config(self, state: _NodeState, kind: KindInfo) -> None:
        node, base = state.node, f"{state.base}.config"
        strict = True
        try:
            model = kind.config_model.model_validate(node.config)
        except ValidationError as exc:
            kept = [e for e in exc.errors() if not _template_stands_in(e, kind)]
            for error in kept:
                path = loc_path(base, error["loc"])
                self._add(path, pydantic_message(error), node.id, "config")
            if kept:
                return
            # Only templates stand where values are expected: the shape is right, so try
            # the unvalidated config for the handles; a kind that cannot tell says nothing.
            model = kind.config_model.model_construct(**node.config)
            strict = False
        state.config_ok = True
        state.config_strict = strict
        try:
            state.handles = kind.output_handles(model)
            if node.review is not None or getattr(kind, "always_review", False):
                state.handles = (state.handles or frozenset()) | {REJECTED_HANDLE}
            state.handles_known = True
        except Exception as exc:
            if not strict:
                return
            message = f"the {node.type!r} kind could not list its output handles: {exc!r}"
            self._add(base, message, node.id, "kind_error")

    def _check_kind_rules(self, state: _NodeState, kind: KindInfo) -> None:
        """What only the kind can tell of a well-formed config, through two optional hooks:
        `config_problems(config)` (e.g. a provider the server does not configure) and
        `configured_secrets(config)` (secrets read outside templates, e.g. a provider's key,
        which the run needs as much as those its templates name)."""
        if not state.config_ok:
            return
        node, base = state.node, f"{state.base}.config"
        try:
            problems = getattr(kind, "config_problems", None)
            for below, message in problems(node.config) if problems is not None else []:
                self._add(join_path(base, below), message, node.id, "config")
            reads = getattr(kind, "configured_secrets", None)
            for below, name in reads(node.config) if reads is not None else []:
                self.secrets.append(SecretReference(name, node.id, join_path(base, below)))
        except Exception as exc:
            message = f"the {node.type!r} kind could not check its config: {exc!r}"
            self._add(base, message, node.id, "kind_error")

    # -- edges -----------------------------------------------------------------------------

    def _check_edges(
        self, prefix: str, edges: list[tuple[int, EdgeSpec]], states: dict[str, _NodeState]
    ) -> list[tuple[int, EdgeSpec]]:
        """Report bad edges; return the ones the graph can hold (both ends exist)."""
        usable: list[tuple[int, EdgeSpec]] = []
        seen: dict[tuple[str, str, str | None], int] = {}
        for index, edge in edges:
            base = f"{prefix}.edges[{index}]"
            source, target = states.get(edge.source), states.get(edge.target)
            owner = edge.source if source else (edge.target if target else None)
            for end, state, name in ((edge.source, source, "from"), (edge.target, target, "to")):
                if state is None:
                    message = f"unknown node {end!r}{suggest(end, states)}"
                    self._add(f"{base}.{name}", message, owner, "unknown_node")
            if source is None or target is None:
                continue
            key = (edge.source, edge.target, edge.handle)
            if key in seen:
                message = f"the same edge as {prefix}.edges[{seen[key]}]"
                self._add(base, message, owner, "duplicate_edge")
                continue
            seen[key] = index
            usable.append((index, edge))
            self._check_edge_ends(base, edge, source, target)
        return usable

    def _check_edge_ends(
        self, base: str, edge: EdgeSpec, source: _NodeState, target: _NodeState
    ) -> None:
        if source.kind is not None and source.kind.outbound == "none":
            message = f"node {edge.source!r} (type {source.node.type!r}) has no outputs"
            self._add(f"{base}.from", message, edge.source, "no_outbound")
        if target.kind is not None and target.kind.inbound == "none":
            message = f"node {edge.target!r} (type {target.node.type!r}) takes no inbound edges"
            self._add(f"{base}.to", message, edge.source, "no_inbound")
        if edge.handle is None or not source.handles_known:
            return
        if source.handles is None:
            message = (
                f"node {edge.source!r} (type {source.node.type!r}) has only the default "
                f"output; remove handle {edge.handle!r}"
            )
            self._add(f"{base}.handle", message, edge.source, "unknown_handle")
        elif edge.handle not in source.handles:
            known = ", ".join(sorted(source.handles)) or "none"
            message = (
                f"node {edge.source!r} has no output handle {edge.handle!r}"
                f"{suggest(edge.handle, source.handles)}; its handles are: {known}"
            )
            self._add(f"{base}.handle", message, edge.source, "unknown_handle")

    def _check_cycle(
        self, prefix: str, graph: WorkflowGraph, edges: list[tuple[int, EdgeSpec]]
    ) -> None:
        cycle = graph.find_cycle()
        if cycle is None:
            return
        closing = next(
            (i for i, e in edges if e.source == cycle[-2] and e.target == cycle[-1]), None
        )
        path = f"{prefix}.edges" if closing is None else f"{prefix}.edges[{closing}]"
        message = "the edges form a cycle: " + " -> ".join(cycle)
        self._add(path, message, cycle[0], "cycle")

    # -- templates and expressions -------------------------------------------------------------

    def _check_node_templates(
        self,
        state: _NodeState,
        graph: WorkflowGraph,
        node_ids: set[str],
        visible: frozenset[str],
    ) -> None:
        kind, node = state.kind, state.node
        if kind is None:
            return
        base = f"{state.base}.config"
        reader = node.id if state.in_graph else None
        for key, value in node.config.items():
            if key in kind.raw_fields:
                continue
            for path, source in iter_strings(value, child_path(base, str(key))):
                if is_template(source):
                    refs = self._references(source, path, node.id, expression=False)
                    self._check_references(
                        refs, node.id, reader, graph, node_ids, KNOWN_ROOTS, visible
                    )
        for path, expression in self._expressions(state, kind, base):
            refs = self._references(expression, path, node.id, expression=True)
            self._check_references(refs, node.id, reader, graph, node_ids, KNOWN_ROOTS, visible)

    def _expressions(self, state: _NodeState, kind: KindInfo, base: str) -> list[tuple[str, str]]:
        config = state.node.config
        found: dict[str, str] = {}
        for name in sorted(kind.expression_fields):
            value = config.get(name)
            if isinstance(value, str):
                found[child_path(base, name)] = value
        if not state.config_ok:
            return list(found.items())  # the kind may not understand a malformed config
        try:
            listed = kind.expressions(config)
        except Exception as exc:
            if state.config_strict:  # else templates stand in and may confuse the kind
                message = f"the {state.node.type!r} kind could not list its expressions: {exc!r}"
                self._add(base, message, state.node.id, "kind_error")
            listed = []
        for below, expression in listed:
            found.setdefault(join_path(base, below), expression)
        return list(found.items())

    def _references(
        self, source: str, path: str, node_id: str | None, *, expression: bool
    ) -> list[Reference]:
        try:
            return self.templates.references(source, expression=expression, path=path)
        except TemplateError as exc:
            self._add(path, exc.message, node_id, "template_syntax")
            return []

    def _check_references(
        self,
        references: Iterable[Reference],
        owner: str | None,
        reader: str | None,
        graph: WorkflowGraph | None,
        node_ids: set[str],
        roots: frozenset[str],
        visible: frozenset[str] = frozenset(),
    ) -> None:
        """Check each name; `reader` (a node in the graph) may read only its upstream nodes.

        `visible` are nodes outside the graph that it may read too (for a loop body, what
        is upstream of its container); a node inside another body is never readable.
        """
        for ref in references:
            if ref.root not in roots:
                known = ", ".join(sorted(roots))
                message = f"unknown name {ref.root!r}; templates can read {known}"
                self._add(ref.path, message, owner, "unknown_name")
            elif ref.root == "secrets":
                self._check_secret(ref, owner)
            elif ref.root != "nodes" or ref.node_id is None:
                continue
            elif ref.node_id not in node_ids:
                message = f"unknown node {ref.node_id!r}{suggest(ref.node_id, node_ids)}"
                self._add(ref.path, message, owner, "unknown_node")
            elif ref.node_id in visible:
                continue
            elif reader is None or graph is None:
                if visible:
                    message = f"node {ref.node_id!r} is not readable here (it is in another body)"
                    self._add(ref.path, message, owner, "not_upstream")
                continue
            elif ref.node_id not in graph.nodes:
                message = (
                    f"node {ref.node_id!r} is not readable from {reader!r}: it is inside a "
                    "loop body, or in a body other than this one"
                )
                self._add(ref.path, message, owner, "not_upstream")
            elif ref.node_id == reader:
                message = f"node {reader!r} cannot read its own output"
                self._add(ref.path, message, owner, "not_upstream")
            elif not graph.is_upstream(ref.node_id, reader):
                message = (
                    f"node {ref.node_id!r} is not upstream of {reader!r}, so its output is "
                    f"not there yet; add an edge path from {ref.node_id!r} to {reader!r}"
                )
                self._add(ref.path, message, owner, "not_upstream")

    def _check_secret(self, ref: Reference, owner: str | None) -> None:
        """A secret is named literally (`secrets.NAME`): the run's secrets are known, and
        checked, before it starts, and a template cannot reach any other."""
        if ref.secret is None:
            message = "read a secret by its name, as secrets.NAME (e.g. secrets.API_KEY)"
            self._add(ref.path, message, owner, "secret_name")
            return
        problem = name_problem(ref.secret)
        if problem is not None:
            self._add(ref.path, problem, owner, "secret_name")
            return
        self.secrets.append(SecretReference(ref.secret, owner, ref.path))

    def _check_output(self, node_ids: set[str]) -> None:
        output = self.document.get("output")
        for path, source in iter_strings(output, "$.output"):
            if is_template(source):
                refs = self._references(source, path, None, expression=False)
                self._check_references(refs, None, None, None, node_ids, _OUTPUT_ROOTS)

    def _check_columns(self, spec: WorkflowSpec | None, node_ids: set[str]) -> None:
        if spec is not None:
            columns = list(enumerate(spec.column_config or []))
        else:
            columns = salvage(self.document.get("column_config"), ColumnSpec)
        for path, message, code in column_problems(columns, node_ids):
            self._add(path, message, None, code)

    # -- inputs schema ---------------------------------------------------------------------------

    def _check_inputs_schema(self) -> None:
        schema = self.document.get("inputs")
        if not isinstance(schema, dict):
            return  # absent (the default is used) or reported as a structure problem
        meta = Draft202012Validator(Draft202012Validator.META_SCHEMA)
        for error in meta.iter_errors(schema):
            # "is not valid under any of the given schemas" says little; the closest
            # alternative's complaint says what to write instead.
            closest = best_match(error.context) if error.context else None
            path = loc_path("$.inputs", tuple(error.absolute_path))
            message = f"not a valid JSON Schema: {(closest or error).message}"
            self._add(path, message, None, "inputs_schema")

    def _add(self, path: str, message: str, node_id: str | None, code: str = "structure") -> None:
        self.issues.append(ValidationIssue(path=path, message=message, node_id=node_id, code=code))


@dataclass
class _Level:
    """One checked graph: its nodes' states, and each container's checked body."""

    graph: WorkflowGraph
    states: list[_NodeState]
    bodies: list[tuple[_NodeState, _Level]]


def _is_container(kind: KindInfo | None) -> bool:
    return bool(getattr(kind, "container", False))


def _template_stands_in(error: Any, kind: KindInfo) -> bool:
    """Whether a config error is a template standing where a typed value is expected.

    Templates in rendered fields are resolved before the config is validated at run time,
    so at definition time they may stand anywhere; raw fields are never rendered.
    """
    value = error.get("input")
    loc = error["loc"]
    if not isinstance(value, str) or not is_template(value):
        return False
    return not (loc and loc[0] in kind.raw_fields)
