"""The `extract` node kind: structured data out of an input, against a JSON Schema.

The model is asked for JSON fitting the schema (the provider's JSON-schema response
format, or a forced function call where that is what it has), and the answer is
validated with `jsonschema`. An answer that does not fit gets one repair round-trip: the
model is shown its answer and every violation, and asked again. A second answer that does
not fit fails the step (permanent), listing the violations. The step's tokens and cost
add up both calls, and both are in its `trace_spans`.

With `document` (a file reference, as the document kinds take), the file's text is read
as `parse` reads it (PDF per page, HTML, plain text, Markdown, JSON, CSV), cut at
`max_document_chars`, and given to the model after `input` (if any). The step then records
the file as Retab's extract steps do: `input_document` and `handle_inputs["input-file-0"]`.
The request on the step's `inputs` stands the document's text in with a placeholder (it is
read when the step runs); the request as sent, text included, is in its `trace_spans`.

The output is the extracted object; `handle_outputs` holds it as Retab's `output-json-0`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ConfigDict, Field, field_validator, model_validator

from stepline.files import FileInfo
from stepline.nodes.base import NodeContext, NodeResult
from stepline.nodes.child_process import run_in_child
from stepline.nodes.document_files import FileReference, fetch, reading
from stepline.nodes.document_text import ParsedDocument, parse_document
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
from stepline.records import OUTPUT_JSON_HANDLE, ErrorCategory

OUTPUT_HANDLE = OUTPUT_JSON_HANDLE
INPUT_FILE_HANDLE = "input-file-0"
DEFAULT_MAX_DOCUMENT_CHARS = 100_000
DEFAULT_INSTRUCTIONS = (
    "Extract the data the JSON Schema describes from the input. Use only what the input "
    "says; where it says nothing for an optional field, leave the field out."
)


class ExtractConfig(ConnectionConfig):
    """The input, and the shape of what to extract from it."""

    input: Any = Field(
        default=None,
        description="What to extract from: text (a template), or any JSON value. Or (and) give "
        "`document`.",
    )
    document: FileReference | None = Field(
        default=None,
        description="A file to extract from (a file reference, e.g. `{{ inputs.invoice }}`): "
        "its text goes to the model, after `input` if both are given.",
    )
    max_document_chars: int = Field(
        default=DEFAULT_MAX_DOCUMENT_CHARS,
        gt=0,
        description="The most characters of the document's text the model is shown (the rest "
        "is cut, and the model is told so).",
    )
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

    @model_validator(mode="before")
    @classmethod
    def _something_to_extract_from(cls, value: Any) -> Any:
        # Before the fields: said even where a template stands for the document.
        if isinstance(value, Mapping) and "input" not in value and value.get("document") is None:
            raise ValueError("give `input`, `document` (a file reference), or both")
        return value

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
        self,
        config: ExtractConfig,
        messages: list[dict[str, Any]] | None = None,
        document: str | None = None,
    ) -> dict[str, Any]:
        """The request for `config`; with `messages`, the conversation so far (a repair);
        `document`: the document's text as the model is shown it (else a placeholder)."""
        method = self.structured_method(config.method, config.provider)
        base: dict[str, Any] = {
            "model": self.model_of(config),
            "stream": False,
            "messages": messages
            or [
                {"role": "system", "content": config.instructions or DEFAULT_INSTRUCTIONS},
                {"role": "user", "content": user_content(config, document)},
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
        if config.document is None:
            return await self._extract(ctx, config, None, None)
        info, data = await fetch(ctx, config.document, "document")
        with reading(info, INPUT_FILE_HANDLE):
            return await self._extract(ctx, config, info, data)

    async def _extract(
        self,
        ctx: NodeContext,
        config: ExtractConfig,
        info: FileInfo | None,
        data: bytes | None,
    ) -> NodeResult:
        endpoint = self.endpoint(ctx, config)
        method = self.structured_method(config.method, config.provider)
        validator = Draft202012Validator(config.schema_)
        calls = Calls(endpoint, ctx.services.llm, self.timeout_of(ctx, config, endpoint))
        recorded: dict[str, Any] = {}
        more: dict[str, Any] = {}
        shown = None
        if info is not None and data is not None:
            parsed = await run_in_child(parse_document, info, data, config.max_document_chars)
            shown = document_text(info.filename, info.mime_type, parsed)
            recorded = {
                "handle_inputs": {INPUT_FILE_HANDLE: info.handle()},
                "input_document": info.document(),
            }
            more = {"document": {"page_count": len(parsed.pages), "truncated": parsed.truncated}}
        request = self.request(config, document=shown)
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
                metadata={"repair_round_trips": repairs, **more},
            )
        return NodeResult(
            output=answer.value,
            handle_outputs={OUTPUT_HANDLE: {"type": "json", "data": answer.value}},
            model=calls.model,
            tokens=calls.tokens,
            cost=calls.cost,
            trace_spans=calls.spans,
            metadata=calls.metadata(repair_round_trips=repairs, **more),
            **recorded,
        )

    def _check(
        self, call: ChatCall, method: Method, validator: Draft202012Validator, endpoint: Endpoint
    ) -> tuple[StructuredAnswer, list[str]]:
        refusal = call.message.get("refusal")
        if refusal:
            raise refused(endpoint.describe(), str(refusal))
        answer = read_answer(call, method)
        return answer, violations(answer, validator)


def user_content(config: ExtractConfig, document: str | None) -> str:
    """What the model is asked about: `input`, then the document's text (or its placeholder)."""
    parts: list[str] = []
    if config.input is not None or config.document is None:
        parts.append(as_text(config.input))
    if config.document is not None:
        parts.append(
            document
            if document is not None
            else f"[the text of document {config.document.file_id}, read when the step runs]"
        )
    return "\n\n".join(parts)


def document_text(filename: str, mime_type: str, parsed: ParsedDocument) -> str:
    """The document as the model is shown it: a heading, then its text, page by page."""
    count = len(parsed.pages)
    heading = f"Document '{filename}' ({mime_type}"
    if count > 1:
        heading += f", {count} pages):"
        body = "\n\n".join(
            f"--- Page {number} ---\n{text}" for number, text in enumerate(parsed.pages, 1)
        )
    else:
        heading += "):"
        body = parsed.text
    text = f"{heading}\n\n{body}"
    if parsed.truncated:
        text += "\n\n[the document's text is cut here: it goes on past what is shown]"
    return text
