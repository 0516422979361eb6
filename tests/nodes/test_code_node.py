"""The `code` node kind: config validation, outputs and how failures reach the record."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from stepline.nodes.base import NodeContext, NodeError, NodeServices
from stepline.nodes.code import CodeConfig, CodeNode, close_default_sandbox_pool
from stepline.records import ErrorCategory, ErrorStage
from stepline.sandbox import SandboxPool
from stepline.settings import get_settings
from stepline.spec.models import NodeSpec

SCORE = """
def main(inputs):
    print("scoring", inputs["amount"])
    return {"risk": inputs["amount"] / 1000}
"""

FAILS_ON_LINE_4 = """
def main(inputs):
    print("before the failure")
    return inputs["amount"] / 0
"""


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool() as pool:
        yield pool


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """Settings read anew from the environment for this test, and again after it."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def make_ctx(
    config: dict[str, Any],
    *,
    pool: SandboxPool | None,
    timeout_s: float | None = None,
    node_id: str = "score",
) -> NodeContext:
    """A NodeContext as the engine builds it (here the config has no templates to render)."""
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id=node_id, type="code", config=config),
        step_id=node_id,
        attempt=1,
        inputs=config,
        config=CodeConfig.model_validate(config),
        timeout_s=timeout_s,
        evaluate=lambda expression: None,
        scope={},
        services=NodeServices(sandbox=pool),
    )


async def test_step_outputs_what_main_returns_and_keeps_what_it_printed(
    pool: SandboxPool,
) -> None:
    ctx = make_ctx({"inputs": {"amount": 250}, "code": SCORE}, pool=pool)

    result = await CodeNode().run(ctx)

    assert result.output == {"risk": 0.25}
    assert result.metadata == {"stdout": "scoring 250\n", "stderr": ""}


async def test_exception_is_a_permanent_execution_error_with_the_users_traceback(
    pool: SandboxPool,
) -> None:
    ctx = make_ctx({"inputs": {"amount": 1}, "code": FAILS_ON_LINE_4}, pool=pool)

    with pytest.raises(NodeError) as caught:
        await CodeNode().run(ctx)

    error = caught.value
    assert error.message == "ZeroDivisionError: division by zero"
    assert error.category is ErrorCategory.permanent
    assert error.stage is ErrorStage.execution
    assert error.details.type == "ZeroDivisionError"
    assert error.details.message == "division by zero"
    assert error.details.traceback is not None
    assert 'File "<code:score>", line 4, in main' in error.details.traceback
    assert error.metadata == {"stdout": "before the failure\n", "stderr": ""}


async def test_timeout_is_a_transient_error_naming_the_limit(pool: SandboxPool) -> None:
    code = "import time\ndef main(inputs):\n    print('working')\n    time.sleep(30)\n"
    ctx = make_ctx({"code": code}, pool=pool, timeout_s=0.5)

    with pytest.raises(NodeError) as caught:
        await CodeNode().run(ctx)

    error = caught.value
    assert error.message == "code step timed out after 0.5 s"
    assert error.category is ErrorCategory.transient
    assert error.stage is ErrorStage.execution
    assert error.metadata == {"stdout": "working\n", "stderr": ""}


