"""A small structured condition language for operator rules, checked at policy load, never eval'd.

A condition is a mapping with exactly one of these shapes:

    {all: [cond, ...]}   {any: [cond, ...]}   {not: cond}
    {field: <path>, op: <op>, value: <value>}

`field` is one of `FIELDS` (the facts the decision core knows when it evaluates a rule) and `op`
one of `OPS`. A fact that is not known (no account snapshot yet, no proposed action on this turn)
is `None`: every comparison on it is false except `ne`, and `exists: false` is true.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

from stream.errors import BadInputError

FieldKind: TypeAlias = Literal["str", "num", "bool", "list"]

FIELDS: Final[dict[str, FieldKind]] = {
    "account.tier": "str",
    "account.plan": "str",
    "account.flags": "list",
    "account.enterprise_contract": "bool",
    "account.primary_email": "str",
    "account.balance": "num",
    "account.currency": "str",
    "account.open_cases": "num",
    "account.known": "bool",
    "action.type": "str",
    "action.consequence_class": "str",
    "action.amount": "num",
    "action.currency": "str",
    "action.target": "str",
    "conversation.category": "str",
    "conversation.channel": "str",
    "conversation.customer_turns": "num",
    "conversation.ai_turns": "num",
    "message.role": "str",
    "message.intent": "str",
    "message.intent_confidence": "num",
    "message.text": "str",
}
OPS: Final[frozenset[str]] = frozenset(
    {"eq", "ne", "in", "contains", "gt", "gte", "lt", "lte", "exists"}
)
_NUMERIC_OPS: Final[frozenset[str]] = frozenset({"gt", "gte", "lt", "lte"})


class ConditionError(BadInputError):
    """A condition that cannot be compiled; `path` is where inside the condition it went wrong."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Pred:
    path: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition


Condition: TypeAlias = Pred | AllOf | AnyOf | Not


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def compile_condition(raw: Any, path: str = "") -> Condition:
    """Turn the YAML form into a condition tree, or raise ConditionError naming the sub-path."""
    if not isinstance(raw, Mapping):
        raise ConditionError(path, f"expected a mapping, got {type(raw).__name__}")
    keys = set(raw)
    for combinator in ("all", "any"):
        if combinator in keys:
            if keys != {combinator}:
                raise ConditionError(path, f"'{combinator}' cannot be combined with other keys")
            items = raw[combinator]
            if not isinstance(items, list) or not items:
                raise ConditionError(_join(path, combinator), "expected a non-empty list")
            compiled = tuple(
                compile_condition(item, f"{_join(path, combinator)}[{index}]")
                for index, item in enumerate(items)
            )
            return AllOf(compiled) if combinator == "all" else AnyOf(compiled)
    if "not" in keys:
        if keys != {"not"}:
            raise ConditionError(path, "'not' cannot be combined with other keys")
        return Not(compile_condition(raw["not"], _join(path, "not")))
    unknown = keys - {"field", "op", "value"}
    if unknown:
        raise ConditionError(
            _join(path, sorted(unknown)[0]),
            "unknown key; expected all, any, not, or field/op/value",
        )
    field_path = raw.get("field")
    if not isinstance(field_path, str):
        raise ConditionError(_join(path, "field"), "required, a field path such as account.tier")
    kind = FIELDS.get(field_path)
    if kind is None:
        raise ConditionError(
            _join(path, "field"),
            f"unknown field path {field_path!r}; known: {', '.join(sorted(FIELDS))}",
        )
    op = raw.get("op")
    if op not in OPS:
        raise ConditionError(
            _join(path, "op"), f"unknown op {op!r}; expected one of {', '.join(sorted(OPS))}"
        )
    if "value" not in raw:
        raise ConditionError(_join(path, "value"), "required")
    value = raw["value"]
    where = _join(path, "value")
    if op == "exists":
        if not isinstance(value, bool):
            raise ConditionError(where, "'exists' takes true or false")
    elif op == "in":
        if not isinstance(value, list) or not all(_scalar(v) for v in value):
            raise ConditionError(where, "'in' takes a list of plain values")
        if kind == "list":
            raise ConditionError(_join(path, "op"), f"'in' does not apply to list {field_path}")
        value = tuple(value)
    elif op in _NUMERIC_OPS:
        if kind != "num":
            raise ConditionError(_join(path, "op"), f"'{op}' needs a numeric field")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConditionError(where, f"'{op}' takes a number")
    elif op == "contains":
        if kind not in ("list", "str"):
            raise ConditionError(_join(path, "op"), f"'contains' does not apply to {field_path}")
        if not isinstance(value, str):
            raise ConditionError(where, "'contains' takes a string")
    elif not _scalar(value):
        raise ConditionError(where, f"'{op}' takes a plain value")
    return Pred(field_path, op, value)


def evaluate(condition: Condition, facts: Mapping[str, Any]) -> bool:
    """True when the facts satisfy the condition; unknown facts compare as described above."""
    if isinstance(condition, Pred):
        return _pred(condition, facts.get(condition.path))
    if isinstance(condition, AllOf):
        return all(evaluate(item, facts) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(evaluate(item, facts) for item in condition.items)
    return not evaluate(condition.item, facts)


def _pred(pred: Pred, actual: Any) -> bool:
    op = pred.op
    expected = pred.value
    if op == "exists":
        return (actual is not None) is expected
    if op == "ne":
        return bool(actual != expected)
    if actual is None:
        return False
    if op == "eq":
        return bool(actual == expected)
    if op == "in":
        return actual in expected
    if op == "contains":
        if isinstance(actual, str):
            return expected.lower() in actual.lower()
        return expected in actual
    if isinstance(actual, bool) or not isinstance(actual, int | float):
        return False
    if op == "gt":
        return bool(actual > expected)
    if op == "gte":
        return bool(actual >= expected)
    if op == "lt":
        return bool(actual < expected)
    return bool(actual <= expected)


def matched_facts(condition: Condition, facts: Mapping[str, Any]) -> list[Pred]:
    """The predicates that held, in order: the evidence of a rule that fired."""
    out: list[Pred] = []
    _collect(condition, facts, out)
    return out


def _collect(condition: Condition, facts: Mapping[str, Any], out: list[Pred]) -> None:
    if isinstance(condition, Pred):
        if _pred(condition, facts.get(condition.path)):
            out.append(condition)
    elif isinstance(condition, AllOf | AnyOf):
        for item in condition.items:
            _collect(item, facts, out)
    # A negation holds because something did not match: nothing positive to quote.


def referenced_flags(condition: Condition) -> frozenset[str]:
    """Account flags a condition tests for, so a handoff can show them as relevant."""
    if isinstance(condition, Pred):
        if condition.path == "account.flags" and condition.op in ("contains", "eq"):
            return frozenset({str(condition.value)})
        return frozenset()
    if isinstance(condition, AllOf | AnyOf):
        flags: frozenset[str] = frozenset()
        for item in condition.items:
            flags |= referenced_flags(item)
        return flags
    return frozenset()
