"""Per-customer state that `step` folds events into, and its plain record for the worker's table.

The state is mutable on purpose: `step` updates the object it is given and returns it, so the
worker and the backtest pay no copy per event. Callers that need the old value keep `to_record()`.
Every list is bounded by the policy's `state` limits or by the repeat-contact window. The record of
each class is derived from its fields by the generic converter (stream/core/records.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stream.core.decision import AccountSnapshot, AttemptedAction, Decision, HandoffPackage
from stream.core.records import Record


@dataclass(slots=True)
class Turn(Record):
    """One turn of a conversation, with the text markers found in it (customer turns only)."""

    message_id: str
    role: str
    text: str
    at: int
    markers: tuple[tuple[str, str], ...] = ()
    negative: bool = False
    sentiment: float | None = None
    # A Decision was emitted for this turn: a redelivery must send it again, not stay silent.
    decided: bool = False
    # The learned turn signal (0..1, likelihood of dissatisfaction); customer turns only.
    signal: float | None = None
    # The lexicon score the turn's text analysis gave (`markers` are its marker kinds): what the
    # next customer turn's context takes from this one, kept so that scoring that turn does not
    # analyse this one again (stream/core/turn_model.py, `previous_summary`). None when unknown:
    # analysis failed, a text longer than the model reads, a late turn folded before this one,
    # or a state stored before it was kept; the next turn's context then analyses the texts.
    lexicon: float | None = None


@dataclass(slots=True)
class ContactRecord(Record):
    """A contact opened or reopened, kept for the repeat-contact window."""

    contact_id: str
    conversation_id: str
    issue_key: str
    at: int
    category: str | None
    channel: str
    action: str


@dataclass(slots=True)
class Escalation(Record):
    """The escalate decision of a conversation and its latest package, to revise or re-emit."""

    event_id: str
    decision: Decision
    package: HandoffPackage


@dataclass(slots=True)
class ConversationState(Record):
    """A conversation of the customer: its latest turns, what the AI agent tried, and escalation
    status. Kept after its close for the lateness bound, so a straggler still finds it."""

    conversation_id: str
    opened_at: int
    last_at: int
    category: str | None = None
    channel: str = "chat"
    turns: list[Turn] = field(default_factory=list)
    attempts: list[AttemptedAction] = field(default_factory=list)
    intents: list[str] = field(default_factory=list)
    clarifications: int = 0
    ai_turns: int = 0
    customer_turns: int = 0
    # A human_agent turn was seen: a person owns the conversation, the AI decides no more.
    human: bool = False
    # The offer_transfer decision, kept to re-emit it on a redelivered event.
    offer: Decision | None = None
    escalation: Escalation | None = None
    # Sentiment scores that arrived before their message, by message id.
    pending_scores: dict[str, float] = field(default_factory=dict)
    # Oldest turns cut to keep the stored state under its byte budget (stream/core/statecodec.py).
    trimmed_turns: int = 0

    @classmethod
    def opened(cls, conversation_id: str, at: int) -> ConversationState:
        return cls(conversation_id, at, at)


@dataclass(slots=True, repr=False)
class CustomerState(Record):
    """Everything `step` knows about one customer; keyed by customer_id in the worker's table."""

    customer_id: str
    # Highest event time seen for this customer; -1 before the first event.
    watermark: int = -1
    # Highest event time seen per event type. Each input topic is read in order, but the five
    # are read side by side: lateness and clean-up follow the stream an event came in on, so
    # one topic read ahead (a backlog) does not make another topic's events late.
    marks: dict[str, int] = field(default_factory=dict)
    account: AccountSnapshot | None = None
    account_at: int = -1
    # Sorted by event time; only contacts inside the repeat window (and a hard cap).
    contacts: list[ContactRecord] = field(default_factory=list)
    # Insertion ordered; the least recently active conversation is evicted first at the cap.
    conversations: dict[str, ConversationState] = field(default_factory=dict)
    # Recently closed conversation ids with the event time they closed at, so a straggler event
    # cannot reopen and re-escalate one. Insertion ordered (oldest first). A closed
    # conversation's turns stay in `conversations` for the lateness bound: input topics are
    # consumed side by side, so its close can be read before its last messages.
    closed: dict[str, int] = field(default_factory=dict)

    @classmethod
    def new(cls, customer_id: str) -> CustomerState:
        return cls(customer_id)

    def __repr__(self) -> str:
        return (
            f"CustomerState({self.customer_id!r}, watermark={self.watermark}, "
            f"conversations={len(self.conversations)}, contacts={len(self.contacts)})"
        )
