"""Input events for a replay, built from real airline support conversations (docs/replay.md).

The customer and agent text and the order of the turns are real (the Twitter airline corpus under
`../shared/data/twcs-airlines/`). Everything else is synthetic and derived from a seed:
customers, accounts, timestamps, contacts and issue keys, the agent's intents, confidences and
proposed actions, sentiment scores and outcomes. The same source, config and seed always give the
same events, in the same order, byte for byte.
"""

from __future__ import annotations

import bz2
import csv
import hashlib
import heapq
import json
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TextIO

SECOND_MS: Final[int] = 1_000
MINUTE_MS: Final[int] = 60 * SECOND_MS
HOUR_MS: Final[int] = 60 * MINUTE_MS
DAY_MS: Final[int] = 24 * HOUR_MS

SENTIMENT_MODEL: Final[str] = "replay-lexicon-v1"
CATEGORIES: Final[tuple[str, ...]] = ("billing", "baggage", "account", "delay", "booking", "other")

# Tags of the annotated subset that name one of our categories; the other tags (in-flight
# entertainment, terminal operations, ...) fall through to the keyword rules.
_TAG_CATEGORY: Final[dict[str, str]] = {
    "DELAY": "delay",
    "BAGGAGE": "baggage",
    "BOOKFLT": "booking",
    "CHGFLT": "booking",
    "CHECKIN": "booking",
    "REWARDS": "account",
}

# Matched on the lowercased first turn; the first category that matches wins, so a refund for a
# delayed flight is billing, not delay.
_KEYWORDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (category, re.compile(r"\b(?:" + pattern + r")"))
    for category, pattern in (
        (
            "billing",
            r"refund|reimburs|charged?\b|charges|overcharg|fees?\b|money back|compensat|voucher"
            r"|credit card|billing|paid\b|double.?charg",
        ),
        ("baggage", r"bags?\b|baggage|luggage|suitcase|carry.?on|stroller|lost and found"),
        (
            "account",
            r"account|miles\b|mileage|points\b|skymiles|aadvantage|password|log.?in\b|e-?mail"
            r"|profile|frequent flyer|membership|rewards?\b|medallion|status match",
        ),
        (
            "delay",
            r"delay|late\b|cancell?ed|cancell?ation|missed (?:my )?connect|diverted|stuck"
            r"|on the tarmac|gate change|still waiting",
        ),
        (
            "booking",
            r"book|reservation|change (?:my )?flight|seats?\b|upgrade|ticket|itinerary"
            r"|confirmation|check.?in|boarding pass|standby|rebook",
        ),
    )
)

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

_TIERS: Final[tuple[tuple[str, float, str], ...]] = (
    ("standard", 0.55, "basic"),
    ("plus", 0.25, "plus-monthly"),
    ("premium", 0.15, "premium-annual"),
    ("enterprise", 0.05, "enterprise-annual"),
)
_BOOKING_ALPHABET: Final[str] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
_OTHER_DOMAINS: Final[tuple[str, ...]] = ("example.org", "example.net", "mail.example")

_TURN = re.compile(r"<(cust|rep)__(.*?)__\1>", re.DOTALL)
_WORD = re.compile(r"[a-z']+")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_POSITIVE: Final[frozenset[str]] = _words(
    "thanks thank thx great love awesome appreciate appreciated amazing helpful excellent"
    " perfect wonderful happy glad best kind nice fantastic good resolved"
)
_NEGATIVE: Final[frozenset[str]] = _words(
    "terrible worst awful horrible ridiculous unacceptable disappointed disappointing angry"
    " frustrated frustrating annoyed upset rude useless pathetic disgusting never nobody"
    " cancelled canceled delayed lost stuck missed waiting hours again still broken fail"
    " failed joke shame poor bad sucks ruined nightmare lied refuse refused"
)
_HOSTILE: Final[frozenset[str]] = _words(
    "wtf damn hell crap shit fuck fucking idiots idiot stupid incompetent liars"
)


