"""The ticketing system's outcome of a conversation: who resolved it, how long it took, CSAT."""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Sequence

from stream.core.events import OutcomeEvent
from stream.replay.config import SECOND_MS


def ticket_outcome(
    rng: random.Random,
    share: float,
    conversation_id: str,
    customer_id: str,
    closed: int,
    scores: Sequence[float],
) -> OutcomeEvent | None:
    """The outcome of a conversation closed at `closed`, or None for the `1 - share` unreported.

    CSAT follows the mood of the customer's turns (`scores`), with noise.
    """
    if rng.random() >= share:
        return None
    roll = rng.random()
    resolved_by = "human" if roll < 0.3 else "ai" if roll < 0.92 else "unresolved"
    handle: float | None = None
    expertise = False
    delay_ms = rng.randint(2 * SECOND_MS, 30 * SECOND_MS)
    if resolved_by == "human":
        handle = round(min(max(rng.lognormvariate(math.log(300.0), 0.9), 20.0), 7200.0), 1)
        expertise = rng.random() < 0.3
        delay_ms = int(handle * SECOND_MS)
    csat = None
    if rng.random() < 0.4:
        mood = sum(scores) / len(scores) if scores else 0.0
        csat = min(5, max(1, round(3.0 + 2.0 * mood + rng.gauss(0.0, 0.8))))
    return ticket_record(
        conversation_id,
        customer_id,
        closed + delay_ms,
        resolved_by,
        handle=handle,
        special_expertise=expertise,
        csat=csat,
    )


def ticket_record(
    conversation_id: str,
    customer_id: str,
    at: int,
    resolved_by: str,
    *,
    handle: float | None,
    special_expertise: bool,
    csat: int | None,
    decision_id: str | None = None,
) -> OutcomeEvent:
    """The ticket's first outcome record, with the ticket and event ids every replay gives a
    conversation's ticket (`tkt-`, `out-` and the conversation id)."""
    return OutcomeEvent(
        event_id=f"out-{conversation_id}",
        customer_id=customer_id,
        occurred_at=at,
        ticket_id=f"tkt-{conversation_id}",
        conversation_id=conversation_id,
        decision_id=decision_id,
        resolved_by=resolved_by,
        handle_time_seconds=handle,
        special_expertise=special_expertise,
        reopened_at=None,
        csat=csat,
    )


def reopened(outcome: OutcomeEvent, at: int) -> OutcomeEvent:
    """The outcome as reported once the customer is back at `at`: final, and reopened."""
    return dataclasses.replace(outcome, occurred_at=at, reopened_at=at)


def reported_by(outcome: OutcomeEvent, now: int) -> OutcomeEvent:
    """An outcome held for a reopen that never came, reported no earlier than `now`."""
    return dataclasses.replace(outcome, occurred_at=max(outcome.occurred_at, now))
