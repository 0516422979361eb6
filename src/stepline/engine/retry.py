"""When to try a failed step again, and how long to wait first."""

from __future__ import annotations

import random

from stepline.records import ErrorCategory
from stepline.spec.models import RetryPolicy

NO_RETRY = RetryPolicy(max_attempts=1)


def should_retry(policy: RetryPolicy, attempt: int, category: ErrorCategory | None) -> bool:
    """Whether try number `attempt` (1-based), which failed with `category`, gets another."""
    return category is not None and category in policy.retry_on and attempt < policy.max_attempts


def retry_delay_s(
    policy: RetryPolicy,
    attempt: int,
    *,
    retry_after_s: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """The wait after failed try `attempt`: exponential backoff, capped, optionally jittered.

    A server's Retry-After wins over the computed wait when it asks for longer.
    """
    delay = min(policy.initial_delay_s * policy.backoff ** (attempt - 1), policy.max_delay_s)
    if policy.jitter and delay > 0:
        delay *= (rng or random).uniform(0.8, 1.2)
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return delay
