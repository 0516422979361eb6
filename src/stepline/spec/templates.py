"""Variable passing between steps: Jinja2 templates and expressions in a sandbox.

A node's config may hold templates (`"Hello {{ inputs.name }}"`) and expressions
(`nodes.score.output.risk > 0.5`). They run on the engine's hot path, so each distinct
source is compiled once and rendered many times. Three promises:

- a string that is exactly one `{{ expression }}` keeps its value's native type (a list
  stays a list, None stays None); any other template renders to a string;
- a missing name, key or attribute is an error that names the template's JSON path,
  never a silent empty string (StrictUndefined);
- templates run in Jinja's immutable sandbox: no attribute tricks, no mutation of inputs.

The scope the engine passes is `{"inputs": ..., "nodes": {id: {"output", "status",
"error"}}, "run": {"id": ...}, "loop": ..., "secrets": {name: value}}` (only the secrets
the workflow names).

Each distinct source is parsed once per process (`Templates.parsed`, shared by validation,
which parses every template of a workflow before its first run, and by evaluation). The
common forms are then evaluated straight from the parsed tree (`spec.direct`): Jinja's
compiler, about 1 ms a template the first time a process meets it, runs only for the
other forms, and whenever the direct evaluation raises or leaves an Undefined in its
result, so that values and errors are the sandbox's own either way.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateSyntaxError, Undefined, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from stepline.errors import InvalidRequest
from stepline.spec import direct

KNOWN_ROOTS = frozenset({"inputs", "nodes", "loop", "run", "secrets"})
"""The names a template may start from; anything else is unknown."""

_CACHE_SIZE = 8192
_SOURCE_PREVIEW = 120
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class TemplateError(InvalidRequest):
    """A template or expression could not be compiled or evaluated."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


_KEYED_ROOTS = frozenset({"nodes", "secrets"})
"""Roots whose first key is worth knowing before a run: which node, which secret."""


@dataclass(frozen=True)
class Reference:
    """One name a template reads: its root (`inputs`, `nodes`...), for `nodes` which node,
    and for `secrets` which secret (`secret`; None when computed or not given)."""

    root: str
    node_id: str | None
    path: str
    secret: str | None = None


def is_template(value: str) -> bool:
    """Whether a string holds Jinja markup (and so must go through the template engine)."""
    return "{{" in value or "{%" in value


def child_path(path: str, key: str | int) -> str:
    """The JSON path of an item (`$.a[0]`) or key (`$.a.b`, `$.a["x-y"]`) below `path`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def iter_strings(value: Any, path: str = "$") -> Iterator[tuple[str, str]]:
    """Each (JSON path, string) inside nested dicts and lists; dict keys are not visited."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from iter_strings(item, child_path(path, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from iter_strings(item, child_path(path, index))


class _Environment(ImmutableSandboxedEnvironment):
    """The sandbox, with `a.b` on a mapping reading the key `b` before any dict method.

    Plain Jinja resolves `output.items` to the dict's `items` method; step outputs are
    data, so a key named `items`, `keys` or `values` must win.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, Mapping):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)


@dataclass(frozen=True, slots=True)
class _Direct:
    """A template or expression that `spec.direct` evaluates: `native` when its value is
    kept as is (a bare expression, a lone `{{ }}`), else it renders to text. `shallow`
    when its value can only be read from the scope or computed (no literal list, tuple or
    dict, no filter), so that no Undefined can hide inside it: only the value itself needs
    checking, not every item of a big list read from a step's output."""

    evaluate: direct.Evaluator
    native: bool
    shallow: bool


_BUILDS_CONTAINERS = (nodes.List, nodes.Tuple, nodes.Dict, nodes.Filter)


def _direct(tree: nodes.Node, evaluate: direct.Evaluator | None, native: bool) -> _Direct | None:
    if evaluate is None:
        return None
    shallow = not any(True for _ in tree.find_all(_BUILDS_CONTAINERS))
    return _Direct(evaluate, native, shallow and not isinstance(tree, _BUILDS_CONTAINERS))


_ASK_JINJA = object()


def _evaluate_directly(compiled: _Direct, scope: Mapping[str, Any]) -> Any:
    """The value, or `_ASK_JINJA` when the direct evaluation raised or left an Undefined in
    it: then the compiled sandboxed template runs and gives the value or the error."""
    try:
        value = compiled.evaluate(scope)
    except Exception:
        return _ASK_JINJA
    if not compiled.native:
        return value
    if compiled.shallow:
        return _ASK_JINJA if isinstance(value, Undefined) else value
    return _ASK_JINJA if _find_undefined(value) is not None else value


def _finalize(value: Any) -> Any:
    # Rendered into text, structured data reads as JSON rather than as a Python repr.
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _preview(source: str) -> str:
    text = source if len(source) <= _SOURCE_PREVIEW else source[: _SOURCE_PREVIEW - 3] + "..."
    return repr(text)


