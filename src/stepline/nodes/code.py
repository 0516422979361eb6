"""The `code` node kind: runs the user's Python `def main(inputs)` in the code sandbox.

A step's output is what `main` returns; what it prints lands in the step's metadata. The
code runs in a confined process with a wall-clock timeout (the node's `timeout_s`, else
`STEPLINE_CODE_TIMEOUT_S`) and a memory limit (`memory_mb`, else `STEPLINE_CODE_MEMORY_MB`),
each at most the operator's ceiling (`STEPLINE_CODE_MAX_TIMEOUT_S`,
`STEPLINE_CODE_MAX_MEMORY_MB`); see `stepline.sandbox` for what it can and cannot reach.
"""

from __future__ import annotations

import ast
import asyncio
import functools
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stepline.nodes.base import NodeContext, NodeError, NodeKind, NodeResult
from stepline.records import ErrorCategory, ErrorDetails, ErrorStage
from stepline.sandbox import SandboxError, SandboxOutcome, SandboxPool, SandboxUnavailable
from stepline.sandbox.egress import AllowList, AllowListError
from stepline.settings import get_settings

MIN_MEMORY_MB = 64
"""Below this, Python itself barely fits in the limit."""

CHECK_CACHE_SIZE = 256
"""How many distinct sources `check_code` remembers its verdict on."""
CHECK_CACHE_MAX_CHARS = 64 * 1024
"""Longer sources are checked every time, so the cache holds at most ~16 MB of source."""


class CodeConfig(BaseModel):
    """What to run and with what."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(
        default_factory=dict,
        description="The argument of main(inputs): a mapping of JSON values whose strings are "
        "templates, e.g. {'amount': '{{ inputs.amount }}'}.",
    )
    code: str = Field(
        description="Python source defining `def main(inputs)` (or `async def`), which returns "
        "the step's output, a JSON value. Taken as written, never rendered as a template.",
    )
    memory_mb: int | None = Field(
        default=None,
        ge=MIN_MEMORY_MB,
        description="The process's address-space limit in MB; default STEPLINE_CODE_MEMORY_MB.",
    )

    network: bool = Field(
        default=False,
        description="Whether the code may reach the network: only what the server's "
        "STEPLINE_CODE_NETWORK allow-list names, through the HTTP proxy its environment "
        "announces (HTTP_PROXY/HTTPS_PROXY). Refused where the server allows none.",
    )

    @field_validator("network")
    @classmethod
    def _allowed_by_the_operator(cls, network: bool) -> bool:
        if network:
            try:
                allowed = AllowList.parse(get_settings().code_network)
            except AllowListError as exc:
                raise ValueError(f"the server's network setting is broken: {exc}") from exc
            if not allowed:
                raise ValueError(
                    "this server allows code steps no network (STEPLINE_CODE_NETWORK=none)"
                )
        return network

    @field_validator("code")
    @classmethod
    def _compiles_and_defines_main(cls, code: str) -> str:
        check_code(code)
        return code

    @field_validator("memory_mb")
    @classmethod
    def _within_the_ceiling(cls, memory_mb: int | None) -> int | None:
        ceiling = get_settings().code_max_memory_mb
        if memory_mb is not None and memory_mb > ceiling:
            raise ValueError(
                f"memory_mb {memory_mb} is over this server's ceiling of {ceiling} MB "
                "(STEPLINE_CODE_MAX_MEMORY_MB)"
            )
        return memory_mb


def check_code(code: str) -> None:
    """Raises ValueError, naming the line, unless `code` compiles and defines `main(inputs)`.

    The verdict is remembered by source text (a bounded LRU): a step's config is validated
    several times (at submission, at execution, when the step resolves it), and parsing and
    compiling again each time would cost more than the rest of the validation.
    """
    problem = _cached_problem(code) if len(code) <= CHECK_CACHE_MAX_CHARS else _problem(code)
    if problem is not None:
        raise ValueError(problem)


@functools.lru_cache(maxsize=CHECK_CACHE_SIZE)
def _cached_problem(code: str) -> str | None:
    return _problem(code)


def _problem(code: str) -> str | None:
    """What is wrong with `code` as a code step's source, or None if nothing is."""
    try:
        tree = ast.parse(code, "<code>")
        # Some errors (e.g. `return` outside a function) only the compiler finds.
        compile(tree, "<code>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f"line {exc.lineno}" if exc.lineno else "an unknown line"
        if exc.offset:
            where += f", column {exc.offset}"
        return f"code has a syntax error at {where}: {exc.msg}"
    except (ValueError, RecursionError) as exc:  # e.g. null bytes, too deep a nesting
        return f"code cannot be compiled: {exc}"
    mains = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "main"
    ]
    if not mains:
        return (
            "code must define a top-level function `def main(inputs)` that returns the "
            "step's output; none was found"
        )
    main = mains[-1]
    args = main.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    if positional == 0 and args.vararg is None:
        return (
            f"main at line {main.lineno} takes no argument; it is called with one, the "
            "inputs: def main(inputs)"
        )
    if required > 1 or any(default is None for default in args.kw_defaults):
        return (
            f"main at line {main.lineno} requires more than one argument; it is called "
            "with one, the inputs: def main(inputs)"
        )
    return None


