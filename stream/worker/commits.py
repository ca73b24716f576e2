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
    """What the fetcher handed over for one partition since it was assigned or last sought.

    `expected` is the next offset a fetch should hand over; a record beyond it shows the offsets
    in between do not exist at the broker (compaction), which counts only on a compacted topic:
    on any other topic every offset holds a record, so a jump is a record lost, not a gap.
    """

    compacted: bool
    expected: int | None = None
    first: int | None = None
    absent: set[int] = field(default_factory=set)

    def sought(self, offset: int | None) -> None:
        """The consumer was positioned at `offset` (None: where `auto.offset.reset` says)."""
        self.expected = offset
        self.first = None

    def fetched(self, offset: int) -> None:
        if self.first is None:
            self.first = offset
        expected = self.expected
        if expected is not None and offset < expected:
            return  # read again after a seek back: already accounted for
        if self.compacted and expected is not None and offset > expected:
            self.absent.update(range(expected, offset))
        self.expected = offset + 1

    def committed(self, offset: int) -> None:
        """Forget the gaps below a committed offset."""
        self.absent = {a for a in self.absent if a >= offset}
