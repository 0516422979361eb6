"""One settings object for the whole of stepline, read from `STEPLINE_*` environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from stepline.documents.limits import (
    DEFAULT_MAX_DEFINITION_BYTES,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_INPUTS_BYTES,
    DEFAULT_MAX_OUTPUT_BYTES,
    MAX_DEPTH_CEILING,
)


class Settings(BaseSettings):
    """Every knob, with its default; `STEPLINE_<NAME>` in the environment overrides it."""

    model_config = SettingsConfigDict(env_prefix="STEPLINE_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".stepline",
        description="Where the embedded database and saved credentials live.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL: sqlite+aiosqlite:///path.db (default: <home>/stepline.db) "
        "or postgresql+asyncpg://user@host/db.",
    )
    lease_s: float = Field(
        default=30.0, gt=0, description="How long a worker's claim on a run lasts unrenewed."
    )
    code_timeout_s: float = Field(
        default=60.0, gt=0, description="Default wall-clock limit of a code step."
    )
    code_memory_mb: int = Field(
        default=512, gt=0, description="Address-space limit of a code step's process."
    )
    code_isolation: Literal["namespaces", "process"] = Field(
        default="namespaces",
        description="How code steps are confined: `namespaces` (bubblewrap: their own user, "
        "PID, mount and network namespaces; refused where not available) or `process` "
        "(a separate limited process only; weaker, warned about on every start).",
    )
    code_network: str = Field(
        default="none",
        description="Network for code steps whose node sets `network: true`: `none`, or a "
        "comma-separated allow-list of host[:port] entries (`*.example.com`, `10.0.0.5:443`).",
    )
    code_tmp_mb: int = Field(
        default=64, gt=0, description="Size of each code job's private /tmp (namespaces)."
    )
    code_max_processes: int = Field(
        default=64, gt=1, description="How many processes one code job may run at once."
    )
    code_max_memory_mb: int = Field(
        default=4096, gt=0, description="Ceiling on a code node's `memory_mb`."
    )
    code_max_timeout_s: float = Field(
        default=3600.0, gt=0, description="Ceiling on a code node's `timeout_s`."
    )
    step_max_timeout_s: float = Field(
        default=86400.0, gt=0, description="Ceiling on any node's `timeout_s`."
    )
    http_timeout_s: float = Field(default=30.0, gt=0, description="Default api_call timeout.")
    config: Path | None = Field(
        default=None,
        description="The TOML configuration file (its `providers` section names the language "
        "model providers nodes may use); default: <home>/stepline.toml, if it exists.",
    )
    model_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="Default timeout of one request to a language model provider.",
    )
    worker_concurrency: int = Field(
        default=8, gt=0, description="How many runs one worker process executes at once."
    )
    worker_poll_s: float | None = Field(
        default=None,
        gt=0,
        description="How often an idle worker looks for runs to claim. Default: 0.5 s on "
        "SQLite; 5 s on PostgreSQL, where LISTEN/NOTIFY wakes workers as runs are queued.",
    )
    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, gt=0, description="Largest request body the API accepts."
    )
    max_document_depth: int = Field(
        default=DEFAULT_MAX_DEPTH,
        ge=2,
        le=MAX_DEPTH_CEILING,
        description="Levels of nested arrays and objects a document may have: a workflow "
        "definition, run inputs, a review's output, what a node returns (else 422, or the "
        "step fails).",
    )
    max_definition_bytes: int = Field(
        default=DEFAULT_MAX_DEFINITION_BYTES,
        gt=0,
        description="Largest workflow definition, as compact JSON (else 413).",
    )
    max_inputs_bytes: int = Field(
        default=DEFAULT_MAX_INPUTS_BYTES,
        gt=0,
        description="Largest inputs of a run, as compact JSON (else 413).",
    )
    max_output_bytes: int = Field(
        default=DEFAULT_MAX_OUTPUT_BYTES,
        gt=0,
        description="Largest output of one step, as compact JSON: a larger one fails its step "
        "(error_stage output_storage); also bounds a step's recorded inputs and a review's "
        "edited output (413).",
    )
    max_file_bytes: int = Field(
        default=50 * 1024 * 1024,
        gt=0,
        description="Largest file stepline stores (an upload, or a file a node makes).",
    )
    files_backend: Literal["local"] = Field(
        default="local",
        description="Where file contents are kept: `local`, content-addressed under `files_dir`.",
    )
    files_dir: Path | None = Field(
        default=None, description="The folder of the local file storage (default: <home>/files)."
    )
    log_level: str = Field(default="INFO", description="Log level of `stepline serve`.")
    server: str | None = Field(
        default=None, description="A stepline server's URL: the CLI then works over HTTP."
    )
    api_key: str | None = Field(
        default=None, description="The API key for --server (else the saved credentials)."
    )
    secrets_key: SecretStr | None = Field(
        default=None,
        description="The key secrets are encrypted with (32 bytes, URL-safe base64); "
        "default: <home>/secrets.key, created on first use.",
    )

    def config_path(self) -> Path:
        """The configuration file: STEPLINE_CONFIG, else <home>/stepline.toml."""
        return self.config if self.config is not None else self.home / "stepline.toml"

    def files_path(self) -> Path:
        """The local file storage's folder: STEPLINE_FILES_DIR, else <home>/files."""
        return self.files_dir if self.files_dir is not None else self.home / "files"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.home / 'stepline.db'}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