def _find_undefined(value: Any) -> Undefined | None:
    """The first Undefined inside a native result (e.g. `[inputs.nope]`), if any."""
    if isinstance(value, Undefined):
        return value
    if isinstance(value, dict):
        for item in value.values():
            found = _find_undefined(item)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = _find_undefined(item)
            if found is not None:
                return found
    return None


def _undefined_message(undefined: Undefined) -> str:
    try:
        str(undefined)
    except (UndefinedError, SecurityError) as exc:
        return exc.message or "undefined value"
    return "undefined value"


class Templates:
    """Compiles, caches and evaluates templates and expressions in one sandboxed environment."""

    def __init__(self, *, direct: bool = True) -> None:
        self.env = _Environment(undefined=StrictUndefined, autoescape=False, finalize=_finalize)
        self._direct = direct
        # Per-instance caches keyed by source: parse once (for validation and evaluation
        # alike), compile once, render many.
        cache = functools.lru_cache(maxsize=_CACHE_SIZE)
        self.parsed = cache(self._parse)
        self.parsed_expression = cache(self._parse_expression)
        self._compiled = cache(self._compile)
        self._compiled_expression = cache(self._compile_expression)
        self._jinja = cache(self._compile_jinja)
        self._references = cache(self._find_references)

    # -- rendering -------------------------------------------------------------------

    def render(self, value: Any, scope: Mapping[str, Any], *, path: str = "$") -> Any:
        """Render every template string inside `value` (dicts and lists are walked)."""
        if isinstance(value, str):
            if not is_template(value):
                return value
            return self._render_string(value, scope, path)
        if isinstance(value, Mapping):
            return {
                key: self.render(item, scope, path=child_path(path, str(key)))
                for key, item in value.items()
            }
        if isinstance(value, list | tuple):
            return [
                self.render(item, scope, path=child_path(path, index))
                for index, item in enumerate(value)
            ]
        return value

    def evaluate(
        self, expression: str, scope: Mapping[str, Any], *, path: str | None = None
    ) -> Any:
        """Evaluate a bare expression (no braces), e.g. `nodes.score.output.risk > 0.5`."""
        compiled = self._compile_or_raise(self._compiled_expression, expression, path)
        if compiled.__class__ is _Direct:
            value = _evaluate_directly(compiled, scope)
            if value is not _ASK_JINJA:
                return value
            compiled = self._compile_or_raise(self._jinja, expression, path, True)
        return self._run_expression(compiled, expression, scope, path)

    def _render_string(self, source: str, scope: Mapping[str, Any], path: str) -> Any:
        compiled = self._compile_or_raise(self._compiled, source, path)
        if compiled.__class__ is _Direct:
            value = _evaluate_directly(compiled, scope)
            if value is not _ASK_JINJA:
                return value
            compiled = self._compile_or_raise(self._jinja, source, path, False)
        if isinstance(compiled, TemplateExpression):
            return self._run_expression(compiled, source, scope, path)
        try:
            return compiled.render(scope)
        except Exception as exc:
            raise self._runtime_error(exc, source, path) from exc

    def _run_expression(
        self,
        compiled: TemplateExpression,
        source: str,
        scope: Mapping[str, Any],
        path: str | None,
    ) -> Any:
        try:
            result = compiled(scope)
        except Exception as exc:
            raise self._runtime_error(exc, source, path) from exc
        undefined = _find_undefined(result)
        if undefined is not None:
            message = f"{_undefined_message(undefined)} (in {_preview(source)})"
            raise TemplateError(message, path)
        return result

    @staticmethod
    def _runtime_error(exc: Exception, source: str, path: str | None) -> TemplateError:
        if isinstance(exc, UndefinedError | SecurityError):
            detail = exc.message or type(exc).__name__
        else:
            detail = f"{type(exc).__name__}: {exc}"
        return TemplateError(f"{detail} (in {_preview(source)})", path)

    # -- compiling -------------------------------------------------------------------

    @staticmethod
    def _compile_or_raise(cache: Any, source: str, path: str | None, *args: Any) -> Any:
        try:
            return cache(source, *args)
        except TemplateSyntaxError as exc:
            raise TemplateError(_syntax_message(exc, source), path) from exc
        except (UndefinedError, SecurityError) as exc:
            # Jinja's optimizer evaluates constant parts while compiling, and some of its
            # refusals (`(none)[1]` in an inline if's test) escape from there.
            raise Templates._runtime_error(exc, source, path) from exc

    def _compile(self, source: str) -> Template | TemplateExpression | _Direct:
        """What renders `source`: evaluated directly when it can be, else compiled by Jinja
        (a native-typed expression when the source is one `{{ expr }}`, else a template)."""
        tree = self.parsed(source)
        if self._direct:
            expression = _single_expression(tree)
            if expression is not None:
                found = _direct(expression, direct.build(expression, self.env), native=True)
            else:
                found = _direct(tree, direct.build_output(tree, self.env), native=False)
            if found is not None:
                return found
        return self._compile_jinja(source, False)

    def _compile_expression(self, source: str) -> TemplateExpression | _Direct:
        expression = self.parsed_expression(source)
        if self._direct:
            found = _direct(expression, direct.build(expression, self.env), native=True)
            if found is not None:
                return found
        compiled = self._compile_jinja(source, True)
        assert isinstance(compiled, TemplateExpression)
        return compiled

    def _compile_jinja(self, source: str, expression: bool) -> Template | TemplateExpression:
        """Jinja's compilation of `source`, parsed afresh: Jinja's optimizer rewrites the
        tree it compiles, and the cached trees are shared."""
        if expression:
            return self._expression_from_node(self._parse_expression(source))
        tree = self.env.parse(source)
        single = _single_expression(tree)
        if single is None:
            return self.env.from_string(tree)
        return self._expression_from_node(single)

    def _parse(self, source: str) -> nodes.Template:
        return self.env.parse(source)

    def _parse_expression(self, source: str) -> nodes.Expr:
        parser = Parser(self.env, source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression", token.lineno
            )
        return expression

    def _expression_from_node(self, expression: nodes.Expr) -> TemplateExpression:
        # The same construction as Environment.compile_expression, from an already parsed
        # node, and without turning undefined results into None.
        body = [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)]
        tree = nodes.Template(body, lineno=1)
        tree.set_environment(self.env)
        return TemplateExpression(self.env.from_string(tree), undefined_to_none=False)

    # -- references (for validation) ---------------------------------------------------

    def references(
        self, value: Any, *, expression: bool = False, path: str = "$"
    ) -> list[Reference]:
        """Each root name (and node id) the templates in `value` read.

        With `expression=True` a string is a bare expression. Names bound inside a template
        (`{% for %}`, `{% set %}`) and the environment's globals (`range`...) are not
        references. A syntax error raises TemplateError with the string's path.
        """
        found: list[Reference] = []
        if expression and isinstance(value, str):
            strings: Iterator[tuple[str, str]] = iter([(path, value)])
        else:
            strings = iter_strings(value, path)
        for string_path, source in strings:
            if not expression and not is_template(source):
                continue
            try:
                names = self._references(source, expression)
            except TemplateSyntaxError as exc:
                raise TemplateError(_syntax_message(exc, source), string_path) from exc
            found.extend(
                Reference(
                    root,
                    key if root == "nodes" else None,
                    string_path,
                    key if root == "secrets" else None,
                )
                for root, key in names
            )
        return found

    def _find_references(self, source: str, expression: bool) -> tuple[tuple[str, str | None], ...]:
        if expression:
            tree = nodes.Template([nodes.Output([self.parsed_expression(source)])], lineno=1)
            tree.set_environment(self.env)
        else:
            tree = self.parsed(source)
        free = _free_names(tree, self.env)
        seen: dict[tuple[str, str | None], None] = {}
        for name in _walk_names(tree, free):
            seen.setdefault(name)
        return tuple(seen)


