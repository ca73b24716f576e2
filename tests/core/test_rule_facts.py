"""The field-path view operator rules read: each path resolves to its source, unknowns to None."""

from __future__ import annotations

import pytest

from stream.core.conditions import FIELDS
from stream.core.decision import AccountSnapshot
from stream.core.events import MessageEvent, ProposedAction, account_facts
from stream.core.state import ConversationState
from stream.core.triggers.boundary import Facts, facts
from stream.testing import FULL_ACCOUNT, T0

ACCOUNT = AccountSnapshot(**account_facts(FULL_ACCOUNT), known=True)
ACTION = ProposedAction("refund", "financial", 20.0, "EUR", "order-1")
MESSAGE = MessageEvent(
    "e",
    "c",
    T0,
    "conv",
    "m",
    "ai_agent",
    "Refund?",
    intent="refund",
    intent_confidence=0.8,
    proposed_action=ACTION,
)


def conversation() -> ConversationState:
    conv = ConversationState("conv", T0, T0)
    conv.category, conv.channel, conv.customer_turns, conv.ai_turns = "billing", "email", 3, 2
    return conv


def test_every_path_resolves_to_its_source() -> None:
    assert facts(MESSAGE, conversation(), ACCOUNT) == {
        "account.tier": "gold",
        "account.plan": "pro",
        "account.flags": ("vip",),
        "account.enterprise_contract": True,
        "account.primary_email": "pat@example.com",
        "account.balance": 42.5,
        "account.currency": "EUR",
        "account.open_cases": 2,
        "account.known": True,
        "action.type": "refund",
        "action.consequence_class": "financial",
        "action.amount": 20.0,
        "action.currency": "EUR",
        "action.target": "order-1",
        "conversation.category": "billing",
        "conversation.channel": "email",
        "conversation.customer_turns": 3,
        "conversation.ai_turns": 2,
        "message.role": "ai_agent",
        "message.intent": "refund",
        "message.intent_confidence": 0.8,
        "message.text": "Refund?",
    }


def test_unknown_sources_are_none_and_an_unknown_account_is_not_known() -> None:
    view = facts(None, None, None)
    assert view.pop("account.known") is False
    assert set(view.values()) == {None}
    no_action = MessageEvent("e", "c", T0, "conv", "m", "customer", "hi")
    assert facts(no_action, None, None)["action.type"] is None
    assert facts(no_action, None, None)["message.role"] == "customer"


def test_the_view_is_a_mapping_of_exactly_the_known_paths() -> None:
    view = Facts(MESSAGE, conversation(), ACCOUNT)
    assert list(view) == list(FIELDS)
    assert len(view) == len(FIELDS)
    assert view["action.amount"] == 20.0
    assert view.get("no.such.path", "fallback") == "fallback"
    with pytest.raises(KeyError):
        view["no.such.path"]
