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


# The AI turns of the script: a refund above the shipped limit, and a lookup whose confidence
# each conversation sets.
REFUND_240: dict[str, Any] = {
    "text": "I can refund 240 USD for the cancelled booking.",
    "action": "refund",
    "klass": "financial",
    "confidence": 0.95,
    "intent": "refund_cancelled_booking",
    "amount": 240.0,
    "currency": "USD",
}
LOOKUP: dict[str, Any] = {
    "text": "Your next invoice is due on the 5th.",
    "action": "lookup",
    "klass": "informational",
    "intent": "invoice_due_date",
}
REFUND_ASK = "My booking was cancelled, please refund it."
HUMAN_ASK = "Let me speak to a human agent please."
LOOKUP_ASK = "When is my next invoice due?"


def scripted_history(factory: EventFactory | None = None) -> list[Event]:
    """Seven conversations of seven customers, each ending with its ticket's outcome."""
    f = factory or EventFactory()
    events: list[Event] = []

    def conversation(
        customer: str,
        conv: str,
        says: str,
        ai: dict[str, Any] | None = None,
        reopen_after: int | None = None,
        **outcome: Any,
    ) -> None:
        """Account, contact, the customer's turn, the AI's answer if any, then the outcome."""
        c = f.of(customer)
        events.append(c.account(tier="standard", primary_email=f"{customer}@example.com"))
        events.append(c.contact(conv, f"billing:{conv}", category="billing"))
        events.append(c.customer(says, conv, category="billing"))
        if ai is not None:
            turn = dict(ai)
            events.append(c.ai(turn.pop("text"), conv, category="billing", **turn))
        last = f.clock
        if reopen_after is not None:
            outcome["reopened_at"] = last + reopen_after
        events.append(c.outcome(conv, at=last + 10 * MINUTE, ticket_id=f"ticket-{conv}", **outcome))
        f.clock = last + 20 * MINUTE

    for index, conv in enumerate(FALSE_UNDER_BASELINE, 1):
        conversation(
            f"cust-refund-{index}",
            conv,
            REFUND_ASK,
            REFUND_240,
            resolved_by="human",
            handle_time_seconds=60.0,
        )
    for conv, seconds, expertise in ((CORRECT_SLOW, 600.0, False), (CORRECT_EXPERT, 60.0, True)):
        conversation(
            f"cust-{conv}",
            conv,
            HUMAN_ASK,
            resolved_by="human",
            handle_time_seconds=seconds,
            special_expertise=expertise,
        )
    for conv, confidence, reopen_after in (
        (MISSED_UNDER_BASELINE, 0.70, 24 * HOUR),
        (NOT_MISSED_LATE_REOPEN, 0.95, 72 * HOUR),
        (ROUTINE_OK, 0.95, None),
    ):
        lookup = {**LOOKUP, "confidence": confidence}
        conversation(f"cust-{conv}", conv, LOOKUP_ASK, lookup, reopen_after, resolved_by="ai")
    return events
