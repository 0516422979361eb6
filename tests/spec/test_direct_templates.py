"""The direct evaluator (`spec.direct`) gives exactly what the sandboxed Jinja gives.

Each source is evaluated by `Templates()` (direct where it can) and by
`Templates(direct=False)` (always Jinja's compiled sandbox), as a bare expression, as a lone
`{{ }}` (native value) and inside text; the outcomes must be the same: the value and its
type, or the error's message. A curated list covers each form and its edge cases (missing
keys, wrong types, the sandbox's refusals); a seeded generator adds thousands of random
combinations over a scope of mixed types.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from typing import Any

import pytest
from jinja2 import nodes

from stepline.spec import direct
from stepline.spec.templates import TemplateError, Templates, _Direct

SCOPE: dict[str, Any] = {
    "inputs": {
        "amount": 1200,
        "rate": 0.25,
        "zero": 0,
        "neg": -3,
        "big": 10**20,
        "name": "Ada",
        "empty": "",
        "flag": True,
        "off": False,
        "note": None,
        "tags": ["b", "a", "c"],
        "nums": [3, 1, 2, 2],
        "mixed": [1, "x", None],
        "rows": [{"qty": 1, "sku": "A"}, {"qty": 2, "sku": "B"}],
        "pair": (10, 20),
        "odd keys": {"x-y": 1, "items": "key wins", "0": "text zero", "__class__": "data"},
        "nested": {"a": {"b": {"c": [1, {"d": "deep"}]}}},
        "html": "<b>&</b>",
    },
    "nodes": {
        "score": {"output": {"risk": 0.7, "items": [3, 4]}, "status": "completed", "error": None},
        "flag": {"output": None, "status": "skipped", "error": None},
        "s1": {"output": {"i": 41}, "status": "completed", "error": None},
    },
    "run": {"id": "run-1"},
    "loop": {"index": 2, "item": {"sku": "X1", "n": 5}},
    "secrets": {"TOKEN": "t0k"},
}

CURATED = [
    # lookups
    "inputs.amount",
    "inputs",
    "nodes.s1.output.i",
    "nodes.score.output.items",
    "nodes.score.output.items[1]",
    "nodes.score.output.items[-1]",
    "nodes.score.output.items[5]",
    "nodes.score.output.items.0",
    'nodes["score"]["output"]["risk"]',
    'inputs["odd keys"]["x-y"]',
    'inputs["odd keys"].items',
    'inputs["odd keys"][0]',
    'inputs["odd keys"].__class__',
    "inputs.rows[1].qty",
    "inputs.rows.qty",
    "inputs.pair[0]",
    "inputs.name[0]",
    "inputs.name.upper",
    "inputs.tags.append",
    "inputs.name.__class__",
    "inputs.name.__class__.__mro__",
    "inputs.rows[0].items",
    "inputs.nope",
    "inputs.nope.deeper",
    "inputs.note.deeper",
    "nodes.flag.output.message",
    "nope",
    "range",
    "self",
    "loop.item.sku",
    "secrets.TOKEN",
    "inputs.nested.a.b.c[1].d",
    "inputs.tags[inputs.zero]",
    "inputs.tags[inputs.name]",
    "inputs.tags[none]",
    "inputs.tags[1.5]",
    # slices
    "inputs.tags[1:]",
    "inputs.tags[:2]",
    "inputs.tags[::-1]",
    "inputs.name[1:2]",
    "inputs.pair[0:1]",
    "inputs.amount[1:]",
    "inputs.tags['a':]",
    # arithmetic
    "nodes.s1.output.i + 1",
    "inputs.amount - inputs.rate",
    "inputs.amount * 2",
    "inputs.amount / 7",
    "inputs.amount // 7",
    "inputs.amount % 7",
    "inputs.neg ** 2",
    "2 ** -1",
    "inputs.amount / inputs.zero",
    "inputs.amount // inputs.zero",
    "inputs.amount % inputs.zero",
    "inputs.name + 1",
    "inputs.name * 3",
    "inputs.tags + [1]",
    "inputs.tags + inputs.pair",
    "inputs.big * inputs.big",
    "-inputs.amount",
    "+inputs.rate",
    "-inputs.name",
    "inputs.nope + 1",
    "inputs.note + 1",
    "1 + 2 * 3 - 4 / 2",
    "'%s!' % inputs.name",
    "'%d' % inputs.name",
    # comparisons and logic
    "inputs.amount > 1000",
    "inputs.amount >= 1200 and inputs.rate < 1",
    "1 < inputs.amount < 2000",
    "1 < inputs.amount > 2000",
    "3 > 2 > 1 > 0",
    "inputs.name == 'Ada'",
    "inputs.name != 'Ada'",
    "inputs.name < 3",
    "inputs.note == none",
    "inputs.nope == 1",
    "'a' in inputs.tags",
    "'z' not in inputs.tags",
    "'d' in inputs.name",
    "1 in inputs.name",
    "'items' in inputs['odd keys']",
    "not inputs.flag",
    "not inputs.nope",
    "inputs.flag or inputs.nope",
    "inputs.off or inputs.nope",
    "inputs.off and inputs.nope",
    "inputs.empty or 'fallback'",
    "inputs.note and 1",
    "nodes.score.output.risk > 0.5 and nodes.score.status == 'completed'",
    # concat, inline if, literals
    "inputs.name ~ '-' ~ inputs.amount",
    "inputs.name ~ inputs.note ~ inputs.flag",
    "inputs.name ~ inputs.rows",
    "inputs.name ~ inputs.nope",
    "'big' if inputs.amount > 1000 else 'small'",
    "'big' if inputs.amount > 9999 else inputs.nope",
    "'big' if inputs.amount > 1000",
    "'big' if inputs.amount > 9999",
    "[inputs.amount, inputs.name, none, true]",
    "[inputs.nope]",
    "(inputs.amount, 1)",
    "(1,)",
    "()",
    "{'a': inputs.amount, 'b': [1, 2]}",
    "{'a': inputs.nope}",
    "{inputs.name: 1}",
    "{inputs.tags: 1}",
    "[1, 2][1]",
    "{'a': {'b': 2}}.a.b",
    "'abc'[1]",
    "1.5e3",
    "true",
    "none",
    # filters
    "inputs.tags | length",
    "inputs.tags | count",
    "inputs.nope | length",
    "inputs.amount | length",
    "inputs.nope | default(3)",
    "inputs.note | default(3)",
    "inputs.note | default(3, true)",
    "inputs.empty | d('x', boolean=true)",
    "inputs.nope.deeper | default(1)",
    "inputs.name | lower",
    "inputs.name | upper",
    "inputs.name | title",
    "inputs.name | capitalize",
    "'  x ' | trim",
    "inputs.amount | string",
    "inputs.name | int",
    "'12' | int + 1",
    "'1.5' | float",
    "inputs.rate | round",
    "inputs.rate | round(1, 'ceil')",
    "inputs.neg | abs",
    "inputs.tags | join(', ')",
    "inputs.tags | join",
    "inputs.rows | join(',', attribute='sku')",
    "inputs.tags | first",
    "inputs.tags | last",
    "inputs.tags | sort",
    "inputs.nums | sort(reverse=true)",
    "inputs.rows | sort(attribute='qty', reverse=true)",
    "inputs.nums | unique | list",
    "inputs.nums | sum",
    "inputs.rows | sum(attribute='qty')",
    "inputs.nums | min",
    "inputs.nums | max",
    "inputs.mixed | sort",
    "inputs.name | list",
    "inputs.rows | tojson",
    "inputs.html | tojson",
    "inputs.html | e",
    "inputs.html | escape",
    "inputs.name | replace('A', 'E')",
    "inputs.nums | batch(2) | list",
    "inputs.rows | map(attribute='sku') | list",
    "inputs.rows | selectattr('qty', 'gt', 1) | list",
    "inputs.rows | groupby('sku') | list",
    "inputs.rows | items",
    "inputs['odd keys'] | dictsort",
    "inputs.name | nope",
    "inputs.name | truncate(2)",
    "inputs.tags | reverse | list",
    "inputs.amount | filesizeformat",
    "inputs.name | center(9)",
    "inputs.name | wordcount",
    "inputs.tags | join(*inputs.tags)",
    "inputs.nums | attr('count')",
    # tests
    "inputs.nope is defined",
    "inputs.nope is undefined",
    "inputs.amount is defined",
    "inputs.note is none",
    "inputs.amount is number",
    "inputs.name is string",
    "inputs.rows is sequence",
    "inputs.amount is divisibleby 3",
    "inputs.amount is even",
    "inputs.amount is odd",
    "inputs.amount is not odd",
    "inputs.amount is gt 3",
    "'a' is in inputs.tags",
    "inputs.tags is iterable",
    "inputs.name is mapping",
    "inputs.name is lower",
    "inputs.amount is nope",
    "inputs.amount is sameas 1200",
    # calls and other forms Jinja keeps
    "range(3) | list",
    "inputs.name.upper()",
    "inputs.tags.append(1)",
    "dict(a=1)",
    "inputs.rows[0].get('qty')",
    "lipsum",
]


def _outcome(run: Callable[[], Any]) -> tuple[str, Any]:
    try:
        value = run()
    except TemplateError as exc:
        return "error", str(exc)
    except Exception as exc:  # escaping the wrapper: compared as well
        return "raised", f"{type(exc).__name__}: {exc}"
    return "value", value


def _same(direct_outcome: tuple[str, Any], jinja_outcome: tuple[str, Any]) -> bool:
    if direct_outcome[0] != jinja_outcome[0]:
        return False
    mine, theirs = direct_outcome[1], jinja_outcome[1]
    if isinstance(mine, str) and isinstance(theirs, str):  # errors, text
        return _no_address(mine) == _no_address(theirs)
    if type(mine) is not type(theirs):
        return False
    if isinstance(mine, float) and math.isnan(mine):
        return math.isnan(theirs)
    if hasattr(mine, "__next__"):  # a generator (unique...): its type says enough
        return True
    if type(mine).__eq__ is object.__eq__:  # equal only to itself (a TemplateReference...)
        return repr(mine).split(" at 0x")[0] == repr(theirs).split(" at 0x")[0]
    return bool(mine == theirs and repr(mine) == repr(theirs))


def _no_address(text: str) -> str:
    return re.sub(r" at 0x[0-9a-f]+", "", text)


def _forms(expression: str) -> list[tuple[str, Callable[[Templates], Any]]]:
    braced = "{{ " + expression + " }}"
    text = "<" + braced + "|{{ inputs.name }}>"
    return [
        ("expression", lambda t: t.evaluate(expression, SCOPE, path="$.when")),
        ("native", lambda t: t.render(braced, SCOPE, path="$.x")),
        ("text", lambda t: t.render(text, SCOPE, path="$.y")),
    ]


def _check(expression: str, fast: Templates, jinja: Templates) -> None:
    for form, run in _forms(expression):
        mine = _outcome(lambda: run(fast))  # noqa: B023 (called at once)
        theirs = _outcome(lambda: run(jinja))  # noqa: B023
        assert _same(mine, theirs), (expression, form, mine, theirs)


@pytest.fixture(scope="module")
def pair() -> tuple[Templates, Templates]:
    return Templates(), Templates(direct=False)


@pytest.mark.parametrize("expression", CURATED)
def test_each_form_gives_what_the_sandbox_gives(
    expression: str, pair: tuple[Templates, Templates]
) -> None:
    _check(expression, *pair)


def test_the_curated_forms_mostly_take_the_direct_path(pair: tuple[Templates, Templates]) -> None:
    # Otherwise the comparison above would compare Jinja with itself.
    fast = pair[0]
    direct_count = sum(
        isinstance(fast._compiled("{{ " + expression + " }}"), _Direct)
        for expression in CURATED
        if "nope" not in expression.split("|")[-1]  # unknown filters and tests stay with Jinja
    )
    assert direct_count >= len(CURATED) * 0.85, direct_count


@pytest.mark.parametrize(
    "source",
    [
        "{{ nodes.s1.output.i + 1 }}",
        "{{ inputs.rows | join(',', attribute='sku') }}",
        "Hello {{ inputs.name }}, {{ inputs.amount / 100 }}!",
        "{{ inputs.nope | default('x') }} and {{ 'y' if inputs.flag else 'n' }}",
        "  {{ loop.item.n * 2 }}\n",
    ],
)
def test_the_common_forms_never_reach_jinjas_compiler(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    templates = Templates()
    expected = Templates(direct=False).render(source, SCOPE)

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("Jinja's compiler ran")

    monkeypatch.setattr(templates.env, "compile", refuse)
    assert templates.render(source, SCOPE) == expected


def test_an_error_is_jinjas_own(monkeypatch: pytest.MonkeyPatch) -> None:
    templates = Templates()
    with pytest.raises(TemplateError) as raised:
        templates.render("{{ nodes.s1.output.i / inputs.zero }}", SCOPE, path="$.output.i")
    assert str(raised.value) == (
        "$.output.i: ZeroDivisionError: division by zero "
        "(in '{{ nodes.s1.output.i / inputs.zero }}')"
    )


def test_the_sandbox_still_refuses_unsafe_attributes() -> None:
    templates = Templates()
    for source in (
        "{{ inputs.name.__class__.__mro__ }}",
        "{{ inputs.tags.append }}",
        "{{ inputs.rows[0].update }}",
    ):
        assert isinstance(templates._compiled(source), _Direct)  # not left to Jinja wholesale
        with pytest.raises(TemplateError, match="is unsafe"):
            templates.render(source, SCOPE)


def test_a_constant_list_is_new_on_each_evaluation() -> None:
    # Jinja's optimizer may fold `[1, 2]` into a constant; its code builds a new list each
    # time, so must the direct path.
    evaluate = direct.build(nodes.Const([1, [2]]), Templates().env)
    assert evaluate is not None
    first = evaluate({})
    first[1].append(3)
    assert evaluate({}) == [1, [2]]


# -- random expressions -----------------------------------------------------------------

_LEAVES = [
    "inputs.amount",
    "inputs.rate",
    "inputs.zero",
    "inputs.neg",
    "inputs.name",
    "inputs.empty",
    "inputs.flag",
    "inputs.off",
    "inputs.note",
    "inputs.tags",
    "inputs.nums",
    "inputs.rows",
    "inputs.pair",
    "inputs.nope",
    "inputs['odd keys']",
    "nodes.s1.output.i",
    "nodes.score.output.items",
    "nodes.flag.output",
    "loop.item",
    "loop.index",
    "nope",
    "0",
    "1",
    "-2",
    "2.5",
    "'a'",
    "'Ada'",
    "''",
    "none",
    "true",
    "false",
    "[1, 'a']",
    "{'k': 1}",
]
_BINARY = ["+", "-", "*", "/", "//", "%", "~", "and", "or"]
_COMPARE = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]
_FILTERS = [
    "length",
    "default(0)",
    "default('d', true)",
    "lower",
    "upper",
    "string",
    "int",
    "float",
    "abs",
    "first",
    "last",
    "join('-')",
    "sort",
    "sum",
    "min",
    "max",
    "list",
    "tojson",
    "round",
    "trim",
    "reverse",
    "unique",
]
_TESTS = ["defined", "undefined", "none", "number", "string", "sequence", "odd", "in [1, 'a']"]


def _random_expression(rng: random.Random, depth: int) -> str:
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(_LEAVES)
    shape = rng.randrange(9)
    a = _random_expression(rng, depth - 1)
    if shape == 0:
        return f"({a} {rng.choice(_BINARY)} {_random_expression(rng, depth - 1)})"
    if shape == 1:
        return f"({a} {rng.choice(_COMPARE)} {_random_expression(rng, depth - 1)})"
    if shape == 2:
        return f"({a} | {rng.choice(_FILTERS)})"
    if shape == 3:
        return f"({a} is {rng.choice(['', 'not '])}{rng.choice(_TESTS)})"
    if shape == 4:
        return f"({a})[{rng.choice(['0', '-1', '1', repr('k'), repr('qty'), '1:', ':1'])}]"
    if shape == 5:
        return f"({a}).{rng.choice(['k', 'qty', 'sku', 'items', 'upper', '__class__'])}"
    if shape == 6:
        b, c = _random_expression(rng, depth - 1), _random_expression(rng, depth - 1)
        return f"({a} if {b} else {c})"
    if shape == 7:
        return f"({rng.choice(['not ', '-', '+'])}{a})"
    return f"[{a}, {_random_expression(rng, depth - 1)}]"


@pytest.mark.parametrize("seed", range(4))
def test_random_expressions_give_what_the_sandbox_gives(
    seed: int, pair: tuple[Templates, Templates]
) -> None:
    rng = random.Random(seed)
    expressions = [_random_expression(rng, 3) for _ in range(200)]
    for expression in expressions:
        _check(expression, *pair)
    evaluated_directly = sum(
        isinstance(pair[0]._compiled_expression(e), _Direct) for e in expressions
    )
    assert evaluated_directly >= len(expressions) * 0.7, evaluated_directly


@pytest.mark.parametrize(
    "expression",
    ["1 if (none)[1] else 2", "1 if (true).__class__ else 2", "1 if {'k': 1}.qty else 2"],
)
def test_an_error_jinja_meets_while_compiling_is_a_template_error(expression: str) -> None:
    # Jinja's optimizer evaluates constant parts while compiling; what it raises there is
    # the template's error too, not an escaping UndefinedError or SecurityError.
    for templates in (Templates(), Templates(direct=False)):
        with pytest.raises(TemplateError) as raised:
            templates.evaluate(expression, SCOPE, path="$.when")
        assert raised.value.path == "$.when"


def test_a_sandbox_that_intercepts_operators_keeps_them() -> None:
    templates = Templates()
    templates.env.intercepted_binops = frozenset({"+"})
    assert not isinstance(templates._compiled("{{ inputs.amount + 1 }}"), _Direct)
    assert isinstance(templates._compiled("{{ inputs.amount }}"), _Direct)


def test_validation_and_evaluation_parse_a_source_once(monkeypatch: pytest.MonkeyPatch) -> None:
    templates = Templates()
    parsed: list[str] = []
    parse = templates.env.parse

    def counting(source: str, *args: Any, **kwargs: Any) -> Any:
        parsed.append(source)
        return parse(source, *args, **kwargs)

    monkeypatch.setattr(templates.env, "parse", counting)
    config = {"a": "{{ nodes.s1.output.i + 1 }}", "b": "Hi {{ inputs.name }}"}
    assert [r.root for r in templates.references(config)] == ["nodes", "inputs"]
    assert templates.render(config, SCOPE) == {"a": 42, "b": "Hi Ada"}
    assert sorted(parsed) == sorted(config.values())
