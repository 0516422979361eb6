"""The providers a server offers its model nodes: the `providers` section of its TOML file.

    [providers.openai]
    base_url = "https://api.openai.com/v1"
    api_key = "{{ secrets.OPENAI_KEY }}"      # a secret of the run's organization
    default_model = "gpt-4o-mini"

    [providers.openai.prices."gpt-4o-mini"]   # per million tokens
    prompt = 0.15
    completion = 0.60

The file is STEPLINE_CONFIG, else `$STEPLINE_HOME/stepline.toml`; without one there are
no providers (nodes may still give `base_url` and `api_key` themselves). A key is never
written in the file: `api_key` names a secret, read from the vault of the organization
whose run uses the provider, so one server serves many organizations, each paying with
its own key. Other top-level sections are left to their own readers.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from threading import Lock
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stepline.errors import Misconfigured
from stepline.providers.pricing import DEFAULT_CURRENCY, ModelPrice, PriceTable
from stepline.secrets.names import name_problem
from stepline.settings import Settings, get_settings

PROVIDER_NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
_SECRET_REFERENCE = re.compile(r"^\{\{\s*secrets\.([^\s}]+)\s*\}\}$")

StructuredOutput = Literal["json_schema", "tools"]


class ProviderConfigError(Misconfigured):
    """The configuration file cannot be read, or its `providers` section is wrong."""


def secret_reference_name(value: str) -> str | None:
    """The NAME of a value that is exactly `{{ secrets.NAME }}`; None for anything else."""
    match = _SECRET_REFERENCE.match(value.strip())
    return match.group(1) if match else None


def check_base_url(value: str) -> str:
    """`value` when it is an http(s) URL with a host; ValueError saying why not otherwise."""
    scheme, _, rest = value.partition("://")
    if scheme.lower() not in ("http", "https") or not rest.split("/", 1)[0]:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {value!r}")
    return value.rstrip("/")


class ProviderSettings(BaseModel):
    """One OpenAI-compatible endpoint and what its models cost."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=PROVIDER_NAME_PATTERN)
    base_url: str = Field(description="The API's base URL, e.g. https://api.openai.com/v1.")
    api_key: str | None = Field(
        default=None,
        description='The secret holding the key, as "{{ secrets.NAME }}"; none for an '
        "endpoint that takes no key (a local Ollama or vLLM).",
    )
    default_model: str | None = Field(default=None, min_length=1)
    currency: str = Field(default=DEFAULT_CURRENCY, min_length=1)
    prices: dict[str, ModelPrice] = Field(
        default_factory=dict, description="Per model: prompt and completion per million tokens."
    )
    structured_output: StructuredOutput = Field(
        default="json_schema",
        description="How extract and classifier nodes ask for JSON: the JSON-schema response "
        "format, or a forced tool call where that is what the provider has.",
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="Per request; default STEPLINE_MODEL_TIMEOUT_S."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("api_key")
    @classmethod
    def _secret_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = secret_reference_name(value)
        if name is None:
            raise ValueError(
                'must name a secret, as "{{ secrets.OPENAI_KEY }}": a key is never written '
                "in the configuration (set it with `stepline secrets set OPENAI_KEY`)"
            )
        problem = name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return value

    @property
    def api_key_secret(self) -> str | None:
        """The name of the secret holding the key, if the provider takes one."""
        return None if self.api_key is None else secret_reference_name(self.api_key)

    @property
    def price_table(self) -> PriceTable:
        return PriceTable(self.prices, self.currency)


@dataclass(frozen=True)
class ProviderCatalog(Mapping[str, ProviderSettings]):
    """The configured providers by name, and the file they came from."""

    providers: Mapping[str, ProviderSettings] = field(default_factory=dict)
    source: Path | None = None
    """The file read (or looked for: see `found`)."""
    found: bool = True

    def __getitem__(self, name: str) -> ProviderSettings:
        return self.providers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.providers)

    def __len__(self) -> int:
        return len(self.providers)

    def describe_missing(self, name: str) -> str:
        """Why `name` is not a provider here, and which are."""
        if self.source is not None and not self.found:
            return (
                f"no provider {name!r} is configured: there is no configuration file "
                f"{self.source} (write a [providers.{name}] table there, or point "
                "STEPLINE_CONFIG at a file that has one)"
            )
        known = ", ".join(sorted(self.providers)) or "none"
        where = f" in {self.source}" if self.source is not None else ""
        return f"no provider {name!r} is configured{where} (configured: {known})"


def parse_providers(document: Mapping[str, Any], source: Path | None = None) -> ProviderCatalog:
    """The `providers` section of a parsed TOML document; ProviderConfigError naming the
    file and each wrong field otherwise."""
    where = str(source) if source is not None else "the configuration"
    section = document.get("providers", {})
    if not isinstance(section, Mapping):
        raise ProviderConfigError(f"{where}: `providers` must be a table of named providers")
    providers: dict[str, ProviderSettings] = {}
    problems: list[str] = []
    for name, table in section.items():
        if not isinstance(table, Mapping):
            problems.append(f"providers.{name}: must be a table (base_url, api_key, ...)")
            continue
        try:
            providers[name] = ProviderSettings.model_validate({**table, "name": name})
        except ValidationError as exc:
            for error in exc.errors():
                path = ".".join(str(part) for part in ("providers", name, *error["loc"]))
                problems.append(f"{path}: {_message(error)}")
    if problems:
        raise ProviderConfigError(
            f"{where} is not valid:\n" + "\n".join(f"  {p}" for p in problems)
        )
    return ProviderCatalog(providers, source)


def load_providers(path: Path) -> ProviderCatalog:
    """The providers in the TOML file `path`; none when it does not exist."""
    try:
        with path.open("rb") as file:
            # Decimal keeps prices as written (0.15 stays 0.15, not 0.1499999...).
            document = tomllib.load(file, parse_float=Decimal)
    except FileNotFoundError:
        return ProviderCatalog(source=path, found=False)
    except tomllib.TOMLDecodeError as exc:
        raise ProviderConfigError(f"{path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise ProviderConfigError(f"cannot read {path}: {exc}") from exc
    return parse_providers(document, path)


_cache: dict[tuple[Path, int, int], ProviderCatalog] = {}
_cache_lock = Lock()


def configured_providers(settings: Settings | None = None) -> ProviderCatalog:
    """The providers of the configured file (STEPLINE_CONFIG or <home>/stepline.toml).

    Read again only when the file changes, so an edit needs no restart; a workflow
    version already validated keeps what it was validated with until the process restarts.
    """
    path = (settings or get_settings()).config_path()
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ProviderCatalog(source=path, found=False)
    except OSError as exc:
        raise ProviderConfigError(f"cannot read {path}: {exc}") from exc
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = load_providers(path)
        with _cache_lock:
            _cache.clear()  # one file is in use at a time; forget its older contents
            _cache[key] = found
    return found


def _message(error: Any) -> str:
    if error["type"] == "missing":
        return "required field is missing"
    if error["type"] == "extra_forbidden":
        return "unknown field"
    return str(error["msg"]).removeprefix("Value error, ")
