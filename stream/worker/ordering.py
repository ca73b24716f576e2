"""Event-time order across the co-partitioned input topics, as Kafka Streams gives with idling.

Each input partition is read in offset order, but a backlog arrives topic by topic: a customer's
contact can reach the agent after messages that happened later. This merge keeps, per partition
number, one FIFO queue per input topic and releases the head with the smallest event time only
while every input of that partition either has a record waiting or is known to be caught up (its
end offset is the next one we would read). An input that has records at the broker the agent has
not seen yet holds the others back for at most `idle_ms` (Kafka Streams' `max.task.idle.ms`);
after that the partition is processed with what it has, so a stalled topic cannot stop the rest.
Within a topic the offset order is kept, so acks stay in offset order. Ties between topics follow
the backtest's: account, contact, message, sentiment, outcome.

No Faust import: the caught-up check is a callable, so the merge is tested without a broker.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Generic, TypeVar

# The backtest's tie order (stream.backtest.sources): state before the turns it explains.
TYPE_RANK: Final[Mapping[str, int]] = {
    "account": 0,
    "contact": 1,
    "message": 2,
    "sentiment": 3,
    "outcome": 4,
}
# A record that could not be decoded has no event time: it goes out as soon as it is a head.
UNTIMED: Final[int] = -(2**63)

T = TypeVar("T")

#: `caught_up(topic, partition, next_offset)`: True when nothing at or after `next_offset` (None:
#: nothing read yet) is known to exist on that partition.
CaughtUp = Callable[[str, int, "int | None"], bool]


@dataclass(slots=True)
class _Held(Generic[T]):
    time: int
    rank: int
    offset: int
    item: T


@dataclass(slots=True)
class _Group(Generic[T]):
    """The inputs of one partition number: one queue per topic, and since when it is blocked."""

    queues: dict[str, deque[_Held[T]]]
    next_offset: dict[str, int | None]
    blocked_since: float | None = None


@dataclass(slots=True)
class EventTimeMerge(Generic[T]):
    """Holds records until event-time order across topics is known (or waited for long enough)."""

    topics: Mapping[str, str]  # topic name -> event type (for the tie order)
    idle_ms: float = 500.0
    max_held: int = 50_000
    held: int = 0
    _groups: dict[int, _Group[T]] = field(default_factory=dict)

    def add(self, topic: str, partition: int, offset: int, time: int | None, item: T) -> None:
        """Queue one record; `time` None for a record without event time (a dead letter)."""
        group = self._groups.get(partition)
        if group is None:
            group = _Group({t: deque() for t in self.topics}, dict.fromkeys(self.topics))
            self._groups[partition] = group
        group.queues[topic].append(
            _Held(UNTIMED if time is None else time, TYPE_RANK[self.topics[topic]], offset, item)
        )
        group.next_offset[topic] = offset + 1
        self.held += 1

    def release(self, now: float, caught_up: CaughtUp) -> list[T]:
        """Everything that may go now, in the order to fold it.

        `now` is a clock in seconds that advances only while the caller waits for input, so the
        idle wait is time spent waiting, not time spent folding earlier batches.
        """
        out: list[T] = []
        forced = self.held > self.max_held
        for partition, group in self._groups.items():
            self._release_group(partition, group, now, caught_up, forced, out)
        self.held -= len(out)
        return out

    def times(self, partition: int) -> Iterator[int]:
        """Event times of the records held for `partition` (admitted, not released yet)."""
        group = self._groups.get(partition)
        if group is not None:
            for queue in group.queues.values():
                for held in queue:
                    if held.time != UNTIMED:
                        yield held.time

    def drop(self, partitions: Iterable[int]) -> int:
        """Forget what is held for revoked partitions (it is redelivered to their new owner)."""
        dropped = 0
        for partition in partitions:
            group = self._groups.pop(partition, None)
            if group is not None:
                dropped += sum(len(q) for q in group.queues.values())
        self.held -= dropped
        return dropped

    def _release_group(
        self,
        partition: int,
        group: _Group[T],
        now: float,
        caught_up: CaughtUp,
        forced: bool,
        out: list[T],
    ) -> None:
        # Whether an empty input is caught up cannot change during one release: nothing new is
        # read meanwhile, so ask once per topic.
        queues = group.queues
        if not any(queues.values()):
            group.blocked_since = None
            return
        known: dict[str, bool] = {}
        idle_s = self.idle_ms / 1000.0
        while True:
            head: deque[_Held[T]] | None = None
            best: _Held[T] | None = None
            blocked = False
            for topic, queue in queues.items():
                if queue:
                    first = queue[0]
                    if best is None or (first.time, first.rank) < (best.time, best.rank):
                        best, head = first, queue
                    continue
                ok = known.get(topic)
                if ok is None:
                    ok = known[topic] = caught_up(topic, partition, group.next_offset[topic])
                if not ok:
                    blocked = True
            if best is None or head is None:
                group.blocked_since = None
                return
            if blocked and not forced and best.time != UNTIMED:
                if group.blocked_since is None:
                    group.blocked_since = now
                if now - group.blocked_since < idle_s:
                    return
            elif not blocked:
                group.blocked_since = None
            head.popleft()
            out.append(best.item)