async def test_default_timeout_comes_from_settings(
    pool: SandboxPool, monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("STEPLINE_CODE_TIMEOUT_S", "0.4")
    code = "import time\ndef main(inputs):\n    time.sleep(30)\n"
    ctx = make_ctx({"code": code}, pool=pool, timeout_s=None)

    with pytest.raises(NodeError, match=r"timed out after 0\.4 s"):
        await CodeNode().run(ctx)


async def test_memory_limit_is_a_permanent_error_naming_the_limit(pool: SandboxPool) -> None:
    code = "def main(inputs):\n    return len(bytearray(600 * 1024 * 1024))\n"
    ctx = make_ctx({"code": code, "memory_mb": 128}, pool=pool)

    with pytest.raises(NodeError) as caught:
        await CodeNode().run(ctx)

    error = caught.value
    assert error.message == "code step exceeded its memory limit (128 MB)"
    assert error.category is ErrorCategory.permanent
    assert error.details.type == "MemoryError"


async def test_non_json_output_is_a_permanent_error(pool: SandboxPool) -> None:
    code = "import datetime\ndef main(inputs):\n    return {'at': datetime.datetime.now()}\n"
    ctx = make_ctx({"code": code}, pool=pool)

    with pytest.raises(NodeError) as caught:
        await CodeNode().run(ctx)

    assert caught.value.category is ErrorCategory.permanent
    assert "JSON-serialisable" in caught.value.message
    assert "datetime" in caught.value.message


async def test_a_sandbox_failure_is_a_transient_error() -> None:
    closed = SandboxPool()
    await closed.close()
    ctx = make_ctx({"code": SCORE, "inputs": {"amount": 1}}, pool=closed)

    with pytest.raises(NodeError) as caught:
        await CodeNode().run(ctx)

    assert caught.value.category is ErrorCategory.transient
    assert caught.value.details.type == "SandboxError"


async def test_without_a_lent_pool_the_default_pool_runs_the_step() -> None:
    ctx = make_ctx({"inputs": {"amount": 500}, "code": SCORE}, pool=None)
    try:
        result = await CodeNode().run(ctx)
    finally:
        await close_default_sandbox_pool()

    assert result.output == {"risk": 0.5}


def test_syntax_error_fails_validation_naming_the_line() -> None:
    code = "def main(inputs):\n    return {'a': 1\n\nx = 2\n"

    with pytest.raises(ValidationError) as caught:
        CodeConfig.model_validate({"code": code})

    message = str(caught.value)
    assert "code" in message
    assert "syntax error at line 2" in message


def test_code_without_a_main_function_fails_validation() -> None:
    with pytest.raises(ValidationError, match=r"top-level function `def main\(inputs\)`"):
        CodeConfig.model_validate({"code": "def helper(inputs):\n    return 1\n"})


def test_main_nested_in_a_class_does_not_count() -> None:
    code = "class Job:\n    def main(self, inputs):\n        return 1\n"

    with pytest.raises(ValidationError, match="def main"):
        CodeConfig.model_validate({"code": code})


def test_main_without_an_argument_fails_validation_naming_the_line() -> None:
    code = "import math\n\ndef main():\n    return 1\n"

    with pytest.raises(ValidationError, match="main at line 3 takes no argument"):
        CodeConfig.model_validate({"code": code})


def test_async_main_and_optional_extra_arguments_are_valid() -> None:
    config = CodeConfig.model_validate(
        {"code": "async def main(inputs, scale=2, *, verbose=False):\n    return 1\n"}
    )

    assert config.inputs == {}
    assert config.memory_mb is None


def test_unknown_config_fields_and_tiny_memory_limits_are_refused() -> None:
    with pytest.raises(ValidationError, match="timeout"):
        CodeConfig.model_validate({"code": SCORE, "timeout": 5})
    with pytest.raises(ValidationError, match="memory_mb"):
        CodeConfig.model_validate({"code": SCORE, "memory_mb": 8})


def test_code_is_left_as_written_rather_than_rendered() -> None:
    assert CodeNode.raw_fields == frozenset({"code"})
    assert CodeNode.type == "code"
    assert CodeNode.config_model is CodeConfig


def _code_workflow(**node: Any) -> dict[str, Any]:
    config = {"code": SCORE, **node.pop("config", {})}
    return {
        "name": "ceilings",
        "nodes": [{"id": "score", "type": "code", "config": config, **node}],
    }


def _issues(document: dict[str, Any]) -> list[tuple[str, str]]:
    from stepline.nodes.registry import default_registry
    from stepline.spec.validate import validate_workflow

    issues = validate_workflow(document, default_registry())[1]
    return [(issue.path, issue.message) for issue in issues]


def test_memory_over_the_operators_ceiling_fails_validation_naming_both(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("STEPLINE_CODE_MAX_MEMORY_MB", "1024")

    issues = _issues(_code_workflow(config={"memory_mb": 3000}))

    assert len(issues) == 1
    path, message = issues[0]
    assert path == "$.nodes[0].config.memory_mb"
    assert "3000" in message and "1024 MB" in message and "STEPLINE_CODE_MAX_MEMORY_MB" in message
    assert _issues(_code_workflow(config={"memory_mb": 1024})) == []


def test_a_code_timeout_over_the_ceiling_fails_validation_from_the_node_or_the_defaults(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("STEPLINE_CODE_MAX_TIMEOUT_S", "120")

    own = _issues(_code_workflow(timeout_s=600))
    inherited = _issues({**_code_workflow(), "defaults": {"timeout_s": 300}})

    assert own == [
        (
            "$.nodes[0].timeout_s",
            "timeout_s 600 is over this server's ceiling of 120 s (STEPLINE_CODE_MAX_TIMEOUT_S)",
        )
    ]
    assert inherited[0][0] == "$.nodes[0].timeout_s"
    assert "from defaults.timeout_s" in inherited[0][1]
    assert _issues(_code_workflow(timeout_s=120)) == []


def test_any_nodes_timeout_over_the_step_ceiling_fails_validation(
    monkeypatch: pytest.MonkeyPatch, fresh_settings: None
) -> None:
    monkeypatch.setenv("STEPLINE_STEP_MAX_TIMEOUT_S", "60")
    document = {
        "name": "ceilings",
        "defaults": {"timeout_s": 90},
        "nodes": [
            {"id": "wait", "type": "api_call", "config": {"url": "http://x"}, "timeout_s": 61}
        ],
    }

    issues = dict(_issues(document))

    assert "STEPLINE_STEP_MAX_TIMEOUT_S" in issues["$.nodes[0].timeout_s"]
    assert "STEPLINE_STEP_MAX_TIMEOUT_S" in issues["$.defaults.timeout_s"]


async def test_without_the_isolation_asked_for_a_code_step_fails_permanently_saying_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # bubblewrap cannot be found
    unavailable = SandboxPool()
    ctx = make_ctx({"code": SCORE, "inputs": {"amount": 1}}, pool=unavailable)

    try:
        with pytest.raises(NodeError) as caught:
            await CodeNode().run(ctx)
    finally:
        await unavailable.close()

    assert caught.value.category is ErrorCategory.permanent
    assert caught.value.details.type == "SandboxUnavailable"
    assert "STEPLINE_CODE_ISOLATION=process" in caught.value.message
