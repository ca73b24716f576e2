"""Factories for backtest tests: typed events with sensible defaults, and a scripted history.

The scripted history has outcomes whose false / missed classes are known under the shipped policy
and under `CANDIDATE_YAML`, so the report's numbers can be asserted exactly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from itertools import count
from pathlib import Path
from typing import Any

from stream.core.events import (
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    ProposedAction,
    SentimentEvent,
    event_to_dict,
)

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE


class EventFactory:
    """Builds events with unique ids and increasing times unless told otherwise."""

    def __init__(self, start: int = T0) -> None:
        self._ids = count(1)
        self.clock = start

    def _at(self, at: int | None) -> int:
        if at is None:
            self.clock += SECOND
            return self.clock
        self.clock = max(self.clock, at)
        return at

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self._ids)}"

    def account(self, customer: str, at: int | None = None, **fields: Any) -> AccountEvent:
        return AccountEvent(
            event_id=self._id("acc"), customer_id=customer, occurred_at=self._at(at), **fields
        )

    def contact(
        self,
        customer: str,
        conversation: str,
        issue_key: str,
        action: str = "opened",
        at: int | None = None,
        **fields: Any,
    ) -> ContactEvent:
        return ContactEvent(
            event_id=self._id("con"),
            customer_id=customer,
            occurred_at=self._at(at),
            contact_id=f"contact-{conversation}-{action}",
            conversation_id=conversation,
            action=action,
            issue_key=issue_key,
            **fields,
        )

    def customer(
        self, customer: str, conversation: str, text: str, at: int | None = None, **fields: Any
    ) -> MessageEvent:
        event_id = self._id("msg")
        return MessageEvent(
            event_id=event_id,
            customer_id=customer,
            occurred_at=self._at(at),
            conversation_id=conversation,
            message_id=f"m-{event_id}",
            role="customer",
            text=text,
            **fields,
        )

    def agent(
        self,
        customer: str,
        conversation: str,
        text: str,
        *,
        intent: str = "answer_question",
        confidence: float = 0.95,
        action: str = "answer",
        consequence: str = "informational",
        amount: float | None = None,
        at: int | None = None,
        **fields: Any,
    ) -> MessageEvent:
        event_id = self._id("msg")
        return MessageEvent(
            event_id=event_id,
            customer_id=customer,
            occurred_at=self._at(at),
            conversation_id=conversation,
            message_id=f"m-{event_id}",
            role="ai_agent",
            text=text,
            intent=intent,
            intent_confidence=confidence,
            proposed_action=ProposedAction(
                type=action,
                consequence_class=consequence,
                amount=amount,
                currency="USD" if amount is not None else None,
            ),
            **fields,
        )

    def sentiment(
        self,
        customer: str,
        conversation: str,
        message_id: str,
        score: float,
        at: int | None = None,
    ) -> SentimentEvent:
        return SentimentEvent(
            event_id=self._id("sen"),
            customer_id=customer,
            occurred_at=self._at(at),
            conversation_id=conversation,
            message_id=message_id,
            score=score,
        )

    def outcome(
        self,
        customer: str,
        conversation: str,
        *,
        resolved_by: str = "ai",
        handle_time_seconds: float | None = None,
        special_expertise: bool = False,
        reopened_at: int | None = None,
        decision_id: str | None = None,
        at: int | None = None,
    ) -> OutcomeEvent:
        return OutcomeEvent(
            event_id=self._id("out"),
            customer_id=customer,
            occurred_at=self._at(at),
            ticket_id=f"ticket-{conversation}",
            conversation_id=conversation,
            decision_id=decision_id,
            resolved_by=resolved_by,
            handle_time_seconds=handle_time_seconds,
            special_expertise=special_expertise,
            reopened_at=reopened_at,
        )


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
        events.append(f.account(customer, tier="standard", primary_email=f"{customer}@example.com"))
        events.append(f.contact(customer, conv, f"billing:{conv}", category="billing"))

    def close(customer: str, conv: str, reopen_after: int | None = None, **outcome: Any) -> None:
        last = f.clock
        if reopen_after is not None:
            outcome["reopened_at"] = last + reopen_after
        events.append(f.outcome(customer, conv, at=last + 10 * MINUTE, **outcome))
        f.clock = last + 20 * MINUTE

    for index, conv in enumerate(FALSE_UNDER_BASELINE, 1):
        customer = f"cust-refund-{index}"
        open_(customer, conv)
        events.append(
            f.customer(
                customer, conv, "My booking was cancelled, please refund it.", category="billing"
            )
        )
        events.append(
            f.agent(
                customer,
                conv,
                "I can refund 240 USD for the cancelled booking.",
                intent="refund_cancelled_booking",
                confidence=0.95,
                action="refund",
                consequence="financial",
                amount=240.0,
                category="billing",
            )
        )
        close(customer, conv, resolved_by="human", handle_time_seconds=60.0)
    for conv, seconds, expertise in ((CORRECT_SLOW, 600.0, False), (CORRECT_EXPERT, 60.0, True)):
        customer = f"cust-{conv}"
        open_(customer, conv)
        events.append(
            f.customer(customer, conv, "Let me speak to a human agent please.", category="billing")
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
            f.customer(customer, conv, "When is my next invoice due?", category="billing")
        )
        events.append(
            f.agent(
                customer,
                conv,
                "Your next invoice is due on the 5th.",
                intent="invoice_due_date",
                confidence=confidence,
                action="lookup",
                consequence="informational",
                category="billing",
            )
        )
        close(customer, conv, reopen_after, resolved_by="ai")
    return events


def jsonl_line(event: Event) -> str:
    return json.dumps({"type": event.type, **event_to_dict(event)}, separators=(",", ":"))


def write_events(path: Path, events: Iterable[Event]) -> Path:
    path.write_text("".join(jsonl_line(e) + "\n" for e in events), encoding="utf-8")
    return path
