"""stepline: a workflow engine in which every step of every run is on the record."""

from __future__ import annotations

__version__ = "0.1.0"

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from typing import Any

    from stepline.sdk import AsyncClient, Client

__all__ = ["AsyncClient", "Client", "__version__"]

# The SDK pulls in httpx and pydantic models; load it on first use so that `import
# stepline` (and every `stepline.x` submodule import) stays cheap.
_LAZY = {"Client": "stepline.sdk", "AsyncClient": "stepline.sdk"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'stepline' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
