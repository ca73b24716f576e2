"""The outputs of the decision core: decisions, trigger hits with evidence, and handoff packages."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

Action: TypeAlias = Literal["continue", "offer_transfer", "escalate"]
Priority: TypeAlias = Literal["low", "normal", "high", "urgent"]
ACTIONS: Final[tuple[Action, ...]] = ("continue", "offer_transfer", "escalate")
PRIORITIES: Final[tuple[Priority, ...]] = ("low", "normal", "high", "urgent")
ACTION_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(ACTIONS)}
PRIORITY_RANK: Final[dict[str, int]] = {name: rank for rank, name in enumerate(PRIORITIES)}
TRIGGERS: Final[tuple[str, ...]] = (
    "confidence",
    "sentiment",
    "explicit_request",
    "policy_boundary",
    "repeat_contact",
)


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
class Evidence:
    kind: str
    detail: str
    message_id: str | None = None
    text: str | None = None
    value: float | None = None
    threshold: float | None = None
    ref: str | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "detail": self.detail,
            "message_id": self.message_id,
            "text": self.text,
            "value": self.value,
            "threshold": self.threshold,
            "ref": self.ref,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Evidence:
        return cls(
            kind=record["kind"],
            detail=record["detail"],
            message_id=record.get("message_id"),
            text=record.get("text"),
            value=record.get("value"),
            threshold=record.get("threshold"),
            ref=record.get("ref"),
        )


@dataclass(frozen=True, slots=True)
class TriggerHit:
    """One trigger that fired; `rule` names the policy rule, `action` what this hit alone asks."""

    trigger: str
    rule: str
    action: Action
    reason: str
    evidence: tuple[Evidence, ...] = ()
    priority: Priority | None = None
    """A rule-level priority override; not part of the Avro record."""
    message: str | None = None
    """A rule-level customer message override; not part of the Avro record."""

    def to_record(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "rule": self.rule,
            "action": self.action,
            "reason": self.reason,
            "evidence": [item.to_record() for item in self.evidence],
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TriggerHit:
        action = record["action"]
        if action not in ("offer_transfer", "escalate", "continue"):
            action = "escalate"
        return cls(
            trigger=record["trigger"],
            rule=record["rule"],
            action=action,
            reason=record["reason"],
            evidence=tuple(Evidence.from_record(item) for item in record.get("evidence", ())),
        )


@dataclass(frozen=True, slots=True)
class Decision:
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

    def to_record(self) -> dict[str, Any]:
        return {
            "decision_id": self.decision_id,
            "customer_id": self.customer_id,
            "conversation_id": self.conversation_id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "action": self.action,
            "priority": self.priority,
            "hold_action": self.hold_action,
            "triggers": [hit.to_record() for hit in self.triggers],
            "category": self.category,
            "customer_message": self.customer_message,
            "policy_version": self.policy_version,
            "thresholds": dict(self.thresholds),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Decision:
        return cls(
            decision_id=record["decision_id"],
            customer_id=record["customer_id"],
            conversation_id=record.get("conversation_id"),
            event_id=record["event_id"],
            event_type=record["event_type"],
            occurred_at=record["occurred_at"],
            action=record["action"],
            priority=record["priority"],
            hold_action=record.get("hold_action", False),
            triggers=tuple(TriggerHit.from_record(hit) for hit in record.get("triggers", ())),
            category=record.get("category"),
            customer_message=record.get("customer_message"),
            policy_version=record["policy_version"],
            thresholds=dict(record.get("thresholds", {})),
        )


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    tier: str = "standard"
    plan: str | None = None
    enterprise_contract: bool = False
    contract_id: str | None = None
    primary_email: str | None = None
    balance: float = 0.0
    currency: str = "USD"
    flags: tuple[str, ...] = ()
    open_cases: int = 0
    known: bool = False

    def to_record(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "plan": self.plan,
            "enterprise_contract": self.enterprise_contract,
            "contract_id": self.contract_id,
            "primary_email": self.primary_email,
            "balance": self.balance,
            "currency": self.currency,
            "flags": list(self.flags),
            "open_cases": self.open_cases,
            "known": self.known,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AccountSnapshot:
        return cls(
            tier=record.get("tier", "standard"),
            plan=record.get("plan"),
            enterprise_contract=record.get("enterprise_contract", False),
            contract_id=record.get("contract_id"),
            primary_email=record.get("primary_email"),
            balance=float(record.get("balance", 0.0)),
            currency=record.get("currency", "USD"),
            flags=tuple(record.get("flags", ())),
            open_cases=int(record.get("open_cases", 0)),
            known=record.get("known", True),
        )


UNKNOWN_ACCOUNT: Final[AccountSnapshot] = AccountSnapshot()


@dataclass(frozen=True, slots=True)
class AttemptedAction:
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

    def to_record(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "intent": self.intent,
            "confidence": self.confidence,
            "type": self.type,
            "consequence_class": self.consequence_class,
            "amount": self.amount,
            "currency": self.currency,
            "target": self.target,
            "attempted": self.attempted,
            "failed": self.failed,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AttemptedAction:
        return cls(
            message_id=record["message_id"],
            intent=record.get("intent"),
            confidence=record.get("confidence"),
            type=record["type"],
            consequence_class=record["consequence_class"],
            amount=record.get("amount"),
            currency=record.get("currency"),
            target=record.get("target"),
            attempted=record.get("attempted", False),
            failed=record.get("failed", False),
        )


@dataclass(frozen=True, slots=True)
class AgentAttempts:
    summary: str
    intents: tuple[str, ...] = ()
    actions: tuple[AttemptedAction, ...] = ()
    clarifications_asked: int = 0
    ai_turns: int = 0
    customer_turns: int = 0

    def to_record(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "intents": list(self.intents),
            "actions": [action.to_record() for action in self.actions],
            "clarifications_asked": self.clarifications_asked,
            "ai_turns": self.ai_turns,
            "customer_turns": self.customer_turns,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AgentAttempts:
        return cls(
            summary=record["summary"],
            intents=tuple(record.get("intents", ())),
            actions=tuple(AttemptedAction.from_record(a) for a in record.get("actions", ())),
            clarifications_asked=record.get("clarifications_asked", 0),
            ai_turns=record.get("ai_turns", 0),
            customer_turns=record.get("customer_turns", 0),
        )


@dataclass(frozen=True, slots=True)
class PriorContact:
    contact_id: str
    conversation_id: str
    issue_key: str
    occurred_at: int
    category: str | None = None
    channel: str = "chat"

    def to_record(self) -> dict[str, Any]:
        return {
            "contact_id": self.contact_id,
            "conversation_id": self.conversation_id,
            "issue_key": self.issue_key,
            "occurred_at": self.occurred_at,
            "category": self.category,
            "channel": self.channel,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> PriorContact:
        return cls(
            contact_id=record["contact_id"],
            conversation_id=record["conversation_id"],
            issue_key=record["issue_key"],
            occurred_at=record["occurred_at"],
            category=record.get("category"),
            channel=record.get("channel", "chat"),
        )


@dataclass(frozen=True, slots=True)
class TranscriptTurn:
    message_id: str
    role: str
    text: str
    occurred_at: int

    def to_record(self) -> dict[str, Any]:
        return {
            "message_id": self.message_id,
            "role": self.role,
            "text": self.text,
            "occurred_at": self.occurred_at,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TranscriptTurn:
        return cls(
            message_id=record["message_id"],
            role=record["role"],
            text=record["text"],
            occurred_at=record["occurred_at"],
        )


@dataclass(frozen=True, slots=True)
class TicketDraft:
    subject: str
    body: str
    priority: Priority
    tags: tuple[str, ...]
    queue: str

    def to_record(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "body": self.body,
            "priority": self.priority,
            "tags": list(self.tags),
            "queue": self.queue,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TicketDraft:
        return cls(
            subject=record["subject"],
            body=record["body"],
            priority=record["priority"],
            tags=tuple(record.get("tags", ())),
            queue=record["queue"],
        )


@dataclass(frozen=True, slots=True)
class HandoffPackage:
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

    def to_record(self) -> dict[str, Any]:
        return {
            "handoff_id": self.handoff_id,
            "decision_id": self.decision_id,
            "revision": self.revision,
            "customer_id": self.customer_id,
            "conversation_id": self.conversation_id,
            "escalated_at": self.escalated_at,
            "policy_version": self.policy_version,
            "account": self.account.to_record(),
            "attempts": self.attempts.to_record(),
            "reasons": [hit.to_record() for hit in self.reasons],
            "relevant_flags": list(self.relevant_flags),
            "prior_contacts": [contact.to_record() for contact in self.prior_contacts],
            "transcript": [turn.to_record() for turn in self.transcript],
            "ticket": self.ticket.to_record(),
            "customer_message": self.customer_message,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> HandoffPackage:
        return cls(
            handoff_id=record["handoff_id"],
            decision_id=record["decision_id"],
            revision=record.get("revision", 0),
            customer_id=record["customer_id"],
            conversation_id=record["conversation_id"],
            escalated_at=record["escalated_at"],
            policy_version=record["policy_version"],
            account=AccountSnapshot.from_record(record["account"]),
            attempts=AgentAttempts.from_record(record["attempts"]),
            reasons=tuple(TriggerHit.from_record(hit) for hit in record.get("reasons", ())),
            relevant_flags=tuple(record.get("relevant_flags", ())),
            prior_contacts=tuple(
                PriorContact.from_record(c) for c in record.get("prior_contacts", ())
            ),
            transcript=tuple(TranscriptTurn.from_record(t) for t in record.get("transcript", ())),
            ticket=TicketDraft.from_record(record["ticket"]),
            customer_message=record["customer_message"],
        )
