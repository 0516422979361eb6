"""The scheduler: ready steps, routing, retries, timeouts, resume after a crash."""

from stepline.engine.executor import Engine
from stepline.engine.observer import NullObserver, RunObserver

__all__ = ["Engine", "NullObserver", "RunObserver"]
