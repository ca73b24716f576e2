"""A scripted history for backtest tests, built with the shared event factory.

The scripted history has outcomes whose false / missed classes are known under the shipped policy
and under `CANDIDATE_YAML`, so the report's numbers can be asserted exactly.
"""

from __future__ import annotations

from typing import Any

from stream.core.events import Event
from stream.testing import HOUR, MINUTE, EventFactory

# The candidate raises the refund limit (refunds of 240 no longer escalate) and raises the
# informational confidence bar (a lookup at 0.70 now escalates).
CANDIDATE_YAML = """
version: "test-candidate"
confidence:
  thresholds: {financial: 0.90, account_change: 0.85, informational: 0.80}
boundaries:
  refund: {limit: 500}
"""

# Conversation ids of the scripted history, by what the shipped policy and the candidate make of
# them (given their outcomes).
FALSE_UNDER_BASELINE = ("conv-refund-1", "conv-refund-2")  # refund 240 > 100, human in 60 s
CORRECT_SLOW = "conv-human-slow"  # asks for a person; human took 600 s
CORRECT_EXPERT = "conv-human-expert"  # asks for a person; 60 s but needed expertise
MISSED_UNDER_BASELINE = "conv-lookup-low"  # lookup at 0.70 passes 0.50; reopened after 24 h
NOT_MISSED_LATE_REOPEN = "conv-lookup-late"  # routine, reopened after 72 h
ROUTINE_OK = "conv-routine"  # routine, never reopened


def scripted_history(factory: EventFactory | None = None) -> list[Event]:
    """Seven conversations of seven customers, each ending with its ticket's outcome."""
    f = factory or EventFactory()
    events: list[Event] = []

    def open_(customer: str, conv: str) -> None:
        events.append(
            f.of(customer).account(tier="standard", primary_email=f"{customer}@example.com")
        )
        events.append(f.of(customer).contact(conv, f"billing:{conv}", category="billing"))

    def close(customer: str, conv: str, reopen_after: int | None = None, **outcome: Any) -> None:
        last = f.clock
        if reopen_after is not None:
            outcome["reopened_at"] = last + reopen_after
        events.append(
            f.of(customer).outcome(
                conv, at=last + 10 * MINUTE, ticket_id=f"ticket-{conv}", **outcome
            )
        )
        f.clock = last + 20 * MINUTE

    for index, conv in enumerate(FALSE_UNDER_BASELINE, 1):
        customer = f"cust-refund-{index}"
        open_(customer, conv)
        events.append(
            f.of(customer).customer(
                "My booking was cancelled, please refund it.", conv, category="billing"
            )
        )
        events.append(
            f.of(customer).ai(
                "I can refund 240 USD for the cancelled booking.",
                conv,
                action="refund",
                klass="financial",
                confidence=0.95,
                intent="refund_cancelled_booking",
                amount=240.0,
                currency="USD",
                category="billing",
            )
        )
        close(customer, conv, resolved_by="human", handle_time_seconds=60.0)
    for conv, seconds, expertise in ((CORRECT_SLOW, 600.0, False), (CORRECT_EXPERT, 60.0, True)):
        customer = f"cust-{conv}"
        open_(customer, conv)
        events.append(
            f.of(customer).customer(
                "Let me speak to a human agent please.", conv, category="billing"
            )
        )
        close(
            customer,
            conv,
            resolved_by="human",
            handle_time_seconds=seconds,
            special_expertise=expertise,
        )
    for conv, confidence, reopen_after in (
        (MISSED_UNDER_BASELINE, 0.70, 24 * HOUR),
        (NOT_MISSED_LATE_REOPEN, 0.95, 72 * HOUR),
        (ROUTINE_OK, 0.95, None),
    ):
        customer = f"cust-{conv}"
        open_(customer, conv)
        events.append(
            f.of(customer).customer("When is my next invoice due?", conv, category="billing")
        )
        events.append(
            f.of(customer).ai(
                "Your next invoice is due on the 5th.",
                conv,
                action="lookup",
                klass="informational",
                confidence=confidence,
                intent="invoice_due_date",
                category="billing",
            )
        )
        close(customer, conv, reopen_after, resolved_by="ai")
    return events
