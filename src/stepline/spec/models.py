"""The workflow definition as typed data: what a JSON or YAML workflow file says."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from stepline.records import ErrorCategory

NODE_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*$"
MAX_NODE_ID_LENGTH = 128
"""A node id keys every step row and its indexes (PostgreSQL's btree refuses huge keys)."""

MAX_COLUMN_TEXT = 500
"""The longest column id, label or field path."""

_PATH_SEGMENT = r'\[(?:0|[1-9][0-9]*)\]|\["(?:[^"\\]|\\.)*"\]'
FIELD_PATH_PATTERN = rf"^(?:[^.\[\]]+|{_PATH_SEGMENT})(?:\.[^.\[\]]+|{_PATH_SEGMENT})*$"
"""A column's field path, for the published schema (spec.columns parses it, and says
where one goes wrong)."""

REJECTED_HANDLE = "rejected"
"""The output handle a rejected review follows (any node with `review`, and `hil`)."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class RetryPolicy(_Spec):
    """How often and how patiently a failing step is tried again."""

    max_attempts: int = Field(default=1, ge=1, le=100, description="Tries in all; 1 means none.")
    initial_delay_s: float = Field(default=1.0, ge=0, description="Wait before the second try.")
    backoff: float = Field(default=2.0, ge=1, description="Each wait is the last one times this.")
    max_delay_s: float = Field(default=60.0, ge=0, description="No wait is longer than this.")
    jitter: bool = Field(default=True, description="Randomize each wait by up to +-20%.")
    retry_on: list[ErrorCategory] = Field(
        default_factory=lambda: [ErrorCategory.transient, ErrorCategory.quota],
        description="Which error categories are retried; permanent errors never are by default.",
    )


class NodeDefaults(_Spec):
    """Settings every node inherits unless it sets its own."""

    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(default=None, gt=0)


class ReviewSpec(_Spec):
    """When a person must approve a node's output before the run goes on."""

    when: str = Field(
        default="always",
        min_length=1,
        description="'always', or a Jinja expression (no braces) over the template names plus "
        '`output` (the node\'s result), e.g. "output.confidence < 0.8".',
    )


class BodySpec(_Spec):
    """A container's sub-graph (a loop body): run once per iteration."""

    nodes: list[NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)
    output: Any = Field(
        default=None,
        description="A template for each iteration's result; without it, the body's end "
        "node (or single sink) output, or a mapping of the sinks' outputs.",
    )


class NodeSpec(_Spec):
    id: str = Field(
        pattern=NODE_ID_PATTERN,
        max_length=MAX_NODE_ID_LENGTH,
        description=f"Unique within the workflow; at most {MAX_NODE_ID_LENGTH} characters.",
    )
    type: str = Field(description="The node kind, e.g. code, api_call, conditional.")
    label: str | None = Field(default=None, description="A human name; defaults to the id.")
    description: str | None = None
    config: dict[str, Any] = Field(default_factory=dict, description="The kind's settings.")
    retry: RetryPolicy | None = None
    timeout_s: float | None = Field(default=None, gt=0, description="Wall-clock limit per try.")
    on_error: Literal["fail", "continue"] = Field(
        default="fail",
        description="fail: the run fails; continue: the error is recorded, downstream runs. "
        "On a loop: whether a failed iteration fails the loop or lands in its result list.",
    )
    review: ReviewSpec | None = Field(
        default=None, description="Pause for a person's approval of this node's output."
    )
    body: BodySpec | None = Field(
        default=None, description="The sub-graph a container node (for_each, while_loop) runs."
    )

    @property
    def display_label(self) -> str:
        return self.label or self.id


class EdgeSpec(_Spec):
    source: str = Field(alias="from", description="The upstream node's id.")
    target: str = Field(alias="to", description="The downstream node's id.")
    handle: str | None = Field(
        default=None,
        description="The source's output branch this edge follows (e.g. a conditional's "
        "branch name or 'else'); none means the default output.",
    )


class ColumnSpec(_Spec):
    """One table column: the value a step's output holds at a path, under a label.

    `mapped_output` (stepline.spec.columns) picks these values out of each step's output.
    """

    id: str = Field(
        min_length=1, max_length=MAX_COLUMN_TEXT, description="Unique among the columns."
    )
    step_id: str = Field(
        alias="stepId",
        min_length=1,
        max_length=MAX_NODE_ID_LENGTH,
        description="The id of the node whose output the column reads (every iteration's "
        "step, for a node inside a loop body).",
    )
    field_path: str = Field(
        alias="fieldPath",
        min_length=1,
        max_length=MAX_COLUMN_TEXT,
        json_schema_extra={"pattern": FIELD_PATH_PATTERN},
        description="Where in the output: keys joined by dots, list indexes in brackets, "
        'e.g. `content`, `result.output`, `choices[0].message.content`, `rows[2]["a.b"]` '
        "(a quoted key in brackets may hold dots or brackets).",
    )
    label: str = Field(
        min_length=1,
        max_length=MAX_COLUMN_TEXT,
        description="The column's heading; the key of its value in a step's mapped_output.",
    )


MAX_CONCURRENCY = 100_000


class WorkflowSpec(_Spec):
    name: str = Field(min_length=1, max_length=200)
    description: str = ""
    inputs: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="A JSON Schema of the run's inputs.",
    )
    nodes: list[NodeSpec] = Field(min_length=1)
    edges: list[EdgeSpec] = Field(default_factory=list)
    output: Any = Field(
        default=None,
        description="A template for the run's result; without it, the end nodes' outputs.",
    )
    defaults: NodeDefaults | None = None
    timeout_s: float | None = Field(default=None, gt=0, description="Wall-clock limit per run.")
    concurrency: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_CONCURRENCY,
        description="At most this many runs of the workflow run at once, across every worker "
        "of the fleet; the others wait queued, oldest first.",
    )
    column_config: list[ColumnSpec] | None = Field(
        default=None,
        description="Table columns read from the steps' outputs: each step's `mapped_output` "
        "is {label: the value at fieldPath in its output} for the columns naming its node.",
    )
    _secret_references: tuple[Any, ...] = PrivateAttr(default=())
    """Set by validation: each `secrets.NAME` the nodes read (see spec.validate)."""

    def node(self, node_id: str) -> NodeSpec:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)


BodySpec.model_rebuild()
NodeSpec.model_rebuild()
