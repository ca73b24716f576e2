"""The input events of DESIGN.md section 3 as typed values the decision core folds over.

Field names are those of the Avro schemas under `schemas/`; `event_from_dict` is the one place where
a decoded record (from Avro or from a JSON Lines file) becomes a typed event, so the worker and the
backtest cannot disagree on what an event means.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Final, Literal, TypeAlias

from stream.core.bounds import ID_FIELDS, MAX_ID_CHARS
from stream.errors import BadInputError

EventType: TypeAlias = Literal["message", "sentiment", "contact", "account", "outcome"]
EVENT_TYPES: Final[tuple[EventType, ...]] = (
    "message",
    "sentiment",
    "contact",
    "account",
    "outcome",
)
ROLES: Final[frozenset[str]] = frozenset({"customer", "ai_agent", "human_agent", "system"})
CONTACT_ACTIONS: Final[frozenset[str]] = frozenset({"opened", "closed", "reopened"})
RESOLVERS: Final[frozenset[str]] = frozenset({"human", "ai", "unresolved"})


class EventError(BadInputError):
    """An event record that cannot be a valid event; the message names the field."""


@dataclass(frozen=True, slots=True)
class ProposedAction:
    type: str
    consequence_class: str
    amount: float | None = None
    currency: str | None = None
    target: str | None = None


@dataclass(frozen=True, slots=True)
class EventHead:
    """The fields every event starts with, in this order, as every schema under `schemas/` does."""

    event_id: str
    customer_id: str
    occurred_at: int
    # Last in every schema; keyword-only, so that each event's own fields follow the head.
    schema_version: int = field(default=1, kw_only=True)


_HEAD: Final[tuple[str, ...]] = tuple(f.name for f in fields(EventHead) if not f.kw_only)


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountFacts:
    """What an account snapshot says of a customer.

    Stated once: the account event carries these fields and the customer's state keeps them
    (`decision.AccountSnapshot`), so the two cannot drift apart.
    """

    tier: str = "standard"
    plan: str | None = None
    enterprise_contract: bool = False
    contract_id: str | None = None
    primary_email: str | None = None
    balance: float = 0.0
    currency: str = "USD"
    flags: tuple[str, ...] = ()
    open_cases: int = 0


ACCOUNT_FACTS: Final[tuple[str, ...]] = tuple(f.name for f in fields(AccountFacts))


def account_facts(account: AccountFacts) -> dict[str, Any]:
    """The account fields of an account event, snapshot or case, by name."""
    return {name: getattr(account, name) for name in ACCOUNT_FACTS}


@dataclass(frozen=True, slots=True)
class MessageEvent(EventHead):
    conversation_id: str
    message_id: str
    role: str
    text: str
    channel: str = "chat"
    category: str | None = None
    intent: str | None = None
    intent_confidence: float | None = None
    proposed_action: ProposedAction | None = None
    action_attempted: bool = False
    action_failed: bool = False
    type: Literal["message"] = field(default="message", init=False)


@dataclass(frozen=True, slots=True)
class SentimentEvent(EventHead):
    conversation_id: str
    message_id: str
    score: float
    labels: tuple[str, ...] = ()
    model: str = "unknown"
    type: Literal["sentiment"] = field(default="sentiment", init=False)


@dataclass(frozen=True, slots=True)
class ContactEvent(EventHead):
    contact_id: str
    conversation_id: str
    action: str
    issue_key: str
    category: str | None = None
    channel: str = "chat"
    type: Literal["contact"] = field(default="contact", init=False)


@dataclass(frozen=True, slots=True)
class AccountEvent(AccountFacts):
    # The facts are keyword-only, so the head stays the first three positional arguments, as in
    # every event; `event_to_dict` puts the head first in the record too, in the schema's order.
    event_id: str
    customer_id: str
    occurred_at: int
    schema_version: int = 1
    type: Literal["account"] = field(default="account", init=False)


@dataclass(frozen=True, slots=True)
class OutcomeEvent(EventHead):
    ticket_id: str
    conversation_id: str
    decision_id: str | None = None
    resolved_by: str = "unresolved"
    handle_time_seconds: float | None = None
    special_expertise: bool = False
    reopened_at: int | None = None
    csat: int | None = None
    type: Literal["outcome"] = field(default="outcome", init=False)


Event: TypeAlias = MessageEvent | SentimentEvent | ContactEvent | AccountEvent | OutcomeEvent

_CLASSES: Final[dict[str, type[Any]]] = {
    "message": MessageEvent,
    "sentiment": SentimentEvent,
    "contact": ContactEvent,
    "account": AccountEvent,
    "outcome": OutcomeEvent,
}
_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    name: tuple(
        f.name
        for f in cls.__dataclass_fields__.values()
        if f.init and f.default is f.default_factory  # both MISSING: no default
    )
    for name, cls in _CLASSES.items()
}
_FIELDS: Final[dict[str, frozenset[str]]] = {
    name: frozenset(f.name for f in cls.__dataclass_fields__.values() if f.init)
    for name, cls in _CLASSES.items()
}


def _str(record: dict[str, Any], name: str, kind: str) -> str:
    value = record[name]
    if not isinstance(value, str) or not value:
        raise EventError(f"{kind}.{name}: expected a non-empty string, got {value!r}")
    return value


def _millis(value: Any, name: str, kind: str) -> int:
    # bool is an int subclass; a flag in a time field is a producer bug, not a timestamp
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EventError(f"{kind}.{name}: expected epoch milliseconds, got {value!r}")
    return value


def _opt_float(value: Any, name: str, kind: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{kind}.{name}: expected a number, got {value!r}")
    number = float(value)
    # NaN compares false with every limit, so a NaN amount or balance would pass any check.
    if not math.isfinite(number):
        raise EventError(f"{kind}.{name}: expected a finite number, got {value!r}")
    return number


def _proposed_action(value: Any) -> ProposedAction | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise EventError(f"message.proposed_action: expected a record, got {value!r}")
    for name in ("type", "consequence_class"):
        if not isinstance(value.get(name), str) or not value[name]:
            raise EventError(f"message.proposed_action.{name}: expected a non-empty string")
    return ProposedAction(
        type=value["type"],
        consequence_class=value["consequence_class"],
        amount=_opt_float(value.get("amount"), "proposed_action.amount", "message"),
        currency=value.get("currency"),
        target=value.get("target"),
    )


def event_from_dict(kind: str, record: dict[str, Any]) -> Event:
    """Build a typed event from a decoded record, refusing what the decision core cannot use."""
    cls = _CLASSES.get(kind)
    if cls is None:
        raise EventError(f"unknown event type {kind!r}; expected one of {', '.join(EVENT_TYPES)}")
    required = _REQUIRED[kind]
    if None in map(record.get, required):
        missing = next(name for name in required if record.get(name) is None)
        raise EventError(f"{kind}.{missing}: required field is missing")
    # A record decoded with the current schema has only the event's fields: copied whole, which
    # costs a tenth of filtering it key by key.
    fields = _FIELDS[kind]
    if fields.issuperset(record):
        values = dict(record)
    else:
        values = {k: v for k, v in record.items() if k in fields}
    for name in ("event_id", "customer_id"):
        _str(values, name, kind)
    for name in ID_FIELDS:
        value = values.get(name)
        if isinstance(value, str) and len(value) > MAX_ID_CHARS:
            raise EventError(
                f"{kind}.{name}: {len(value)} characters, more than the {MAX_ID_CHARS} "
                "an identifier may have"
            )
    values["occurred_at"] = _millis(values["occurred_at"], "occurred_at", kind)
    if kind == "message":
        if values["role"] not in ROLES:
            raise EventError(f"message.role: {values['role']!r} is not one of {sorted(ROLES)}")
        confidence = _opt_float(values.get("intent_confidence"), "intent_confidence", kind)
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise EventError(f"message.intent_confidence: {confidence} is outside 0..1")
        values["intent_confidence"] = confidence
        values["proposed_action"] = _proposed_action(values.get("proposed_action"))
    elif kind == "sentiment":
        score = _opt_float(values["score"], "score", kind)
        if score is None or not -1.0 <= score <= 1.0:
            raise EventError(f"sentiment.score: {score} is outside -1..1")
        values["score"] = score
        values["labels"] = tuple(values.get("labels") or ())
    elif kind == "contact":
        if values["action"] not in CONTACT_ACTIONS:
            raise EventError(
                f"contact.action: {values['action']!r} is not one of {sorted(CONTACT_ACTIONS)}"
            )
        _str(values, "issue_key", kind)
    elif kind == "account":
        values["flags"] = tuple(values.get("flags") or ())
        values["balance"] = _opt_float(values.get("balance", 0.0), "balance", kind) or 0.0
    elif kind == "outcome":
        if values.get("resolved_by", "unresolved") not in RESOLVERS:
            raise EventError(
                f"outcome.resolved_by: {values['resolved_by']!r} is not one of {sorted(RESOLVERS)}"
            )
        if values.get("reopened_at") is not None:
            values["reopened_at"] = _millis(values["reopened_at"], "reopened_at", kind)
        values["handle_time_seconds"] = _opt_float(
            values.get("handle_time_seconds"), "handle_time_seconds", kind
        )
    try:
        event: Event = cls(**values)
    except TypeError as exc:
        raise EventError(f"{kind}: {exc}") from exc
    return event


def event_to_dict(event: Event) -> dict[str, Any]:
    """The Avro-shaped record of an event (tuples become lists), without the `type` tag."""
    values = asdict(event)
    values.pop("type")
    record = {name: values.pop(name) for name in _HEAD}
    for key, value in values.items():
        record[key] = list(value) if isinstance(value, tuple) else value
    record["schema_version"] = record.pop("schema_version")  # last, as in the schemas
    return record
