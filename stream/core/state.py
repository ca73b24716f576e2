"""Per-customer state that `step` folds events into, with a compact JSON-safe form for the table.

The state is mutable on purpose: `step` updates the object it is given and returns it, so the
worker and the backtest pay no copy per event. Callers that need the old value keep `to_dict()`.
Every list is bounded by the policy's `state` limits or by the repeat-contact window.
"""

from __future__ import annotations

from typing import Any

from stream.core.decision import AccountSnapshot, AttemptedAction, Decision, HandoffPackage


class Turn:
    """One turn of a conversation, with the text markers found in it (customer turns only)."""

    __slots__ = ("message_id", "role", "text", "at", "markers", "negative", "sentiment", "decided")

    def __init__(
        self,
        message_id: str,
        role: str,
        text: str,
        at: int,
        markers: tuple[tuple[str, str], ...] = (),
        negative: bool = False,
        sentiment: float | None = None,
        decided: bool = False,
    ) -> None:
        self.message_id = message_id
        self.role = role
        self.text = text
        self.at = at
        self.markers = markers
        self.negative = negative
        self.sentiment = sentiment
        # A Decision was emitted for this turn: a redelivery must send it again, not stay silent.
        self.decided = decided

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"m": self.message_id, "r": self.role, "x": self.text, "t": self.at}
        if self.markers:
            out["k"] = [[kind, text] for kind, text in self.markers]
        if self.negative:
            out["n"] = True
        if self.sentiment is not None:
            out["s"] = self.sentiment
        if self.decided:
            out["d"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Turn:
        return cls(
            d["m"],
            d["r"],
            d["x"],
            d["t"],
            tuple((kind, text) for kind, text in d.get("k", ())),
            d.get("n", False),
            d.get("s"),
            d.get("d", False),
        )


class ContactRecord:
    """A contact opened or reopened, kept for the repeat-contact window."""

    __slots__ = (
        "contact_id",
        "conversation_id",
        "issue_key",
        "at",
        "category",
        "channel",
        "action",
    )

    def __init__(
        self,
        contact_id: str,
        conversation_id: str,
        issue_key: str,
        at: int,
        category: str | None,
        channel: str,
        action: str,
    ) -> None:
        self.contact_id = contact_id
        self.conversation_id = conversation_id
        self.issue_key = issue_key
        self.at = at
        self.category = category
        self.channel = channel
        self.action = action

    def to_list(self) -> list[Any]:
        return [
            self.contact_id,
            self.conversation_id,
            self.issue_key,
            self.at,
            self.category,
            self.channel,
            self.action,
        ]

    @classmethod
    def from_list(cls, v: list[Any]) -> ContactRecord:
        return cls(v[0], v[1], v[2], v[3], v[4], v[5], v[6])


class Escalation:
    """The escalate decision of a conversation and its latest package, to revise or re-emit."""

    __slots__ = ("event_id", "decision", "package")

    def __init__(self, event_id: str, decision: Decision, package: HandoffPackage) -> None:
        self.event_id = event_id
        self.decision = decision
        self.package = package

    def to_dict(self) -> dict[str, Any]:
        return {"e": self.event_id, "d": self.decision.to_record(), "p": self.package.to_record()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Escalation:
        return cls(d["e"], Decision.from_record(d["d"]), HandoffPackage.from_record(d["p"]))


class Conversation:
    """An open conversation: its latest turns, what the AI agent tried, and escalation status."""

    __slots__ = (
        "conversation_id",
        "category",
        "channel",
        "opened_at",
        "last_at",
        "turns",
        "attempts",
        "intents",
        "clarifications",
        "ai_turns",
        "customer_turns",
        "human",
        "offer",
        "escalation",
        "pending_scores",
    )

    def __init__(self, conversation_id: str, at: int) -> None:
        self.conversation_id = conversation_id
        self.category: str | None = None
        self.channel = "chat"
        self.opened_at = at
        self.last_at = at
        self.turns: list[Turn] = []
        self.attempts: list[AttemptedAction] = []
        self.intents: list[str] = []
        self.clarifications = 0
        self.ai_turns = 0
        self.customer_turns = 0
        # A human_agent turn was seen: a person owns the conversation, the AI decides no more.
        self.human = False
        # The offer_transfer decision, kept to re-emit it on a redelivered event.
        self.offer: Decision | None = None
        self.escalation: Escalation | None = None
        # Sentiment scores that arrived before their message, by message id.
        self.pending_scores: dict[str, float] = {}

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.conversation_id,
            "cat": self.category,
            "ch": self.channel,
            "o": self.opened_at,
            "l": self.last_at,
            "t": [turn.to_dict() for turn in self.turns],
            "a": [attempt.to_record() for attempt in self.attempts],
            "i": list(self.intents),
            "cl": self.clarifications,
            "ai": self.ai_turns,
            "cu": self.customer_turns,
        }
        if self.human:
            out["h"] = True
        if self.offer is not None:
            out["of"] = self.offer.to_record()
        if self.escalation is not None:
            out["es"] = self.escalation.to_dict()
        if self.pending_scores:
            out["ps"] = dict(self.pending_scores)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Conversation:
        conv = cls(d["id"], d["o"])
        conv.category = d.get("cat")
        conv.channel = d.get("ch", "chat")
        conv.last_at = d["l"]
        conv.turns = [Turn.from_dict(t) for t in d.get("t", ())]
        conv.attempts = [AttemptedAction.from_record(a) for a in d.get("a", ())]
        conv.intents = list(d.get("i", ()))
        conv.clarifications = d.get("cl", 0)
        conv.ai_turns = d.get("ai", 0)
        conv.customer_turns = d.get("cu", 0)
        conv.human = d.get("h", False)
        if "of" in d:
            conv.offer = Decision.from_record(d["of"])
        if "es" in d:
            conv.escalation = Escalation.from_dict(d["es"])
        conv.pending_scores = dict(d.get("ps", {}))
        return conv


class CustomerState:
    """Everything `step` knows about one customer; keyed by customer_id in the worker's table."""

    __slots__ = (
        "customer_id",
        "watermark",
        "marks",
        "account",
        "account_at",
        "contacts",
        "conversations",
        "closed",
    )

    def __init__(self, customer_id: str) -> None:
        self.customer_id = customer_id
        # Highest event time seen for this customer; -1 before the first event.
        self.watermark = -1
        # Highest event time seen per event type. Each input topic is read in order, but the five
        # are read side by side: lateness and clean-up follow the stream an event came in on, so
        # one topic read ahead (a backlog) does not make another topic's events late.
        self.marks: dict[str, int] = {}
        self.account: AccountSnapshot | None = None
        self.account_at = -1
        # Sorted by event time; only contacts inside the repeat window (and a hard cap).
        self.contacts: list[ContactRecord] = []
        # Insertion ordered; the least recently active conversation is evicted first at the cap.
        self.conversations: dict[str, Conversation] = {}
        # Recently closed conversation ids with the event time they closed at, so a straggler event
        # cannot reopen and re-escalate one. Insertion ordered (oldest first). A closed
        # conversation's turns stay in `conversations` for the lateness bound: input topics are
        # consumed side by side, so its close can be read before its last messages.
        self.closed: dict[str, int] = {}

    @classmethod
    def new(cls, customer_id: str) -> CustomerState:
        return cls(customer_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"c": self.customer_id, "w": self.watermark, "wm": self.marks}
        if self.account is not None:
            out["acc"] = self.account.to_record()
            out["acc_at"] = self.account_at
        out["ct"] = [contact.to_list() for contact in self.contacts]
        out["cv"] = [conv.to_dict() for conv in self.conversations.values()]
        out["cl"] = [[conv_id, at] for conv_id, at in self.closed.items()]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CustomerState:
        state = cls(d["c"])
        state.watermark = d.get("w", -1)
        state.marks = dict(d.get("wm", {}))
        if "acc" in d:
            state.account = AccountSnapshot.from_record(d["acc"])
            state.account_at = d.get("acc_at", -1)
        state.contacts = [ContactRecord.from_list(v) for v in d.get("ct", ())]
        state.conversations = {}
        for raw in d.get("cv", ()):
            conv = Conversation.from_dict(raw)
            state.conversations[conv.conversation_id] = conv
        state.closed = {conv_id: at for conv_id, at in d.get("cl", ())}
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CustomerState):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"CustomerState({self.customer_id!r}, watermark={self.watermark}, "
            f"conversations={len(self.conversations)}, contacts={len(self.contacts)})"
        )
