"""Asking a model for JSON that fits a schema, and reading it back (classifier, extract).

Two ways, by what the provider has: OpenAI's JSON-schema response format (the answer is
the message's content), or one function the model is made to call (the answer is the
call's arguments). A repair turn continues the same conversation in the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from jsonschema import Draft202012Validator

from stepline.providers.client import ChatCall

Method = Literal["json_schema", "tools"]
MAX_LISTED_VIOLATIONS = 20
"""A message lists at most this many violations (the rest are counted)."""


def structured_request(
    base: dict[str, Any],
    schema: dict[str, Any],
    *,
    name: str,
    description: str,
    method: Method,
    strict: bool,
) -> dict[str, Any]:
    """`base` (model, messages, parameters) asking for an answer that fits `schema`."""
    if method == "tools":
        function: dict[str, Any] = {
            "name": name,
            "description": description,
            "parameters": schema,
        }
        if strict:
            function["strict"] = True
        return {
            **base,
            "tools": [{"type": "function", "function": function}],
            "tool_choice": {"type": "function", "function": {"name": name}},
        }
    json_schema: dict[str, Any] = {"name": name, "description": description, "schema": schema}
    if strict:
        json_schema["strict"] = True
    return {**base, "response_format": {"type": "json_schema", "json_schema": json_schema}}


@dataclass(frozen=True)
class StructuredAnswer:
    """What the model answered: its text, the JSON in it, or why there is none."""

    text: str | None
    value: Any = None
    problem: str | None = None
    """Why the answer holds no JSON value (not valid JSON, no function call...)."""
    tool_call_id: str | None = None


def read_answer(call: ChatCall, method: Method) -> StructuredAnswer:
    message = call.message
    if method == "tools":
        calls = message.get("tool_calls") or []
        first = calls[0] if isinstance(calls, list) and calls else None
        function = first.get("function") if isinstance(first, dict) else None
        if first is None or not isinstance(function, dict):
            text = message.get("content")
            return StructuredAnswer(
                text if isinstance(text, str) else None,
                problem="the model answered without calling the function",
            )
        return _parse(str(function.get("arguments") or ""), first.get("id"))
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return StructuredAnswer(None, problem="the model's answer is empty")
    return _parse(content, None)


def _parse(text: str, tool_call_id: Any) -> StructuredAnswer:
    call_id = tool_call_id if isinstance(tool_call_id, str) else None
    try:
        return StructuredAnswer(text, json.loads(text), tool_call_id=call_id)
    except ValueError as exc:
        return StructuredAnswer(
            text, problem=f"the answer is not JSON: {exc}", tool_call_id=call_id
        )


def violations(answer: StructuredAnswer, validator: Draft202012Validator) -> list[str]:
    """Each way the answer breaks the schema, as `$.path: message`, sorted by path."""
    if answer.problem is not None:
        return [answer.problem]
    errors = sorted(validator.iter_errors(answer.value), key=lambda e: (e.json_path, e.message))
    return [f"{error.json_path}: {error.message}" for error in errors]


def listed(found: list[str]) -> str:
    """The violations as lines of a message, at most MAX_LISTED_VIOLATIONS of them."""
    lines = [f"- {item}" for item in found[:MAX_LISTED_VIOLATIONS]]
    if len(found) > MAX_LISTED_VIOLATIONS:
        lines.append(f"- ... and {len(found) - MAX_LISTED_VIOLATIONS} more")
    return "\n".join(lines)


def repair_messages(
    call: ChatCall, answer: StructuredAnswer, found: list[str], method: Method
) -> list[dict[str, Any]]:
    """The turns that show the model its answer and what is wrong with it."""
    problems = (
        "Your answer does not match the required JSON Schema:\n"
        f"{listed(found)}\n"
        "Answer again with JSON that fits the schema exactly."
    )
    if method == "tools" and answer.tool_call_id is not None:
        assistant = {
            "role": "assistant",
            "content": call.message.get("content"),
            "tool_calls": call.message.get("tool_calls"),
        }
        return [
            assistant,
            {"role": "tool", "tool_call_id": answer.tool_call_id, "content": problems},
        ]
    return [
        {"role": "assistant", "content": answer.text or ""},
        {"role": "user", "content": problems},
    ]
