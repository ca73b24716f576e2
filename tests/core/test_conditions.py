"""The operator-rule condition language: every operator at its edges, every bad shape refused."""

from __future__ import annotations

from typing import Any

import pytest

from stream.core.conditions import (
    AllOf,
    AnyOf,
    ConditionError,
    Not,
    Pred,
    compile_condition,
    evaluate,
    matched_facts,
    referenced_flags,
)


def pred(field: str, op: str, value: Any) -> dict[str, Any]:
    """A predicate as policy YAML writes it."""
    return {"field": field, "op": op, "value": value}


def holds(op: str, value: Any, actual: Any, field: str = "account.balance") -> bool:
    return evaluate(compile_condition({"field": field, "op": op, "value": value}), {field: actual})


@pytest.mark.parametrize(
    ("op", "below", "at", "above"),
    [
        ("gt", False, False, True),
        ("gte", False, True, True),
        ("lt", True, False, False),
        ("lte", True, True, False),
    ],
)
def test_numeric_operators_at_each_edge(op: str, below: bool, at: bool, above: bool) -> None:
    assert (holds(op, 100, 99.99), holds(op, 100, 100), holds(op, 100, 100.01)) == (
        below,
        at,
        above,
    )


@pytest.mark.parametrize("op", ["gt", "gte", "lt", "lte"])
def test_numeric_operators_are_false_on_unknown_or_non_numbers(op: str) -> None:
    assert holds(op, 0, None) is False
    assert holds(op, 0, "5") is False
    # A bool is not a number here, though Python would compare it as one
    assert holds(op, 0, True) is False
    assert holds(op, 1, False) is False


def test_equality_and_membership() -> None:
    assert holds("eq", "gold", "gold", "account.tier") is True
    assert holds("eq", "gold", "silver", "account.tier") is False
    assert holds("eq", "gold", None, "account.tier") is False
    assert holds("ne", "gold", "silver", "account.tier") is True
    assert holds("ne", "gold", "gold", "account.tier") is False
    # An unknown fact is "not equal" to anything
    assert holds("ne", "gold", None, "account.tier") is True
    assert holds("in", ["gold", "vip"], "vip", "account.tier") is True
    assert holds("in", ["gold", "vip"], "free", "account.tier") is False
    assert holds("in", ["gold"], None, "account.tier") is False


def test_contains_on_text_ignores_case_and_on_lists_matches_items() -> None:
    assert holds("contains", "Lawyer", "my LAWYER called", "message.text") is True
    assert holds("contains", "lawyer", "my attorney called", "message.text") is False
    assert holds("contains", "vip", ("vip", "churn_risk"), "account.flags") is True
    # On a list, an item must match whole: no substring, no case folding
    assert holds("contains", "vi", ("vip",), "account.flags") is False
    assert holds("contains", "VIP", ("vip",), "account.flags") is False
    assert holds("contains", "vip", None, "account.flags") is False


def test_exists() -> None:
    assert holds("exists", True, "a@b.c", "account.primary_email") is True
    assert holds("exists", True, None, "account.primary_email") is False
    assert holds("exists", False, None, "account.primary_email") is True
    assert holds("exists", False, "a@b.c", "account.primary_email") is False


def test_combinators() -> None:
    gold = {"field": "account.tier", "op": "eq", "value": "gold"}
    rich = {"field": "account.balance", "op": "gt", "value": 10}
    facts = {"account.tier": "gold", "account.balance": 5}
    assert evaluate(compile_condition({"all": [gold, rich]}), facts) is False
    assert evaluate(compile_condition({"any": [gold, rich]}), facts) is True
    assert evaluate(compile_condition({"not": rich}), facts) is True
    assert evaluate(compile_condition({"not": gold}), facts) is False
    assert evaluate(compile_condition({"all": [gold]}), facts) is True
    assert evaluate(compile_condition({"any": [rich]}), facts) is False


