"""Evaluating parsed Jinja expressions directly, without Jinja's compiler.

Jinja turns each template into Python source and compiles it: about 1 ms a template, paid
the first time a process meets it, which is most of a step's cost in a fresh process. The
common forms (lookups, item and slice access, arithmetic, comparisons, `and`/`or`/`not`,
`~`, inline `if`, literals, filters and tests) are cheap to evaluate from the parsed tree
instead, with the very operations Jinja's generated code performs:

- a name is the scope's value, else `environment.undefined(name=...)` (StrictUndefined);
- `a.b` and `a[b]` go through the sandbox's `getattr` and `getitem` (a plain dict or
  list is read directly first, which is what those do first too);
- operators are Python's own (the sandbox intercepts none); `~` is `str_join`;
- filters and tests are the environment's own functions, called with the same arguments.

`build` returns None for any other node (calls, names Jinja binds itself, filters that
take the context...): such a template goes through Jinja. At run time the caller treats
any exception, and any Undefined left in a result, as "ask Jinja": the same source runs
through the compiled sandboxed template, so errors (and their messages) are always
Jinja's own. Nothing here reads an attribute or calls anything the sandbox would not.
"""

from __future__ import annotations

import copy
import operator
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import nodes
from jinja2.nodes import EvalContext
from jinja2.runtime import Undefined, str_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import _PassArg

Evaluator = Callable[[Mapping[str, Any]], Any]
"""Evaluates one expression against a scope; may raise anything (then Jinja decides)."""

