"""Which offset of an input partition may be committed: never one past a record not processed.

At-least-once rests on one rule: the committed offset of a partition moves only over records the
agent acked, or over offsets the broker showed do not exist (a compacted topic's gaps). Faust
0.15's own rule lets one missing offset at the head through (`min(acked) - committed > 1`) and
counts the record that revealed a gap as a gap too; under a takeover, a record dropped between
fetch and agent was committed over that way and never decided (docs/worker.md, "A record skipped
under takeover").

No Faust import: the consumer (stream/worker/consumer.py) feeds these from its bookkeeping.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CommitPoint:
    """`offset`: what to commit (None: nothing new); `hole`: the first offset never acked while a
    later one was, which only a redelivery can fill."""

    offset: int | None
    hole: int | None = None


def commit_point(head: int | None, acked: Iterable[int], absent: Iterable[int] = ()) -> CommitPoint:
    """The end of the run of acked or absent offsets that starts exactly at `head`.

    `head` is the committed offset (the next record to process), or, when nothing is committed
    yet, the first offset fetched since the partition was assigned (None: nothing fetched).
    """
    done = set(acked)
    if head is None or not done:
        return CommitPoint(None)
    gone = set(absent)
    offset = head
    while offset in done or offset in gone:
        offset += 1
    if offset == head:
        return CommitPoint(None, head if max(done) > head else None)
    beyond = [a for a in done if a > offset]
    return CommitPoint(offset, offset if beyond else None)


@dataclass(slots=True)
class FetchLedger:
    """What the fetcher handed over for one partition since it was assigned or last sought, and
    the next offset each agent reading it may process.

    `expected` is the next offset a fetch should hand over; a record beyond it shows the offsets
    in between do not exist at the broker (compaction), which counts only on a compacted topic:
    on any other topic every offset holds a record, so a jump is a record lost, not a gap.
    """

    compacted: bool
    expected: int | None = None
    first: int | None = None
    absent: set[int] = field(default_factory=set)
    #: where the partition was sought to (None: where `auto.offset.reset` says)
    start: int | None = None
    #: reader (agent) -> the offset it must process next
    next: dict[str, int] = field(default_factory=dict)
    #: when the partition was last sought or handed a record (a monotonic clock, seconds)
    active_at: float = 0.0

    def sought(self, offset: int | None, now: float = 0.0) -> None:
        """The consumer was positioned at `offset` (None: where `auto.offset.reset` says)."""
        self.expected = offset
        self.first = None
        self.active_at = now
        if offset is None:
            return
        self.start = offset
        # A seek never moves a reader's next offset back. A seek back to a missing record goes
        # to the next offset of the reader that missed it. Faust seeks to the committed offset a
        # second time on an assignment, while records past it are already with a reader: those
        # are folded, and their copies fetched again are taken as read again.
        for reader, next_ in self.next.items():
            self.next[reader] = max(next_, offset)

    def fetched(self, offset: int, now: float = 0.0) -> None:
        self.active_at = now
        if self.first is None:
            self.first = offset
        expected = self.expected
        if expected is not None and offset < expected:
            return  # read again after a seek back: already accounted for
        if self.compacted and expected is not None and offset > expected:
            self.absent.update(range(expected, offset))
        self.expected = offset + 1

    def admit(self, offset: int, reader: str = "") -> int | None:
        """Whether `reader` may process `offset` now: None if so, else the offset it must get
        first (a record lost between fetch and agent, which a seek back fetches again).

        A record below the next one was processed already and is folded again, as after a
        crash; one beyond it is refused unless every offset in between is absent at the broker.
        """
        next_ = self.next.get(reader)
        if next_ is None:
            next_ = self.start if self.start is not None else self.first
        if (
            next_ is not None
            and offset > next_
            and not all(o in self.absent for o in range(next_, offset))
        ):
            return next_
        if next_ is None or offset >= next_:
            self.next[reader] = offset + 1
        return None

    def lowest_next(self) -> int | None:
        """The lowest offset a reader still waits for (None: not known)."""
        if self.next:
            return min(self.next.values())
        return self.start if self.start is not None else self.first

    def stalled(self, high: int | None, now: float, quiet_s: float) -> bool:
        """Records exist at or past the lowest offset a reader waits for, yet none was handed
        over for `quiet_s`: they were lost between fetch and agent with none after them."""
        lowest = self.lowest_next()
        if high is None or now - self.active_at < quiet_s:
            return False
        return high > (lowest if lowest is not None else 0)

    def committed(self, offset: int) -> None:
        """Forget the gaps below a committed offset."""
        self.absent = {a for a in self.absent if a >= offset}
