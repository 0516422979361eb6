"""The node registry: built-in kinds, registration rules and plugins found by entry points."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from pydantic import BaseModel, ConfigDict

from stepline.nodes.base import NodeContext, NodeKind, NodeResult
from stepline.nodes.end import EndNode
from stepline.nodes.registry import (
    ENTRY_POINT_GROUP,
    NodeKindConflictError,
    NodeKindPluginError,
    NodeRegistry,
    UnknownNodeKindError,
    default_registry,
    load_registry,
)
from stepline.nodes.start import StartNode
from stepline.spec.models import NodeSpec

OWN_BUILTINS = {"start", "end", "note", "conditional", "reshape", "merge_dicts", "api_call"}


class _EchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EchoNode(NodeKind):
    """A kind for these tests."""

    type = "echo"
    config_model = _EchoConfig

    async def run(self, ctx: NodeContext) -> NodeResult:
        return NodeResult(output="echo")


# the registry itself


def test_builtin_kinds_are_registered() -> None:
    registry = load_registry(plugins=False)
    assert set(registry) >= OWN_BUILTINS
    for name in OWN_BUILTINS:
        assert registry[name].type == name
        assert isinstance(registry[name], NodeKind)
    assert registry["code"].type == "code"


def test_default_registry_is_loaded_once() -> None:
    assert default_registry() is default_registry()
    assert set(default_registry()) >= OWN_BUILTINS


def test_unknown_type_error_lists_known_types() -> None:
    registry = NodeRegistry([StartNode, EndNode])
    with pytest.raises(UnknownNodeKindError) as caught:
        registry["llm"]
    assert str(caught.value) == "unknown node type 'llm'; known types: end, start"
    assert caught.value.type_name == "llm"
    assert isinstance(caught.value, KeyError)
    assert "llm" not in registry
    assert registry.get("llm") is None


def test_register_accepts_a_class_or_an_instance() -> None:
    registry = NodeRegistry()
    from_class = registry.register(EchoNode)
    assert isinstance(from_class, EchoNode)
    instance = StartNode()
    assert registry.register(instance) is instance
    assert dict(registry) == {"echo": from_class, "start": instance}
    assert len(registry) == 2


def test_duplicate_type_is_rejected_naming_both_sides() -> None:
    class OtherEnd(EndNode):
        """Claims the type the built-in end already has."""

    registry = NodeRegistry([EndNode])
    with pytest.raises(NodeKindConflictError) as caught:
        registry.register(OtherEnd)
    message = str(caught.value)
    assert "'end' is already registered by stepline.nodes.end.EndNode" in message
    assert "OtherEnd cannot register it again" in message
    assert registry["end"].__class__ is EndNode


@pytest.mark.parametrize("bad", [object(), BaseModel, "start", 3])
def test_register_rejects_what_is_not_a_node_kind(bad: object) -> None:
    with pytest.raises(TypeError, match="expected a NodeKind subclass or instance"):
        NodeRegistry().register(bad)  # type: ignore[arg-type]


def test_register_rejects_a_kind_without_a_type() -> None:
    class Nameless(NodeKind):
        """Forgot its type."""

        config_model = _EchoConfig

        async def run(self, ctx: NodeContext) -> NodeResult:
            return NodeResult()

    with pytest.raises(TypeError, match="Nameless does not set `type`"):
        NodeRegistry().register(Nameless)


def test_config_schemas_cover_every_kind() -> None:
    registry = load_registry(plugins=False)
    schemas = registry.config_schemas()
    assert set(schemas) == set(registry)
    assert "branches" in schemas["conditional"]["properties"]
    assert "json" in schemas["api_call"]["properties"]


# plugins through entry points


@pytest.fixture
def plugin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable directory on sys.path, where tests install tiny distributions."""
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("stepline_test_plugin_"):
            del sys.modules[name]


