"""The policy file: the shipped defaults equal DESIGN.md, bad files are refused naming the field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream.core.conditions import ConditionError, compile_condition, evaluate
from stream.core.policy import (
    DEFAULT_POLICY_PATH,
    Policy,
    PolicyError,
    default_policy,
    load_policy,
    parse_policy,
    policy_warnings,
)
from stream.testing import policy_yaml

EXAMPLES = sorted((DEFAULT_POLICY_PATH.parent / "examples").glob("*.yaml"))


def test_default_policy_path_is_the_repo_file() -> None:
    assert DEFAULT_POLICY_PATH.is_file()
    assert DEFAULT_POLICY_PATH.parent.name == "policy"


def test_default_policy_uses_exactly_the_design_defaults_table() -> None:
    policy = default_policy()
    assert policy.confidence.thresholds == {
        "financial": 0.90,
        "account_change": 0.85,
        "informational": 0.50,
    }
    assert policy.boundaries.refund.enabled
    assert policy.boundaries.refund.limit == 100
    assert policy.boundaries.refund.by_tier == {}
    assert policy.boundaries.email_access.enabled
    assert "account_email_change" in policy.boundaries.email_access.action_types
    assert "account_disclosure" in policy.boundaries.email_access.action_types
    assert policy.boundaries.enterprise_cancellation.enabled
    rule = {r.name: r for r in policy.rules}["disputed_billing"]
    assert rule.action == "escalate"
    assert rule.when == {
        "all": [
            {"field": "conversation.category", "op": "eq", "value": "billing"},
            {"field": "account.flags", "op": "contains", "value": "disputed_charge"},
            {"field": "account.flags", "op": "contains", "value": "recent_negative_review"},
        ]
    }
    assert policy.sentiment.min_turns == 2
    assert policy.sentiment.turn_threshold == 0.45
    assert policy.sentiment.turn_threshold_by_channel == {"social": 0.24}
    assert policy.sentiment.window_turns == 3
    assert policy.sentiment.score_floor == -0.6
    assert policy.sentiment.consecutive_low_scores == 2
    assert policy.sentiment.action == "offer_transfer"
    assert policy.explicit_request.enabled and policy.explicit_request.action == "escalate"
    assert policy.repeat_contact.contacts == 3
    assert policy.repeat_contact.window_days == 7
    assert policy.repeat_contact.action == "escalate"
    assert policy.calibration.false_escalation_max_seconds == 120
    assert policy.calibration.missed_reopen_hours == 48
    assert policy.messages.policy_boundary == (
        "This request requires a quick review from our team — I'm connecting you now with full "
        "context from our conversation."
    )


def test_default_policy_file_equals_the_model_defaults() -> None:
    # The YAML states every value explicitly; they must agree with the defaults in code, so that a
    # partial operator file and the shipped file mean the same thing. Only the example operator
    # rule and the routes exist in the file alone.
    shipped = default_policy().model_dump(exclude={"rules", "routing"})
    assert shipped == Policy(version=default_policy().version).model_dump(
        exclude={"rules", "routing"}
    )


def test_default_policy_has_no_warnings() -> None:
    assert policy_warnings(default_policy()) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_policies_are_valid(path: Path) -> None:
    policy = load_policy(path)
    assert policy.version
    assert policy_warnings(policy) == []


def _with(overrides: dict[str, Any]) -> str:
    return policy_yaml(overrides)


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        (
            _with({"confidence": {"thresholds": {"financial": 1.5}}}),
            "confidence.thresholds.financial",
            "must be between 0 and 1",
        ),
        (
            _with({"confidence": {"thresholds": {"informational": -0.1}}}),
            "confidence.thresholds.informational",
            "must be between 0 and 1",
        ),
        (
            "version: x\nconfidence: {thresholds: {financial: 0.9, informational: 0.5}}\n",
            "confidence.thresholds.account_change",
            "required consequence class is missing",
        ),
        (_with({"confidnce": {}}), "confidnce", "unknown field"),
        (_with({"sentiment": {"windw_turns": 3}}), "sentiment.windw_turns", "unknown field"),
        (_with({"sentiment": {"min_turns": 0}}), "sentiment.min_turns", "greater than"),
        (_with({"sentiment": {"min_turns": 4}}), "sentiment.min_turns", "never fires"),
        (_with({"sentiment": {"turn_threshold": 1.5}}), "sentiment.turn_threshold", "less than"),
        (
            _with({"sentiment": {"turn_threshold_by_channel": {"social": -1}}}),
            "sentiment.turn_threshold_by_channel.social",
            "between 0 and 1",
        ),
        # The former marker count is gone; a policy that still sets it is told so.
        (_with({"sentiment": {"min_markers": 2}}), "sentiment.min_markers", "unknown field"),
        (_with({"repeat_contact": {"contacts": 1}}), "repeat_contact.contacts", "greater than"),
        (_with({"repeat_contact": {"window_days": 0}}), "repeat_contact.window_days", "greater"),
        (_with({"boundaries": {"refund": {"limit": -5}}}), "boundaries.refund.limit", "greater"),
        (
            _with({"boundaries": {"refund": {"by_tier": {"gold": -1}}}}),
            "boundaries.refund.by_tier.gold",
            "must be 0 or more",
        ),
        (
            _with(
                {
                    "rules": [
                        {"name": "r", "when": {"field": "acount.flags", "op": "eq", "value": 1}}
                    ]
                }
            ),
            "rules[0].when.field",
            "unknown field path 'acount.flags'",
        ),
        (
            _with(
                {
                    "rules": [
                        {
                            "name": "r",
                            "when": {
                                "all": [{"field": "account.tier", "op": "like", "value": "x"}]
                            },
                        }
                    ]
                }
            ),
            "rules[0].when.all[0].op",
            "unknown op 'like'",
        ),
        (
            _with(
                {
                    "rules": [
                        {"name": "r", "when": {"field": "account.tier", "op": "gt", "value": 1}}
                    ]
                }
            ),
            "rules[0].when.op",
            "needs a numeric field",
        ),
        (
            _with(
                {
                    "rules": [
                        {
                            "name": "Bad Name",
                            "when": {"field": "account.tier", "op": "eq", "value": "x"},
                        }
                    ]
                }
            ),
            "rules[0].name",
            "pattern",
        ),
        (_with({"rules": [{"name": "r"}]}), "rules[0].when", "required field is missing"),
        (_with({"priorities": {"order": ["sentiment"]}}), "priorities.order", "does not list"),
        (_with({"routing": {"routes": [{"queue": ""}]}}), "routing.routes[0].queue", "at least 1"),
        (_with({"handoff": {"transcript_turns": 50}}), "handoff.transcript_turns", "exceeds"),
        (_with({"version": ""}), "version", "at least 1"),
        ("confidence: {}\n", "version", "required field is missing"),
        ("version: a\nversion: b\n", "version", "duplicate key"),
        ("- just\n- a list\n", "", "must be a YAML mapping"),
        ("version: [unclosed\n", "", "not valid YAML"),
    ],
)
def test_invalid_policy_names_the_field(text: str, field: str, problem: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: " if field else "")
    assert problem in str(caught.value)


def test_invalid_policy_file_leaves_the_policy_in_force(tmp_path: Path) -> None:
    # Given a policy in force
    in_force = default_policy()
    before = in_force.model_dump()
    bad = tmp_path / "bad.yaml"
    bad.write_text(_with({"confidence": {"thresholds": {"financial": 2}}}), encoding="utf-8")
    # When a bad file is loaded
    with pytest.raises(PolicyError, match=r"^confidence\.thresholds\.financial: "):
        load_policy(bad)
    # Then nothing else changed
    assert in_force.model_dump() == before
    assert in_force == default_policy()


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.yaml")


def test_policy_is_frozen() -> None:
    policy = default_policy()
    with pytest.raises(Exception, match="frozen"):
        policy.version = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("thresholds", "warns"),
    [
        ({"financial": 0.8, "account_change": 0.8, "informational": 0.8}, "one flat threshold"),
        ({"financial": 0.7, "account_change": 0.7, "informational": 0.7, "x": 0.7}, "flat"),
        ({"financial": 0.4, "account_change": 0.85, "informational": 0.5}, "below informational"),
        ({"financial": 0.9, "account_change": 0.85, "informational": 0.5}, None),
    ],
)
def test_flat_thresholds_warn(
    policy_factory: Callable[..., Policy], thresholds: dict[str, float], warns: str | None
) -> None:
    policy = policy_factory({"confidence": {"thresholds": thresholds}})
    warnings = policy_warnings(policy)
    if warns is None:
        assert warnings == []
    else:
        assert len(warnings) == 1
        assert warnings[0].startswith("confidence.thresholds")
        assert warns in warnings[0]


def test_partial_policy_takes_defaults() -> None:
    policy = parse_policy("version: minimal\n")
    assert policy.confidence.thresholds["financial"] == 0.90
    assert policy.rules == ()


@pytest.mark.parametrize(
    ("condition", "facts", "expected"),
    [
        ({"field": "account.tier", "op": "eq", "value": "gold"}, {"account.tier": "gold"}, True),
        ({"field": "account.tier", "op": "eq", "value": "gold"}, {}, False),
        ({"field": "account.tier", "op": "ne", "value": "gold"}, {}, True),
        ({"field": "account.tier", "op": "in", "value": ["a", "b"]}, {"account.tier": "b"}, True),
        (
            {"field": "account.flags", "op": "contains", "value": "vip"},
            {"account.flags": ("vip",)},
            True,
        ),
        (
            {"field": "account.flags", "op": "contains", "value": "vip"},
            {"account.flags": ()},
            False,
        ),
        (
            {"field": "message.text", "op": "contains", "value": "LAWYER"},
            {"message.text": "my lawyer"},
            True,
        ),
        ({"field": "action.amount", "op": "gt", "value": 100}, {"action.amount": 100.0}, False),
        ({"field": "action.amount", "op": "gte", "value": 100}, {"action.amount": 100.0}, True),
        ({"field": "action.amount", "op": "lt", "value": 100}, {"action.amount": 99.99}, True),
        ({"field": "action.amount", "op": "lte", "value": 100}, {"action.amount": 100.01}, False),
        ({"field": "action.amount", "op": "gt", "value": 1}, {}, False),
        ({"field": "action.type", "op": "exists", "value": True}, {"action.type": "refund"}, True),
        ({"field": "action.type", "op": "exists", "value": False}, {}, True),
        (
            {"not": {"field": "account.known", "op": "eq", "value": True}},
            {"account.known": False},
            True,
        ),
        (
            {
                "any": [
                    {"field": "account.tier", "op": "eq", "value": "x"},
                    {"field": "account.plan", "op": "eq", "value": "y"},
                ]
            },
            {"account.plan": "y"},
            True,
        ),
        (
            {
                "all": [
                    {"field": "account.tier", "op": "eq", "value": "x"},
                    {"field": "account.plan", "op": "eq", "value": "y"},
                ]
            },
            {"account.plan": "y"},
            False,
        ),
    ],
)
def test_condition_language(
    condition: dict[str, Any], facts: dict[str, Any], expected: bool
) -> None:
    assert evaluate(compile_condition(condition), facts) is expected


@pytest.mark.parametrize(
    ("condition", "path"),
    [
        ({"field": "x", "op": "eq", "value": 1}, "field"),
        ({"field": "account.tier", "op": "eq"}, "value"),
        ({"field": "account.tier", "op": "in", "value": "a"}, "value"),
        ({"field": "account.tier", "op": "exists", "value": "yes"}, "value"),
        ({"all": []}, "all"),
        ({"all": [{"field": "account.tier", "op": "eq", "value": 1}], "any": []}, ""),
        ({"not": {"field": "account.tier", "op": "eq", "value": 1}, "x": 1}, ""),
        ({"field": "account.tier", "op": "eq", "value": 1, "extra": 2}, "extra"),
        ({"any": [{"not": {"field": "nope", "op": "eq", "value": 1}}]}, "any[0].not.field"),
        ("account.tier == 'x'", ""),
    ],
)
def test_condition_errors_name_the_sub_path(condition: Any, path: str) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(condition)
    assert caught.value.path == path
