"""The `classifier` node kind: a model picks one of named categories for an input.

Each category is an output handle, so edges branch on the category chosen (as they do on
a conditional's branches). The step's output is `{"category", "reason"}` (the model's
one-sentence reason, when asked for and given); it records model, tokens and cost, and
its one call in `trace_spans`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline.nodes.base import NodeContext, NodeResult
from stepline.nodes.language_model import ConnectionConfig, LanguageModelKind, as_text
from stepline.nodes.model_calls import Calls
from stepline.nodes.structured import Method, read_answer, structured_request
from stepline.providers.errors import ProviderError, refused
from stepline.records import ErrorCategory
from stepline.spec.models import NODE_ID_PATTERN, REJECTED_HANDLE

FUNCTION_NAME = "classify"


class Category(BaseModel):
    """One possible answer, and an output handle of the node."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=NODE_ID_PATTERN,
        description="The category, and the output handle edges follow when it is chosen.",
    )
    description: str = Field(
        default="", description="What belongs in it: the model reads this to decide."
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name == REJECTED_HANDLE:
            raise ValueError(f"{REJECTED_HANDLE!r} is the handle a rejected review follows")
        return name


class ClassifierConfig(ConnectionConfig):
    """The input and the categories to choose from."""

    input: Any = Field(description="What to classify: text (a template), or any JSON value.")
    categories: list[Category] = Field(
        min_length=2, description="The choices, each with a description; written as is."
    )
    instructions: str | None = Field(
        default=None, description="More guidance for the model, added to its instructions."
    )
    explain: bool = Field(default=True, description="Ask the model for a one-sentence reason.")
    method: Method | None = Field(
        default=None,
        description="json_schema (the response format) or tools (a forced function call); "
        "default: the provider's structured_output, else json_schema.",
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None
    max_tokens: int | None = Field(default=None, gt=0)

    @field_validator("categories")
    @classmethod
    def _unique_names(cls, categories: list[Category]) -> list[Category]:
        seen: set[str] = set()
        for category in categories:
            if category.name in seen:
                raise ValueError(f"category {category.name!r} is listed more than once")
            seen.add(category.name)
        return categories

    @classmethod
    def request_fields(cls) -> set[str]:
        parameters = {"temperature", "seed", "max_tokens", "response_format", "tools"}
        return super().request_fields() | parameters | {"tool_choice"}


class ClassifierNode(LanguageModelKind):
    """Asks the model which category the input belongs to; takes that category's handle."""

    type = "classifier"
    config_model = ClassifierConfig
    description = "Classifies its input into one of named categories; each is an output handle."
    raw_fields = frozenset({"provider", "categories"})

    def output_handles(self, config: BaseModel) -> frozenset[str] | None:
        categories = getattr(config, "categories", None) or []
        return frozenset(
            category.name if isinstance(category, Category) else str(category.get("name"))
            for category in categories
            if isinstance(category, Category | Mapping)
        )

    def first_request(self, config: ClassifierConfig) -> dict[str, Any]:
        method = self.structured_method(config.method, config.provider)
        names = [category.name for category in config.categories]
        properties: dict[str, Any] = {"category": {"type": "string", "enum": names}}
        if config.explain:
            properties["reason"] = {"type": "string"}
        schema = {
            "type": "object",
            "properties": properties,
            "required": list(properties),
            "additionalProperties": False,
        }
        base: dict[str, Any] = {
            "model": self.model_of(config),
            "stream": False,
            "messages": [
                {"role": "system", "content": _instructions(config)},
                {"role": "user", "content": as_text(config.input)},
            ],
        }
        for name in ("temperature", "seed", "max_tokens"):
            value = getattr(config, name)
            if value is not None:
                base[name] = value
        request = structured_request(
            base,
            schema,
            name=FUNCTION_NAME,
            description="The category the input belongs to.",
            method=method,
            strict=True,
        )
        return {**request, **config.extra}

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ClassifierConfig, ctx.config)
        endpoint = self.endpoint(ctx, config)
        method = self.structured_method(config.method, config.provider)
        calls = Calls(endpoint, ctx.services.llm, self.timeout_of(ctx, config, endpoint))
        names = [category.name for category in config.categories]
        try:
            call = await calls.send("classify", self.first_request(config))
            refusal = call.message.get("refusal")
            if refusal:
                raise refused(endpoint.describe(), str(refusal))
        except ProviderError as exc:
            raise calls.failed(exc) from exc
        answer = read_answer(call, method)
        value = answer.value if isinstance(answer.value, Mapping) else {}
        category = value.get("category")
        if answer.problem is not None or category not in names:
            problem = answer.problem or (
                f"the model answered category {category!r}, which is not one of {', '.join(names)}"
            )
            raise calls.error(
                f"{endpoint.describe()}: {problem}",
                ErrorCategory.permanent,
                code="invalid_category",
                context={"answer": answer.text},
            )
        reason = value.get("reason")
        output = {"category": category, "reason": reason if isinstance(reason, str) else None}
        return NodeResult(
            output=output,
            handle=category,
            handle_outputs={category: {"type": "json", "data": output}},
            model=calls.model,
            tokens=calls.tokens,
            cost=calls.cost,
            trace_spans=calls.spans,
            metadata=calls.metadata(),
        )


def _instructions(config: ClassifierConfig) -> str:
    lines = ["Classify the input into exactly one of these categories:"]
    for category in config.categories:
        lines.append(
            f"- {category.name}: {category.description}"
            if category.description
            else f"- {category.name}"
        )
    if config.instructions:
        lines += ["", config.instructions]
    answer = 'Answer with JSON: "category" (one of the names above)'
    answer += ' and "reason" (one short sentence saying why).' if config.explain else "."
    lines += ["", answer]
    return "\n".join(lines)
