"""Templates: native-typed expressions, strict undefined names, the sandbox, references."""

from __future__ import annotations

from typing import Any

import pytest

from stepline.spec.templates import (
    Reference,
    TemplateError,
    Templates,
    get_templates,
    is_template,
)

SCOPE: dict[str, Any] = {
    "inputs": {"amount": 1200, "customer": "ACME", "tags": ["a", "b"], "note": None},
    "nodes": {
        "score": {"output": {"risk": 0.7, "items": [3, 4]}, "status": "completed", "error": None},
        "flag": {"output": None, "status": "skipped", "error": None},
        "approve": {"output": {"message": "ok"}, "status": "completed", "error": None},
    },
    "run": {"id": "run-1"},
    "loop": {"index": 2, "item": {"sku": "X1"}},
}


@pytest.fixture
def templates() -> Templates:
    return Templates()


def test_plain_string_is_returned_without_touching_jinja(templates: Templates) -> None:
    # Jinja would reject an unclosed comment; a string without {{ or {% never reaches it.
    assert templates.render("50% off {# not a template", SCOPE) == "50% off {# not a template"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ inputs.tags }}", ["a", "b"]),
        ("{{ inputs.amount }}", 1200),
        ("  {{ inputs.amount / 1000 }}\n", 1.2),
        ("{{ inputs.note }}", None),
        ("{{ nodes.score.output }}", {"risk": 0.7, "items": [3, 4]}),
        ("{{ nodes.score.output.risk > 0.5 }}", True),
        ("{{ {'a': {'b': 1}} }}", {"a": {"b": 1}}),
    ],
)
def test_single_expression_keeps_native_type(
    templates: Templates, source: str, expected: Any
) -> None:
    result = templates.render(source, SCOPE)
    assert result == expected
    assert type(result) is type(expected)


def test_mixed_template_renders_to_string_with_json_for_structures(
    templates: Templates,
) -> None:
    rendered = templates.render("{{ inputs.customer }} tags={{ inputs.tags }}", SCOPE)
    assert rendered == 'ACME tags=["a", "b"]'
    assert templates.render("{{ inputs.amount }}{{ inputs.amount }}", SCOPE) == "12001200"


def test_render_walks_dicts_and_lists_but_not_keys(templates: Templates) -> None:
    value = {"{{ inputs.customer }}": ["{{ inputs.amount }}", {"x": "id={{ run.id }}"}, 7]}
    assert templates.render(value, SCOPE) == {"{{ inputs.customer }}": [1200, {"x": "id=run-1"}, 7]}


def test_missing_key_is_error_naming_path_and_name(templates: Templates) -> None:
    value = {"inputs": {"amount": "{{ inputs.nope }}"}}
    with pytest.raises(TemplateError) as caught:
        templates.render(value, SCOPE, path="$.config")
    assert caught.value.path == "$.config.inputs.amount"
    assert "'nope'" in caught.value.message
    assert str(caught.value).startswith("$.config.inputs.amount: 'dict object' has no attribute")


def test_missing_key_inside_text_is_error_not_empty_string(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="missing"):
        templates.render("Dear {{ nodes.score.output.missing }}", SCOPE, path="$.x")


def test_attribute_of_none_is_error(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="'None' has no attribute 'message'"):
        templates.render("{{ nodes.flag.output.message }}", SCOPE)


def test_undefined_inside_a_native_list_is_error(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="nope"):
        templates.render("{{ [inputs.amount, inputs.nope] }}", SCOPE)


def test_undefined_root_name_is_error(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="'secrets' is undefined"):
        templates.render("{{ secrets.key }}", SCOPE)


def test_skipped_node_output_falls_through_or(templates: Templates) -> None:
    source = "{{ nodes.flag.output or nodes.approve.output }}"
    assert templates.render(source, SCOPE) == {"message": "ok"}


def test_defined_test_and_default_filter_still_work(templates: Templates) -> None:
    assert templates.render("{{ inputs.nope is defined }}", SCOPE) is False
    assert templates.render("{{ inputs.nope | default('x') }}", SCOPE) == "x"


def test_mapping_key_wins_over_dict_method(templates: Templates) -> None:
    assert templates.render("{{ nodes.score.output.items }}", SCOPE) == [3, 4]


