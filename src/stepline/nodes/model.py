"""The `model` node kind: one chat completion, on the record as seed 000 shows it.

The step's output is the provider's completion object as it came (`id`, `object`,
`created`, `model`, `choices`, `usage`...), plus `content` (the first choice's text) and
`confidence_info` (from logprobs, see stepline.providers.confidence). Its resolved
inputs are the request body it sent; it records `model` as the provider answered it,
`tokens`, and `cost` from the provider's price table (null when no price is known).
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stepline.nodes.base import NodeContext, NodeResult
from stepline.nodes.language_model import ConnectionConfig, LanguageModelKind, as_text
from stepline.nodes.model_calls import Calls
from stepline.providers.confidence import confidence_info
from stepline.providers.errors import ProviderError, refused, unusable

MessageRole = Literal["system", "developer", "user", "assistant", "tool"]

# The request's own parameters, in the order a request lists them.
PARAMETERS = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "response_format",
    "tools",
    "tool_choice",
    "logprobs",
    "top_logprobs",
)


class ChatMessage(BaseModel):
    """One message of the conversation sent."""

    model_config = ConfigDict(extra="forbid")

    role: MessageRole
    content: str | list[dict[str, Any]] | None = Field(
        default=None,
        description="Text (a template), or a list of content parts (text, image_url...); a "
        "template rendering to a number or an object is sent as its JSON text.",
    )
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: list[dict[str, Any]] | None = None

    @field_validator("content", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if value is None or isinstance(value, str | list):
            return value
        return as_text(value)


class ModelConfig(ConnectionConfig):
    """What to ask and how."""

    messages: list[ChatMessage] | None = Field(
        default=None, min_length=1, description="The conversation; or use `prompt`."
    )
    prompt: Any = Field(
        default=None,
        description="Shorthand for one user message (a template; a non-text value is sent as "
        "its JSON text).",
    )
    system: str | None = Field(
        default=None, description="A system message put before the prompt or messages."
    )
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, gt=0)
    stop: str | list[str] | None = None
    seed: int | None = None
    response_format: dict[str, Any] | None = Field(
        default=None,
        description='E.g. {"type": "json_object"} or {"type": "json_schema", "json_schema": '
        "{name, schema}}.",
    )
    tools: list[dict[str, Any]] | None = Field(
        default=None, description="Functions the model may call (OpenAI's tools format)."
    )
    tool_choice: str | dict[str, Any] | None = None
    logprobs: bool | None = Field(
        default=None, description="Ask for logprobs; confidence_info is computed from them."
    )
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @classmethod
    def request_fields(cls) -> set[str]:
        return super().request_fields() | set(PARAMETERS)

    @model_validator(mode="after")
    def _one_conversation(self) -> ModelConfig:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("give either `messages` or `prompt`")
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("`top_logprobs` needs `logprobs: true`")
        return self


class ModelNode(LanguageModelKind):
    """Sends one chat completion request and outputs the completion."""

    type = "model"
    config_model = ModelConfig
    description = (
        "Asks a language model (an OpenAI-compatible provider); outputs its completion, "
        "`content` and `confidence_info`, and records model, tokens and cost."
    )

    def first_request(self, config: ModelConfig) -> dict[str, Any]:
        """The chat-completions body for `config`."""
        messages: list[dict[str, Any]] = []
        if config.system is not None:
            messages.append({"role": "system", "content": config.system})
        if config.messages is not None:
            messages += [m.model_dump(exclude_none=True) for m in config.messages]
        else:
            messages.append({"role": "user", "content": as_text(config.prompt)})
        request: dict[str, Any] = {"model": self.model_of(config), "stream": False}
        request["messages"] = messages
        for name in PARAMETERS:
            value = getattr(config, name)
            if value is not None:
                request[name] = value
        return {**request, **config.extra}

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(ModelConfig, ctx.config)
        endpoint = self.endpoint(ctx, config)
        request = self.first_request(config)
        calls = Calls(endpoint, ctx.services.llm, self.timeout_of(ctx, config, endpoint))
        try:
            call = await calls.send("completion", request, bodies=False)
            choice = call.first_choice
            if not choice:
                raise unusable(endpoint.describe(), "the answer has no choices")
            message = call.message
            if message.get("refusal"):
                raise refused(endpoint.describe(), str(message["refusal"]))
            if choice.get("finish_reason") == "content_filter":
                raise refused(endpoint.describe(), "its content filter withheld the answer")
        except ProviderError as exc:
            raise calls.failed(exc) from exc
        output = {
            **call.response,
            "content": message.get("content"),
            "confidence_info": confidence_info(choice.get("logprobs")),
        }
        return NodeResult(
            output=output,
            model=call.model,
            tokens=calls.tokens,
            cost=calls.cost,
            trace_spans=calls.spans,
            metadata=calls.metadata(finish_reason=choice.get("finish_reason")),
        )