class CodeNode(NodeKind):
    """Runs `main(inputs)` from the node's Python code in an isolated, limited process."""

    type = "code"
    config_model = CodeConfig
    description = (
        "Runs Python `def main(inputs)` in a separate process with time and memory limits."
    )
    raw_fields = frozenset({"code"})

    @staticmethod
    def timeout_ceiling() -> tuple[float, str]:
        """The most a code node's `timeout_s` may ask for, and the setting that says so."""
        return get_settings().code_max_timeout_s, "STEPLINE_CODE_MAX_TIMEOUT_S"

    async def run(self, ctx: NodeContext) -> NodeResult:
        config = cast(CodeConfig, ctx.config)
        settings = get_settings()
        timeout_s = ctx.timeout_s or settings.code_timeout_s
        memory_mb = config.memory_mb or settings.code_memory_mb
        # The engine always lends its pool; the default serves scripts and ad-hoc runs.
        pool = ctx.services.sandbox or default_sandbox_pool()
        try:
            outcome = await pool.execute(
                config.code,
                config.inputs,
                timeout_s=timeout_s,
                memory_mb=memory_mb,
                filename=f"<code:{ctx.node.id}>",
                network=config.network,
            )
        except (SandboxUnavailable, SandboxError, ValueError) as exc:
            raise _sandbox_failure(exc) from exc
        metadata: dict[str, Any] = {"stdout": outcome.stdout, "stderr": outcome.stderr}
        if outcome.ok:
            return NodeResult(output=outcome.value, metadata=metadata)
        raise _failure(outcome, timeout_s=timeout_s, memory_mb=memory_mb, metadata=metadata)


def _sandbox_failure(exc: Exception) -> NodeError:
    """The NodeError for a job that did not run: no isolation here (no retry mends that),
    the sandbox failed (a retry may well succeed), or the inputs are not JSON values."""
    details = ErrorDetails(type=type(exc).__name__, message=str(exc))
    if isinstance(exc, SandboxUnavailable):
        return NodeError(str(exc), category=ErrorCategory.permanent, details=details)
    if isinstance(exc, SandboxError):
        return NodeError(str(exc), category=ErrorCategory.transient, details=details)
    return NodeError(str(exc), stage=ErrorStage.input_collection, details=details)


def _failure(
    outcome: SandboxOutcome, *, timeout_s: float, memory_mb: int, metadata: dict[str, Any]
) -> NodeError:
    """The NodeError for a job that did not return a value."""
    error_type = outcome.error_type or "Error"
    if outcome.timed_out:
        # The details say when it was the CPU-time backstop rather than the clock.
        message = f"code step timed out after {timeout_s:g} s"
        return NodeError(
            message,
            category=ErrorCategory.transient,
            details=ErrorDetails(type=error_type, message=outcome.error_message or message),
            metadata=metadata,
        )
    if outcome.memory_exceeded:
        message = f"code step exceeded its memory limit ({memory_mb} MB)"
        return NodeError(
            message,
            details=ErrorDetails(
                type=error_type,
                message=outcome.error_message or message,
                traceback=outcome.traceback,
            ),
            metadata=metadata,
        )
    message = f"{error_type}: {outcome.error_message}" if outcome.error_message else error_type
    return NodeError(
        message,
        details=ErrorDetails(
            type=error_type, message=outcome.error_message, traceback=outcome.traceback
        ),
        metadata=metadata,
    )


_default_pool: SandboxPool | None = None
_default_pool_loop: asyncio.AbstractEventLoop | None = None


def default_sandbox_pool() -> SandboxPool:
    """The pool for code steps run without one, created on first use in the running loop."""
    global _default_pool, _default_pool_loop
    loop = asyncio.get_running_loop()
    if _default_pool is None or _default_pool_loop is not loop:
        # A pool is bound to its event loop; one left from another loop is of no use here.
        _default_pool, _default_pool_loop = SandboxPool(), loop
    return _default_pool


async def close_default_sandbox_pool() -> None:
    """Stops the default pool's processes, if it was started (e.g. at the end of a script)."""
    global _default_pool, _default_pool_loop
    pool, _default_pool, _default_pool_loop = _default_pool, None, None
    if pool is not None:
        await pool.close()
