"""A small hand-written month whose every judgement, rate and CSAT split is known exactly.

Under the shipped policy, in January 2026:
- conv-false: a refund of 240 escalates (policy boundary); a human resolves it in 60 s: false.
- conv-needed: the customer asks for a person; a human works 600 s: needed.
- conv-expert: asks for a person; 60 s but special expertise: needed.
- conv-missed: a routine lookup continues; the customer reopens 24 h after the close: missed.
- conv-ok, conv-ok2: routine, resolved by the AI, never reopened: ok without.
- conv-noout: routine, no outcome arrives: unknown (decisions without outcome).
- conv-unres: routine, unresolved and not reopened: unknown (the outcome says too little).
- conv-ghost: an outcome for a conversation the input never showed.
- conv-december: a December conversation, outside the month.
"""

from __future__ import annotations

from typing import Any

from stream.core.events import Event
from stream.testing import HOUR, MINUTE, EventFactory

T_DEC = 1_764_547_200_000  # 2025-12-01T00:00:00Z
T_JAN = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MONTH = "2026-01"


def month_history() -> list[Event]:
    f = EventFactory(start=T_JAN + HOUR)
    events: list[Event] = []

    def opened(customer: str, conv: str) -> None:
        c = f.of(customer)
        events.append(c.account(tier="standard", primary_email=f"{customer}@x.com"))
        events.append(c.contact(conv, f"billing:{conv}", category="billing"))

    def closed(customer: str, conv: str, reopen_after: int | None = None, **outcome: Any) -> None:
        c = f.of(customer)
        events.append(c.contact(conv, f"billing:{conv}", action="closed"))
        at = f.clock
        if reopen_after is not None:
            outcome["reopened_at"] = at + reopen_after
        if outcome:
            events.append(c.outcome(conv, at=at + 5 * MINUTE, ticket_id=f"t-{conv}", **outcome))
        f.clock = at + 30 * MINUTE

    opened("c-false", "conv-false")
    cf = f.of("c-false")
    events.append(cf.customer("Please refund my cancelled booking.", "conv-false"))
    events.append(
        cf.ai(
            "I can refund 240 USD.",
            "conv-false",
            action="refund",
            klass="financial",
            confidence=0.97,
            amount=240.0,
            category="billing",
        )
    )
    closed("c-false", "conv-false", resolved_by="human", handle_time_seconds=60.0, csat=4)
    for conv, seconds, expertise, csat in (
        ("conv-needed", 600.0, False, 5),
        ("conv-expert", 60.0, True, 3),
    ):
        opened(f"c-{conv}", conv)
        events.append(
            f.of(f"c-{conv}").customer(
                "Let me speak to a human agent please.", conv, category="billing"
            )
        )
        closed(
            f"c-{conv}",
            conv,
            resolved_by="human",
            handle_time_seconds=seconds,
            special_expertise=expertise,
            csat=csat,
        )
    routine: list[tuple[str, dict[str, Any], int | None]] = [
        ("conv-missed", {"resolved_by": "ai", "csat": 1}, 24 * HOUR),
        ("conv-ok", {"resolved_by": "ai", "csat": 4}, None),
        ("conv-ok2", {"resolved_by": "ai", "csat": 5}, None),
        ("conv-noout", {}, None),
        ("conv-unres", {"resolved_by": "unresolved"}, None),
    ]
    for conv, outcome, reopen in routine:
        customer = f"c-{conv}"
        opened(customer, conv)
        c = f.of(customer)
        events.append(c.customer("When is my next invoice due?", conv, category="billing"))
        events.append(
            c.ai(
                "Your next invoice is due on the 5th.",
                conv,
                confidence=0.95,
                action="lookup",
                category="billing",
            )
        )
        closed(customer, conv, reopen, **outcome)
    events.append(f.of("c-ghost").outcome("conv-ghost", ticket_id="t-ghost", resolved_by="ai"))
    december = EventFactory("c-dec", start=T_DEC)
    early = [
        december.contact("conv-december", "billing:dec", category="billing"),
        december.customer("Let me speak to a human agent please.", "conv-december"),
        december.outcome(
            "conv-december", ticket_id="t-dec", resolved_by="human", handle_time_seconds=30.0
        ),
    ]
    return early + events
