"""Where a run's secret values come from, and checking that every one it names is there.

A worker (and so the server) reads them from the `Vault` only; `stepline run` on a
laptop also takes `STEPLINE_SECRET_<NAME>` from its own environment, which no server
ever does: a server's environment is the operator's, not its workflows'.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from stepline.errors import Detail, InvalidRequest
from stepline.spec.validate import SecretReference

ENV_PREFIX = "STEPLINE_SECRET_"


class SecretSource(Protocol):
    async def values(
        self, organization_id: UUID, workspace_id: UUID | None, names: Collection[str]
    ) -> dict[str, str]:
        """The values of those of `names` that are set (the others are left out)."""
        ...


@dataclass
class EnvironmentSecrets:
    """`STEPLINE_SECRET_<NAME>` (as written, else upper-cased), then `fallback`."""

    environ: Mapping[str, str]
    fallback: SecretSource | None = None

    async def values(
        self, organization_id: UUID, workspace_id: UUID | None, names: Collection[str]
    ) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in names:
            value = self.environ.get(ENV_PREFIX + name) or self.environ.get(
                ENV_PREFIX + name.upper()
            )
            if value:
                found[name] = value
        rest = [name for name in names if name not in found]
        if rest and self.fallback is not None:
            found |= await self.fallback.values(organization_id, workspace_id, rest)
        return found


class MissingSecrets(InvalidRequest):
    """A workflow reads secrets that are not set; `references` says which node and where."""

    def __init__(self, references: Sequence[SecretReference]) -> None:
        self.references = list(references)
        names = sorted({ref.name for ref in self.references})
        listed = ", ".join(repr(name) for name in names)
        super().__init__(
            f"the workflow reads secret{'s' * (len(names) != 1)} {listed}, not set here: "
            + "; ".join(describe(ref) for ref in self.references),
            details=[
                Detail("workflow" + ref.path.removeprefix("$"), describe(ref))
                for ref in self.references
            ],
        )


def describe(ref: SecretReference) -> str:
    where = f"node {ref.node_id!r} at {ref.path}" if ref.node_id else ref.path
    return f"{where} reads secret {ref.name!r}, which is not set"


async def resolve_secrets(
    source: SecretSource | None,
    references: Sequence[SecretReference],
    organization_id: UUID,
    workspace_id: UUID | None,
) -> dict[str, str]:
    """The value of every secret `references` name; MissingSecrets listing those unset."""
    if not references:
        return {}
    names = sorted({ref.name for ref in references})
    values = await source.values(organization_id, workspace_id, names) if source is not None else {}
    missing = [ref for ref in references if ref.name not in values]
    if missing:
        raise MissingSecrets(missing)
    return values
