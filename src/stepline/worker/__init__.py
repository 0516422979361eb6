"""Claims runs and drives the engine; heartbeats and lease recovery."""

from stepline.worker.pool import WorkerPool
from stepline.worker.worker import LeaseLost, Worker

__all__ = ["LeaseLost", "Worker", "WorkerPool"]
