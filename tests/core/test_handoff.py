"""The handoff package: complete, deterministic, routed by the policy, valid Avro."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.core.decision import HandoffPackage
from stream.core.policy import Policy
from stream.testing import DAY, T0, EventFactory, Run, avro_valid


def escalated_refund(run: Run, events: EventFactory) -> HandoffPackage:
    run.feed(
        events.account(
            tier="pro",
            plan="annual",
            flags=("disputed_charge", "vip", "newsletter"),
            balance=42.0,
        ),
        events.contact("conv-old", "billing:inv-9", at=T0 - 2 * DAY),
        events.contact("conv-1", "billing:inv-9"),
        events.customer("I was charged twice for invoice 9", category="billing"),
        events.ai("Could you confirm the invoice number?", intent="clarify"),
        events.customer("Invoice 9, as I said"),
        events.ai(
            "I can refund the duplicate charge.",
            action="refund",
            klass="financial",
            confidence=0.97,
            amount=180.0,
            currency="USD",
            target="inv-9",
        ),
    )
    escalations = [d for d in run.decisions if d.action == "escalate"]
    assert len(escalations) == 1
    assert len(run.handoffs) == 1
    return run.handoffs[0]


def test_package_carries_everything_the_human_needs(run: Run, events: EventFactory) -> None:
    package = escalated_refund(run, events)
    decision = run.decisions[-1]
    assert package.handoff_id == package.decision_id == decision.decision_id
    assert package.revision == 0
    assert package.escalated_at == decision.occurred_at
    assert package.policy_version == run.policy.version
    # account state at the moment of escalation
    assert package.account.known and package.account.tier == "pro"
    assert package.account.balance == 42.0
    # what the AI agent attempted
    attempts = package.attempts
    assert attempts.ai_turns == 2 and attempts.customer_turns == 2
    assert attempts.clarifications_asked == 1
    assert attempts.intents == ("clarify", "refund")
    (action,) = attempts.actions
    assert (action.type, action.amount, action.confidence) == ("refund", 180.0, 0.97)
    assert "refund of 180.00 USD at confidence 0.97: proposed, not taken" in attempts.summary
    # the reasons with evidence
    (reason,) = package.reasons
    assert reason.rule == "boundary.refund_limit"
    assert {e.kind for e in reason.evidence} == {"amount", "limit"}
    assert [e.value for e in reason.evidence if e.kind == "amount"] == [180.0]
    # relevant flags only
    assert package.relevant_flags == ("disputed_charge", "vip")
    # earlier contacts on the same issue, with their conversation ids
    assert [c.conversation_id for c in package.prior_contacts] == ["conv-old"]
    # transcript
    assert [t.role for t in package.transcript] == ["customer", "ai_agent", "customer", "ai_agent"]
    # ticket draft
    ticket = package.ticket
    assert ticket.queue == "billing_review"
    assert ticket.priority == decision.priority == "urgent"  # high, raised for the vip flag
    assert "trigger:policy_boundary" in ticket.tags and "category:billing" in ticket.tags
    assert "flag:vip" in ticket.tags
    assert ticket.subject.startswith("[billing] Escalated: policy boundary")
    for text in ("conv-old", "boundary.refund_limit", "tier pro", "Customer was told"):
        assert text in ticket.body
    assert package.customer_message == decision.customer_message
    assert avro_valid(package.to_record(), "HandoffPackage")


def test_revision_keeps_account_at_escalation(run: Run, events: EventFactory) -> None:
    package = escalated_refund(run, events)
    _, handoffs = run.feed(events.account(tier="enterprise"), events.customer("hello?"))
    (revision,) = handoffs
    assert revision.revision == 1
    assert revision.account == package.account
    assert revision.prior_contacts == package.prior_contacts
    assert revision.escalated_at == package.escalated_at
    assert revision.transcript[-1].text == "hello?"


def test_transcript_is_the_last_n_turns(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"handoff": {"transcript_turns": 3}}))
    for n in range(6):
        run.feed(events.customer(f"turn {n}"))
    run.feed(events.customer("get me a human"))
    (package,) = run.handoffs
    assert [t.text for t in package.transcript] == ["turn 4", "turn 5", "get me a human"]


@pytest.mark.parametrize(
    ("category", "first_event", "queue"),
    [
        ("billing", "boundary", "billing_review"),
        ("shipping", "boundary", "authorization_review"),
        ("billing", "human", "billing"),
        ("technical", "human", "technical_support"),
        ("shipping", "human", "support_general"),
    ],
)
def test_queue_follows_policy_routes(
    run: Run, events: EventFactory, category: str, first_event: str, queue: str
) -> None:
    run.feed(events.account(), events.customer("hi", category=category))
    if first_event == "boundary":
        run.feed(events.ai(action="refund", klass="financial", confidence=0.99, amount=1e4))
    else:
        run.feed(events.customer("I want to talk to a person"))
    (package,) = run.handoffs
    assert package.ticket.queue == queue


def test_packages_are_deterministic(policy: Policy) -> None:
    records = []
    for _ in range(2):
        run = Run(policy)
        escalated_refund(run, EventFactory())
        records.append([p.to_record() for p in run.handoffs])
    assert records[0] == records[1]


def test_package_without_account_snapshot(run: Run, events: EventFactory) -> None:
    run.feed(events.customer("human please"))
    (package,) = run.handoffs
    assert package.account.known is False
    assert "no snapshot" in package.ticket.body
    assert avro_valid(package.to_record(), "HandoffPackage")


def test_record_round_trip(policy: Policy) -> None:
    run = Run(policy)
    package = escalated_refund(run, EventFactory())
    assert HandoffPackage.from_record(package.to_record()).to_record() == package.to_record()
