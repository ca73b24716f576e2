"""A case becomes the input events a worker would read for it: account, contacts, turns, scores.

The records go through `event_from_dict`, the function that types every record the worker and the
backtest read, so a case is judged on exactly what a live conversation would be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from stream.core.events import Event, account_facts, event_from_dict
from stream.policytest.model import Case, CaseTurn

# Every case starts at the same fixed instant (2026-01-05 09:00 UTC): no clock is read, so a case
# decides the same today and in a year.
START_MS: Final[int] = 1_767_603_600_000
# A turn with no `at` comes this long after the previous one.
DEFAULT_GAP_MS: Final[int] = 30_000
# The account snapshot, when undated, is this long before the earliest other event.
_ACCOUNT_LEAD_MS: Final[int] = 60_000


@dataclass(frozen=True, slots=True)
class CaseEvent:
    """An input event and the turn it belongs to: 0 for the opening contact, None for history."""

    event: Event
    turn: int | None


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48] or "case"


def customer_id(case: Case) -> str:
    return case.customer or f"cust-{slug(case.name)}"


def conversation_id(case: Case) -> str:
    return case.conversation or f"conv-{slug(case.name)}"


def message_id(case: Case, turn: int) -> str:
    return f"{conversation_id(case)}-t{turn}"


def turn_times(case: Case) -> list[int]:
    """Event time of each turn, in case order."""
    times: list[int] = []
    previous = START_MS
    for turn in case.turns:
        at = turn.at
        if at is None:
            now = previous + DEFAULT_GAP_MS
        elif at.anchor == "after_previous":
            now = previous + at.ms
        else:
            now = START_MS + at.ms
        times.append(now)
        previous = now
    return times


def case_events(case: Case) -> list[CaseEvent]:
    """The events of a case, in the order a worker would read them."""
    customer = customer_id(case)
    conversation = conversation_id(case)
    counter = 0

    def event(kind: str, at: int, turn: int | None, **fields: Any) -> CaseEvent:
        nonlocal counter
        counter += 1
        record = {
            "event_id": f"{conversation}-e{counter}",
            "customer_id": customer,
            "occurred_at": at,
            **fields,
        }
        return CaseEvent(event_from_dict(kind, record), turn)

    prior = sorted(
        ((START_MS - contact.at.ms, index, contact) for index, contact in enumerate(case.contacts)),
        key=lambda item: (item[0], item[1]),
    )
    out: list[CaseEvent] = []
    account = case.account
    if account is not None:
        earliest = min([START_MS, *(at for at, _, _ in prior)])
        at = START_MS - account.at.ms if account.at is not None else earliest - _ACCOUNT_LEAD_MS
        out.append(
            event(
                "account",
                at,
                None,
                **account_facts(account),
            )
        )
    for at, index, contact in prior:
        out.append(
            event(
                "contact",
                at,
                None,
                contact_id=f"{conversation}-prior{index + 1}",
                conversation_id=contact.conversation or f"{conversation}-prior{index + 1}",
                action=contact.action,
                issue_key=contact.issue,
                category=contact.category if contact.category is not None else case.category,
                channel=contact.channel,
            )
        )
    if case.contact is not None:
        out.append(
            event(
                "contact",
                START_MS,
                0,
                contact_id=f"{conversation}-contact",
                conversation_id=conversation,
                action=case.contact.action,
                issue_key=case.contact.issue,
                category=(
                    case.contact.category if case.contact.category is not None else case.category
                ),
                channel=case.channel,
            )
        )
    for number, (turn, at) in enumerate(zip(case.turns, turn_times(case), strict=True), 1):
        out.append(event("message", at, number, **_message_fields(case, turn, number)))
        if turn.sentiment is not None:
            out.append(
                event(
                    "sentiment",
                    at,
                    number,
                    conversation_id=conversation,
                    message_id=message_id(case, number),
                    score=turn.sentiment,
                    labels=[],
                    model="case",
                )
            )
    return out


def _message_fields(case: Case, turn: CaseTurn, number: int) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "conversation_id": conversation_id(case),
        "message_id": message_id(case, number),
        "role": turn.role,
        "text": turn.text,
        "channel": case.channel,
        "category": turn.category if turn.category is not None else case.category,
    }
    if turn.role_key == "ai":
        action = turn.action
        fields["intent"] = turn.intent or (action.type if action is not None else "answer")
        fields["intent_confidence"] = turn.confidence
        fields["action_attempted"] = turn.attempted
        fields["action_failed"] = turn.failed
        if action is not None:
            fields["proposed_action"] = action.model_dump()  # the record's own field names
    return fields