@dataclass(frozen=True, slots=True)
class Conversation:
    """One real conversation of the corpus: turns as `("customer" | "ai_agent", text)`."""

    conversation_id: str
    tag: str
    turns: tuple[tuple[str, str], ...]


@dataclass
class ReplayConfig:
    """What to synthesise around the real text; every default is documented in docs/replay.md."""

    seed: int = 7
    conversations: int | None = None  # the first N usable conversations of the file; None: all
    start_ms: int = 1_700_000_000_000  # event time of the first conversation
    days: float = 30.0  # the conversations start spread over this many days
    customers_ratio: float = 0.75  # distinct customers per conversation (1 - chance of a return)
    same_issue_share: float = 0.7  # of the returns, those on the same issue as the last contact
    within_window_share: float = 0.85  # of the same-issue returns, those within 7 days of the first
    sentiment_share: float = 0.5  # customer turns that get a sentiment event
    outcome_share: float = 0.7  # conversations whose ticket outcome is reported
    channel: str = "social"  # the corpus is Twitter

    def __post_init__(self) -> None:
        for name in (
            "customers_ratio",
            "same_issue_share",
            "within_window_share",
            "sentiment_share",
            "outcome_share",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"ReplayConfig.{name}: {value} is outside 0..1")
        if self.customers_ratio == 0.0:
            raise ValueError("ReplayConfig.customers_ratio: must be above 0")
        if self.conversations is not None and self.conversations < 0:
            raise ValueError(f"ReplayConfig.conversations: {self.conversations} is negative")
        if self.days <= 0:
            raise ValueError(f"ReplayConfig.days: {self.days} must be positive")
        if self.start_ms < 0:
            raise ValueError(f"ReplayConfig.start_ms: {self.start_ms} is negative")