_BINARY: dict[type[nodes.BinExpr], Callable[[Any, Any], Any]] = {
    nodes.Add: operator.add,
    nodes.Sub: operator.sub,
    nodes.Mul: operator.mul,
    nodes.Div: operator.truediv,
    nodes.FloorDiv: operator.floordiv,
    nodes.Mod: operator.mod,
    nodes.Pow: operator.pow,
}
_UNARY: dict[type[nodes.UnaryExpr], Callable[[Any], Any]] = {
    nodes.Pos: operator.pos,
    nodes.Neg: operator.neg,
    nodes.Not: operator.not_,
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
_SCALARS = (str, int, float, bool, type(None))
_BOUND_BY_JINJA = frozenset({"self"})
"""Names a compiled template binds itself at its top level (`self` is the template)."""


class Unsupported(Exception):
    """The tree holds a form this evaluator leaves to Jinja."""


def build(node: nodes.Expr, env: SandboxedEnvironment) -> Evaluator | None:
    """An evaluator of `node` in `env`, or None when any part of it is left to Jinja."""
    try:
        return _Builder(env).expression(node)
    except Unsupported:
        return None


def build_output(template: nodes.Template, env: SandboxedEnvironment) -> Evaluator | None:
    """An evaluator rendering `template` to text as Jinja would (`str(finalize(value))` for
    each `{{ }}`, the text between as written), when its body is only text and `{{ }}`."""
    builder = _Builder(env)
    parts: list[str | Evaluator] = []
    try:
        for statement in template.body:
            if type(statement) is not nodes.Output:
                return None
            for child in statement.nodes:
                if type(child) is nodes.TemplateData:
                    parts.append(child.data)
                else:
                    parts.append(builder.expression(child))
    except Unsupported:
        return None
    finalize = env.finalize or (lambda value: value)

    def render(scope: Mapping[str, Any]) -> str:
        return "".join(
            part if type(part) is str else str(finalize(part(scope)))  # type: ignore[operator]
            for part in parts
        )

    return render


class _Builder:
    def __init__(self, env: SandboxedEnvironment) -> None:
        self.env = env
        # Operators a sandbox intercepts run through its `call_binop`/`call_unop`: none by
        # default, and then Jinja's code is Python's operator, which this evaluator uses.
        self.plain_operators = not env.intercepted_binops and not env.intercepted_unops

    def expression(self, node: nodes.Node) -> Evaluator:
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            raise Unsupported(type(node).__name__)
        if not self.plain_operators and isinstance(node, nodes.BinExpr | nodes.UnaryExpr):
            raise Unsupported("an intercepted operator")
        evaluator: Evaluator = method(node)
        return evaluator

    # -- values ----------------------------------------------------------------------

    def _Const(self, node: nodes.Const) -> Evaluator:
        value = node.value
        if isinstance(value, _SCALARS):
            return lambda scope: value
        # A list or dict Jinja's optimizer folded into a constant: its code builds a new
        # one on each run (it writes the value's repr), so a caller may change it freely.
        return lambda scope: copy.deepcopy(value)

    def _Name(self, node: nodes.Name) -> Evaluator:
        name = node.name
        if node.ctx != "load" or name in _BOUND_BY_JINJA:
            raise Unsupported(name)
        undefined = self.env.undefined
        globals_ = self.env.globals

        def read(scope: Mapping[str, Any]) -> Any:
            try:
                return scope[name]
            except KeyError:
                if name in globals_:
                    raise Unsupported(name) from None  # a global (range...): Jinja decides
                return undefined(name=name)

        return read

    def _List(self, node: nodes.List) -> Evaluator:
        items = [self.expression(item) for item in node.items]
        return lambda scope: [item(scope) for item in items]

    def _Tuple(self, node: nodes.Tuple) -> Evaluator:
        if node.ctx != "load":
            raise Unsupported("tuple target")
        items = [self.expression(item) for item in node.items]
        return lambda scope: tuple(item(scope) for item in items)

    def _Dict(self, node: nodes.Dict) -> Evaluator:
        pairs = [(self.expression(p.key), self.expression(p.value)) for p in node.items]
        return lambda scope: {key(scope): value(scope) for key, value in pairs}

    # -- access ----------------------------------------------------------------------

    def _Getattr(self, node: nodes.Getattr) -> Evaluator:
        target, attr, getattr_ = self.expression(node.node), node.attr, self.env.getattr

        def read(scope: Mapping[str, Any]) -> Any:
            obj = target(scope)
            if type(obj) is dict:  # what the environment's getattr reads first
                try:
                    return obj[attr]
                except KeyError:
                    pass
            return getattr_(obj, attr)

        return read

    def _Getitem(self, node: nodes.Getitem) -> Evaluator:
        target = self.expression(node.node)
        if type(node.arg) is nodes.Slice:
            # Jinja writes `obj[start:stop:step]`, bypassing the environment's getitem.
            part = self._slice_part
            start, stop, step = part(node.arg.start), part(node.arg.stop), part(node.arg.step)
            return lambda scope: target(scope)[slice(start(scope), stop(scope), step(scope))]
        argument, getitem = self.expression(node.arg), self.env.getitem

        def read(scope: Mapping[str, Any]) -> Any:
            obj, key = target(scope), argument(scope)
            if type(obj) is dict or type(obj) is list:  # what the sandbox's getitem tries first
                try:
                    return obj[key]
                except (TypeError, LookupError):
                    pass
            return getitem(obj, key)

        return read

    def _slice_part(self, node: nodes.Expr | None) -> Evaluator:
        if node is None:
            return lambda scope: None
        return self.expression(node)

    # -- operators -------------------------------------------------------------------

    def _binary(self, node: nodes.BinExpr) -> Evaluator:
        apply = _BINARY[type(node)]
        left, right = self.expression(node.left), self.expression(node.right)
        return lambda scope: apply(left(scope), right(scope))

    _Add = _Sub = _Mul = _Div = _FloorDiv = _Mod = _Pow = _binary

    def _And(self, node: nodes.And) -> Evaluator:
        left, right = self.expression(node.left), self.expression(node.right)
        return lambda scope: left(scope) and right(scope)

    def _Or(self, node: nodes.Or) -> Evaluator:
        left, right = self.expression(node.left), self.expression(node.right)
        return lambda scope: left(scope) or right(scope)

    def _unary(self, node: nodes.UnaryExpr) -> Evaluator:
        apply, operand = _UNARY[type(node)], self.expression(node.node)
        return lambda scope: apply(operand(scope))

    _Pos = _Neg = _Not = _unary

    def _Compare(self, node: nodes.Compare) -> Evaluator:
        first = self.expression(node.expr)
        if any(op.op not in _COMPARE for op in node.ops):
            raise Unsupported("comparison")
        operands = [(_COMPARE[op.op], self.expression(op.expr)) for op in node.ops]
        if len(operands) == 1:
            compare, second = operands[0]
            return lambda scope: compare(first(scope), second(scope))

        def chained(scope: Mapping[str, Any]) -> Any:
            # Python's `a < b < c`: each operand once, stop at the first false comparison.
            left, result = first(scope), True
            for index, (compare, operand) in enumerate(operands):
                right = operand(scope)
                result = compare(left, right)
                if index < len(operands) - 1 and not result:
                    return result
                left = right
            return result

        return chained

    def _Concat(self, node: nodes.Concat) -> Evaluator:
        parts = [self.expression(part) for part in node.nodes]
        return lambda scope: str_join([part(scope) for part in parts])

    def _CondExpr(self, node: nodes.CondExpr) -> Evaluator:
        test, then = self.expression(node.test), self.expression(node.expr1)
        if node.expr2 is not None:
            otherwise = self.expression(node.expr2)
        else:
            # What Jinja's code gives when the test fails and there is no else (a plain
            # Undefined, whatever the environment's own kind).
            hint = (
                f"the inline if-expression on line {node.lineno} evaluated to false and no "
                "else section was defined."
            )

            def otherwise(scope: Mapping[str, Any]) -> Any:
                return Undefined(hint)

        return lambda scope: then(scope) if test(scope) else otherwise(scope)

    # -- filters and tests -------------------------------------------------------------

    def _Filter(self, node: nodes.Filter) -> Evaluator:
        if node.node is None:
            raise Unsupported("filter block")
        return self._call(node, self.env.filters.get(node.name))

    def _Test(self, node: nodes.Test) -> Evaluator:
        return self._call(node, self.env.tests.get(node.name))

    def _call(self, node: nodes.Filter | nodes.Test, function: Any) -> Evaluator:
        if function is None or node.dyn_args is not None or node.dyn_kwargs is not None:
            raise Unsupported(node.name)  # an unknown name is Jinja's error to report
        passed = _PassArg.from_obj(function)
        if passed is _PassArg.context:
            raise Unsupported(node.name)
        env = self.env
        target = self.expression(node.node)  # type: ignore[arg-type]
        arguments = [self.expression(argument) for argument in node.args]
        keywords: list[tuple[str, Evaluator]] = [
            (str(keyword.key), self.expression(keyword.value)) for keyword in node.kwargs
        ]

        def call(scope: Mapping[str, Any]) -> Any:
            value = target(scope)
            args = [argument(scope) for argument in arguments]
            kwargs = {key: keyword(scope) for key, keyword in keywords}
            if passed is _PassArg.environment:
                return function(env, value, *args, **kwargs)
            if passed is _PassArg.eval_context:
                return function(EvalContext(env), value, *args, **kwargs)
            return function(value, *args, **kwargs)

        return call
