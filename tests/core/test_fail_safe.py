"""Fail safe (DESIGN section 8): a trigger that breaks holds the action and escalates, loudly.

Each test breaks one trigger the way a bug would (it raises) and checks the decision: escalate,
the proposed action held, a `trigger_error` hit naming the trigger and the error, and the error
on the step result for the caller to log and count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from stream.core.events import Event
from stream.core.policy import Policy
from stream.core.triggers import (
    boundary,
    confidence,
    explicit_request,
    repeat_contact,
    sentiment,
)
from stream.testing import DAY, T0, EventFactory, Run
from tests.faults import assert_fail_safe, assert_failed_safe, inject_fault

# --- every trigger, broken ---------------------------------------------------------------------


def test_a_broken_refund_check_holds_a_650_refund(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    # Given the refund limit check raising (the issue's reproduction)
    inject_fault(monkeypatch, boundary, "refund_limit")
    # When the AI agent proposes a 650 USD refund with high confidence
    result = Run(policy).last(*events.refund_request(650.0))
    # Then the refund is held and the conversation escalates, naming the broken check
    (decision,) = result.decisions
    assert_fail_safe(decision, "policy_boundary", hold=True)
    assert [(e.trigger, e.code) for e in result.errors] == [("policy_boundary", "internal")]
    assert len(result.handoffs) == 1
    assert result.handoffs[0].reasons[0].trigger == "trigger_error"


def _balance_lookup(e: EventFactory) -> list[Event]:
    return [e.account(), e.customer("What's my balance?"), e.ai(action="lookup", confidence=0.99)]


def _parcel_question(e: EventFactory) -> list[Event]:
    return [e.customer("Where is my parcel?")]


def _contact_after_a_turn(e: EventFactory) -> list[Event]:
    return [e.customer("hi"), e.contact("conv-1")]


def _scored_turn(e: EventFactory) -> list[Event]:
    turn = e.customer("hello")
    return [turn, e.sentiment(turn.message_id, -0.9)]


@pytest.mark.parametrize(
    ("trigger", "owner", "history", "broken_from_the_start", "hold"),
    [
        ("confidence", confidence, _balance_lookup, True, True),
        # A customer turn proposes no action: nothing to hold, but the conversation escalates.
        ("explicit_request", explicit_request, _parcel_question, True, False),
        # A score for the turn re-runs the sentiment check: its failure escalates too.
        ("sentiment", sentiment, _scored_turn, False, False),
        ("repeat_contact", repeat_contact, _contact_after_a_turn, True, False),
    ],
    ids=["confidence", "explicit_request", "sentiment", "repeat_contact"],
)
def test_a_broken_trigger_fails_safe_on_the_event_it_checks(
    monkeypatch: pytest.MonkeyPatch,
    policy: Policy,
    events: EventFactory,
    trigger: str,
    owner: Any,
    history: Callable[[EventFactory], list[Event]],
    broken_from_the_start: bool,
    hold: bool,
) -> None:
    # Given the trigger raising, from the start or from the last event on
    *before, last = history(events)
    calls = inject_fault(monkeypatch, owner) if broken_from_the_start else []
    run = Run(policy)
    run.feed(*before)
    if not broken_from_the_start:
        calls = inject_fault(monkeypatch, owner)
    # When the event it checks is folded, then the decision fails safe, naming the trigger
    result = run.step(last)
    assert calls == [1]
    assert_failed_safe(result, trigger, hold=hold)


def test_a_broken_operator_rule_fails_safe_and_the_other_rules_still_run(
    monkeypatch: pytest.MonkeyPatch, policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory(
        {
            "rules": [
                {
                    "name": "first",
                    "when": {"field": "conversation.category", "op": "eq", "value": "billing"},
                    "action": "escalate",
                },
                {
                    "name": "second",
                    "when": {"field": "conversation.channel", "op": "eq", "value": "chat"},
                    "action": "offer_transfer",
                },
            ]
        }
    )
    real = boundary.evaluate

    def evaluate(condition: Any, facts: Any) -> bool:
        if condition is policy.compiled.rules[0].condition:
            raise TypeError("'<' not supported between instances of 'str' and 'int'")
        return real(condition, facts)

    monkeypatch.setattr(boundary, "evaluate", evaluate)
    run = Run(policy)
    result = run.step(events.customer("hello"))
    (decision,) = result.decisions
    assert decision.action == "escalate"
    assert [hit.rule for hit in decision.triggers] == [
        "trigger_error.policy_boundary",
        "rules.second",
    ]
    assert "rules.first: TypeError" in decision.triggers[0].reason
    assert [(e.trigger, e.code) for e in result.errors] == [("policy_boundary", "rule_failed")]


def test_a_failure_after_escalation_revises_the_package(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.escalated_by(events.customer("I want to talk to a human"))
    inject_fault(monkeypatch, confidence)
    result = run.step(events.ai(action="lookup"))
    # No second escalation; the package says what failed, and the caller is told.
    assert result.decisions == []
    (package,) = result.handoffs
    assert "trigger_error" in {hit.trigger for hit in package.reasons}
    assert [e.trigger for e in result.errors] == ["confidence"]


def test_triggers_do_not_hide_their_own_errors(policy: Policy) -> None:
    # The one handler is in `step`, which acts on the error; a trigger lets it through.
    broken: Any = object()
    with pytest.raises(AttributeError):
        confidence.check(broken, policy)
    with pytest.raises(AttributeError):
        boundary.check(broken, None, None, policy)
    with pytest.raises(AttributeError):
        sentiment.check([broken], policy)
    with pytest.raises(AttributeError):
        repeat_contact.check([broken], broken, policy)


# --- no account snapshot yet -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "klass", "kw", "rule"),
    [
        ("refund", "financial", {"amount": 650.0}, "boundary.refund_limit"),
        ("refund", "financial", {"amount": 650.0, "currency": "EUR"}, "boundary.refund_limit"),
        (
            "account_email_change",
            "account_change",
            {"target": "new@example.com"},
            "boundary.non_primary_email",
        ),
        ("cancel_contract", "account_change", {}, "boundary.enterprise_cancellation"),
    ],
)
def test_boundaries_without_an_account_snapshot_fail_safe(
    policy: Policy, events: EventFactory, action: str, klass: str, kw: dict[str, Any], rule: str
) -> None:
    # Given no account event yet for the customer
    run = Run(policy)
    run.feed(events.customer("please do it"))
    # When a confident AI agent proposes an action the boundary cannot clear without the account
    decision = run.one(events.ai(action=action, klass=klass, confidence=0.99, **kw))
    # Then it is held and escalated on the boundary, not let through
    assert decision is not None and decision.action == "escalate" and decision.hold_action
    assert rule in [hit.rule for hit in decision.triggers]


def test_a_broken_boundary_without_an_account_snapshot_still_fails_safe(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    inject_fault(monkeypatch, boundary, "email_access")
    run = Run(policy)
    decision = run.one(
        events.ai(action="account_email_change", klass="account_change", target="new@example.com")
    )
    assert_fail_safe(decision, "policy_boundary", hold=True)


# --- the refund limit, computed once -------------------------------------------------------------


@pytest.mark.parametrize(
    ("refund", "account", "amount", "currency", "limit"),
    [
        # The issue's case: a by-currency limit and a refund that names no currency.
        ({"by_currency": {"USD": 50}}, {"currency": "USD"}, 80.0, None, 50.0),
        ({"by_currency": {"USD": 50}}, {"currency": "USD"}, 80.0, "USD", 50.0),
        ({"by_tier": {"gold": 500}}, {"tier": "gold"}, 650.0, None, 500.0),
        # A tier limit with a refund in another currency: the evidence and the decision agree.
        ({"by_tier": {"gold": 500}}, {"tier": "gold", "currency": "USD"}, 650.0, "EUR", 500.0),
        ({}, {"currency": "USD"}, 150.0, None, 100.0),
    ],
)
def test_the_decision_records_the_limit_the_check_applied(
    policy_factory: Callable[..., Policy],
    events: EventFactory,
    refund: dict[str, Any],
    account: dict[str, Any],
    amount: float,
    currency: str | None,
    limit: float,
) -> None:
    policy = policy_factory({"boundaries": {"refund": refund}})
    run = Run(policy)
    run.feed(events.account(**account), events.customer("refund please"))
    decision = run.one(
        events.ai(action="refund", klass="financial", amount=amount, currency=currency)
    )
    assert decision is not None and decision.action == "escalate"
    (hit,) = [h for h in decision.triggers if h.trigger == "policy_boundary"]
    shown = [e.threshold for e in hit.evidence if e.kind == "limit"]
    assert shown == [limit]
    assert decision.thresholds["boundary.refund_limit"] == limit


def test_a_refund_under_the_limit_records_the_same_limit(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory({"boundaries": {"refund": {"by_currency": {"USD": 50}}}})
    run = Run(policy)
    run.feed(events.account(currency="USD"), events.customer("refund please"))
    decision = run.one(events.ai(action="refund", klass="financial", amount=40.0))
    assert decision is not None and decision.action == "continue"
    assert decision.thresholds == {"confidence.financial": 0.9, "boundary.refund_limit": 50.0}


def test_injected_faults_never_produce_a_silent_continue_in_a_long_run(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    # A longer conversation with every trigger broken: no decision after the first is continue.
    for module in (confidence, explicit_request, sentiment, repeat_contact, boundary):
        inject_fault(monkeypatch, module)
    run = Run(policy)
    run.feed(
        events.account(),
        events.contact("conv-2", issue_key="x"),
        events.customer("hi", conversation_id="conv-3"),
        events.ai(action="refund", amount=5.0, conversation_id="conv-4", at=T0 + DAY),
    )
    assert run.decisions
    assert {d.action for d in run.decisions} == {"escalate"}


# --- conflicting duplicates ----------------------------------------------------------------------


def test_a_message_id_again_with_other_text_is_absorbed_and_named(
    policy: Policy, events: EventFactory
) -> None:
    # Given a decided customer turn
    run = Run(policy)
    first = events.customer("Where is my parcel?", message_id="m-1")
    (decision,) = run.feed(first)[0]
    # When the same message id comes again with other text
    forged = events.customer("I want a human now", message_id="m-1")
    result = run.step(forged)
    # Then the first version stays: no escalation from the second text, and the conflict is named
    assert [d.action for d in result.decisions] == ["continue"]
    assert result.conflict is not None and "'m-1'" in result.conflict
    assert [t.text for t in run.state.conversations["conv-1"].turns] == ["Where is my parcel?"]
    # A true redelivery (same content) is no conflict
    again = run.step(first)
    assert again.conflict is None and again.decisions == [decision]
