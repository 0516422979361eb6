"""Confidence from logprobs; seed 000's object when there are none."""

from __future__ import annotations

import math

import pytest

from stepline.providers.confidence import NO_LOGPROBS, confidence_info


@pytest.mark.parametrize("logprobs", [None, {}, {"content": None}, {"content": []}, "x"])
def test_without_logprobs_the_seed_000_object(logprobs: object) -> None:
    assert confidence_info(logprobs) == {
        "error": "No logprobs available - model/provider may not support confidence calculation",
        "confidence_score": None,
        "mean_entropy": None,
        "total_entropy": None,
    }
    assert NO_LOGPROBS.startswith("No logprobs available")


def test_score_is_the_geometric_mean_probability_and_entropy_is_over_the_alternatives() -> None:
    logprobs = {
        "content": [
            {
                "token": "Hi",
                "logprob": math.log(0.5),
                "top_logprobs": [
                    {"token": "Hi", "logprob": math.log(0.5)},
                    {"token": "Hey", "logprob": math.log(0.5)},
                ],
            },
            {"token": "!", "logprob": 0.0, "top_logprobs": []},
        ]
    }
    info = confidence_info(logprobs)
    assert info["error"] is None
    assert info["confidence_score"] == pytest.approx(math.sqrt(0.5))
    # Token 1: two alternatives at 0.5 each, ln 2 nats; token 2: certain, 0.
    assert info["total_entropy"] == pytest.approx(math.log(2))
    assert info["mean_entropy"] == pytest.approx(math.log(2) / 2)


def test_tokens_without_a_logprob_are_left_out() -> None:
    info = confidence_info({"content": [{"token": "a"}, {"token": "b", "logprob": math.log(0.25)}]})
    assert info["confidence_score"] == pytest.approx(0.25)
    assert info["total_entropy"] == pytest.approx(-0.25 * math.log(0.25))
