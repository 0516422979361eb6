"""What validation and the schema need to know about a node kind, without importing one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel


class KindInfo(Protocol):
    """What validation needs to know about a node kind (stepline.nodes.base.NodeKind has it)."""

    @property
    def config_model(self) -> type[BaseModel]: ...

    @property
    def raw_fields(self) -> frozenset[str]: ...

    @property
    def expression_fields(self) -> frozenset[str]: ...

    @property
    def inbound(self) -> Literal["any", "none"]: ...

    @property
    def outbound(self) -> Literal["any", "none"]: ...

    @property
    def container(self) -> bool: ...

    @property
    def always_review(self) -> bool: ...

    def output_handles(self, config: BaseModel) -> frozenset[str] | None: ...

    def expressions(self, config: Mapping[str, Any]) -> list[tuple[str, str]]: ...