def test_compiled_shapes() -> None:
    gold = {"field": "account.tier", "op": "eq", "value": "gold"}
    assert compile_condition(gold) == Pred("account.tier", "eq", "gold")
    assert compile_condition({"all": [gold]}) == AllOf((Pred("account.tier", "eq", "gold"),))
    assert compile_condition({"any": [gold]}) == AnyOf((Pred("account.tier", "eq", "gold"),))
    assert compile_condition({"not": gold}) == Not(Pred("account.tier", "eq", "gold"))
    # `in` keeps its values as an immutable tuple
    assert compile_condition({"field": "account.tier", "op": "in", "value": ["a", "b"]}) == Pred(
        "account.tier", "in", ("a", "b")
    )


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ("tier is gold", ""),
        ({"all": []}, "all"),
        ({"any": "x"}, "any"),
        ({"all": [{"field": "account.tier", "op": "eq", "value": 1}], "not": {}}, ""),
        ({"any": [{"field": "account.tier", "op": "eq", "value": 1}], "field": "x"}, ""),
        ({"not": {"field": "account.tier", "op": "eq", "value": 1}, "field": "x"}, ""),
        ({"not": {"field": "nope", "op": "eq", "value": 1}}, "not.field"),
        ({"all": [{"field": "account.tier", "op": "eq"}]}, "all[0].value"),
        ({"field": "account.tier", "op": "eq", "value": 1, "extra": 2}, "extra"),
        ({"op": "eq", "value": 1}, "field"),
        ({"field": 3, "op": "eq", "value": 1}, "field"),
        ({"field": "account.nope", "op": "eq", "value": 1}, "field"),
        ({"field": "account.tier", "op": "like", "value": 1}, "op"),
        ({"field": "account.tier", "op": None, "value": 1}, "op"),
        ({"field": "account.tier", "op": "exists", "value": "yes"}, "value"),
        ({"field": "account.tier", "op": "exists", "value": 1}, "value"),
        ({"field": "account.tier", "op": "in", "value": "gold"}, "value"),
        ({"field": "account.tier", "op": "in", "value": ["gold", ["vip"]]}, "value"),
        ({"field": "account.tier", "op": "in", "value": [{"a": 1}]}, "value"),
        ({"field": "account.flags", "op": "in", "value": ["vip"]}, "op"),
        ({"field": "account.tier", "op": "gt", "value": 3}, "op"),
        ({"field": "account.balance", "op": "gt", "value": "3"}, "value"),
        ({"field": "account.balance", "op": "lt", "value": True}, "value"),
        ({"field": "account.balance", "op": "lte", "value": None}, "value"),
        ({"field": "account.balance", "op": "gte", "value": [1]}, "value"),
        ({"field": "account.balance", "op": "contains", "value": "1"}, "op"),
        ({"field": "account.enterprise_contract", "op": "contains", "value": "x"}, "op"),
        ({"field": "account.flags", "op": "contains", "value": 3}, "value"),
        ({"field": "message.text", "op": "contains", "value": ["a"]}, "value"),
        ({"field": "account.tier", "op": "eq", "value": ["gold"]}, "value"),
        ({"field": "account.tier", "op": "ne", "value": {"a": 1}}, "value"),
    ],
)
def test_bad_shapes_are_refused_at_load_naming_the_place(condition: Any, path: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition)
    assert caught.value.path == path
    assert isinstance(caught.value.problem, str) and caught.value.problem
    assert str(caught.value) == (f"{path}: " if path else "") + caught.value.problem
    # Inside a policy, the place is under the rule's own path
    with pytest.raises(ConditionError) as nested:
        compile_condition(condition, "rules[3].when")
    assert nested.value.path == "rules[3].when" + (f".{path}" if path else "")
    assert str(nested.value) == f"{nested.value.path}: {nested.value.problem}"


@pytest.mark.parametrize(
    "condition",
    [
        {"field": "account.tier", "op": "in", "value": ["gold", None, 3, 2.5, True]},
        {"field": "account.balance", "op": "gt", "value": 3},
        {"field": "account.balance", "op": "lte", "value": 2.5},
        {"field": "account.flags", "op": "contains", "value": "vip"},
        {"field": "message.text", "op": "contains", "value": "lawyer"},
        {"field": "account.tier", "op": "eq", "value": None},
        {"field": "account.open_cases", "op": "ne", "value": 0},
        {"field": "account.primary_email", "op": "exists", "value": False},
    ],
)
def test_good_shapes_compile(condition: dict[str, Any]) -> None:
    assert isinstance(compile_condition(condition), Pred)


def test_nested_error_path_names_the_index() -> None:
    bad = {"all": [{"field": "account.tier", "op": "eq", "value": 1}, {"any": [{"op": "eq"}]}]}
    with pytest.raises(ConditionError) as caught:
        compile_condition(bad, "rules[2].when")
    assert caught.value.path == "rules[2].when.all[1].any[0].field"


def test_matched_facts_quote_only_what_held() -> None:
    gold_or_rich = {"any": [pred("account.tier", "eq", "gold"), pred("account.balance", "gt", 10)]}
    not_free = {"not": pred("account.tier", "eq", "free")}
    condition = compile_condition(
        {"all": [pred("account.flags", "contains", "vip"), gold_or_rich, not_free]}
    )
    facts = {"account.flags": ("vip",), "account.tier": "silver", "account.balance": 50}
    assert matched_facts(condition, facts) == [
        Pred("account.flags", "contains", "vip"),
        Pred("account.balance", "gt", 10),
    ]


def test_referenced_flags_are_the_flags_tested_for_presence() -> None:
    any_of = [
        pred("account.flags", "eq", "vip"),
        pred("account.tier", "eq", "churn_risk"),
        pred("message.text", "contains", "refund"),
    ]
    all_of = [
        pred("account.flags", "contains", "disputed_charge"),
        {"any": any_of},
        {"not": pred("account.flags", "contains", "test_account")},
        pred("account.flags", "exists", True),
        pred("account.flags", "ne", "spam"),
    ]
    condition = compile_condition({"all": all_of})
    assert referenced_flags(condition) == frozenset({"disputed_charge", "vip"})
    tier = compile_condition({"field": "account.tier", "op": "eq", "value": "vip"})
    assert referenced_flags(tier) == frozenset()
