"""The worker's idle sweep: on a timer, expire customers with no new event (stream/core/sweep.py).

Each tick walks up to `per_tick` keys of each partition's RocksDB store, after where the last tick
stopped, so a million customers cost a bounded slice of work per tick and every key is visited
again after a full pass; it runs in the event loop's idle time, a slice of work at a time
(`TimeSlices`, stream/worker/batches.py), so the decisions never wait for it. The clock of a
partition is its kept floor (stream/worker/floors.py). Each tick proposes the floor the partition's
watermarks allow now (stream/core/sweep.py): the gate's watermark of each input topic of the
partition minus the past bound, and the time of any record the event-time merge holds for it,
admitted but not folded yet; it is kept once the records read before it are committed and its
write to the floor table is acknowledged. Until every input topic of the partition has had an
event since the worker started, nothing is proposed; a floor restored from the table after a
restart or a takeover is swept at from the start, since the gate refuses anything older.

A customer folded since the last flush is skipped: its state in the cache is newer than the
table's, and it is not idle. So is one written less than `RECENT_S` ago: the offsets of the
records it was folded from may not be committed yet, and after a crash those records are folded
again from the table, which must then hold what they left (a sweep in between could have dropped
something an old redelivered record needs). A trimmed state is written through the table (store
and changelog, as the flush writes); a customer with nothing left is deleted, a tombstone in the
changelog. Its cached copy is dropped, so the next fold reads what the sweep wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice, takewhile
from typing import Any, Protocol

import structlog

from stream.core import statecodec
from stream.core.eventtime import EventClock
from stream.core.sweep import partition_floor, sweep
from stream.worker import metrics
from stream.worker.batches import TimeSlices
from stream.worker.floors import PartitionFloors
from stream.worker.fold import BatchFold

log = structlog.get_logger(__name__)

# Seconds after its state was written during which a customer is not swept: well over the
# worker's commit interval (1 s), so its records are committed by then.
RECENT_S = 30.0


class SweptTable(Protocol):
    """The table operations the sweep needs (stream.worker.batches.StateTable has them)."""

    def partitions(self) -> Iterable[int]: ...
    def keys_after(self, partition: int, after: str | None, limit: int) -> list[str]: ...
    def get(self, key: str, partition: int) -> Any: ...
    def set(self, key: str, partition: int, value: Any) -> None: ...
    def delete(self, key: str, partition: int) -> None: ...


@dataclass(slots=True)
class Tally:
    """What one tick did, over all partitions."""

    visited: int = 0
    trimmed: int = 0
    gone: int = 0
    floors: dict[int, int | None] = field(default_factory=dict)


class IdleSweep:
    """Sweeps the partitions a worker owns, a slice per tick (module doc)."""

    def __init__(
        self,
        table: SweptTable,
        folder: BatchFold,
        floors: PartitionFloors,
        clock: EventClock,
        input_topics: Iterable[str],
        held: Callable[[int], Iterator[int]],
        per_tick: int,
        work_slice_s: float = 0.002,
    ) -> None:
        self._table = table
        self._folder = folder
        self._floors = floors
        self._clock = clock
        self._topics = list(input_topics)
        self._held = held
        self._per_tick = per_tick
        self._work_slice_s = work_slice_s
        # Where the walk of each partition stopped: the last key visited (None: from the start).
        self._cursor: dict[int, str | None] = {}
        # When each customer written in the last RECENT_S seconds was last written, oldest
        # first (a flush's states are written over several batches, each told here).
        self._written: dict[str, float] = {}

    def written(self, customer_ids: Iterable[str], now: float | None = None) -> None:
        """The agent wrote these customers' states (a flush, or a part of one)."""
        at = time.monotonic() if now is None else now
        written = self._written
        for customer_id in customer_ids:
            written.pop(customer_id, None)
            written[customer_id] = at

    def _recent(self, customer_id: str) -> bool:
        return customer_id in self._written

    def candidate(self, partition: int) -> int | None:
        """The floor the partition's watermarks and held records allow now (None: unknown)."""
        marks = self._clock.marks
        return partition_floor(
            (marks.get(f"{topic}[{partition}]") for topic in self._topics),
            self._clock.bounds.behind_stream_ms,
            self._held(partition),
        )

    def tick(self, now: float | None = None) -> Tally:
        """One slice of every partition, at once."""
        tally = self._begin(now)
        for _ in self._visits(tally):
            pass
        return self._end(tally)

    async def run(self) -> Tally:
        """One slice of every partition, in the loop's idle time: a key costs a decode (about
        0.1-0.3 ms), a tick up to a thousand keys per partition, and the event loop is the
        agent's."""
        tally = self._begin(None)
        slices = TimeSlices(self._work_slice_s)
        for _ in self._visits(tally):
            await slices.pause()
        return self._end(tally)

    def _begin(self, now: float | None) -> Tally:
        now = time.monotonic() if now is None else now
        written = self._written
        gone = list(takewhile(lambda at: at < now - RECENT_S, written.values()))
        for customer_id in list(islice(written, len(gone))):
            del written[customer_id]
        return Tally()

    def _end(self, tally: Tally) -> Tally:
        if tally.trimmed or tally.gone:
            log.info(
                "idle_sweep",
                visited=tally.visited,
                trimmed=tally.trimmed,
                deleted=tally.gone,
                floors=tally.floors,
            )
        return tally

    def _visits(self, tally: Tally) -> Iterator[None]:
        for partition in list(self._table.partitions()):
            self._floors.advance(partition, self.candidate(partition))
            floor = self._floors.get(partition)
            tally.floors[partition] = floor
            if floor is not None:
                yield from self._partition(partition, floor, tally)

    def _partition(self, partition: int, floor: int, tally: Tally) -> Iterator[None]:
        """Visit one slice of a partition's keys, yielding after each (the caller may let the
        agent run then: every check below is made again for each key)."""
        table = self._table
        keys = table.keys_after(partition, self._cursor.get(partition), self._per_tick)
        # A short slice means the walk reached the end: the next tick starts over.
        self._cursor[partition] = keys[-1] if len(keys) == self._per_tick else None
        for customer_id in keys:
            if partition not in table.partitions():
                return  # revoked meanwhile: its next owner sweeps it
            tally.visited += 1
            self._visit(customer_id, partition, floor, tally)
            yield

    def _visit(self, customer_id: str, partition: int, floor: int, tally: Tally) -> None:
        table = self._table
        folder = self._folder
        if folder.is_dirty(customer_id) or self._recent(customer_id):
            return
        stored = table.get(customer_id, partition)
        if stored is None:
            return
        policy = folder.handler.policy
        try:
            state = statecodec.decode(stored)
            swept = sweep(state, floor, policy)
        except Exception as exc:  # a state that cannot be swept is kept as it is
            log.error("idle_sweep_failed", customer_id=customer_id, error=repr(exc))
            return
        if swept == "kept":
            return
        folder.cache.discard(customer_id)
        if swept == "gone":
            table.delete(customer_id, partition)
            tally.gone += 1
        else:
            table.set(customer_id, partition, folder.handler.store(state, policy))
            tally.trimmed += 1
        metrics.record_swept(swept)
