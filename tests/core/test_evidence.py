"""The facts behind every hit a human reads: kind, message, value, threshold, reference, quote.

The wording of reasons and details is free to change; the facts are not. Every hit and every piece
of evidence must also carry some wording, so a person never gets a bare value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stream.core.decision import Decision, TriggerHit
from stream.core.policy import Policy
from stream.testing import DAY, T0, EventFactory, Run, rule

Fact = tuple[str, str | None, float | None, float | None, str | None, str | None]


def facts(hit: TriggerHit) -> list[Fact]:
    return [(e.kind, e.message_id, e.value, e.threshold, e.ref, e.text) for e in hit.evidence]


def worded_hit(decision: Decision | None) -> TriggerHit:
    """The decision's only hit, once every hit and piece of evidence is worded."""
    assert_worded(decision)
    assert decision is not None
    (hit,) = decision.triggers
    return hit


def assert_worded(decision: Decision | None) -> None:
    assert decision is not None
    for hit in decision.triggers:
        assert isinstance(hit.reason, str) and hit.reason.strip() and "None" not in hit.reason, hit
        for item in hit.evidence:
            assert isinstance(item.detail, str) and item.detail.strip(), item
            assert "None" not in item.detail, item


def test_confidence_breach(run: Run, events: EventFactory) -> None:
    decision = run.one(
        events.ai(action="refund", klass="financial", amount=20.0, confidence=0.8, intent="refund")
    )
    hit = worded_hit(decision)
    assert (hit.trigger, hit.rule) == ("confidence", "confidence.financial")
    assert facts(hit) == [
        ("confidence", "msg-1", 0.8, 0.9, None, "refund"),
        ("threshold", None, 0.9, None, "confidence.financial", None),
    ]


def test_missing_confidence(run: Run, events: EventFactory) -> None:
    decision = run.one(events.ai(action="lookup", klass="informational", confidence=None))
    hit = worded_hit(decision)
    assert (hit.rule, hit.action) == ("confidence.informational", "escalate")
    assert facts(hit) == [("confidence", "msg-1", None, 0.5, None, None)]
    assert decision is not None and decision.hold_action is True


def test_explicit_request(run: Run, events: EventFactory) -> None:
    text = "Can I speak to a real person please"
    hit = worded_hit(run.one(events.customer(text)))
    assert hit.rule == "explicit_request.human"
    assert facts(hit) == [("marker", "msg-1", None, None, None, text)]


def test_refund_over_the_limit(run: Run, events: EventFactory) -> None:
    run.feed(events.account(currency="USD"))
    decision = run.one(
        events.ai(action="refund", klass="financial", amount=650.0, target="order-9")
    )
    hit = worded_hit(decision)
    assert hit.rule == "boundary.refund_limit"
    assert facts(hit) == [
        ("amount", "msg-2", 650.0, None, "order-9", None),
        ("limit", None, None, 100.0, None, None),
    ]
    assert decision is not None and decision.thresholds["boundary.refund_limit"] == 100.0


def test_refund_over_a_tier_limit(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"boundaries": {"refund": {"by_tier": {"gold": 500}}}}))
    run.feed(events.account(tier="gold"))
    decision = run.one(events.ai(action="refund", klass="financial", amount=501.0))
    assert facts(worded_hit(decision))[1] == ("limit", None, None, 500.0, None, None)


def test_refund_without_an_amount(run: Run, events: EventFactory) -> None:
    hit = worded_hit(run.one(events.ai(action="refund", klass="financial", amount=None)))
    assert hit.rule == "boundary.refund_limit"
    assert facts(hit) == [("amount", "msg-1", None, None, None, None)]


def test_refund_in_a_currency_that_cannot_be_compared(run: Run, events: EventFactory) -> None:
    run.feed(events.account(currency="EUR"))
    decision = run.one(
        events.ai(action="refund", klass="financial", amount=5.0, currency="JPY", target="o-1")
    )
    hit = worded_hit(decision)
    assert hit.rule == "boundary.refund_currency"
    assert [f[:4] for f in facts(hit)] == [
        ("amount", "msg-2", 5.0, None),
        ("limit", None, None, 100.0),
    ]


