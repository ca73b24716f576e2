"""When things happen: conversations spread over the replayed days, customers who come back, and
events handed out in event-time order.

A returning customer is a follow-up due some hours or days after their last contact closed; it is
taken by the first conversation that starts after it is due (of its own category if one comes within
12 hours, else any), so the real text stays in corpus order while customers and issues repeat.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stream.core.events import Event, OutcomeEvent, event_to_dict
from stream.replay.config import DAY_MS, HOUR_MS, ReplayConfig, seeded_random
from stream.replay.conversation import play
from stream.replay.corpus import CATEGORIES, CorpusConversation, classify, read_conversations
from stream.replay.customers import Customer, Issue, new_customer, new_issue
from stream.replay.outcomes import reopened, reported_by, ticket_outcome

# A follow-up waits this long for a conversation of its own category, then takes any.
_MAX_WAIT_MS = 12 * HOUR_MS
# A return is due this long after the previous contact closed at the earliest: later than that
# contact's outcome (at most 2 hours of handle time), and never an instant re-contact.
_MIN_RETURN_MS = 8 * HOUR_MS
_REOPEN_MS = 48 * HOUR_MS


@dataclass(order=True, slots=True)
class _FollowUp:
    """A customer's next contact, due at `due`; taken by the first fitting conversation after it."""

    due: int
    seq: int
    customer: Customer = field(compare=False)
    issue: Issue | None = field(compare=False)  # None: the customer comes back on a new issue
    outcome: OutcomeEvent | None = field(compare=False, default=None)  # held until the reopen


class Schedule:
    """Places conversations in time and hands out their events in event-time order.

    Ties in event time keep generation order, so an account precedes its customer's contact.
    """

    def __init__(self, config: ReplayConfig) -> None:
        self.config = config
        self._seq = 0
        self._customers = 0
        self._pending_same: dict[str, list[_FollowUp]] = {c: [] for c in CATEGORIES}
        self._pending_new: list[_FollowUp] = []
        self._out: list[tuple[int, int, Event]] = []

    def _emit(self, event: Event) -> None:
        self._seq += 1
        heapq.heappush(self._out, (event.occurred_at, self._seq, event))

    def drain(self, until: int | None) -> Iterator[Event]:
        """The events due by `until` (all of them if None), oldest first."""
        out = self._out
        while out and (until is None or out[0][0] <= until):
            yield heapq.heappop(out)[2]

    def _take_follow_up(self, category: str, now: int) -> _FollowUp | None:
        own = self._pending_same[category]
        if own and own[0].due <= now:
            return heapq.heappop(own)
        for name in CATEGORIES:
            heap = self._pending_same[name]
            if heap and heap[0].due + _MAX_WAIT_MS <= now:
                return heapq.heappop(heap)
        if self._pending_new and self._pending_new[0].due <= now:
            return heapq.heappop(self._pending_new)
        return None

    def conversation(self, conv: CorpusConversation, start: int) -> None:
        """Plays `conv` from `start`, for a returning customer if one is due, else a new one."""
        config = self.config
        rng = seeded_random(config.seed, "conversation", conv.conversation_id)
        category = classify(conv)
        follow = self._take_follow_up(category, start)
        deferred: OutcomeEvent | None = None
        issue: Issue | None = None
        if follow is None:
            self._customers += 1
            customer, account = new_customer(config.seed, self._customers, start)
            self._emit(account)
        else:
            customer, issue, deferred = follow.customer, follow.issue, follow.outcome
        if issue is None:
            issue = new_issue(rng, category, start)
        else:
            # A return on the same issue keeps the issue's category, whatever the text says.
            category = issue.category
        issue.contacts += 1
        if deferred is not None:
            # The earlier ticket's outcome is final once the customer is back: it was reopened.
            self._emit(reopened(deferred, start))
        played = play(conv, rng, config, customer, issue, category, start)
        for event in played.events:
            self._emit(event)
        outcome = ticket_outcome(
            rng,
            config.outcome_share,
            conv.conversation_id,
            customer.customer_id,
            played.closed,
            played.scores,
        )
        self._follow_up(rng, customer, issue, played.closed, outcome)

    def _follow_up(
        self,
        rng: random.Random,
        customer: Customer,
        issue: Issue,
        closed: int,
        outcome: OutcomeEvent | None,
    ) -> None:
        """Whether and when the customer comes back; an outcome waits for a reopen within 48 h."""
        config = self.config
        self._seq += 1
        if rng.random() >= 1.0 - config.customers_ratio:
            if outcome is not None:
                self._emit(outcome)
            return
        if issue.contacts < 4 and rng.random() < config.same_issue_share:
            window_left = issue.first_at + int(6.5 * DAY_MS) - _MAX_WAIT_MS - closed
            if window_left > _MIN_RETURN_MS and rng.random() < config.within_window_share:
                gap = rng.randint(_MIN_RETURN_MS, min(window_left, 3 * DAY_MS))
            else:
                # Back on the same issue, but after the 7-day window has let the earlier go.
                gap = rng.randint(int(7.2 * DAY_MS), 12 * DAY_MS)
            follow = _FollowUp(closed + gap, self._seq, customer, issue)
            if outcome is not None and gap <= _REOPEN_MS:
                follow.outcome = outcome
            elif outcome is not None:
                self._emit(outcome)
            heapq.heappush(self._pending_same[issue.category], follow)
            return
        if outcome is not None:
            self._emit(outcome)
        due = closed + rng.randint(DAY_MS, 30 * DAY_MS)
        heapq.heappush(self._pending_new, _FollowUp(due, self._seq, customer, None))

    def finish(self, now: int) -> None:
        """Outcomes held for a reopen that the slice ends before: reported without the reopen."""
        held = [f for heap in self._pending_same.values() for f in heap if f.outcome is not None]
        for follow in sorted(held):
            if follow.outcome is not None:
                self._emit(reported_by(follow.outcome, now))


def generate(source: Path, config: ReplayConfig) -> Iterator[Event]:
    """The typed events of the conversations of `source`, in event-time order."""
    conversations = read_conversations(source, config.conversations)
    if not conversations:
        return
    clock = random.Random(config.seed)
    mean_gap = config.days * DAY_MS / len(conversations)
    schedule = Schedule(config)
    start = config.start_ms
    for index, conv in enumerate(conversations):
        if index:
            start += int(clock.expovariate(1.0 / mean_gap))
        yield from schedule.drain(start)
        schedule.conversation(conv, start)
    yield from schedule.drain(start)
    schedule.finish(start)
    yield from schedule.drain(None)


def iter_events(source: Path, config: ReplayConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """`(event_type, record)` for the conversations of `source`, in event-time order.

    Records come from typed events through `event_to_dict`, so every field of the event's Avro
    schema is present and every record is a valid event by construction.
    """
    for event in generate(source, config):
        yield event.type, event_to_dict(event)
