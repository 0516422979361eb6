"""Token counts from a chat completion's `usage`, and their sums over several calls."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stepline.records import TokenUsage


def tokens_of(usage: Any) -> TokenUsage | None:
    """`usage` ({prompt_tokens, completion_tokens, total_tokens}) as the record's tokens;
    None when the provider sent none, or nothing countable."""
    if not isinstance(usage, Mapping):
        return None
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    total = _count(usage.get("total_tokens"))
    if prompt is None and completion is None and total is None:
        return None
    prompt, completion = prompt or 0, completion or 0
    return TokenUsage(
        prompt=prompt,
        completion=completion,
        total=total if total is not None else prompt + completion,
    )


def total_tokens(counts: Iterable[TokenUsage | None]) -> TokenUsage | None:
    """The sum of the counts that are known; None when none is."""
    known = [count for count in counts if count is not None]
    if not known:
        return None
    return TokenUsage(
        prompt=sum(count.prompt for count in known),
        completion=sum(count.completion for count in known),
        total=sum(count.total for count in known),
    )


def _count(value: Any) -> int | None:
    # bool is an int to Python, not a count to anyone.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None
