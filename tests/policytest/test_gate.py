"""The value diff `policy publish` prints: one line per changed value, rules keyed by name."""

from __future__ import annotations

from stream.policytest.gate import value_diff
from stream.testing import make_policy


def test_no_change_is_no_line() -> None:
    assert value_diff(make_policy(), make_policy()) == []


def test_changed_values_are_listed_by_path_version_first() -> None:
    old = make_policy({"version": "a"})
    new = make_policy(
        {
            "version": "b",
            "boundaries": {"refund": {"limit": 250, "by_tier": {"enterprise": 1000}}},
            "confidence": {"thresholds": {"financial": 0.95}},
        }
    )
    assert value_diff(old, new) == [
        'version: "a" → "b"',
        "boundaries.refund.by_tier.enterprise: (absent) → 1000",
        "boundaries.refund.limit: 100 → 250",
        "confidence.thresholds.financial: 0.9 → 0.95",
    ]


def test_operator_rules_are_compared_by_name_not_position() -> None:
    rule = {
        "name": "vip_billing",
        "when": {"field": "account.flags", "op": "contains", "value": "vip"},
    }
    base = make_policy()
    added = make_policy({"rules": [*base.model_dump(mode="json")["rules"], rule]})
    lines = value_diff(base, added)
    assert lines and all(line.startswith("rules.vip_billing.") for line in lines)
    assert 'rules.vip_billing.when.value: (absent) → "vip"' in lines
    reordered = make_policy({"rules": [rule, *base.model_dump(mode="json")["rules"]]})
    assert value_diff(added, reordered) == []
