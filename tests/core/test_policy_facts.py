"""Facts of a loaded policy that decisions and operators read: where each problem is placed, what
a file that cannot be read says, and which suspicious settings warn.

Each test builds its own policy: a policy shared by a session fixture is compiled before the test
runs, so a test on it could not tell a broken compile step from a working one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.core.policy import PolicyError, load_policy, parse_policy, policy_warnings
from stream.core.vocabulary import PRIORITY_RANK, TRIGGER_NAMES
from stream.testing import make_policy, policy_yaml


def test_the_compiled_thresholds_a_decision_records() -> None:
    policy = make_policy({"sentiment": {"turn_threshold_by_channel": {"social": 0.65, "sms": 0.6}}})
    compiled = policy.compiled
    assert compiled.version == policy.version == "2026.11-default-turn-signal-2"
    assert compiled.customer_thresholds == {
        "sentiment.window_turns": 3.0,
        "sentiment.min_turns": 2.0,
        "sentiment.turn_threshold": 0.45,
        "sentiment.turn_threshold_by_channel.sms": 0.6,
        "sentiment.turn_threshold_by_channel.social": 0.65,
        "sentiment.score_floor": -0.6,
        "sentiment.consecutive_low_scores": 2.0,
    }
    assert compiled.contact_thresholds == {
        "repeat_contact.contacts": 3.0,
        "repeat_contact.window_days": 7.0,
    }


def test_a_trigger_left_out_of_by_trigger_ranks_normal() -> None:
    # Only one trigger is given a priority: every other one ranks as `normal`.
    policy = parse_policy("version: t\npriorities:\n  by_trigger: {explicit_request: urgent}\n")
    ranks = policy.compiled.trigger_priority
    assert ranks == {
        name: PRIORITY_RANK["urgent" if name == "explicit_request" else "normal"]
        for name in TRIGGER_NAMES
    }


def test_a_failed_check_sorts_before_every_trigger() -> None:
    order = make_policy().compiled.trigger_order
    assert order["trigger_error"] < min(v for k, v in order.items() if k != "trigger_error")
    assert [k for k, _ in sorted(order.items(), key=lambda kv: kv[1])][1:] == [
        "explicit_request",
        "policy_boundary",
        "repeat_contact",
        "confidence",
        "sentiment",
    ]


def test_a_duplicate_rule_name_is_placed_on_the_second_rule() -> None:
    rule = {"action": "escalate", "when": {"field": "account.tier", "op": "eq", "value": "gold"}}
    text = policy_yaml({"rules": [{"name": "same", **rule}, {"name": "same", **rule}]})
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert caught.value.field == "rules[1].name"
    assert caught.value.problems == [("rules[1].name", "duplicate rule name 'same'")]


def test_a_model_level_problem_names_its_full_path() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(policy_yaml({"sentiment": {"window_turns": 4, "min_turns": 5}}))
    assert caught.value.field == "sentiment.min_turns"


def test_a_syntax_error_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken-policy.yaml"
    path.write_text("version: a\nrules: [\n", encoding="utf-8")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.field == ""
    assert str(path) in str(caught.value)
    # Nothing is put before a problem that has no field.
    assert str(caught.value).startswith("not valid YAML")


def test_a_syntax_error_in_text_names_no_file() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy("version: a\nrules: [\n")
    assert "<unicode string>" in str(caught.value)


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: caf\xe9\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert caught.value.field == ""
    assert caught.value.problems[0][0] == ""
    assert str(path) in str(caught.value)
    assert "byte 12" in str(caught.value)


def test_an_error_with_no_problem_has_no_field() -> None:
    assert PolicyError([]).field == ""
    assert PolicyError([("", "whole file")]).field == ""
    assert str(PolicyError([("", "whole file"), ("a.b", "bad")])) == "whole file; a.b: bad"


def test_flat_required_thresholds_warn_even_with_another_class() -> None:
    # The three required classes share one bar; an extra class with its own bar does not make
    # the setting less flat.
    policy = make_policy(
        {
            "confidence": {
                "thresholds": {
                    "financial": 0.8,
                    "account_change": 0.8,
                    "informational": 0.8,
                    "legal": 0.95,
                }
            }
        }
    )
    (warning,) = policy_warnings(policy)
    assert warning.startswith("confidence.thresholds: one flat threshold (0.80)")
