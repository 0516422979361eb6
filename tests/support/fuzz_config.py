"""The configuration of the fuzzing tier's `st run` (a schemathesis.toml), from the records
`support.fuzz_seed` made."""

from __future__ import annotations

import json
from typing import Any

from support.fuzz_seed import FuzzTarget

EVENTS_READ_S = 1.5
"""How long one request reads an SSE stream: a run waiting for a review never ends it."""

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
# Values that once made 500s (tests/api/test_fuzz_reproducers.py), mixed into the cases.
HOSTILE_TEXT = ["\x00", "a\x00b", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"]
HUGE_INTEGERS = [2**31, 549755813887, 2**63, 2**64 + 1]
INTEGER_QUERIES = ("iteration", "last_event_id", "limit", "timeout_s")


def fuzz_config(target: FuzzTarget, *, examples: int, fuzz_seed: int) -> dict[str, Any]:
    """The run's schemathesis.toml, as a dict."""

    def drawn_from(dictionary: str, probability: float = 0.9) -> dict[str, Any]:
        return {"dictionary": dictionary, "probability": probability}

    return {
        "seed": fuzz_seed,
        "workers": 1,  # one request at a time: the server sees the same sequence each run
        "suppress-health-check": ["all"],  # a real server is "too slow" for Hypothesis
        "request-timeout": 60,
        "phases": {
            "examples": {"enabled": False},
            "coverage": {"enabled": True},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
        "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
        "dictionaries": {
            name: {"values": target.values(name)}
            for name in (
                "workflow_ids",
                "disposable_workflow_ids",
                "run_ids",
                "step_ids",
                "node_ids",
                "spare_key_ids",
                "secret_names",
                "collection_ids",
                "disposable_collection_ids",
                "source_ids",
            )
        }
        | {
            "no_workspace": {"values": [""]},
            "hostile_text": {"values": HOSTILE_TEXT},
            "huge_integers": {"values": HUGE_INTEGERS},
        },
        "parameters": {
            "path.workflow_id": drawn_from("workflow_ids"),
            "path.run_id": drawn_from("run_ids"),
            "path.step_id": drawn_from("step_ids"),
            "path.node_id": drawn_from("node_ids"),
            "path.key_id": drawn_from("spare_key_ids", 0.5),
            "path.name": drawn_from("secret_names", 0.5),
            "path.collection_id": drawn_from("collection_ids", 0.8),
            "path.source_id": drawn_from("source_ids", 0.5),
            # A workspace drawn at random hides every seeded record: send one in five.
            "header.X-Workspace-Id": drawn_from("no_workspace", 0.8),
            **{f"query.{name}": drawn_from("huge_integers", 0.1) for name in INTEGER_QUERIES},
            "path.version": drawn_from("huge_integers", 0.1),
        },
        "generation": {
            "max-examples": examples,
            "mode": "all",  # valid requests, and requests the API must refuse
            "database": "none",  # no examples carried over from an earlier run
            "dictionaries": {"string": {"dictionary": "hostile_text", "probability": 0.05}},
        },
        "operations": [
            {
                # Deleting the seeded workflows would leave the other cases nothing to aim at.
                "include-method": "DELETE",
                "include-path": "/v1/workflows/{workflow_id}",
                "parameters": {"path.workflow_id": drawn_from("disposable_workflow_ids")},
            },
            {
                # Deleting the seeded collections would leave the other cases nothing to aim at.
                "include-method": "DELETE",
                "include-path": "/v1/collections/{collection_id}",
                "parameters": {"path.collection_id": drawn_from("disposable_collection_ids")},
            },
            {"include-path-regex": "/events$", "request-timeout": EVENTS_READ_S},
            {
                # Trigify's paths name their ids `id` and `runId`, and page by `page`.
                "include-path-regex": "^/trigify/",
                "parameters": {
                    "path.id": drawn_from("workflow_ids"),
                    "path.runId": drawn_from("run_ids"),
                    "query.page": drawn_from("huge_integers", 0.1),
                    "query.page_size": drawn_from("huge_integers", 0.1),
                },
            },
            {
                # Retab's step list and step name their run in the query.
                "include-path-regex": "^/retab/",
                "parameters": {"query.run_id": drawn_from("run_ids")},
            },
            {
                # Arcee's execution history pages by `offset` too.
                "include-path-regex": "^/arcee/",
                "parameters": {"query.offset": drawn_from("huge_integers", 0.1)},
            },
        ],
    }


def toml(config: dict[str, Any]) -> str:
    """TOML of `config`: one `key = value` line each, nested values inline (JSON's
    strings, numbers and arrays are TOML's)."""

    def value(item: Any) -> str:
        if isinstance(item, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(v)}" for k, v in item.items()) + "}"
        if isinstance(item, list):
            return "[" + ", ".join(value(v) for v in item) + "]"
        return json.dumps(item)

    return "".join(f"{json.dumps(key)} = {value(item)}\n" for key, item in config.items())
