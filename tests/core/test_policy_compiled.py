"""What a policy compiles to for the per-event path, and how its problems are located."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stream.core.policy import Policy, PolicyError, load_policy, parse_policy, policy_warnings
from stream.core.triggers.confidence import threshold_for
from stream.core.vocabulary import PRIORITY_RANK
from stream.testing import policy_yaml


def test_time_bounds_in_milliseconds(policy_factory: Callable[..., Policy]) -> None:
    compiled = policy_factory(
        {
            "lateness_seconds": 90,
            "repeat_contact": {"window_days": 2.5},
            "state": {"conversation_idle_hours": 1.5},
        }
    ).compiled
    assert compiled.lateness_ms == 90_000
    assert compiled.repeat_window_ms == 216_000_000
    assert compiled.idle_ms == 5_400_000


def test_recorded_thresholds(policy: Policy) -> None:
    compiled = policy.compiled
    sentiment = policy.sentiment
    assert compiled.customer_thresholds == {
        "sentiment.window_turns": float(sentiment.window_turns),
        "sentiment.min_turns": float(sentiment.min_turns),
        "sentiment.turn_threshold": sentiment.turn_threshold,
        **{
            f"sentiment.turn_threshold_by_channel.{channel}": value
            for channel, value in sentiment.turn_threshold_by_channel.items()
        },
        "sentiment.score_floor": -0.6,
        "sentiment.consecutive_low_scores": 2.0,
    }
    assert compiled.contact_thresholds == {
        "repeat_contact.contacts": 3.0,
        "repeat_contact.window_days": 7.0,
    }
    assert compiled.version == policy.version


def test_unlisted_class_takes_the_strictest_threshold_or_the_default(
    policy_factory: Callable[..., Policy],
) -> None:
    assert threshold_for("legal", policy_factory()) == 0.90
    explicit = policy_factory({"confidence": {"default_threshold": 0.7}})
    assert threshold_for("legal", explicit) == 0.7
    assert threshold_for("financial", explicit) == 0.90


def test_trigger_priorities_default_to_normal(policy_factory: Callable[..., Policy]) -> None:
    policy = policy_factory(
        {"priorities": {"by_trigger": {"policy_boundary": "urgent", "confidence": "low"}}}
    )
    ranks = policy.compiled.trigger_priority
    assert ranks["policy_boundary"] == PRIORITY_RANK["urgent"]
    assert ranks["confidence"] == PRIORITY_RANK["low"]
    assert ranks["sentiment"] == PRIORITY_RANK["normal"]


def test_rules_compile_with_their_names_and_the_flags_they_test(
    policy_factory: Callable[..., Policy],
) -> None:
    policy = policy_factory(
        {
            "handoff": {"relevant_flags": ["vip"]},
            "rules": [
                {
                    "name": "one",
                    "description": "first rule",
                    "action": "escalate",
                    "when": {"field": "account.flags", "op": "contains", "value": "fraud"},
                },
                {
                    "name": "two",
                    "action": "offer_transfer",
                    "when": {"field": "account.flags", "op": "contains", "value": "legal_hold"},
                },
            ],
        }
    )
    compiled = policy.compiled
    assert [(r.name, r.rule, r.description, r.action) for r in compiled.rules] == [
        ("one", "rules.one", "first rule", "escalate"),
        ("two", "rules.two", "", "offer_transfer"),
    ]
    assert compiled.relevant_flags == frozenset({"vip", "fraud", "legal_hold"})


def test_a_duplicate_key_names_its_line() -> None:
    text = "version: a\nlateness_seconds: 10\nversion: b\n"
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.field == "version"
    assert "line 3" in str(caught.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        # A model-level check names the full path itself
        ({"state": {"max_contacts": 2}}, "repeat_contact.contacts"),
        # A problem inside a list item is placed on its index
        (
            {
                "rules": [
                    {
                        "name": "a",
                        "action": "escalate",
                        "when": {"field": "x", "op": "eq", "value": 1},
                    }
                ]
            },
            "rules[0].when.field",
        ),
        # A problem of one mapping entry is placed on its key
        ({"confidence": {"thresholds": {"financial": 2}}}, "confidence.thresholds.financial"),
    ],
)
def test_problems_are_placed_on_their_field(overrides: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy_yaml(overrides))
    assert caught.value.field == field
    assert caught.value.problems[0][0] == field
    assert str(caught.value).startswith(f"{field}: ")


def test_every_problem_is_listed(tmp_path: Path) -> None:
    text = policy_yaml(
        {
            "confidence": {"thresholds": {"financial": 2}},
            "lateness_seconds": "soon",
            "nonsense": 1,
        }
    )
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    fields = [path for path, _ in caught.value.problems]
    assert set(fields) >= {
        "confidence.thresholds.financial",
        "lateness_seconds",
        "nonsense",
    }
    assert str(caught.value).count("; ") == len(fields) - 1
    assert all(problem for _, problem in caught.value.problems)


def test_an_unreadable_file_names_no_field(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(tmp_path / "missing.yaml")
    assert caught.value.field == ""
    assert caught.value.problems[0][0] == ""


def test_warnings(policy_factory: Callable[..., Policy]) -> None:
    # Equal bars for money and lookups are not flat (account changes differ), yet money is not
    # held higher: that is worth a warning too.
    equal = policy_factory(
        {
            "confidence": {
                "thresholds": {"financial": 0.6, "account_change": 0.85, "informational": 0.6}
            }
        }
    )
    assert policy_warnings(equal) == []
    two_values = policy_factory(
        {
            "confidence": {
                "thresholds": {"financial": 0.9, "account_change": 0.9, "informational": 0.5}
            }
        }
    )
    assert policy_warnings(two_values) == []
    off = policy_factory({"explicit_request": {"enabled": False}})
    (warning,) = policy_warnings(off)
    assert warning.startswith("explicit_request.enabled")
