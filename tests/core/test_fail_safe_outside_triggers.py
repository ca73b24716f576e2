"""Fail safe beyond the triggers: a broken text analysis or handoff builder holds and escalates.

Before, an exception in the turn analysis (markers, the learned turn signal), in the AI turn's
clarifying-question check or in the handoff builder left `step`, and the worker dead-lettered the
event: no decision at all, so the AI went on. Each test here injects the fault the way a bug
would (the function raises) and checks the decision: escalate, the proposed action held where
there is one, a `trigger_error.<name>` hit first, and the error on the step result for the
caller's log line and counts.
"""

from __future__ import annotations

import pytest

from stream.core import handoff
from stream.core import step as step_module
from stream.core.policy import Policy
from stream.core.step import HANDOFF, TEXT_ANALYSIS, step
from stream.testing import EventFactory, Run
from tests.faults import (
    ask_while_clarifying_breaks,
    assert_fail_safe,
    assert_failed_safe,
    inject_fault,
)


@pytest.mark.parametrize("broken", ["analyze_turn", "_turn_signal"])
def test_a_broken_turn_analysis_escalates_the_customer_turn(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory, broken: str
) -> None:
    # Given the marker analysis, or the learned turn signal, raising
    calls = inject_fault(monkeypatch, step_module, broken)
    run = Run(policy)
    # When a plain customer turn (which would continue) is folded
    result = run.step(events.customer("Where is my parcel?"))
    # Then it escalates, naming the text analysis, and the error is reported
    assert calls == [1]
    (decision,) = result.decisions
    assert_fail_safe(decision, TEXT_ANALYSIS, hold=False)
    assert [(e.trigger, e.code) for e in result.errors] == [(TEXT_ANALYSIS, "internal")]
    assert len(result.handoffs) == 1
    # The turn is kept, without markers or score, so later turns still see it
    assert run.state is not None
    (turn,) = run.state.conversations["conv-1"].turns
    assert turn.markers == () and turn.signal is None


def test_a_broken_clarifying_check_holds_the_ai_agents_action(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    # An AI turn with a confident, in-bounds action would continue
    _, result = ask_while_clarifying_breaks(
        monkeypatch, policy, events, action="lookup", confidence=0.99
    )
    assert_failed_safe(result, TEXT_ANALYSIS, hold=True)


def test_without_the_fault_the_same_turns_continue(policy: Policy, events: EventFactory) -> None:
    """The premise of the tests above: the decisions they escalate are continues otherwise."""
    run = Run(policy)
    assert [d.action for d in run.feed(events.customer("Where is my parcel?"))[0]] == ["continue"]
    run.feed(events.account(), events.customer("What's my balance?"))
    decision = run.one(events.ai(action="lookup", confidence=0.99))
    assert decision is not None and decision.action == "continue"


def test_a_broken_handoff_builder_still_escalates_with_a_package(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    # Given the handoff builder raising
    calls = inject_fault(monkeypatch, handoff, "build")
    run = Run(policy)
    # When a refund over the limit escalates
    *asked, refund = events.refund_request(650.0)
    result = run.last(*asked, refund)
    # Then the decision still escalates and holds, names the handoff failure first and keeps the
    # boundary hit that caused it; the package is the fallback one, saying what is missing
    assert calls == [1]
    (decision,) = result.decisions
    assert_fail_safe(decision, HANDOFF, hold=True)
    assert "policy_boundary" in [hit.trigger for hit in decision.triggers]
    assert [(e.trigger, e.code) for e in result.errors] == [(HANDOFF, "internal")]
    (package,) = result.handoffs
    assert package.decision_id == decision.decision_id == package.handoff_id
    assert package.revision == 0
    assert package.ticket.tags == ("handoff_error",)
    assert "InjectedFault: injected fault in build" in package.ticket.body
    assert package.reasons == decision.triggers
    # A redelivery re-sends the same decision and package; a later turn makes no new decision
    again = step(run.state, refund, policy)
    assert (again.decisions, again.handoffs) == ([decision], [package])
    assert step(run.state, events.customer("hello?"), policy).decisions == []


def test_a_broken_revision_keeps_the_last_package_and_reports(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.escalated_by(events.customer("I want to talk to a real person"))
    state = run.state
    assert state is not None and state.conversations["conv-1"].escalation is not None
    first = state.conversations["conv-1"].escalation.package
    inject_fault(monkeypatch, handoff, "build")
    inject_fault(monkeypatch, handoff, "with_new_turns")
    # A later customer turn would revise the package; both revision paths raise
    result = run.step(events.customer("Still waiting, this is useless"))
    assert result.decisions == [] and result.handoffs == []
    assert [(e.trigger, e.code) for e in result.errors] == [(HANDOFF, "internal")]
    assert state.conversations["conv-1"].escalation.package is first
