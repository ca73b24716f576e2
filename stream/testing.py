"""Building inputs for tests, benchmarks and examples: events, policies, event files, a step runner.

One kit, shipped with the package, so every test layer and every benchmark builds events the same
way (as bytewax ships `bytewax.testing`). Pure: no Kafka or Faust import.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from fastavro.schema import load_schema
from fastavro.validation import validate

from stream.core.decision import Decision, HandoffPackage, TriggerHit
from stream.core.events import (
    AccountEvent,
    AccountFacts,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    ProposedAction,
    SentimentEvent,
    event_to_dict,
)
from stream.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy
from stream.core.state import CustomerState
from stream.core.step import StepResult, step

SCHEMAS: Final[Path] = Path(__file__).resolve().parent.parent / "schemas"
T0: Final[int] = 1_700_000_000_000  # 2023-11-14T22:13:20Z, the replay's default start too
SECOND: Final[int] = 1_000
MINUTE: Final[int] = 60 * SECOND
HOUR: Final[int] = 60 * MINUTE
DAY: Final[int] = 24 * HOUR


@dataclass(slots=True)
class _Sequence:
    """Ids and the clock, shared by a factory and the views it hands out for other customers."""

    count: int
    clock: int


class EventFactory:
    """Builds typed events for one customer; ids and (unless given) times count up per event.

    `of(customer_id)` is a factory for another customer on the same ids and clock, so a history
    of several customers still has unique ids and ordered times.
    """

    def __init__(
        self, customer_id: str = "cust-1", start: int = T0, *, _seq: _Sequence | None = None
    ) -> None:
        self.customer_id = customer_id
        self._seq = _seq or _Sequence(0, start)

    def of(self, customer_id: str) -> EventFactory:
        return EventFactory(customer_id, _seq=self._seq)

    @property
    def clock(self) -> int:
        """The time of the latest event built (or the start)."""
        return self._seq.clock

    @clock.setter
    def clock(self, value: int) -> None:
        self._seq.clock = value

    @property
    def count(self) -> int:
        return self._seq.count

    def _next(self, at: int | None) -> tuple[str, int]:
        seq = self._seq
        seq.count += 1
        if at is None:
            seq.clock += SECOND
            at = seq.clock
        else:
            seq.clock = max(seq.clock, at)
        return f"ev-{seq.count}", at

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
        """An AI-agent turn; `action` (with `klass`, `amount`, ...) makes it propose one."""
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
        return AccountEvent(event_id=event_id, customer_id=self.customer_id, occurred_at=at, **kw)

    def outcome(
        self, conversation_id: str = "conv-1", at: int | None = None, **kw: Any
    ) -> OutcomeEvent:
        event_id, at = self._next(at)
        kw.setdefault("ticket_id", f"ticket-{self.count}")
        return OutcomeEvent(event_id, self.customer_id, at, conversation_id=conversation_id, **kw)

    def refund_request(self, amount: float = 650.0) -> list[Event]:
        """An account (its defaults), the customer asking for their money back, then the AI turn
        proposing to refund `amount` with 0.99 confidence: at 650, over the default limit."""
        return [
            self.account(),
            self.customer("I want my money back"),
            self.ai(action="refund", klass="financial", confidence=0.99, amount=amount),
        ]


# --- policies ---------------------------------------------------------------------------------


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def default_policy_raw() -> dict[str, Any]:
    """The shipped policy file as plain data, to derive variants from."""
    raw: dict[str, Any] = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    return raw


def policy_yaml(overrides: dict[str, Any] | None = None) -> str:
    """The shipped policy's YAML with `overrides` merged in (mappings merge, the rest replace)."""
    return yaml.safe_dump(_merge(default_policy_raw(), overrides or {}), allow_unicode=True)


