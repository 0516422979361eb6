"""Schemathesis hooks of the fuzzing tier (loaded by `st run` through SCHEMATHESIS_HOOKS).

- The key: each case is sent with one of the keys in STEPLINE_FUZZ_KEYS (a JSON list:
  admin and read-only keys of two organizations), or, one case in eight, with whatever
  auth the case generated itself (none, or garbage).
- The path: ids drawn from the seeded records are drawn independently, so a run's id
  seldom comes with its own workflow's; three cases in four are given the workflow (and
  run) that the drawn run (or step) belongs to, from STEPLINE_FUZZ_PARENTS ({child: parent}).

Choices are a hash of the case, not random draws, so that a seeded run sends the same
requests with the same keys every time.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import schemathesis

_KEYS: list[str] = json.loads(os.environ.get("STEPLINE_FUZZ_KEYS", "[]"))
_PARENTS: dict[str, str] = json.loads(os.environ.get("STEPLINE_FUZZ_PARENTS", "{}"))


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    choice = _fingerprint(case)
    if case.path_parameters and choice % 4:
        case.path_parameters = _paired(dict(case.path_parameters))
    if _KEYS and choice % 8:
        key = _KEYS[(choice >> 8) % len(_KEYS)]
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}"}


def _fingerprint(case: Any) -> int:
    seen = repr((case.method, case.path, case.path_parameters, case.query, case.headers, case.body))
    return int.from_bytes(hashlib.sha256(seen.encode()).digest()[:4], "big")


def _paired(parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters with the run of the step, and the workflow of the run."""
    step_id = parameters.get("step_id")
    if "run_id" in parameters and isinstance(step_id, str) and step_id in _PARENTS:
        parameters["run_id"] = _PARENTS[step_id]
    run_id = parameters.get("run_id")
    if "workflow_id" in parameters and isinstance(run_id, str) and run_id in _PARENTS:
        parameters["workflow_id"] = _PARENTS[run_id]
    return parameters
