"""Operator rules and authority limits end to end through `step`: which rule fires, on what."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stream.core.decision import Decision
from stream.core.events import MessageEvent
from stream.core.policy import Policy
from stream.core.triggers import boundary
from stream.testing import T0, EventFactory, Run

LAWYER = {"field": "message.text", "op": "contains", "value": "lawyer"}
NEVER = {"field": "account.tier", "op": "eq", "value": "no-such-tier"}


def rule(name: str, when: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"name": name, "action": kw.pop("action", "escalate"), "when": when, **kw}


def rules_of(decision: Decision | None) -> list[str]:
    assert decision is not None
    return [hit.rule for hit in decision.triggers]


def test_a_rule_after_a_non_matching_rule_still_fires(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    # Given two rules, the first of which never matches
    policy = policy_factory({"rules": [rule("never", NEVER), rule("lawyer", LAWYER)]})
    # When the customer mentions a lawyer
    decision = Run(policy).one(events.customer("My lawyer will hear about this"))
    # Then the second rule escalates on its own
    assert decision is not None
    assert decision.action == "escalate"
    assert rules_of(decision) == ["rules.lawyer"]


def test_every_matching_rule_is_listed_with_its_facts(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory(
        {
            "rules": [
                rule("lawyer", LAWYER),
                rule("press", {"field": "message.text", "op": "contains", "value": "newspaper"}),
                rule("never", NEVER),
            ]
        }
    )
    decision = Run(policy).one(events.customer("My lawyer and the newspaper will hear of it"))
    assert rules_of(decision) == ["rules.lawyer", "rules.press"]
    assert decision is not None
    lawyer = decision.triggers[0]
    assert [(e.kind, e.ref, e.message_id) for e in lawyer.evidence] == [
        ("rule", "rules.lawyer", "msg-1")
    ]


def test_rule_message_and_priority_reach_the_decision(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory(
        {"rules": [rule("lawyer", LAWYER, priority="urgent", message="Connecting legal.")]}
    )
    decision = Run(policy).one(events.customer("lawyer"))
    assert decision is not None
    assert (decision.action, decision.priority, decision.customer_message) == (
        "escalate",
        "urgent",
        "Connecting legal.",
    )


def test_rule_with_a_lower_priority_lowers_the_decision(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory({"rules": [rule("lawyer", LAWYER, priority="low")]})
    decision = Run(policy).one(events.customer("lawyer"))
    assert decision is not None
    assert (decision.action, decision.priority) == ("escalate", "low")


def test_rule_that_only_offers_a_transfer(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory({"rules": [rule("lawyer", LAWYER, action="offer_transfer")]})
    run = Run(policy)
    first = run.one(events.customer("lawyer"))
    assert first is not None
    assert (first.action, first.customer_message) == (
        "offer_transfer",
        policy.messages.offer_transfer,
    )
    # The offer is made once per conversation
    second = run.one(events.customer("lawyer again"))
    assert second is not None
    assert (second.action, second.triggers) == ("continue", ())


def test_rules_on_the_proposed_action(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    # Given a rule stricter than the refund limit for one kind of target
    policy = policy_factory(
        {
            "rules": [
                rule(
                    "gift_card_refund",
                    {
                        "all": [
                            {"field": "action.type", "op": "eq", "value": "refund"},
                            {"field": "action.amount", "op": "gt", "value": 20},
                            {"field": "action.target", "op": "contains", "value": "gift"},
                            {"field": "action.consequence_class", "op": "eq", "value": "financial"},
                        ]
                    },
                )
            ]
        }
    )
    run = Run(policy)
    run.feed(events.account(), events.customer("Please refund my gift card"))
    # When the AI proposes a 30.00 refund to a gift card: under the limit, but the rule matches
    over = run.one(
        events.ai(action="refund", klass="financial", amount=30.0, currency="USD", target="gift-1")
    )
    assert rules_of(over) == ["rules.gift_card_refund"]
    assert over is not None and over.hold_action is True
    # And not for 20.00 (gt is strict), nor for a card refund, nor on a turn without an action
    for amount, target in ((20.0, "gift-2"), (30.0, "card-1")):
        other = Run(policy)
        other.feed(events.account())
        decision = other.one(
            events.ai(action="refund", klass="financial", amount=amount, target=target)
        )
        assert decision is not None and decision.action == "continue", (amount, target)
    plain = Run(policy).one(events.ai("Anything else?"))
    assert plain is not None and plain.action == "continue"


def test_rule_on_the_account_before_its_snapshot_arrives(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory(
        {
            "rules": [
                rule("vip", {"field": "account.flags", "op": "contains", "value": "vip"}),
                rule("unknown_account", {"field": "account.known", "op": "eq", "value": False}),
            ]
        }
    )
    run = Run(policy)
    # Before any snapshot: flags are unknown (no match), `known` is false (match)
    assert rules_of(run.one(events.customer("hello"))) == ["rules.unknown_account"]
    # After a snapshot with the flag, in a new conversation: the flag rule fires instead
    run.feed(events.account(flags=["vip"]))
    assert rules_of(run.one(events.customer("hello", conversation_id="conv-2"))) == ["rules.vip"]


def test_one_broken_rule_does_not_hide_the_others(
    monkeypatch: pytest.MonkeyPatch, policy_factory: Callable[..., Policy]
) -> None:
    policy = policy_factory({"rules": [rule("broken", NEVER), rule("lawyer", LAWYER)]})
    real = boundary.evaluate

    def evaluate(condition: Any, facts: Any) -> bool:
        if condition == policy.compiled.rules[0].condition:
            raise RuntimeError("boom")
        return real(condition, facts)

    monkeypatch.setattr(boundary, "evaluate", evaluate)
    message = MessageEvent("e", "c", T0, "cv", "m", "customer", "my lawyer")
    result = boundary.check(message, None, None, policy)
    assert [hit.rule for hit in result.hits] == ["rules.lawyer"]
    assert result.error is not None
    assert result.error.trigger == "policy_boundary"
    assert "rules.broken" in result.error.detail


# --- authority limits with and without an account snapshot ----------------------------------


def refund(events: EventFactory, amount: float, currency: str | None = None) -> MessageEvent:
    return events.ai(
        action="refund", klass="financial", amount=amount, currency=currency, confidence=0.99
    )


@pytest.mark.parametrize(("amount", "fires"), [(100.0, False), (100.01, True), (650.0, True)])
def test_refund_limit_without_an_account_snapshot(
    policy: Policy, events: EventFactory, amount: float, fires: bool
) -> None:
    decision = Run(policy).one(refund(events, amount))
    assert decision is not None
    if not fires:
        assert decision.action == "continue"
        return
    assert (decision.action, decision.hold_action) == ("escalate", True)
    (hit,) = decision.triggers
    assert hit.rule == "boundary.refund_limit"
    assert [(e.kind, e.value, e.threshold) for e in hit.evidence] == [
        ("amount", amount, None),
        ("limit", None, 100.0),
    ]


def test_email_change_without_an_account_snapshot_escalates(
    policy: Policy, events: EventFactory
) -> None:
    decision = Run(policy).one(
        events.ai(action="account_email_change", klass="account_change", target="x@example.com")
    )
    assert rules_of(decision) == ["boundary.non_primary_email"]
    assert decision is not None and decision.hold_action is True
    assert decision.triggers[0].evidence[0].text == "x@example.com"


@pytest.mark.parametrize(
    ("account_currency", "refund_currency", "by_currency", "amount", "rule", "limit"),
    [
        # No currency on the refund: the account's currency and limit apply
        ("EUR", None, {}, 101.0, "boundary.refund_limit", 100.0),
        ("EUR", None, {}, 99.0, None, None),
        # The account's own currency
        ("EUR", "EUR", {}, 101.0, "boundary.refund_limit", 100.0),
        # Another currency with its own limit
        ("EUR", "JPY", {"JPY": 15000}, 15001.0, "boundary.refund_limit", 15000.0),
        ("EUR", "JPY", {"JPY": 15000}, 14999.0, None, None),
        # Another currency without a limit cannot be compared: escalate
        ("EUR", "JPY", {}, 5.0, "boundary.refund_currency", 100.0),
    ],
)
def test_refund_currency_rules(
    policy_factory: Callable[..., Policy],
    events: EventFactory,
    account_currency: str,
    refund_currency: str | None,
    by_currency: dict[str, float],
    amount: float,
    rule: str | None,
    limit: float | None,
) -> None:
    policy = policy_factory({"boundaries": {"refund": {"by_currency": by_currency}}})
    run = Run(policy)
    run.feed(events.account(currency=account_currency))
    decision = run.one(refund(events, amount, refund_currency))
    assert decision is not None
    if rule is None:
        assert decision.action == "continue"
        return
    assert rules_of(decision) == [rule]
    (limit_evidence,) = [e for e in decision.triggers[0].evidence if e.kind == "limit"]
    assert limit_evidence.threshold == limit