def _free_names(tree: nodes.Template, env: _Environment) -> set[str]:
    """The names a template reads from its context (not bound inside, not globals)."""
    if all(isinstance(stmt, nodes.Output | nodes.If) for stmt in tree.find_all(nodes.Stmt)):
        # Nothing can bind a name (no for, set, macro, block...), so every name read is
        # free: skip Jinja's slower scope analysis, which dominates validating a
        # 10,000-node workflow.
        return {name.name for name in tree.find_all(nodes.Name)} - env.globals.keys()
    return meta.find_undeclared_variables(tree)


def _walk_names(node: nodes.Node, free: set[str]) -> Iterator[tuple[str, str | None]]:
    """Each (root, key) read in source order: `nodes.x` and `nodes['x']` read node x,
    `secrets.X` secret X; other roots have no key."""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        base = node.node
        if isinstance(base, nodes.Name) and base.name in _KEYED_ROOTS and base.name in free:
            yield base.name, _node_key(node)
            for child in node.iter_child_nodes(exclude=("node",)):
                yield from _walk_names(child, free)
            return
    if isinstance(node, nodes.Name) and node.ctx == "load" and node.name in free:
        yield node.name, None
        return
    for child in node.iter_child_nodes():
        yield from _walk_names(child, free)


def _node_key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None  # a computed key: nothing to check before the run


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression when the template is exactly one `{{ expr }}` (whitespace around ok)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    expressions = []
    for child in tree.body[0].nodes:
        if isinstance(child, nodes.TemplateData):
            if child.data.strip():
                return None
        else:
            expressions.append(child)
    return expressions[0] if len(expressions) == 1 else None


def _syntax_message(exc: TemplateSyntaxError, source: str) -> str:
    return f"template syntax error: {exc.message} (line {exc.lineno} of {_preview(source)})"


@functools.cache
def get_templates() -> Templates:
    """The process-wide Templates (its caches are worth sharing)."""
    return Templates()