def install_plugin(directory: Path, module_source: str, entry_points: dict[str, str]) -> str:
    """Writes a module and a dist-info declaring `entry_points`; returns the module's name."""
    suffix = uuid4().hex[:8]
    module = f"stepline_test_plugin_{suffix}"
    (directory / f"{module}.py").write_text(textwrap.dedent(module_source))
    dist_info = directory / f"myplugin_{suffix}-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: myplugin-{suffix}\nVersion: 0.1\n"
    )
    lines = [f"[{ENTRY_POINT_GROUP}]"]
    lines += [f"{name} = {value.format(module=module)}" for name, value in entry_points.items()]
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    return module


SHOUT_MODULE = """
    from pydantic import BaseModel, ConfigDict, Field

    from stepline.nodes.base import NodeKind, NodeResult


    class ShoutConfig(BaseModel):
        model_config = ConfigDict(extra="forbid")
        text: str = Field(description="What to shout.")


    class ShoutNode(NodeKind):
        type = "shout"
        config_model = ShoutConfig

        async def run(self, ctx):
            return NodeResult(output=ctx.config.text.upper() + "!")


    class WhisperNode(ShoutNode):
        type = "whisper"

        async def run(self, ctx):
            return NodeResult(output=ctx.config.text.lower())


    WHISPER = WhisperNode()
    NOT_A_KIND = {"type": "fake"}
"""


async def test_plugin_kind_from_entry_point_is_registered_and_runs(plugin_dir: Path) -> None:
    install_plugin(
        plugin_dir,
        SHOUT_MODULE,
        {"shout": "{module}:ShoutNode", "whisper": "{module}:WHISPER"},
    )
    registry = load_registry()
    assert {"shout", "whisper"} <= set(registry)
    assert set(registry) >= OWN_BUILTINS

    shout = registry["shout"]
    config = shout.config_model.model_validate({"text": "hello"})
    ctx = NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id="s", type="shout", config={"text": "hello"}),
        step_id="s",
        attempt=1,
        inputs={"text": "hello"},
        config=config,
        timeout_s=None,
        evaluate=lambda expr: None,
        scope={},
    )
    assert (await shout.run(ctx)).output == "HELLO!"
    assert (await registry["whisper"].run(ctx)).output == "hello"


def test_plugins_are_ignored_when_not_asked_for(plugin_dir: Path) -> None:
    install_plugin(plugin_dir, SHOUT_MODULE, {"shout": "{module}:ShoutNode"})
    assert "shout" in load_registry()
    assert "shout" not in load_registry(plugins=False)


def test_plugin_that_fails_to_import_names_its_entry_point(plugin_dir: Path) -> None:
    install_plugin(plugin_dir, "raise RuntimeError('missing API key')\n", {"broken": "{module}:X"})
    with pytest.raises(NodeKindPluginError) as caught:
        load_registry()
    message = str(caught.value)
    assert "node kind plugin 'broken'" in message
    assert "stepline_test_plugin_" in message
    assert "from myplugin-" in message
    assert "failed to load: RuntimeError: missing API key" in message


def test_plugin_naming_a_missing_attribute_names_its_entry_point(plugin_dir: Path) -> None:
    install_plugin(plugin_dir, SHOUT_MODULE, {"nothing": "{module}:Nope"})
    with pytest.raises(NodeKindPluginError, match=r"plugin 'nothing'.*AttributeError"):
        load_registry()


def test_plugin_that_is_not_a_node_kind_is_rejected(plugin_dir: Path) -> None:
    install_plugin(plugin_dir, SHOUT_MODULE, {"fake": "{module}:NOT_A_KIND"})
    with pytest.raises(NodeKindPluginError) as caught:
        load_registry()
    assert "node kind plugin 'fake'" in str(caught.value)
    assert "expected a NodeKind subclass or instance" in str(caught.value)


def test_plugin_claiming_a_builtin_type_is_a_conflict(plugin_dir: Path) -> None:
    module = """
        from stepline.nodes.end import EndNode


        class MyEnd(EndNode):
            pass
    """
    install_plugin(plugin_dir, module, {"my_end": "{module}:MyEnd"})
    with pytest.raises(NodeKindConflictError) as caught:
        load_registry()
    message = str(caught.value)
    assert "'end' is already registered by stepline.nodes.end.EndNode" in message
    assert "node kind plugin 'my_end'" in message
