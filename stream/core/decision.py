"""The outputs of the decision core: decisions, trigger hits with evidence, and handoff packages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from stream.core.events import AccountFacts
from stream.core.records import NOT_IN_RECORD, Record, fallback
from stream.core.vocabulary import Action, Priority


def decision_id_for(
    customer_id: str, conversation_id: str | None, event_id: str, policy_version: str
) -> str:
    """Same customer, conversation, event and policy give the same id, so retries are idempotent.

    Each part is length-prefixed: no choice of ids can make two different tuples hash alike.
    """
    parts = (customer_id, conversation_id or "", event_id, policy_version)
    joined = "|".join(f"{len(part)}:{part}" for part in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Evidence(Record):
    kind: str
    detail: str
    message_id: str | None = None
    text: str | None = None
    value: float | None = None
    threshold: float | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class TriggerHit(Record):
    """One trigger that fired; `rule` names the policy rule, `action` what this hit alone asks."""

    trigger: str
    rule: str
    # Fail safe: an action this code does not know, read back from a record, escalates.
    action: Action = field(metadata=fallback("escalate"))
    reason: str
    evidence: tuple[Evidence, ...] = ()
    # A rule-level priority and customer message override; not part of the Avro record.
    priority: Priority | None = field(default=None, metadata=NOT_IN_RECORD)
    message: str | None = field(default=None, metadata=NOT_IN_RECORD)


@dataclass(frozen=True, slots=True)
class Decision(Record):
    decision_id: str
    customer_id: str
    conversation_id: str | None
    event_id: str
    event_type: str
    occurred_at: int
    action: Action
    priority: Priority
    hold_action: bool
    triggers: tuple[TriggerHit, ...]
    category: str | None
    customer_message: str | None
    policy_version: str
    thresholds: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AccountSnapshot(AccountFacts, Record):
    """The customer's latest account facts; `known` once an account event has been folded."""

    known: bool = False


UNKNOWN_ACCOUNT: Final[AccountSnapshot] = AccountSnapshot()


@dataclass(frozen=True, slots=True)
class AttemptedAction(Record):
    message_id: str
    intent: str | None
    confidence: float | None
    type: str
    consequence_class: str
    amount: float | None = None
    currency: str | None = None
    target: str | None = None
    attempted: bool = False
    failed: bool = False


@dataclass(frozen=True, slots=True)
class AgentAttempts(Record):
    summary: str
    intents: tuple[str, ...] = ()
    actions: tuple[AttemptedAction, ...] = ()
    clarifications_asked: int = 0
    ai_turns: int = 0
    customer_turns: int = 0


@dataclass(frozen=True, slots=True)
class PriorContact(Record):
    contact_id: str
    conversation_id: str
    issue_key: str
    occurred_at: int
    category: str | None = None
    channel: str = "chat"


@dataclass(frozen=True, slots=True)
class TranscriptTurn(Record):
    message_id: str
    role: str
    text: str
    occurred_at: int


@dataclass(frozen=True, slots=True)
class TicketDraft(Record):
    subject: str
    body: str
    priority: Priority
    tags: tuple[str, ...]
    queue: str


@dataclass(frozen=True, slots=True)
class HandoffPackage(Record):
    """What the human agent receives; revisions share `handoff_id` and count up `revision`."""

    handoff_id: str
    decision_id: str
    revision: int
    customer_id: str
    conversation_id: str
    escalated_at: int
    policy_version: str
    account: AccountSnapshot
    attempts: AgentAttempts
    reasons: tuple[TriggerHit, ...]
    relevant_flags: tuple[str, ...]
    prior_contacts: tuple[PriorContact, ...]
    transcript: tuple[TranscriptTurn, ...]
    ticket: TicketDraft
    customer_message: str