def rule(
    name: str, field: str, op: str, value: Any, action: str = "escalate", **more: Any
) -> dict[str, Any]:
    """An operator rule as policy YAML writes it: `action` when `field op value`; `more` adds
    its other keys (description, priority, message)."""
    when = {"field": field, "op": op, "value": value}
    return {"name": name, "action": action, "when": when, **more}


def make_policy(overrides: dict[str, Any] | None = None) -> Policy:
    """The shipped policy with `overrides` merged in, validated."""
    return parse_policy(policy_yaml(overrides))


# --- running step ------------------------------------------------------------------------------


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
            result = self.step(event)
            decisions += result.decisions
            handoffs += result.handoffs
        return decisions, handoffs

    def step(self, event: Event) -> StepResult:
        """One event through `step`, its whole result returned (errors and conflicts too)."""
        result = step(self.state, event, self.policy)
        self.state = result.state
        self.decisions += result.decisions
        self.handoffs += result.handoffs
        return result

    def last(self, *events: Event) -> StepResult:
        """Folds `events` in order; the last one's whole result (errors and conflicts too)."""
        *before, event = events
        self.feed(*before)
        return self.step(event)

    def feed_all(self, events: Iterable[Event]) -> tuple[list[Decision], list[HandoffPackage]]:
        return self.feed(*events)

    def one(self, event: Event) -> Decision | None:
        """The decision of one event, if any; more than one is a bug in the caller's premise."""
        decisions, _ = self.feed(event)
        if len(decisions) > 1:
            raise AssertionError(f"expected at most one decision, got {len(decisions)}")
        return decisions[0] if decisions else None

    def escalated_by(self, event: Event) -> Decision:
        """Folds `event`, which must escalate: the premise of a test of what follows."""
        decision = self.one(event)
        if decision is None or decision.action != "escalate":
            raise AssertionError(f"expected an escalation, got {decision}")
        return decision


def emitted(
    state: CustomerState | None, event: Event, policy: Policy
) -> tuple[CustomerState, list[Any]]:
    """One event through `step`: the new state, and all it emitted in order (decision and
    package records, then the names of the checks that failed). Two runs that must agree, such
    as with and without expiry or a sweep, compare these lists."""
    result = step(state, event, policy)
    out: list[Any] = [d.to_record() for d in result.decisions]
    out += [h.to_record() for h in result.handoffs]
    out += [e.trigger for e in result.errors]
    return result.state, out


# The kinds `history_event` builds, each with the fields a generated history varies.
HISTORY_KINDS: Final = ("customer", "ai", "ai_refund", "opened", "reopened", "closed", "outcome")


def history_event(
    n: int, kind: str, at: int, conv: str, issue: str, text: str, scored: str | None = None
) -> Event | None:
    """The `n`th event of a generated history of customer "c" (the property tests of expiry and
    the sweep): a kind of `HISTORY_KINDS`, an account, or a sentiment score of message `scored`.
    An AI turn proposes a 650 USD refund for `ai_refund` (over the default limit), nothing for
    `ai`; messages are `m<n>`. Any other kind, or a score with no message, is None."""
    eid = f"e{n}"
    if kind == "customer":
        return MessageEvent(eid, "c", at, conv, f"m{n}", "customer", text)
    if kind in ("ai", "ai_refund"):
        refund = kind == "ai_refund"
        return MessageEvent(
            eid,
            "c",
            at,
            conv,
            f"m{n}",
            "ai_agent",
            "Let me check that.",
            intent="refund" if refund else "answer",
            intent_confidence=0.99,
            proposed_action=ProposedAction("refund", "financial", 650.0, "USD") if refund else None,
        )
    if kind in ("opened", "reopened", "closed"):
        return ContactEvent(eid, "c", at, f"ct{n}", conv, kind, issue, "billing")
    if kind == "outcome":
        return OutcomeEvent(eid, "c", at, f"t{n}", conv, resolved_by="ai")
    if kind == "sentiment" and scored is not None:
        return SentimentEvent(eid, "c", at, conv, scored, -0.9)
    if kind == "account":
        return AccountEvent(eid, "c", at, tier="standard", primary_email="pat@example.com")
    return None


