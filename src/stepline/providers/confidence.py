"""How sure a model was of its answer, from the logprobs of the tokens it chose.

- `confidence_score`: the geometric mean of the chosen tokens' probabilities,
  exp(mean logprob), between 0 and 1;
- per token, the entropy (in nats) of the alternatives the provider listed
  (`top_logprobs`, or the chosen token alone when none are listed): a lower bound of the
  true entropy, since only the likeliest alternatives are known;
- `mean_entropy` and `total_entropy`: their mean and sum over the answer.

A provider that sends no logprobs (or a node that did not ask for them) gets the same
object with null numbers and seed 000's explanation in `error`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

NO_LOGPROBS = "No logprobs available - model/provider may not support confidence calculation"


def confidence_info(logprobs: Any) -> dict[str, Any]:
    """The confidence object of a choice's `logprobs` ({"content": [{token, logprob,
    top_logprobs}...]})."""
    tokens = _tokens(logprobs)
    if not tokens:
        return {
            "error": NO_LOGPROBS,
            "confidence_score": None,
            "mean_entropy": None,
            "total_entropy": None,
        }
    chosen = [logprob for logprob, _ in tokens]
    entropies = [_entropy(logprob, alternatives) for logprob, alternatives in tokens]
    return {
        "error": None,
        "confidence_score": math.exp(sum(chosen) / len(chosen)),
        "mean_entropy": sum(entropies) / len(entropies),
        "total_entropy": sum(entropies),
    }


def _tokens(logprobs: Any) -> list[tuple[float, list[float]]]:
    """(chosen logprob, alternatives' logprobs) per token; empty when there are none."""
    if not isinstance(logprobs, Mapping):
        return []
    content = logprobs.get("content")
    if not isinstance(content, Sequence) or isinstance(content, str):
        return []
    found: list[tuple[float, list[float]]] = []
    for item in content:
        if not isinstance(item, Mapping) or not _is_number(item.get("logprob")):
            continue
        top = item.get("top_logprobs")
        alternatives = (
            [
                float(alt["logprob"])
                for alt in top
                if isinstance(alt, Mapping) and _is_number(alt.get("logprob"))
            ]
            if isinstance(top, Sequence) and not isinstance(top, str)
            else []
        )
        found.append((min(float(item["logprob"]), 0.0), alternatives))
    return found


def _entropy(chosen: float, alternatives: list[float]) -> float:
    logprobs = alternatives or [chosen]
    return -sum(math.exp(lp) * lp for lp in logprobs if lp <= 0.0 and math.isfinite(lp))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
