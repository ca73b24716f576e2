"""The package an escalation gets when its full package cannot be built, field by field.

The fail-safe tests (test_fail_safe_outside_triggers.py) show that such an escalation still
reaches a person; these pin what the person and the systems downstream receive: the decision's
identity, time, priority and message, an unknown account rather than a guessed one, empty lists
rather than missing ones, the default queue, and the failure in the ticket, bounded.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.core import handoff
from stream.core.decision import UNKNOWN_ACCOUNT, Decision, HandoffPackage
from stream.core.events import Event
from stream.core.policy import Policy
from stream.core.step import HANDOFF, TEXT_ANALYSIS
from stream.core.vocabulary import Priority
from stream.testing import EventFactory, Run
from tests.faults import ask_while_clarifying_breaks, inject_fault


def escalate_with_broken_builder(
    monkeypatch: pytest.MonkeyPatch, run: Run, events: EventFactory, *escalating: Event
) -> tuple[Decision, HandoffPackage]:
    """`escalating` folded while the handoff builder raises, its last event escalating; by
    default a customer who asks for a person in conv-7."""
    inject_fault(monkeypatch, handoff, "build")
    result = run.last(*escalating or [events.customer("I want to talk to a real person", "conv-7")])
    (decision,) = result.decisions
    (package,) = result.handoffs
    assert decision.action == "escalate"
    return decision, package


def test_the_fallback_package_carries_the_decision_and_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.feed(events.account(flags=("vip", "fraud")), events.contact("conv-7", "billing:inv-1"))
    decision, package = escalate_with_broken_builder(monkeypatch, run, events)
    assert package.customer_id == decision.customer_id == "cust-1"
    assert package.conversation_id == decision.conversation_id == "conv-7"
    assert package.escalated_at == decision.occurred_at
    assert package.policy_version == decision.policy_version == policy.version
    # Nothing the failed builder would have read: the account is unknown, not the one in state,
    # and the lists are empty even though the state has flags, a contact and a turn
    assert package.account == UNKNOWN_ACCOUNT
    assert package.account.known is False
    assert package.attempts.summary == "Not available: the handoff package could not be built."
    assert package.attempts.actions == () and package.attempts.ai_turns == 0
    assert package.relevant_flags == ()
    assert package.prior_contacts == ()
    assert package.transcript == ()
    assert package.customer_message == decision.customer_message == policy.messages.escalate
    ticket = package.ticket
    assert ticket.subject == "Escalation of conversation conv-7"
    assert ticket.priority == decision.priority == "urgent"  # high, raised for the vip flag
    assert ticket.queue == policy.routing.default_queue == "support_general"
    assert ticket.body == (
        "The handoff package could not be built (internal: InjectedFault: injected fault in "
        "build). Read the conversation in the support tool."
    )


def test_the_failure_in_the_ticket_is_cut_at_500_characters(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    decision, _ = escalate_with_broken_builder(monkeypatch, run, events)
    assert run.state is not None
    conv = run.state.conversations["conv-7"]
    failure = "a" * 500 + "b" * 100
    package = handoff.fallback(decision, conv, policy, "msg", failure)
    assert package.ticket.body == (
        f"The handoff package could not be built ({'a' * 500}). "
        "Read the conversation in the support tool."
    )
    assert package.customer_message == "msg"
    # A subject is bounded like the full package's
    long_id = "c" * 300
    conv.conversation_id = long_id
    subject = handoff.fallback(decision, conv, policy, "msg", failure).ticket.subject
    assert subject == f"Escalation of conversation {long_id}"[:120]


@pytest.mark.parametrize(
    ("by_trigger", "expected"),
    [("low", "high"), ("normal", "high"), ("high", "high"), ("urgent", "urgent")],
)
def test_a_failed_package_raises_the_priority_to_high_and_never_lowers_it(
    monkeypatch: pytest.MonkeyPatch,
    policy_factory: Callable[..., Policy],
    events: EventFactory,
    by_trigger: Priority,
    expected: Priority,
) -> None:
    policy = policy_factory({"priorities": {"by_trigger": {"explicit_request": by_trigger}}})
    run = Run(policy)
    # Premise: without the fault the explicit request escalates at the configured priority
    (plain,) = Run(policy).feed(events.customer("I want to talk to a real person", "conv-7"))[0]
    assert (plain.action, plain.priority) == ("escalate", by_trigger)
    decision, package = escalate_with_broken_builder(monkeypatch, run, events)
    assert decision.priority == package.ticket.priority == expected


def test_the_fallback_package_keeps_the_customer_message_of_the_decision(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    refund = events.refund_request(650.0)
    decision, package = escalate_with_broken_builder(monkeypatch, Run(policy), events, *refund)
    assert decision.customer_message == policy.messages.policy_boundary
    assert package.customer_message == policy.messages.policy_boundary


def test_a_broken_revision_reports_what_raised(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.escalated_by(events.customer("I want to talk to a real person"))
    inject_fault(monkeypatch, handoff, "with_new_turns")
    inject_fault(monkeypatch, handoff, "build")
    # A later customer turn revises the package; both revision paths raise
    result = run.step(events.customer("Still waiting, this is useless"))
    assert result.decisions == [] and result.handoffs == []
    (error,) = result.errors
    assert (error.trigger, error.code) == (HANDOFF, "internal")
    assert error.detail.startswith("InjectedFault: injected fault in ")


def test_a_broken_clarifying_check_counts_no_clarification(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run, result = ask_while_clarifying_breaks(
        monkeypatch, policy, events, text="Could you confirm your email?", action="lookup"
    )
    assert [e.trigger for e in result.errors] == [TEXT_ANALYSIS]
    (package,) = result.handoffs
    # The check failed, so the turn is not known to ask: the package must not say it did
    assert package.attempts.clarifications_asked == 0
    assert "clarify" not in package.attempts.summary
    assert run.state is not None and run.state.conversations["conv-1"].clarifications == 0