# An account whose every field differs from its default: a field dropped on the way shows.
FULL_ACCOUNT: Final[AccountFacts] = AccountFacts(
    tier="gold",
    plan="pro",
    enterprise_contract=True,
    contract_id="ent-1",
    primary_email="pat@example.com",
    balance=42.5,
    currency="EUR",
    flags=("vip",),
    open_cases=2,
)


def decision_of(
    action: str,
    occurred_at: int,
    *,
    conversation_id: str = "conv",
    decision_id: str = "d-1",
    event_id: str = "e1",
    triggers: tuple[TriggerHit, ...] = (),
    priority: str = "normal",
    policy_version: str = "p1",
) -> Decision:
    """A decision as the judge reads it, for tests of judging that need no `step` to make one."""
    return Decision(
        decision_id=decision_id,
        customer_id="c1",
        conversation_id=conversation_id,
        event_id=event_id,
        event_type="message",
        occurred_at=occurred_at,
        action=action,  # type: ignore[arg-type]
        priority=priority,  # type: ignore[arg-type]
        hold_action=False,
        triggers=triggers,
        category="billing",
        customer_message=None,
        policy_version=policy_version,
    )


# --- records and event files -------------------------------------------------------------------

_SCHEMA_CACHE: dict[str, Any] = {}


def avro_valid(record: dict[str, Any], name: str) -> bool:
    """Whether `record` is valid for `schemas/escalation.<name>.avsc`; raises naming the field."""
    if name not in _SCHEMA_CACHE:
        _SCHEMA_CACHE[name] = load_schema(str(SCHEMAS / f"escalation.{name}.avsc"))
    return bool(validate(record, _SCHEMA_CACHE[name], raise_errors=True))


def message_record(**fields: Any) -> dict[str, Any]:
    """The Avro record of a customer's message asking for a person, with `fields` replaced.

    For tests that hand the worker raw records, broken ones included: any field may be overridden
    with any value, which a typed event would not allow.
    """
    event = MessageEvent(
        "msg-1", "c-1", T0, "v-1", "m-1", "customer", "Can I talk to a real person?"
    )
    record = event_to_dict(dataclasses.replace(event, category="billing"))
    record.update(fields)
    return record


def labelled(yes: Iterable[str], no: Iterable[str]) -> list[tuple[str, bool]]:
    """Each text of `yes` paired with True and each of `no` with False: the cases of a yes/no
    classifier (is this an ask, a yes/no question, a bare no) as one parametrized table."""
    return [(text, True) for text in yes] + [(text, False) for text in no]


def jsonl_line(event: Event) -> str:
    """One line of an event file (DESIGN section 6), without the newline."""
    return json.dumps({"type": event.type, **event_to_dict(event)}, separators=(",", ":"))


def write_events(path: Path, events: Iterable[Event]) -> Path:
    """An event file of `events`, one line each."""
    path.write_text("".join(jsonl_line(e) + "\n" for e in events), encoding="utf-8")
    return path


# --- a synthetic mix for benchmarks -------------------------------------------------------------

_CUSTOMER_TEXTS: Final[tuple[str, ...]] = (
    "Hi, I was charged twice for my last invoice, can you check?",
    "Where is my order? It was supposed to arrive yesterday.",
    "ok thanks",
    "This is ridiculous, I already told you the order number!!!",
    "what do you mean?",
    "Can I change the email on my account please",
    "I want to speak to a real person",
    "The app keeps crashing when I open settings",
    "Still waiting for my refund, it has been two weeks",
    "yes that's the one",
)
_AI_TEXTS: Final[tuple[str, ...]] = (
    "I can help with that. Could you confirm the order number?",
    "I've found your invoice. The second charge is a pending authorisation.",
    "I can issue a refund for that amount.",
    "Here is how to reset your settings.",
)
_ACTIONS: Final[tuple[ProposedAction | None, ...]] = (
    None,
    ProposedAction("answer", "informational"),
    ProposedAction("lookup", "informational"),
    ProposedAction("refund", "financial", 40.0, "USD", "inv-1"),
    ProposedAction("refund", "financial", 250.0, "USD", "inv-2"),
    ProposedAction("account_email_change", "account_change", None, None, "new@example.com"),
)
_CATEGORIES: Final[tuple[str, ...]] = ("billing", "shipping", "technical", "account")


