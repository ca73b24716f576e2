"""Helpers for decision-core tests: an event factory, policies by override, a step runner."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from fastavro.schema import load_schema
from fastavro.validation import validate

from stream.core.decision import Decision, HandoffPackage
from stream.core.events import (
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    ProposedAction,
    SentimentEvent,
)
from stream.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy
from stream.core.state import CustomerState
from stream.core.step import step

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
T0 = 1_700_000_000_000
SECOND = 1_000
DAY = 86_400_000


class EventFactory:
    """Builds events for one customer; ids and (unless given) times count up per event."""

    def __init__(self, customer_id: str = "cust-1") -> None:
        self.customer_id = customer_id
        self.count = 0
        self.now = T0

    def _next(self, at: int | None) -> tuple[str, int]:
        self.count += 1
        if at is None:
            self.now += SECOND
            at = self.now
        else:
            self.now = max(self.now, at)
        return f"ev-{self.count}", at

    def customer(
        self, text: str, conversation_id: str = "conv-1", at: int | None = None, **kw: Any
    ) -> MessageEvent:
        event_id, at = self._next(at)
        kw.setdefault("message_id", f"msg-{self.count}")
        return MessageEvent(
            event_id, self.customer_id, at, conversation_id, role="customer", text=text, **kw
        )

    def ai(
        self,
        text: str = "Let me take care of that.",
        conversation_id: str = "conv-1",
        at: int | None = None,
        *,
        action: str | None = None,
        klass: str = "informational",
        confidence: float | None = 0.99,
        amount: float | None = None,
        currency: str | None = None,
        target: str | None = None,
        **kw: Any,
    ) -> MessageEvent:
        event_id, at = self._next(at)
        kw.setdefault("message_id", f"msg-{self.count}")
        proposed = (
            ProposedAction(action, klass, amount, currency, target) if action is not None else None
        )
        return MessageEvent(
            event_id,
            self.customer_id,
            at,
            conversation_id,
            role="ai_agent",
            text=text,
            intent=kw.pop("intent", action or "answer"),
            intent_confidence=confidence,
            proposed_action=proposed,
            **kw,
        )

    def human(
        self, text: str = "Hi, Sam here.", conversation_id: str = "conv-1", at: int | None = None
    ) -> MessageEvent:
        event_id, at = self._next(at)
        return MessageEvent(
            event_id,
            self.customer_id,
            at,
            conversation_id,
            f"msg-{self.count}",
            "human_agent",
            text,
        )

    def sentiment(
        self, message_id: str, score: float, conversation_id: str = "conv-1", at: int | None = None
    ) -> SentimentEvent:
        event_id, at = self._next(at)
        return SentimentEvent(event_id, self.customer_id, at, conversation_id, message_id, score)

    def contact(
        self,
        conversation_id: str,
        issue_key: str = "billing:inv-1",
        action: str = "opened",
        at: int | None = None,
        contact_id: str | None = None,
        category: str | None = "billing",
    ) -> ContactEvent:
        event_id, at = self._next(at)
        return ContactEvent(
            event_id,
            self.customer_id,
            at,
            contact_id or f"ct-{self.count}",
            conversation_id,
            action,
            issue_key,
            category,
        )

    def account(self, at: int | None = None, **kw: Any) -> AccountEvent:
        event_id, at = self._next(at)
        kw.setdefault("primary_email", "pat@example.com")
        return AccountEvent(event_id, self.customer_id, at, **kw)

    def outcome(
        self, conversation_id: str = "conv-1", at: int | None = None, **kw: Any
    ) -> OutcomeEvent:
        event_id, at = self._next(at)
        return OutcomeEvent(
            event_id, self.customer_id, at, f"ticket-{self.count}", conversation_id, **kw
        )


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


DEFAULT_RAW: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))


def make_policy(overrides: dict[str, Any] | None = None) -> Policy:
    return parse_policy(yaml.safe_dump(_merge(DEFAULT_RAW, overrides or {}), allow_unicode=True))


class Run:
    """Feeds events through `step` one by one and keeps everything it emitted."""

    def __init__(self, policy: Policy, state: CustomerState | None = None) -> None:
        self.policy = policy
        self.state = state
        self.decisions: list[Decision] = []
        self.handoffs: list[HandoffPackage] = []

    def feed(self, *events: Event) -> tuple[list[Decision], list[HandoffPackage]]:
        decisions: list[Decision] = []
        handoffs: list[HandoffPackage] = []
        for event in events:
            result = step(self.state, event, self.policy)
            self.state = result.state
            decisions += result.decisions
            handoffs += result.handoffs
        self.decisions += decisions
        self.handoffs += handoffs
        return decisions, handoffs

    def feed_all(self, events: Iterable[Event]) -> tuple[list[Decision], list[HandoffPackage]]:
        return self.feed(*events)

    def one(self, event: Event) -> Decision | None:
        decisions, _ = self.feed(event)
        assert len(decisions) <= 1
        return decisions[0] if decisions else None


_SCHEMA_CACHE: dict[str, Any] = {}


def avro_valid(record: dict[str, Any], name: str) -> bool:
    if name not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[name] = load_schema(str(SCHEMAS / f"escalation.{name}.avsc"))
    return bool(validate(record, _SCHEMA_CACHE[name], raise_errors=True))
