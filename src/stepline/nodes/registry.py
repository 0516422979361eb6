"""Which node kinds exist: the built-ins plus those plugins add through entry points.

A plugin package declares its kinds in its own metadata::

    [project.entry-points."stepline.nodes"]
    shout = "my_package.nodes:ShoutNode"

Each entry point names a `NodeKind` subclass (instantiated without arguments) or instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from stepline.errors import InvalidRequest, Misconfigured
from stepline.nodes.api_call import ApiCallNode
from stepline.nodes.base import NodeKind
from stepline.nodes.classifier import ClassifierNode
from stepline.nodes.code import CodeNode
from stepline.nodes.conditional import ConditionalNode
from stepline.nodes.edit import EditNode
from stepline.nodes.end import EndNode
from stepline.nodes.extract import ExtractNode
from stepline.nodes.for_each import ForEachNode
from stepline.nodes.hil import HilNode
from stepline.nodes.integration import IntegrationNode
from stepline.nodes.knowledge_retrieval import KnowledgeRetrievalNode
from stepline.nodes.merge_dicts import MergeDictsNode
from stepline.nodes.merge_pdf import MergePdfNode
from stepline.nodes.model import ModelNode
from stepline.nodes.note import NoteNode
from stepline.nodes.parse import ParseNode
from stepline.nodes.reshape import ReshapeNode
from stepline.nodes.split import SplitNode
from stepline.nodes.start import StartNode
from stepline.nodes.sub_workflow import SubWorkflowNode
from stepline.nodes.while_loop import WhileLoopNode

ENTRY_POINT_GROUP = "stepline.nodes"


class UnknownNodeKindError(InvalidRequest, KeyError):
    """No node kind is registered under the type asked for."""

    def __init__(self, type_name: str, known: Iterable[str]) -> None:
        self.type_name = type_name
        self.message = (
            f"unknown node type {type_name!r}; known types: {', '.join(sorted(known)) or 'none'}"
        )
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError's own str() would show the message quoted, as if it were the missing key.
        return self.message


class NodeKindConflictError(Misconfigured, ValueError):
    """Two node kinds claim the same type name."""


class NodeKindPluginError(Misconfigured, RuntimeError):
    """An entry point in the `stepline.nodes` group could not be loaded as a node kind."""


class NodeRegistry(Mapping[str, NodeKind]):
    """The node kinds a workflow may use, one instance per type name."""

    def __init__(self, kinds: Iterable[type[NodeKind] | NodeKind] = ()) -> None:
        self._kinds: dict[str, NodeKind] = {}
        self._origins: dict[str, str] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: type[NodeKind] | NodeKind, *, origin: str | None = None) -> NodeKind:
        """Add a kind (a NodeKind subclass, instantiated here, or an instance); returns it.

        `origin` says where the kind came from, for the error when a type is taken twice.
        """
        instance = _as_instance(kind)
        type_name = instance.type
        source = origin or f"{type(instance).__module__}.{type(instance).__qualname__}"
        if type_name in self._kinds:
            raise NodeKindConflictError(
                f"node type {type_name!r} is already registered by {self._origins[type_name]}; "
                f"{source} cannot register it again"
            )
        self._kinds[type_name] = instance
        self._origins[type_name] = source
        return instance

    def config_schemas(self) -> dict[str, dict[str, Any]]:
        """Each kind's config JSON Schema by type name, for the published workflow schema."""
        schemas: dict[str, dict[str, Any]] = {}
        for name, kind in self._kinds.items():
            # Typed here because base.py's `type` ClassVar shadows the builtin for mypy there.
            config_model: type[BaseModel] = kind.config_model
            schemas[name] = config_model.model_json_schema()
        return schemas

    def __getitem__(self, type_name: str) -> NodeKind:
        try:
            return self._kinds[type_name]
        except KeyError:
            raise UnknownNodeKindError(type_name, self._kinds) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def __repr__(self) -> str:
        return f"NodeRegistry({sorted(self._kinds)})"


def builtin_kinds() -> list[type[NodeKind]]:
    """The node kinds stepline ships with."""
    return [
        StartNode,
        EndNode,
        NoteNode,
        CodeNode,
        ConditionalNode,
        ReshapeNode,
        MergeDictsNode,
        ApiCallNode,
        IntegrationNode,
        ForEachNode,
        WhileLoopNode,
        HilNode,
        SubWorkflowNode,
        ModelNode,
        ClassifierNode,
        ExtractNode,
        ParseNode,
        KnowledgeRetrievalNode,
        SplitNode,
        MergePdfNode,
        EditNode,
    ]


def plugin_entry_points() -> list[EntryPoint]:
    """The entry points installed packages declare in the `stepline.nodes` group."""
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_registry(*, plugins: bool = True) -> NodeRegistry:
    """A fresh registry of the built-in kinds, plus the installed plugins' kinds if `plugins`."""
    registry = NodeRegistry(builtin_kinds())
    if plugins:
        for entry_point in plugin_entry_points():
            registry.register(_load_plugin(entry_point), origin=_describe(entry_point))
    return registry


@lru_cache(maxsize=1)
def default_registry() -> NodeRegistry:
    """The registry the engine and validator use: built-ins and plugins, loaded once."""
    return load_registry(plugins=True)


def _load_plugin(entry_point: EntryPoint) -> NodeKind:
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise NodeKindPluginError(
            f"{_describe(entry_point)} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        return _as_instance(loaded)
    except (TypeError, ValueError) as exc:
        raise NodeKindPluginError(f"{_describe(entry_point)}: {exc}") from exc


def _as_instance(kind: object) -> NodeKind:
    """A usable NodeKind instance from a subclass or an instance, or a TypeError saying why not."""
    if isinstance(kind, type) and issubclass(kind, NodeKind):
        instance = kind()
    elif isinstance(kind, NodeKind):
        instance = kind
    else:
        raise TypeError(f"expected a NodeKind subclass or instance, got {kind!r}")
    type_name = getattr(instance, "type", None)
    if not isinstance(type_name, str) or not type_name:
        raise TypeError(f"{type(instance).__qualname__} does not set `type` to a non-empty str")
    if not hasattr(instance, "config_model"):
        raise TypeError(f"{type(instance).__qualname__} does not set `config_model`")
    return instance


def _describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist.name if entry_point.dist is not None else "an unknown distribution"
    return (
        f"node kind plugin {entry_point.name!r} ({entry_point.value}) "
        f"in group {ENTRY_POINT_GROUP!r} from {dist}"
    )