@pytest.mark.parametrize(
    ("account", "target", "ref"),
    [
        ({"primary_email": "pat@example.com"}, "other@example.com", "pat@example.com"),
        ({"primary_email": None}, "other@example.com", None),
        ({"primary_email": "pat@example.com"}, None, "pat@example.com"),
    ],
)
def test_email_access(
    run: Run, events: EventFactory, account: dict[str, Any], target: str | None, ref: str | None
) -> None:
    run.feed(events.account(**account))
    decision = run.one(
        events.ai(action="account_email_change", klass="account_change", target=target)
    )
    hit = worded_hit(decision)
    assert hit.rule == "boundary.non_primary_email"
    assert facts(hit) == [("email", "msg-2", None, None, ref, target)]


def test_email_access_to_the_primary_address_passes_whatever_its_case(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.account(primary_email="Pat@Example.com"))
    decision = run.one(
        events.ai(action="account_email_change", klass="account_change", target=" pat@example.COM")
    )
    assert decision is not None and decision.action == "continue"


@pytest.mark.parametrize(
    ("account", "ref"),
    [({"enterprise_contract": True, "contract_id": "ent-7"}, "ent-7"), (None, None)],
)
def test_enterprise_cancellation(
    run: Run, events: EventFactory, account: dict[str, Any] | None, ref: str | None
) -> None:
    if account is not None:
        run.feed(events.account(**account))
    hit = worded_hit(run.one(events.ai(action="cancel_contract", klass="account_change")))
    assert hit.rule == "boundary.enterprise_cancellation"
    message_id = "msg-2" if account is not None else "msg-1"
    assert facts(hit) == [("contract", message_id, None, None, ref, None)]


def test_cancellation_without_an_enterprise_contract_passes(run: Run, events: EventFactory) -> None:
    run.feed(events.account(enterprise_contract=False))
    decision = run.one(events.ai(action="cancel_contract", klass="account_change"))
    assert decision is not None and decision.action == "continue"


def test_operator_rule(run: Run, events: EventFactory) -> None:
    run.feed(events.account(flags=["disputed_charge", "recent_negative_review"]))
    hit = worded_hit(run.one(events.customer("Why was I charged twice?", category="billing")))
    assert hit.rule == "rules.disputed_billing"
    assert [(f[0], f[1], f[4]) for f in facts(hit)] == [
        ("rule", "msg-2", "rules.disputed_billing"),
        ("flag", "msg-2", "rules.disputed_billing"),
        ("flag", "msg-2", "rules.disputed_billing"),
    ]


def test_operator_rule_without_a_description_is_still_worded(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory({"rules": [rule("lawyer", "message.text", "contains", "lawyer")]})
    assert_worded(Run(policy).one(events.customer("my lawyer")))


def test_repeat_contact(run: Run, events: EventFactory) -> None:
    run.feed(
        events.contact("conv-a", at=T0, contact_id="ct-a"),
        events.contact("conv-b", at=T0 + DAY, contact_id="ct-b"),
    )
    (decision,) = run.feed(events.contact("conv-c", at=T0 + 2 * DAY, contact_id="ct-c"))[0]
    hit = worded_hit(decision)
    assert facts(hit) == [
        ("prior_contact", None, float(T0), None, "conv-a", None),
        ("prior_contact", None, float(T0 + DAY), None, "conv-b", None),
        ("count", None, 3.0, 3.0, "ct-c", None),
    ]


def test_sentiment_scores(run: Run, events: EventFactory) -> None:
    first = events.customer("ok")
    second = events.customer("fine")
    run.feed(first, events.sentiment(first.message_id, -0.7))
    run.feed(second)
    (decision,) = run.feed(events.sentiment(second.message_id, -0.8))[0]
    hits = {hit.rule: hit for hit in decision.triggers}
    score = hits["sentiment.score"]
    assert facts(score) == [
        ("sentiment_score", first.message_id, -0.7, -0.6, None, "ok"),
        ("sentiment_score", second.message_id, -0.8, -0.6, None, "fine"),
    ]
    assert decision.action == "offer_transfer"
    assert_worded(decision)