def test_syntax_error_is_template_error_with_path(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.render({"a": ["{{ inputs. }}"]}, SCOPE, path="$.config")
    assert caught.value.path == "$.config.a[0]"
    assert "syntax error" in caught.value.message


def test_sandbox_blocks_attribute_escape(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="unsafe"):
        templates.render("{{ ''.__class__.__mro__ }}", SCOPE)


def test_sandbox_blocks_mutating_inputs(templates: Templates) -> None:
    scope = {"inputs": {"tags": ["a"]}}
    with pytest.raises(TemplateError, match="unsafe"):
        templates.render("{{ inputs.tags.append('b') }}", scope)
    assert scope["inputs"]["tags"] == ["a"]


def test_runtime_error_is_template_error(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        templates.render("{{ inputs.amount / 0 }}", SCOPE, path="$.x")


def test_evaluate_bare_expression(templates: Templates) -> None:
    assert templates.evaluate("nodes.score.output.risk > 0.5", SCOPE) is True
    assert templates.evaluate("loop.item.sku ~ '-' ~ loop.index", SCOPE) == "X1-2"


def test_evaluate_undefined_is_error(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="'dict object' has no attribute 'riskk'"):
        templates.evaluate("nodes.score.output.riskk > 0.5", SCOPE)


def test_evaluate_rejects_trailing_tokens(templates: Templates) -> None:
    with pytest.raises(TemplateError, match="syntax error"):
        templates.evaluate("inputs.amount inputs.customer", SCOPE)


def test_each_source_is_compiled_once(templates: Templates) -> None:
    for amount in range(50):
        assert templates.render("{{ inputs.amount + 1 }}", {"inputs": {"amount": amount}}) == (
            amount + 1
        )
    info = templates._compiled.cache_info()
    assert (info.misses, info.hits) == (1, 49)


def test_references_name_roots_and_node_ids(templates: Templates) -> None:
    value = {
        "a": "{{ nodes.score.output.risk }} {{ nodes['score-1'].output }}",
        "b": ["{{ inputs.amount }} {{ run.id }} {{ loop.index }} {{ secrets }}"],
        "c": "no template",
        "d": "{{ secrets.API_KEY }} {{ secrets['B'] }} {{ secrets[inputs.name] }}",
    }
    assert templates.references(value, path="$.config") == [
        Reference("nodes", "score", "$.config.a"),
        Reference("nodes", "score-1", "$.config.a"),
        Reference("inputs", None, "$.config.b[0]"),
        Reference("run", None, "$.config.b[0]"),
        Reference("loop", None, "$.config.b[0]"),
        Reference("secrets", None, "$.config.b[0]"),
        Reference("secrets", None, "$.config.d", "API_KEY"),
        Reference("secrets", None, "$.config.d", "B"),
        Reference("secrets", None, "$.config.d"),
        Reference("inputs", None, "$.config.d"),
    ]


def test_references_skip_names_bound_in_template_and_globals(templates: Templates) -> None:
    source = (
        "{% set total = 0 %}{% for tag in inputs.tags %}{{ tag }}{{ loop.index }}{% endfor %}"
        "{{ total }}{{ range(3) | list }}"
    )
    assert templates.references(source) == [Reference("inputs", None, "$")]


def test_references_of_bare_expression(templates: Templates) -> None:
    refs = templates.references("nodes.score.output.risk > inputs.limit", expression=True)
    assert refs == [Reference("nodes", "score", "$"), Reference("inputs", None, "$")]


def test_references_of_computed_node_id_have_no_node(templates: Templates) -> None:
    refs = templates.references("{{ nodes[inputs.which].output }}")
    assert refs == [Reference("nodes", None, "$"), Reference("inputs", None, "$")]


def test_references_syntax_error_names_path(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        templates.references({"when": ["{% if %}"]}, path="$.config")
    assert caught.value.path == "$.config.when[0]"


def test_get_templates_is_one_shared_instance() -> None:
    assert get_templates() is get_templates()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("{{ x }}", True), ("{% if x %}y{% endif %}", True), ("{ x }", False), ("{# c #}", False)],
)
def test_is_template(text: str, expected: bool) -> None:
    assert is_template(text) is expected


# --- plain lookups read the scope directly, with the sandbox's values and errors ---------

LOOKUP_SCOPE: dict[str, Any] = {
    **SCOPE,
    "inputs": {
        **SCOPE["inputs"],
        "odd keys": {"x-y": 1, "items": "key wins", "0": "text zero", "__class__": "data"},
        "rows": [{"qty": 1}, {"qty": 2}],
        "pair": (10, 20),
        "name": "Ada",
    },
}

LOOKUPS = [
    "{{ inputs.amount }}",
    "{{ inputs.note }}",
    "{{ inputs }}",
    "{{ nodes.score.output.risk }}",
    "{{ nodes.score.output.items }}",  # a key named like a dict method
    "{{ nodes.score.output.items[1] }}",
    "{{ nodes.score.output.items[-1] }}",
    "{{ nodes.score.output.items[2] }}",  # out of range
    "{{ nodes.score.output.items.0 }}",
    '{{ nodes["score"]["output"]["risk"] }}',
    '{{ inputs["odd keys"]["x-y"] }}',
    '{{ inputs["odd keys"].items }}',
    '{{ inputs["odd keys"]["0"] }}',
    '{{ inputs["odd keys"][0] }}',  # an int index of a str-keyed mapping
    '{{ inputs["odd keys"].__class__ }}',
    "{{ inputs.rows[1].qty }}",
    "{{ inputs.rows.qty }}",  # an attribute of a list
    "{{ inputs.pair[0] }}",
    "{{ inputs.name.upper }}",  # an attribute of a str: the sandbox decides
    "{{ inputs.name[0] }}",
    "{{ inputs.nope }}",
    "{{ inputs.note.deeper }}",  # an attribute of None
    "{{ nodes.flag.output.message }}",
    "{{ nodes.missing.output }}",
    "{{ range }}",  # a global, not in the scope
    "{{ nope }}",
    "{{ loop.item.sku }}",
    "  {{ run.id }}\n",
]


def _outcome(templates: Templates, source: str, scope: dict[str, Any]) -> tuple[str, Any]:
    try:
        return "value", templates.render(source, scope, path="$.x")
    except TemplateError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("source", LOOKUPS)
def test_plain_lookups_give_the_sandboxes_values_and_errors(source: str) -> None:
    fast = _outcome(Templates(), source, LOOKUP_SCOPE)
    sandboxed = _outcome(Templates(direct=False), source, LOOKUP_SCOPE)
    if fast[0] == "value" and callable(fast[1]):  # a bound method or a global function
        assert sandboxed[0] == "value" and fast[1] == sandboxed[1]
    else:
        assert fast == sandboxed


@pytest.mark.parametrize(
    "expression", [s.strip().removeprefix("{{").removesuffix("}}") for s in LOOKUPS]
)
def test_plain_lookup_expressions_give_the_sandboxes_values_and_errors(expression: str) -> None:
    def outcome(templates: Templates) -> tuple[str, Any]:
        try:
            return "value", templates.evaluate(expression, LOOKUP_SCOPE, path="$.when")
        except TemplateError as exc:
            return "error", str(exc)

    fast, sandboxed = outcome(Templates()), outcome(Templates(direct=False))
    if fast[0] == "value" and callable(fast[1]):
        assert sandboxed[0] == "value" and fast[1] == sandboxed[1]
    else:
        assert fast == sandboxed


def test_a_plain_lookup_returns_the_scopes_own_value(templates: Templates) -> None:
    assert templates.render("{{ inputs.rows }}", LOOKUP_SCOPE) is LOOKUP_SCOPE["inputs"]["rows"]


def test_a_plain_lookup_follows_the_scope_it_is_given(templates: Templates) -> None:
    source = "{{ nodes.a.output.n }}"
    assert templates.render(source, {"nodes": {"a": {"output": {"n": 1}}}}) == 1
    assert templates.render(source, {"nodes": {"a": {"output": {"n": 2}}}}) == 2
    with pytest.raises(TemplateError, match="has no attribute 'output'"):
        templates.render(source, {"nodes": {"a": None}}, path="$.x")
