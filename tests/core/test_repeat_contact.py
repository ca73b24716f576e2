"""Repeat contact: the evidence a human reads lists the earlier contacts, never the current one."""

from __future__ import annotations

from stream.core.decision import Decision
from stream.testing import DAY, T0, EventFactory, Run


def prior_refs(decision: Decision) -> list[str | None]:
    (hit,) = decision.triggers
    return [e.ref for e in hit.evidence if e.kind == "prior_contact"]


def test_evidence_lists_each_earlier_contact_and_the_count(run: Run, events: EventFactory) -> None:
    run.feed(events.contact("conv-a", at=T0), events.contact("conv-b", at=T0 + DAY))
    (decision,) = run.feed(events.contact("conv-c", at=T0 + 2 * DAY, contact_id="ct-c"))[0]
    assert prior_refs(decision) == ["conv-a", "conv-b"]
    (count,) = [e for e in decision.triggers[0].evidence if e.kind == "count"]
    assert (count.value, count.threshold, count.ref) == (3.0, 3.0, "ct-c")


def test_a_reopen_does_not_list_its_own_opening_as_an_earlier_contact(
    run: Run, events: EventFactory
) -> None:
    # Given contact ct-b opened and then reopened: together with ct-a, three contacts on the issue
    run.feed(
        events.contact("conv-a", at=T0, contact_id="ct-a"),
        events.contact("conv-b", at=T0 + DAY, contact_id="ct-b"),
    )
    decisions, _ = run.feed(
        events.contact("conv-b", at=T0 + 2 * DAY, contact_id="ct-b", action="reopened")
    )
    (decision,) = decisions
    assert decision.action == "escalate"
    # Then the evidence quotes ct-a only: ct-b is the contact being escalated, not an earlier one
    assert prior_refs(decision) == ["conv-a"]