def read_conversations(source: Path, limit: int | None = None) -> list[Conversation]:
    """The usable conversations of `airlines_raw.csv.bz2` (or an uncompressed copy), file order.

    Rows without a customer turn are skipped, and so are exact duplicate rows (the corpus lists
    some conversations twice); rows sharing a tweet id but not their text get a suffix.
    """
    opener = bz2.open if source.suffix == ".bz2" else open
    out: list[Conversation] = []
    seen: dict[str, list[tuple[str, str, str]]] = {}
    with opener(source, "rt", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            if limit is not None and len(out) >= limit:
                break
            tweet_id = (row.get("first_tweet_id") or "").strip()
            body = (row.get("first_utterance") or "", row.get("context") or "")
            turns = tuple(
                ("customer" if who == "cust" else "ai_agent", text.strip())
                for who, text in _TURN.findall(body[0] + " " + body[1])
                if text.strip()
            )
            if not tweet_id or not turns or turns[0][0] != "customer":
                continue
            key = (row.get("tag") or "UNK", *body)
            earlier = seen.setdefault(tweet_id, [])
            if key in earlier:
                continue
            earlier.append(key)
            suffix = f"-{len(earlier)}" if len(earlier) > 1 else ""
            out.append(Conversation(f"tw{tweet_id}{suffix}", key[0], turns))
    return out


def classify(conversation: Conversation) -> str:
    """The ticket category: the annotated tag where it names one, else keyword rules."""
    tagged = _TAG_CATEGORY.get(conversation.tag)
    if tagged is not None:
        return tagged
    first = conversation.turns[0][1].lower()
    for category, pattern in _KEYWORDS:
        if pattern.search(first):
            return category
    return "other"


def lexicon_score(text: str) -> tuple[float, list[str]]:
    """A cheap, deterministic polarity of a turn (-1..1) and its labels, before any noise."""
    words = _WORD.findall(text.lower())
    pos = sum(1 for w in words if w in _POSITIVE)
    neg = sum(1 for w in words if w in _NEGATIVE)
    hostile = sum(1 for w in words if w in _HOSTILE)
    score = math.tanh(0.6 * (pos - neg - 1.5 * hostile))
    labels = []
    if neg >= 2 or score <= -0.6:
        labels.append("frustration")
    if hostile:
        labels.append("hostility")
    if text.count("?") >= 2:
        labels.append("confusion")
    return score, labels


def _rng(seed: int, *parts: object) -> random.Random:
    # hashlib, not hash(): str hashes are salted per process and would break determinism
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


@dataclass(slots=True)
class _Customer:
    number: int
    customer_id: str
    email: str
    tier: str
    contract_id: str | None


@dataclass(slots=True)
class _Issue:
    key: str
    category: str
    booking: str
    first_at: int
    contacts: int = 0


@dataclass(order=True, slots=True)
class _FollowUp:
    """A customer's next contact, due at `due`; taken by the first fitting conversation after it."""

    due: int
    seq: int
    customer: _Customer = field(compare=False)
    issue: _Issue | None = field(compare=False)  # None: the customer comes back on a new issue
    outcome: dict[str, Any] | None = field(compare=False, default=None)  # held until the reopen


# A follow-up waits this long for a conversation of its own category, then takes any.
_MAX_WAIT_MS: Final[int] = 12 * HOUR_MS
# A return is due this long after the previous contact closed at the earliest: later than that
# contact's outcome (at most 2 hours of handle time), and never an instant re-contact.
_MIN_RETURN_MS: Final[int] = 8 * HOUR_MS
_REOPEN_MS: Final[int] = 48 * HOUR_MS


class _Generator:
    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self.seq = 0
        self.customers = 0
        self.pending_same: dict[str, list[_FollowUp]] = {c: [] for c in CATEGORIES}
        self.pending_new: list[_FollowUp] = []
        self.out: list[tuple[int, int, str, dict[str, Any]]] = []

    def emit(self, event_type: str, record: dict[str, Any]) -> None:
        self.seq += 1
        heapq.heappush(self.out, (record["occurred_at"], self.seq, event_type, record))

    def drain(self, until: int | None) -> Iterator[tuple[str, dict[str, Any]]]:
        out = self.out
        while out and (until is None or out[0][0] <= until):
            _, _, event_type, record = heapq.heappop(out)
            yield event_type, record

    def take_follow_up(self, category: str, now: int) -> _FollowUp | None:
        own = self.pending_same[category]
        if own and own[0].due <= now:
            return heapq.heappop(own)
        for name in CATEGORIES:
            heap = self.pending_same[name]
            if heap and heap[0].due + _MAX_WAIT_MS <= now:
                return heapq.heappop(heap)
        if self.pending_new and self.pending_new[0].due <= now:
            return heapq.heappop(self.pending_new)
        return None

    def new_customer(self, at: int) -> _Customer:
        self.customers += 1
        n = self.customers
        rng = _rng(self.config.seed, "customer", n)
        customer_id = f"cust-{n:06d}"
        roll = rng.random()
        tier, plan = _TIERS[-1][0], _TIERS[-1][2]
        for name, share, plan_name in _TIERS:
            if roll < share:
                tier, plan = name, plan_name
                break
            roll -= share
        enterprise = tier == "enterprise"
        contract_id = f"ent-{n:06d}" if enterprise else None
        flags = []
        both = rng.random() < 0.03
        if both or rng.random() < 0.03:
            flags.append("disputed_charge")
        if both or rng.random() < 0.04:
            flags.append("recent_negative_review")
        if rng.random() < (0.15 if tier in ("premium", "enterprise") else 0.02):
            flags.append("vip")
        if rng.random() < 0.06:
            flags.append("churn_risk")
        balance = round(rng.uniform(5.0, 400.0), 2) if rng.random() < 0.2 else 0.0
        customer = _Customer(n, customer_id, f"c{n}@example.com", tier, contract_id)
        self.emit(
            "account",
            {
                "event_id": f"acc-{customer_id}-1",
                "customer_id": customer_id,
                "occurred_at": at,
                "schema_version": 1,
                "tier": tier,
                "plan": plan,
                "enterprise_contract": enterprise,
                "contract_id": contract_id,
                "primary_email": customer.email,
                "balance": balance,
                "currency": "USD",
                "flags": flags,
                "open_cases": rng.choice((0, 0, 0, 0, 0, 0, 1, 1, 2)),
            },
        )
        return customer

    def conversation(self, conv: Conversation, start: int) -> None:
        config = self.config
        rng = _rng(config.seed, "conversation", conv.conversation_id)
        category = classify(conv)
        follow = self.take_follow_up(category, start)
        deferred: dict[str, Any] | None = None
        if follow is None:
            customer = self.new_customer(start)
            issue = None
        else:
            customer, issue, deferred = follow.customer, follow.issue, follow.outcome
        if issue is None:
            booking = "".join(rng.choice(_BOOKING_ALPHABET) for _ in range(6))
            issue = _Issue(f"{category}:{booking}", category, booking, start)
        else:
            # A return on the same issue keeps the issue's category, whatever the text says.
            category = issue.category
        issue.contacts += 1
        cid = conv.conversation_id
        who = customer.customer_id
        if deferred is not None:
            # The earlier ticket's outcome is final once the customer is back: it was reopened.
            deferred["occurred_at"] = start
            deferred["reopened_at"] = start
            self.emit("outcome", deferred)
        self.emit("contact", self._contact(cid, who, start, "opened", issue, category))

        ai_turns = [i for i, (role, _) in enumerate(conv.turns) if role == "ai_agent"]
        major = self._major_action(rng, category, customer)
        major_turn = rng.choice(ai_turns) if major and ai_turns else -1
        intent = rng.choice(_INTENTS[category])
        at = start + rng.randint(200, 2_000)
        scores: list[float] = []
        for index, (role, text) in enumerate(conv.turns):
            if index:
                median = 90.0 if role == "customer" else 25.0
                gap_s = min(max(rng.lognormvariate(math.log(median), 1.0), 2.0), 900.0)
                at += int(gap_s * SECOND_MS)
            n = index + 1
            message: dict[str, Any] = {
                "event_id": f"msg-{cid}-{n}",
                "customer_id": who,
                "occurred_at": at,
                "schema_version": 1,
                "conversation_id": cid,
                "message_id": f"{cid}-{n}",
                "role": role,
                "text": text,
                "channel": config.channel,
                "category": category,
                "intent": None,
                "intent_confidence": None,
                "proposed_action": None,
                "action_attempted": False,
                "action_failed": False,
            }
            if role == "ai_agent":
                self._agent_fields(message, rng, intent, major if index == major_turn else None)
                self._fill_action(message, rng, customer, issue)
                self.emit("message", message)
                continue
            self.emit("message", message)
            lexical, labels = lexicon_score(text)
            scores.append(lexical)
            if rng.random() < config.sentiment_share:
                noisy = min(1.0, max(-1.0, lexical + rng.gauss(0.0, 0.15)))
                self.emit(
                    "sentiment",
                    {
                        "event_id": f"sen-{cid}-{n}",
                        "customer_id": who,
                        "occurred_at": at + rng.randint(150, 1_500),
                        "schema_version": 1,
                        "conversation_id": cid,
                        "message_id": f"{cid}-{n}",
                        "score": round(noisy, 3),
                        "labels": labels,
                        "model": SENTIMENT_MODEL,
                    },
                )
        closed = at + rng.randint(30 * SECOND_MS, 10 * MINUTE_MS)
        self.emit("contact", self._contact(cid, who, closed, "closed", issue, category))
        outcome = self._outcome(rng, cid, who, closed, scores)
        self._schedule(rng, customer, issue, closed, outcome)

    def _contact(
        self, cid: str, who: str, at: int, action: str, issue: _Issue, category: str
    ) -> dict[str, Any]:
        return {
            "event_id": f"con-{cid}-{action}",
            "customer_id": who,
            "occurred_at": at,
            "schema_version": 1,
            "contact_id": f"ct-{cid}",
            "conversation_id": cid,
            "action": action,
            "issue_key": issue.key,
            "category": category,
            "channel": self.config.channel,
        }

    @staticmethod
    def _major_action(rng: random.Random, category: str, customer: _Customer) -> str | None:
        if customer.contract_id is not None and rng.random() < 0.08:
            return "cancel_contract"
        roll = rng.random()
        for action, share in _MAJOR_ACTIONS[category]:
            if roll < share:
                return action
            roll -= share
        return None

    @staticmethod
    def _agent_fields(
        message: dict[str, Any], rng: random.Random, intent: str, major: str | None
    ) -> None:
        if rng.random() < 0.15:
            confidence = rng.uniform(0.15, 0.6)
        else:
            confidence = 0.6 + 0.39 * rng.betavariate(5.0, 1.5)
        message["intent"] = _ACTION_INTENT[major] if major else intent
        message["intent_confidence"] = round(confidence, 3)
        if major:
            message["proposed_action"] = {"type": major}
        else:
            roll = rng.random()
            if roll < 0.45:
                message["proposed_action"] = {"type": "answer"}
            elif roll < 0.65:
                message["proposed_action"] = {"type": "lookup"}

    @staticmethod
    def _fill_action(
        message: dict[str, Any], rng: random.Random, customer: _Customer, issue: _Issue
    ) -> None:
        action = message["proposed_action"]
        if action is None:
            return
        kind = action["type"]
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
        message["proposed_action"] = {
            "type": kind,
            "consequence_class": _ACTION_CLASS[kind],
            "amount": amount,
            "currency": currency,
            "target": target,
        }
        if kind != "answer":
            attempted = rng.random() < (0.4 if kind == "lookup" else 0.12)
            message["action_attempted"] = attempted
            message["action_failed"] = attempted and rng.random() < 0.3

    def _outcome(
        self, rng: random.Random, cid: str, who: str, closed: int, scores: list[float]
    ) -> dict[str, Any] | None:
        if rng.random() >= self.config.outcome_share:
            return None
        roll = rng.random()
        resolved_by = "human" if roll < 0.3 else "ai" if roll < 0.92 else "unresolved"
        handle: float | None = None
        expertise = False
        delay_ms = rng.randint(2 * SECOND_MS, 30 * SECOND_MS)
        if resolved_by == "human":
            handle = round(min(max(rng.lognormvariate(math.log(300.0), 0.9), 20.0), 7200.0), 1)
            expertise = rng.random() < 0.3
            delay_ms = int(handle * SECOND_MS)
        csat = None
        if rng.random() < 0.4:
            mood = sum(scores) / len(scores) if scores else 0.0
            csat = min(5, max(1, round(3.0 + 2.0 * mood + rng.gauss(0.0, 0.8))))
        return {
            "event_id": f"out-{cid}",
            "customer_id": who,
            "occurred_at": closed + delay_ms,
            "schema_version": 1,
            "ticket_id": f"tkt-{cid}",
            "conversation_id": cid,
            "decision_id": None,
            "resolved_by": resolved_by,
            "handle_time_seconds": handle,
            "special_expertise": expertise,
            "reopened_at": None,
            "csat": csat,
        }

    def _schedule(
        self,
        rng: random.Random,
        customer: _Customer,
        issue: _Issue,
        closed: int,
        outcome: dict[str, Any] | None,
    ) -> None:
        config = self.config
        self.seq += 1
        if rng.random() >= 1.0 - config.customers_ratio:
            if outcome is not None:
                self.emit("outcome", outcome)
            return
        if issue.contacts < 4 and rng.random() < config.same_issue_share:
            window_left = issue.first_at + int(6.5 * DAY_MS) - _MAX_WAIT_MS - closed
            if window_left > _MIN_RETURN_MS and rng.random() < config.within_window_share:
                gap = rng.randint(_MIN_RETURN_MS, min(window_left, 3 * DAY_MS))
            else:
                # Back on the same issue, but after the 7-day window has let the earlier go.
                gap = rng.randint(int(7.2 * DAY_MS), 12 * DAY_MS)
            due = closed + gap
            follow = _FollowUp(due, self.seq, customer, issue)
            if outcome is not None and gap <= _REOPEN_MS:
                follow.outcome = outcome
            elif outcome is not None:
                self.emit("outcome", outcome)
            heapq.heappush(self.pending_same[issue.category], follow)
            return
        if outcome is not None:
            self.emit("outcome", outcome)
        due = closed + rng.randint(DAY_MS, 30 * DAY_MS)
        heapq.heappush(self.pending_new, _FollowUp(due, self.seq, customer, None))

    def finish(self, now: int) -> None:
        """Outcomes held for a reopen that the slice ends before: reported without the reopen."""
        held = [f for heap in self.pending_same.values() for f in heap if f.outcome is not None]
        for follow in sorted(held):
            assert follow.outcome is not None
            follow.outcome["occurred_at"] = max(follow.outcome["occurred_at"], now)
            self.emit("outcome", follow.outcome)


def iter_events(source: Path, config: ReplayConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(event_type, record)` for the conversations of `source`, in event-time order.

    Records are shaped as the Avro schemas of DESIGN section 3 (every field present, epoch-ms ints);
    ties in event time keep generation order, so an account precedes its customer's contact.
    """
    conversations = read_conversations(source, config.conversations)
    if not conversations:
        return
    clock = random.Random(config.seed)
    mean_gap = config.days * DAY_MS / len(conversations)
    gen = _Generator(config)
    start = config.start_ms
    for index, conv in enumerate(conversations):
        if index:
            start += int(clock.expovariate(1.0 / mean_gap))
        yield from gen.drain(start)
        gen.conversation(conv, start)
    yield from gen.drain(start)
    gen.finish(start)
    yield from gen.drain(None)


def write_jsonl(events: Iterable[tuple[str, dict[str, Any]]], out: TextIO) -> int:
    """Write DESIGN section 6 event-file lines, `{"type": ..., **record}`; returns the count."""
    count = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    write = out.write
    for event_type, record in events:
        write(dumps({"type": event_type, **record}))
        write("\n")
        count += 1
    return count


def summarize(
    events: Iterable[tuple[str, dict[str, Any]]], repeat_n: int = 3, window_days: float = 7.0
) -> dict[str, int]:
    """Counts for docs and benchmarks: events by type, customers, and repeat contacts.

    `repeat_contacts` counts opened contacts that are at least the `repeat_n`-th on the same
    customer and issue key within `window_days` (event time), i.e. where the repeat-contact
    trigger of the shipped policy would fire.
    """
    by_type: Counter[str] = Counter()
    customers: set[str] = set()
    opened: dict[tuple[str, str], list[int]] = defaultdict(list)
    returning: set[str] = set()
    repeats = 0
    window = int(window_days * DAY_MS)
    for event_type, record in events:
        by_type[event_type] += 1
        customers.add(record["customer_id"])
        if event_type == "contact" and record["action"] == "opened":
            times = opened[(record["customer_id"], record["issue_key"])]
            times.append(record["occurred_at"])
            if len(times) > 1:
                returning.add(record["customer_id"])
            if sum(1 for t in times if record["occurred_at"] - t < window) >= repeat_n:
                repeats += 1
    summary = {f"events.{name}": count for name, count in sorted(by_type.items())}
    summary["events"] = sum(by_type.values())
    summary["customers"] = len(customers)
    summary["conversations"] = sum(len(t) for t in opened.values())
    summary["issues"] = len(opened)
    summary["customers_back_on_same_issue"] = len(returning)
    summary["repeat_contacts"] = repeats
    return summary
