"""Idle sweep: expire customers who send nothing more, by their partition's event time.

Why: idle expiry (stream/core/expiry.py) runs on the customer's own watermark, so only at its
next event. A customer who never comes back kept its last conversation for good (2.8 KB mean).
The worker sweeps its partitions on a timer and calls `sweep` on customers it has not seen lately.

The clock is not the wall clock and not the customer's watermark: it is the earliest event time
that the worker can still fold for the partition, `floor`. The worker's gate refuses any event more
than the past bound (`behind_stream_ms`, 7 days) behind the watermark of its topic partition
(stream/core/eventtime.py), and marks only move forward. So once every input topic of a partition
has a watermark, no event folded from then on is older than the smallest of those watermarks
minus the past bound; records already admitted but not folded yet count with their own times
(`partition_floor`). Expiring at `floor + lateness` then drops only what no event at or after
`floor` can need, the argument of stream/core/expiry.py with `floor` in place of "the watermark
minus the lateness": contacts older than `floor` minus the repeat window, closed conversations
closed more than the judging horizon before `floor`.

That is why the sweep keeps live decisions equal to the backtest's although the backtest does not
sweep: every event the worker folds after a sweep is one the sweep cannot affect, and an event the
gate refuses is refused by the backtest of the topics too (a file backtest of what the worker
folded holds no refused event). tests/core/test_sweep.py checks it on generated histories, with
sweeps at arbitrary points. The customer's watermark and per-type marks are left unchanged, so
lateness is judged as before. A customer with nothing left (no account, contact or conversation)
whose watermark is less than `floor` plus the lateness is deleted from the table (a tombstone in
its changelog): no event the gate admits can then be late by its marks, so a fresh state decides
the same.

A restart or a takeover empties the gate's watermarks, and the first record of each input stream
would then be admitted whatever its age: an event older than an earlier sweep's floor could meet
the windows that sweep expired, where the backtest still has them. So a sweep uses only a floor
the worker has kept with the partition (its floor table, stream/worker/floors.py), and the gate
refuses anything older than the kept floor (stream/core/eventtime.py), before the first record
after a restart too. `FloorLedger` decides which floor may be kept: one proposed at a tick is
kept only once every record the worker had read on the partition by then is committed. A record
read after the proposal passed the gate against watermarks at least as new, so it is not older
than the floor; one read before is never read again. Without that wait, a record folded just
before a floor jumped past it, not committed yet, would be refused when redelivered after a
crash although it was decided before (tests/core/test_sweep.py checks both on generated runs).

What stays after a sweep: the account snapshot, open conversations (a later turn of one resumes
it, however late, so nothing can drop it exactly), escalated conversations evicted while open
(closed to every later event), and the marks. An open conversation has no idle limit in `step`:
its next turn, weeks later, still counts the old turns in the sentiment window, revises the
escalation's package, or is refused to the AI when a person owns it (tests/core/test_sweep.py
shows a transfer offered on two angry turns twenty days apart). Dropping one needs that limit in
`step` first, live and in the backtest alike; then it would expire as a closed one does. The
count caps of the `state` section are the one inexactness expiry already has
(stream/core/expiry.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from stream.core.expiry import expire
from stream.core.policy import Policy
from stream.core.state import CustomerState

Swept = Literal["kept", "trimmed", "gone"]


def partition_floor(
    stream_marks: Iterable[int | None], behind_stream_ms: int, held: Iterable[int] = ()
) -> int | None:
    """The earliest event time the worker can still fold on a partition, or None when unknown.

    `stream_marks` holds the gate's watermark of each input topic of the partition (None: no
    event yet, so any time is still admissible); `held` the times of records admitted but not
    folded yet.
    """
    floor: int | None = None
    for mark in stream_marks:
        if mark is None:
            return None
        bound = mark - behind_stream_ms
        floor = bound if floor is None else min(floor, bound)
    if floor is None:
        return None
    for at in held:
        floor = min(floor, at)
    return floor


def sweep(state: CustomerState, floor: int, policy: Policy) -> Swept:
    """Expire, in place, what no event at or after `floor` can need (module doc).

    "kept": nothing changed; "trimmed": something was dropped, store the state; "gone": nothing
    is left, delete the customer's key.
    """
    at = floor + policy.compiled.lateness_ms
    if state.watermark >= at:
        # Its own expiry at its own watermark has dropped at least this much already.
        return "kept"
    expired = expire(state, policy, at)
    if state.account is None and not (state.contacts or state.conversations or state.closed):
        return "gone"
    return "trimmed" if expired.contacts or expired.conversations else "kept"


@dataclass(slots=True)
class FloorLedger:
    """One partition's kept floor, and the floor proposed to replace it (module doc).

    `read` holds, per input stream, the offset of the last record read on the partition when the
    floor was proposed; `committed` (in `ripe`) the committed offset of each stream, the next
    record to process.
    """

    kept: int | None = None
    proposed: int | None = None
    read: dict[str, int] = field(default_factory=dict)

    def propose(self, floor: int | None, read: Mapping[str, int]) -> None:
        """Propose a floor taken now, unless one is pending or it is not above the kept one: a
        pending floor is replaced by none newer, which would wait on still later records."""
        if floor is None or self.proposed is not None:
            return
        if self.kept is not None and floor <= self.kept:
            return
        self.proposed = floor
        self.read = dict(read)

    def ripe(self, committed: Mapping[str, int | None]) -> int | None:
        """The proposed floor once every record read before it was proposed is committed (it is
        then no longer pending), else None. Keep it with `keep` once it is stored."""
        if self.proposed is None:
            return None
        for stream, offset in self.read.items():
            done = committed.get(stream)
            if done is None or done <= offset:
                return None
        floor = self.proposed
        self.proposed = None
        self.read = {}
        return floor

    def keep(self, floor: int) -> None:
        """The floor is stored: sweeps may use it and the gate refuses anything older."""
        self.kept = floor if self.kept is None else max(self.kept, floor)
