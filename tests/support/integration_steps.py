"""Running one `integration` step straight through its node kind, as the engine would."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import httpx
import pytest

from stepline.nodes.base import NodeContext, NodeError, NodeServices
from stepline.nodes.integration import IntegrationConfig, IntegrationNode
from stepline.spec.models import NodeSpec


def context(
    config: dict[str, Any],
    *,
    timeout_s: float | None = 10,
    http: httpx.AsyncClient | None = None,
) -> NodeContext:
    return NodeContext(
        run_id=uuid4(),
        workflow_id=uuid4(),
        organization_id=uuid4(),
        node=NodeSpec(id="notify", type="integration", config=config),
        step_id="notify",
        attempt=1,
        inputs=config,
        config=IntegrationConfig.model_validate(config),
        timeout_s=timeout_s,
        evaluate=lambda expression: None,
        scope={"inputs": {}, "nodes": {}},
        services=NodeServices(http=http),
    )


async def perform(config: dict[str, Any], **options: Any) -> Any:
    """The step's output."""
    return (await IntegrationNode().run(context(config, **options))).output


async def perform_error(config: dict[str, Any], **options: Any) -> NodeError:
    """The error the step fails with (the test fails if it succeeds)."""
    with pytest.raises(NodeError) as caught:
        await IntegrationNode().run(context(config, **options))
    return caught.value
