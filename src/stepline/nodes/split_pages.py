"""Model-assisted splitting: a language model assigns each page of a PDF to one of named
categories, and the pages of each category make one sub-document (for `split`).

One request holds every page's text (`Page 1:` ...) and asks for JSON fitting a schema:
`{"pages": [{"page": 1, "category": "Invoice"}, ...]}`, each category one of the names.
Every page must be assigned exactly once; an answer that does not fails the step
(permanent), saying which pages are missing, repeated or out of range. The step records
model, tokens and cost, and the call in `trace_spans`, as the other model kinds do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline.nodes.base import NodeContext
from stepline.nodes.language_model import ConnectionConfig
from stepline.nodes.model_calls import Calls
from stepline.nodes.structured import Method, read_answer, structured_request
from stepline.providers.errors import ProviderError, refused
from stepline.records import ErrorCategory

if TYPE_CHECKING:
    from stepline.nodes.language_model import LanguageModelKind

FUNCTION_NAME = "assign_pages"
MAX_PAGE_CHARS = 4000
"""The most characters of one page's text the model is shown."""


class PageCategory(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Names the sub-document and its handle (`output-file-<name>`).",
    )
    description: str = Field(default="", description="Which pages belong to it.")


class PageClassification(ConnectionConfig):
    """Which model assigns the pages, and the categories it chooses from."""

    categories: list[PageCategory] = Field(min_length=1, max_length=64)
    instructions: str | None = Field(default=None, description="More guidance for the model.")
    method: Method | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    seed: int | None = None

    @field_validator("categories")
    @classmethod
    def _unique(cls, categories: list[PageCategory]) -> list[PageCategory]:
        names = [category.name for category in categories]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"category names must differ: {', '.join(twice)} repeated")
        return categories

    @classmethod
    def request_fields(cls) -> set[str]:
        parameters = {"temperature", "seed", "response_format", "tools", "tool_choice"}
        return super().request_fields() | parameters


def page_request(
    kind: LanguageModelKind, config: PageClassification, texts: list[str]
) -> dict[str, Any]:
    """The request asking the model to assign each of `texts` (one per page) a category."""
    names = [category.name for category in config.categories]
    schema = {
        "type": "object",
        "properties": {
            "pages": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "page": {"type": "integer"},
                        "category": {"type": "string", "enum": names},
                    },
                    "required": ["page", "category"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["pages"],
        "additionalProperties": False,
    }
    lines = [
        f"A document has {len(texts)} pages. Assign every page, by its number, to exactly one "
        "of these categories:"
    ]
    for category in config.categories:
        described = f": {category.description}" if category.description else ""
        lines.append(f"- {category.name}{described}")
    if config.instructions:
        lines += ["", config.instructions]
    lines += ["", 'Answer with JSON: "pages", a list of {"page", "category"}, one per page.']
    pages = "\n\n".join(
        f"Page {number}:\n{text[:MAX_PAGE_CHARS]}" for number, text in enumerate(texts, start=1)
    )
    base: dict[str, Any] = {
        "model": kind.model_of(config),
        "stream": False,
        "messages": [
            {"role": "system", "content": "\n".join(lines)},
            {"role": "user", "content": pages},
        ],
    }
    for name in ("temperature", "seed"):
        value = getattr(config, name)
        if value is not None:
            base[name] = value
    request = structured_request(
        base,
        schema,
        name=FUNCTION_NAME,
        description="Each page's category.",
        method=kind.structured_method(config.method, config.provider),
        strict=True,
    )
    return {**request, **config.extra}


async def assign_pages(
    kind: LanguageModelKind, ctx: NodeContext, config: PageClassification, texts: list[str]
) -> tuple[dict[str, list[int]], Calls]:
    """Each category's pages (1-based, in order; categories without pages are left out)
    and the call made; a NodeError if the model fails or answers wrongly."""
    endpoint = kind.endpoint(ctx, config)
    method = kind.structured_method(config.method, config.provider)
    calls = Calls(endpoint, ctx.services.llm, kind.timeout_of(ctx, config, endpoint))
    try:
        call = await calls.send("assign_pages", page_request(kind, config, texts))
        refusal = call.message.get("refusal")
        if refusal:
            raise refused(endpoint.describe(), str(refusal))
    except ProviderError as exc:
        raise calls.failed(exc) from exc
    answer = read_answer(call, method)
    names = [category.name for category in config.categories]
    assigned, problem = _assignments(answer.value, len(texts), names)
    problem = answer.problem or problem
    if problem is not None:
        raise calls.error(
            f"{endpoint.describe()}: the page assignment cannot be used: {problem}",
            ErrorCategory.permanent,
            code="invalid_page_assignment",
            context={"answer": answer.text},
        )
    by_category: dict[str, list[int]] = {}
    for page in range(1, len(texts) + 1):
        by_category.setdefault(assigned[page], []).append(page)
    return {name: by_category[name] for name in names if name in by_category}, calls


def _assignments(value: Any, count: int, names: list[str]) -> tuple[dict[int, str], str | None]:
    items = value.get("pages") if isinstance(value, Mapping) else None
    if not isinstance(items, list):
        return {}, 'the answer has no "pages" list'
    assigned: dict[int, str] = {}
    problems: list[str] = []
    for item in items:
        page = item.get("page") if isinstance(item, Mapping) else None
        category = item.get("category") if isinstance(item, Mapping) else None
        if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= count:
            problems.append(f"page {page!r} is not a page of the document (1 to {count})")
        elif category not in names:
            problems.append(f"page {page}: {category!r} is not one of {', '.join(names)}")
        elif page in assigned:
            problems.append(f"page {page} is assigned twice")
        else:
            assigned[page] = category
    missing = [str(page) for page in range(1, count + 1) if page not in assigned]
    if missing:
        problems.append(f"no category for page {', '.join(missing)}")
    return assigned, "; ".join(problems) or None
