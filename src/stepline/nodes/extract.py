"""The `extract` node kind: structured data out of an input, against a JSON Schema.

The model is asked for JSON fitting the schema (the provider's JSON-schema response
format, or a forced function call where that is what it has), and the answer is
validated with `jsonschema`. An answer that does not fit gets one repair round-trip: the
model is shown its answer and every violation, and asked again. A second answer that does
not fit fails the step (permanent), listing the violations. The step's tokens and cost
add up both calls, and both are in its `trace_spans`.

The output is the extracted object; `handle_outputs` holds it as Retab's `output-json-0`.
"""

from __future__ import annotations

from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ConfigDict, Field, field_validator

from stepline.nodes.base import NodeContext, NodeResult
from stepline.nodes.language_model import ConnectionConfig, LanguageModelKind, as_text
from stepline.nodes.model_calls import Calls
from stepline.nodes.structured import (
    Method,
    StructuredAnswer,
    listed,
    read_answer,
    repair_messages,
    structured_request,
    violations,
)
from stepline.providers.client import ChatCall, Endpoint
from stepline.providers.errors import ProviderError, refused
from stepline.records import ErrorCategory

OUTPUT_HANDLE = "output-json-0"
DEFAULT_INSTRUCTIONS = (
    "Extract the data the JSON Schema describes from the input. Use only what the input "
    "says; where it says nothing for an optional field, leave the field out."
)


class ExtractConfig(ConnectionConfig):
    """The input, and the shape of what to extract from it."""

    input: Any = Field(description="What to extract from: text (a template), or any JSON value.")
    schema_: dict[str, Any] = Field(
        alias="schema",
        description="A JSON Schema (2020-12) of an object: what to extract. Written as is.",
    )
    instructions: str | None = Field(default=None, description="Replaces the default guidance.")
    schema_name: str = Field(
        default="extraction",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The name the provider is told (the response format's or function's).",
    )
    strict: bool = Field(
        default=False,
        description="Ask for the provider's strict schema mode (OpenAI's requires every "
        "property listed in `required` and additionalProperties false).",
    )
    method: Method | None = Field(
        default=None,
        description="json_schema (the response format) or tools (a forced function call); "
        "default: the provider's structured_output, else json_schema.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    max_tokens: int | None = Field(default=None, gt=0)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("schema_")
    @classmethod
    def _object_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            where = exc.json_path if exc.path else "$"
            raise ValueError(f"not a valid JSON Schema at {where}: {exc.message}") from None
        if schema.get("type") != "object":
            raise ValueError('must describe an object ("type": "object"): providers answer one')
        return schema

    @classmethod
    def request_fields(cls) -> set[str]:
        parameters = {"temperature", "seed", "max_tokens", "response_format", "tools"}
        return super().request_fields() | parameters | {"tool_choice"}


class ExtractNode(LanguageModelKind):
    """Extracts an object fitting `schema` from `input`, with one repair round-trip."""

    type = "extract"
    config_model = ExtractConfig
    description = (
        "Extracts structured data fitting a JSON Schema from its input, validated, with one "
        "repair round-trip; records model, tokens and cost."
    )
    raw_fields = frozenset({"provider", "schema"})

    def first_request(self, config: ExtractConfig) -> dict[str, Any]:
        return self.request(config)

    def request(
        self, config: ExtractConfig, messages: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """The request for `config`; with `messages`, the conversation so far (a repair)."""
        method = self.structured_method(config.method, config.provider)
        base: dict[str, Any] = {
            "model": self.model_of(config),
            "stream": False,
            "messages": messages
            or [
                {"role": "system", "content": config.instructions or DEFAULT_INSTRUCTIONS},
                {"role": "user", "content": as_text(config.input)},
            ],
        }
        for name in ("temperature", "seed", "max_tokens"):
            value = getattr(config, name)
            if value is not None:
                base[name] = value
        request = structured_request(
            base,
            config.schema_,
            name=config.schema_name,
            description="The data extracted from the input.",
            method=method,
            strict=config.strict,
        )
        return {**request, **config.extra}

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ExtractConfig, ctx.config)
        endpoint = self.endpoint(ctx, config)
        method = self.structured_method(config.method, config.provider)
        validator = Draft202012Validator(config.schema_)
        calls = Calls(endpoint, ctx.services.llm, self.timeout_of(ctx, config, endpoint))
        request = self.request(config)
        repairs = 0
        try:
            call = await calls.send("extract", request)
            answer, found = self._check(call, method, validator, endpoint)
            if found:
                calls.spans[-1]["violations"] = found
                repairs = 1
                messages = request["messages"] + repair_messages(call, answer, found, method)
                call = await calls.send("repair", self.request(config, messages))
                answer, found = self._check(call, method, validator, endpoint)
                if found:
                    calls.spans[-1]["violations"] = found
        except ProviderError as exc:
            raise calls.failed(exc, repair_round_trips=repairs) from exc
        if found:
            raise calls.error(
                "the extraction does not match the schema, even after a repair round-trip:\n"
                + listed(found),
                ErrorCategory.permanent,
                code="schema_violations",
                context={"violations": found, "answer": answer.text},
                metadata={"repair_round_trips": repairs},
            )
        return NodeResult(
            output=answer.value,
            handle_outputs={OUTPUT_HANDLE: {"type": "json", "data": answer.value}},
            model=calls.model,
            tokens=calls.tokens,
            cost=calls.cost,
            trace_spans=calls.spans,
            metadata=calls.metadata(repair_round_trips=repairs),
        )

    def _check(
        self, call: ChatCall, method: Method, validator: Draft202012Validator, endpoint: Endpoint
    ) -> tuple[StructuredAnswer, list[str]]:
        refusal = call.message.get("refusal")
        if refusal:
            raise refused(endpoint.describe(), str(refusal))
        answer = read_answer(call, method)
        return answer, violations(answer, validator)
