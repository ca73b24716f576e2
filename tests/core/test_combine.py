"""Several hits become one action, priority and customer message: each rule of combine pinned."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.core.combine import CONTINUE, combine, order_hits, priority_of
from stream.core.decision import AccountSnapshot, TriggerHit
from stream.core.policy import Policy


def hit(
    trigger: str,
    action: str = "escalate",
    rule: str | None = None,
    priority: str | None = None,
    message: str | None = None,
) -> TriggerHit:
    return TriggerHit(
        trigger=trigger,
        rule=rule or f"{trigger}.r",
        action=action,  # type: ignore[arg-type]
        reason="why",
        priority=priority,  # type: ignore[arg-type]
        message=message,
    )


def account(tier: str | None = None, flags: tuple[str, ...] = ()) -> AccountSnapshot:
    return AccountSnapshot(known=True, tier=tier, flags=flags)


# --- action ----------------------------------------------------------------------------------


def test_no_hits_continue(policy: Policy) -> None:
    assert combine([], policy, None, offered=False) == CONTINUE


def test_hits_that_only_ask_to_continue_continue_with_no_hits(policy: Policy) -> None:
    # Given two hits whose own action is `continue` (a trigger configured to only record)
    combined = combine(
        [hit("sentiment", "continue"), hit("confidence", "continue")], policy, None, False
    )
    # Then nothing is escalated, offered or listed: the conversation stays with the AI agent
    assert combined == CONTINUE
    assert (combined.action, combined.priority, combined.hits, combined.customer_message) == (
        "continue",
        "low",
        (),
        None,
    )


def test_offer_once_then_continue(policy: Policy) -> None:
    first = combine([hit("sentiment", "offer_transfer")], policy, None, offered=False)
    assert first.action == "offer_transfer"
    assert first.customer_message == policy.messages.offer_transfer
    assert combine([hit("sentiment", "offer_transfer")], policy, None, offered=True) == CONTINUE


def test_escalation_is_not_silenced_by_an_earlier_offer(policy: Policy) -> None:
    combined = combine(
        [hit("sentiment", "offer_transfer"), hit("explicit_request")], policy, None, offered=True
    )
    assert combined.action == "escalate"
    assert [h.trigger for h in combined.hits] == ["explicit_request", "sentiment"]


# --- customer message ------------------------------------------------------------------------


def test_escalation_without_boundary_uses_the_escalate_message(policy: Policy) -> None:
    combined = combine([hit("confidence")], policy, None, False)
    assert combined.customer_message == policy.messages.escalate


def test_boundary_escalation_uses_the_transparent_boundary_message(policy: Policy) -> None:
    combined = combine([hit("confidence"), hit("policy_boundary")], policy, None, False)
    assert combined.customer_message == policy.messages.policy_boundary


def test_escalating_rule_message_overrides_the_boundary_message(policy: Policy) -> None:
    combined = combine(
        [
            hit("confidence"),
            hit("policy_boundary", rule="boundary.refund_limit"),
            hit("policy_boundary", rule="rules.legal", message="LEGAL"),
        ],
        policy,
        None,
        False,
    )
    assert combined.customer_message == "LEGAL"


def test_first_override_in_hit_order_wins(policy: Policy) -> None:
    # `rules.a` sorts before `rules.b` inside the same trigger, whatever order they came in
    combined = combine(
        [
            hit("policy_boundary", rule="rules.b", message="B"),
            hit("policy_boundary", rule="rules.a", message="A"),
        ],
        policy,
        None,
        False,
    )
    assert combined.customer_message == "A"


def test_message_of_a_hit_that_does_not_escalate_is_not_used_for_an_escalation(
    policy: Policy,
) -> None:
    combined = combine(
        [
            hit("policy_boundary", action="offer_transfer", rule="rules.soft", message="SOFT"),
            hit("confidence"),
        ],
        policy,
        None,
        False,
    )
    assert combined.action == "escalate"
    assert combined.customer_message == policy.messages.policy_boundary


def test_offer_uses_the_offer_message_even_when_a_rule_carries_one(policy: Policy) -> None:
    combined = combine(
        [hit("policy_boundary", action="offer_transfer", message="SOFT")], policy, None, False
    )
    assert combined.customer_message == policy.messages.offer_transfer


# --- order -----------------------------------------------------------------------------------


def test_hits_follow_the_policy_trigger_order_not_the_alphabet(
    policy_factory: Callable[..., Policy],
) -> None:
    policy = policy_factory(
        {
            "priorities": {
                "order": [
                    "sentiment",
                    "repeat_contact",
                    "explicit_request",
                    "confidence",
                    "policy_boundary",
                ]
            }
        }
    )
    hits = [hit("confidence"), hit("policy_boundary"), hit("sentiment"), hit("repeat_contact")]
    assert [h.trigger for h in order_hits(hits, policy)] == [
        "sentiment",
        "repeat_contact",
        "confidence",
        "policy_boundary",
    ]


def test_a_trigger_missing_from_the_order_goes_last(policy: Policy) -> None:
    hits = [hit("zzz_custom"), hit("aaa_custom"), hit("sentiment")]
    assert [h.trigger for h in order_hits(hits, policy)] == [
        "sentiment",
        "aaa_custom",
        "zzz_custom",
    ]


def test_same_trigger_orders_by_rule(policy: Policy) -> None:
    hits = [hit("policy_boundary", rule="rules.z"), hit("policy_boundary", rule="boundary.a")]
    assert [h.rule for h in order_hits(hits, policy)] == ["boundary.a", "rules.z"]


# --- priority --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hits", "expected"),
    [
        ([hit("confidence")], "normal"),
        ([hit("sentiment"), hit("policy_boundary")], "high"),
        ([hit("unknown_trigger")], "normal"),
        # A rule's own priority wins over its trigger's, down as well as up.
        ([hit("policy_boundary", priority="low")], "low"),
        ([hit("policy_boundary", priority="urgent")], "urgent"),
        ([hit("confidence", priority="low"), hit("sentiment")], "normal"),
    ],
)
def test_priority_is_the_highest_hit_priority(
    policy: Policy, hits: list[TriggerHit], expected: str
) -> None:
    assert priority_of(hits, policy, None) == expected


@pytest.mark.parametrize(
    ("base", "raised"), [("low", "normal"), ("normal", "high"), ("high", "urgent")]
)
def test_tier_raises_by_exactly_one_level(policy: Policy, base: str, raised: str) -> None:
    hits = [hit("policy_boundary", priority=base)]
    assert priority_of(hits, policy, account()) == base
    assert priority_of(hits, policy, account(tier="enterprise")) == raised
    assert priority_of(hits, policy, account(flags=("vip",))) == raised
    assert priority_of(hits, policy, account(tier="pro", flags=("churn_risk",))) == base


def test_raise_is_capped_at_urgent(policy: Policy) -> None:
    hits = [hit("policy_boundary", priority="urgent")]
    assert priority_of(hits, policy, account(tier="enterprise", flags=("vip",))) == "urgent"


def test_many_distinct_triggers_raise_once_even_with_a_raising_account(policy: Policy) -> None:
    three = [
        hit("confidence"),
        hit("sentiment", "offer_transfer"),
        hit("repeat_contact", "escalate"),
    ]
    two = three[:2]
    assert priority_of(two, policy, None) == "normal"
    assert priority_of(three, policy, None) == "urgent"  # high (repeat_contact) + 1
    assert priority_of(three, policy, account(tier="enterprise")) == "urgent"
    # Three hits of one trigger are one trigger
    same = [hit("policy_boundary", rule=f"rules.{n}") for n in "abc"]
    assert priority_of(same, policy, None) == "high"


def test_raise_threshold_is_the_policy_setting(policy_factory: Callable[..., Policy]) -> None:
    policy = policy_factory({"priorities": {"raise_when_triggers_at_least": 2}})
    assert priority_of([hit("confidence"), hit("sentiment")], policy, None) == "high"
    assert priority_of([hit("confidence")], policy, None) == "normal"