def synthetic_events(count: int, customers: int, seed: int) -> list[Event]:
    """A deterministic mix of all five event types that resembles a support stream.

    Mostly messages (customer, AI and some human-agent turns), sentiment scores, contacts opening
    and closing conversations, occasional account snapshots and outcomes; 5% arrive out of order.
    """
    rng = random.Random(seed)
    events: list[Event] = []
    now = T0
    conversation: dict[int, int] = {}
    for index in range(count):
        now += rng.randint(50, 5_000)
        cust = rng.randrange(customers)
        cid = f"cust-{cust}"
        conv_no = conversation.setdefault(cust, 0)
        conv = f"{cid}-conv-{conv_no}"
        eid = f"e{index}"
        roll = rng.random()
        at = now - (rng.randint(0, 60_000) if rng.random() < 0.05 else 0)
        if roll < 0.36:
            text = rng.choice(_CUSTOMER_TEXTS)
            category = rng.choice(_CATEGORIES)
            events.append(
                MessageEvent(eid, cid, at, conv, f"m{index}", "customer", text, category=category)
            )
        elif roll < 0.69:
            action = rng.choice(_ACTIONS)
            events.append(
                MessageEvent(
                    eid,
                    cid,
                    at,
                    conv,
                    f"m{index}",
                    "ai_agent",
                    rng.choice(_AI_TEXTS),
                    intent="billing_question" if action is None else action.type,
                    intent_confidence=round(rng.uniform(0.4, 1.0), 3),
                    proposed_action=action,
                )
            )
        elif roll < 0.74:
            # A person has taken over; from here the conversation gets no more AI decisions.
            events.append(
                MessageEvent(
                    eid, cid, at, conv, f"m{index}", "human_agent", "Hi, I'm Sam from support."
                )
            )
        elif roll < 0.86:
            score = round(rng.uniform(-1.0, 1.0), 3)
            events.append(SentimentEvent(eid, cid, at, conv, f"m{index - 1}", score))
        elif roll < 0.93:
            action_name = rng.choice(("opened", "opened", "reopened", "closed"))
            if action_name == "closed":
                conversation[cust] = conv_no + 1
            issue = f"billing:inv-{rng.randrange(3)}"
            category = rng.choice(_CATEGORIES)
            events.append(
                ContactEvent(eid, cid, at, f"ct{index}", conv, action_name, issue, category)
            )
        elif roll < 0.97:
            flags = tuple(
                f
                for f in ("disputed_charge", "recent_negative_review", "vip")
                if rng.random() < 0.2
            )
            events.append(
                AccountEvent(
                    event_id=eid,
                    customer_id=cid,
                    occurred_at=at,
                    tier=rng.choice(("standard", "pro", "enterprise")),
                    primary_email=f"{cid}@example.com",
                    flags=flags,
                    enterprise_contract=rng.random() < 0.1,
                )
            )
        else:
            conversation[cust] = conv_no + 1
            events.append(OutcomeEvent(eid, cid, at, f"t{index}", conv, resolved_by="human"))
    return events


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The Java client's default partition for a key (Utils.murmur2, toPositive, modulo).

    The input topics are written by Java producers in production, so a test or benchmark that
    writes a topic directly (a changelog, a chosen partition) must place keys the same way.
    """
    m, h = 0x5BD1E995, (0x9747B28C ^ len(key)) & 0xFFFFFFFF
    whole = len(key) // 4 * 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[whole:]
    if len(tail) == 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions
