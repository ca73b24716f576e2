"""Idle expiry: drop from a customer's state what no window can need any more, by event time.

Why: nothing removed a customer's closed conversations or old contacts unless a later event of
the same kind came, so every customer kept its last conversations (turns, package) forever.

The clock is the customer's own watermark W, the newest event time `step` has seen for it (no
wall clock). `step` calls `expire` whenever W moves, so a customer shrinks at its next event of
any kind; one with no new event is shrunk by the worker's idle sweep (stream/core/sweep.py),
which calls `expire` with a clock taken from its partition instead. Dropped:
- contacts older than W minus the repeat window minus the lateness: an event that may still fire
  the repeat-contact trigger is at most `lateness_seconds` behind W, and its window reaches back
  `repeat_contact.window_days` from there. The handoff's prior contacts use the repeat window too
  (stream/core/handoff.py), so they lose nothing either.
- a closed conversation (its turns, its package and its close) once its close is older than W
  minus the judging horizon minus the lateness. The judging horizon is the reopen window of the
  calibration judge (`calibration.missed_reopen_hours`) plus the lateness, the calibration agent's
  default horizon (stream/worker/judging.py). `step` begins a conversation afresh when an event of
  it comes more than the horizon after its close (`past_horizon`), so the close has nothing left
  to decide: after the horizon, expired or not, the next event of it is a new conversation's.

Exact for the events that can still fire a window (at most `lateness_seconds` behind W when they
arrive): expiring gives the decisions not expiring gives (tests/core/test_expiry.py checks it on
generated histories). The one exception: the count caps of the policy's `state` section
(`max_closed_remembered`, `max_contacts`) are reached later when expired entries no longer fill
them, so a customer at a cap may keep an entry a little longer than without expiry. An event
later than the lateness bound already fires no window trigger; if its conversation has expired,
it is taken as a new conversation's.
"""

from __future__ import annotations

from typing import NamedTuple

from stream.core.policy import Policy
from stream.core.state import CustomerState


class Expired(NamedTuple):
    contacts: int = 0
    conversations: int = 0


def horizon_ms(policy: Policy) -> int:
    """The judging horizon: the reopen window plus the lateness, in milliseconds."""
    return int(round(policy.calibration.missed_reopen_hours * 3_600_000)) + (
        policy.compiled.lateness_ms
    )


def past_horizon(closed_at: int, at: int, policy: Policy) -> bool:
    """Whether an event at `at` comes after the judging horizon of a close at `closed_at`.

    A close recorded as -1 (an escalated conversation evicted while open) has no time: it stays
    closed to every later event, as before."""
    return closed_at >= 0 and at > closed_at + horizon_ms(policy)


def expire(state: CustomerState, policy: Policy, at: int | None = None) -> Expired:
    """Drop, in place, what `state` holds past its windows at its own watermark (module doc).

    `at` replaces the watermark as the clock: the idle sweep (stream/core/sweep.py) passes a time
    no later event of the customer can be more than the lateness behind. The state's watermark
    and marks are left as they are either way."""
    mark = state.watermark if at is None else at
    compiled = policy.compiled
    contacts = state.contacts
    dropped_contacts = 0
    if contacts:
        before = mark - compiled.repeat_window_ms - compiled.lateness_ms
        while dropped_contacts < len(contacts) and contacts[dropped_contacts].at < before:
            dropped_contacts += 1
        if dropped_contacts:
            del contacts[:dropped_contacts]
    dropped_conversations = 0
    closed = state.closed
    if closed:
        before = mark - horizon_ms(policy) - compiled.lateness_ms
        done = [conv_id for conv_id, at in closed.items() if 0 <= at < before]
        for conv_id in done:
            del closed[conv_id]
            state.conversations.pop(conv_id, None)
        dropped_conversations = len(done)
    return Expired(dropped_contacts, dropped_conversations)
