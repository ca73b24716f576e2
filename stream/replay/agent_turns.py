"""The AI agent's side of a turn: intent, confidence, the action it proposes, and its fate."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Final

from stream.core.events import ProposedAction
from stream.replay.customers import Customer, Issue

_INTENTS: Final[dict[str, tuple[str, ...]]] = {
    "billing": ("refund_request", "charge_dispute", "fee_question"),
    "baggage": ("baggage_delayed", "baggage_lost", "baggage_damaged"),
    "account": ("account_access", "loyalty_miles", "update_profile"),
    "delay": ("flight_status", "delay_compensation", "rebooking"),
    "booking": ("change_booking", "seat_request", "booking_error"),
    "other": ("general_inquiry", "feedback", "complaint"),
}

# Chance that a conversation of a category carries one consequential action somewhere in its AI
# turns, and which; the rest of the AI turns answer or look things up.
_MAJOR_ACTIONS: Final[dict[str, tuple[tuple[str, float], ...]]] = {
    "billing": (("refund", 0.55), ("account_email_change", 0.03)),
    "baggage": (("refund", 0.15),),
    "account": (("account_email_change", 0.40), ("account_disclosure", 0.10), ("refund", 0.03)),
    "delay": (("refund", 0.15),),
    "booking": (("refund", 0.08), ("account_email_change", 0.02)),
    "other": (("refund", 0.03), ("account_email_change", 0.02)),
}
_ACTION_CLASS: Final[dict[str, str]] = {
    "refund": "financial",
    "account_email_change": "account_change",
    "account_disclosure": "account_change",
    "cancel_contract": "account_change",
    "lookup": "informational",
    "answer": "informational",
}
_ACTION_INTENT: Final[dict[str, str]] = {
    "refund": "refund_request",
    "account_email_change": "update_email",
    "account_disclosure": "account_access",
    "cancel_contract": "cancel_contract",
}
_OTHER_DOMAINS: Final[tuple[str, ...]] = ("example.org", "example.net", "mail.example")


@dataclass(frozen=True, slots=True)
class AgentTurn:
    """The fields of an AI-agent message that the corpus does not have."""

    intent: str
    intent_confidence: float
    proposed_action: ProposedAction | None = None
    action_attempted: bool = False
    action_failed: bool = False


def conversation_intent(rng: random.Random, category: str) -> str:
    """The intent the agent reads into a conversation of `category` (its routine turns)."""
    return rng.choice(_INTENTS[category])


def major_action(rng: random.Random, category: str, customer: Customer) -> str | None:
    """The one consequential action a conversation carries, if any."""
    if customer.contract_id is not None and rng.random() < 0.08:
        return "cancel_contract"
    roll = rng.random()
    for action, share in _MAJOR_ACTIONS[category]:
        if roll < share:
            return action
        roll -= share
    return None


def agent_turn(
    rng: random.Random, intent: str, major: str | None, customer: Customer, issue: Issue
) -> AgentTurn:
    """An agent turn proposing `major` if given, else answering, looking up, or just talking."""
    if rng.random() < 0.15:
        confidence = rng.uniform(0.15, 0.6)
    else:
        confidence = 0.6 + 0.39 * rng.betavariate(5.0, 1.5)
    kind: str | None = major
    if kind is None:
        roll = rng.random()
        kind = "answer" if roll < 0.45 else "lookup" if roll < 0.65 else None
    turn_intent = _ACTION_INTENT[major] if major else intent
    if kind is None:
        return AgentTurn(turn_intent, round(confidence, 3))
    action = _proposed(rng, kind, customer, issue)
    attempted = failed = False
    if kind != "answer":
        attempted = rng.random() < (0.4 if kind == "lookup" else 0.12)
        failed = attempted and rng.random() < 0.3
    return AgentTurn(turn_intent, round(confidence, 3), action, attempted, failed)


def _proposed(rng: random.Random, kind: str, customer: Customer, issue: Issue) -> ProposedAction:
    amount: float | None = None
    currency: str | None = None
    target: str | None = None
    if kind == "refund":
        # About a third above the shipped refund limit of 100.
        high = rng.random() < 1 / 3
        amount = round(rng.uniform(100.5, 650.0) if high else rng.uniform(15.0, 100.0), 2)
        currency = "USD"
        target = issue.booking
    elif kind in ("account_email_change", "account_disclosure"):
        if rng.random() < 0.4:
            handle = rng.choice(("new", "work", "alt", "travel"))
            target = f"c{customer.number}.{handle}@{rng.choice(_OTHER_DOMAINS)}"
        else:
            target = customer.email
    elif kind == "cancel_contract":
        target = customer.contract_id
    elif kind == "lookup":
        target = issue.booking
    return ProposedAction(kind, _ACTION_CLASS[kind], amount, currency, target)
