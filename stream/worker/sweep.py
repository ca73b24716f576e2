"""The worker's idle sweep: on a timer, expire customers with no new event (stream/core/sweep.py).

Each tick walks up to `per_tick` keys of each partition's RocksDB store, after where the last tick
stopped, so a million customers cost a bounded slice of work per tick and every key is visited
again after a full pass. The clock of a partition is its floor (stream/core/sweep.py): the gate's
watermark of each input topic of the partition minus the past bound, and the time of any record
the event-time merge holds for it, admitted but not folded yet. Until every input topic of the
partition has had an event since the worker started, the floor is unknown and nothing is swept.

A customer folded since the last flush is skipped: its state in the cache is newer than the
table's, and it is not idle. So is one written less than `RECENT_S` ago: the offsets of the
records it was folded from may not be committed yet, and after a crash those records are folded
again from the table, which must then hold what they left (a sweep in between could have dropped
something an old redelivered record needs). A trimmed state is written through the table (store
and changelog, as the flush writes); a customer with nothing left is deleted, a tombstone in the
changelog. Its cached copy is dropped, so the next fold reads what the sweep wrote.

Not covered: the gate's watermarks live in memory (stream/worker/handler.py). After a restart the
first record of each input topic partition is admitted whatever its time, so a record more than
the past bound older than its topic, which the gate would have refused before the restart, can
reach `step` and find its customer's old windows swept, where the backtest of the journal (which
does not sweep) still has them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from stream.core import statecodec
from stream.core.eventtime import EventClock
from stream.core.sweep import partition_floor, sweep
from stream.worker import metrics
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
        clock: EventClock,
        input_topics: Iterable[str],
        held: Callable[[int], Iterator[int]],
        per_tick: int,
    ) -> None:
        self._table = table
        self._folder = folder
        self._clock = clock
        self._topics = list(input_topics)
        self._held = held
        self._per_tick = per_tick
        # Where the walk of each partition stopped: the last key visited (None: from the start).
        self._cursor: dict[int, str | None] = {}
        # The customers of each flush in the last RECENT_S seconds, oldest first.
        self._written: deque[tuple[float, frozenset[str]]] = deque()

    def written(self, customer_ids: Iterable[str], now: float | None = None) -> None:
        """The agent wrote these customers' states (a flush)."""
        self._written.append((time.monotonic() if now is None else now, frozenset(customer_ids)))

    def _recent(self, customer_id: str) -> bool:
        return any(customer_id in ids for _, ids in self._written)

    def floor(self, partition: int) -> int | None:
        marks = self._clock.marks
        return partition_floor(
            (marks.get(f"{topic}[{partition}]") for topic in self._topics),
            self._clock.bounds.behind_stream_ms,
            self._held(partition),
        )

    def tick(self, now: float | None = None) -> Tally:
        now = time.monotonic() if now is None else now
        written = self._written
        while written and written[0][0] < now - RECENT_S:
            written.popleft()
        tally = Tally()
        for partition in list(self._table.partitions()):
            floor = self.floor(partition)
            tally.floors[partition] = floor
            if floor is not None:
                self._partition(partition, floor, tally)
        if tally.trimmed or tally.gone:
            log.info(
                "idle_sweep",
                visited=tally.visited,
                trimmed=tally.trimmed,
                deleted=tally.gone,
                floors=tally.floors,
            )
        return tally

    def _partition(self, partition: int, floor: int, tally: Tally) -> None:
        table = self._table
        folder = self._folder
        policy = folder.handler.policy
        keys = table.keys_after(partition, self._cursor.get(partition), self._per_tick)
        # A short slice means the walk reached the end: the next tick starts over.
        self._cursor[partition] = keys[-1] if len(keys) == self._per_tick else None
        for customer_id in keys:
            tally.visited += 1
            if folder.is_dirty(customer_id) or self._recent(customer_id):
                continue
            stored = table.get(customer_id, partition)
            if stored is None:
                continue
            try:
                state = statecodec.decode(stored)
                swept = sweep(state, floor, policy)
            except Exception as exc:  # a state that cannot be swept is kept as it is
                log.error("idle_sweep_failed", customer_id=customer_id, error=repr(exc))
                continue
            if swept == "kept":
                continue
            folder.cache.discard(customer_id)
            if swept == "gone":
                table.delete(customer_id, partition)
                tally.gone += 1
            else:
                table.set(customer_id, partition, folder.handler.store(state, policy))
                tally.trimmed += 1
            metrics.record_swept(swept)
