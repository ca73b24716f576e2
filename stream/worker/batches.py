"""The Faust side of the batched fold: taking batches, knowing when an input is caught up, writing.

Kept apart from `app.py` so the agent stays a short loop: take a batch, merge it into event-time
order, fold, hand outputs and state writes to the producer, ack.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, cast

import faust
from faust.exceptions import PartitionsMismatch
from faust.streams import _current_event
from faust.types import TP, EventT, TableT
from mode.utils.futures import notify


async def batches(
    stream: faust.StreamT[Any], size: int, within: float, tick: Callable[[], bool]
) -> AsyncIterator[list[Any]]:
    """Lists of up to `size` unacked events; an empty list after `within` s when `tick()` says so.

    faust's `noack_take` yields only when it has events; a merge that holds records back for
    event-time order must also wake when nothing comes, to release them once the idle wait has
    passed (`tick` is whether it holds any). This is `noack_take` (faust-streaming 0.11+) with
    that one change; the caller acks.
    """
    buffer: list[Any] = []
    full = asyncio.Event()
    consumed = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    s = cast(Any, stream)
    previous_acks = s.enable_acks
    channel_it = s.channel.__aiter__()

    async def add_to_buffer(value: Any) -> Any:
        nonlocal consuming
        if consuming is not None:
            try:
                await consuming
            finally:
                consuming = None
        event = s.current_event
        if event is None:
            raise RuntimeError("batch buffer found no current event")
        buffer.append(event)
        if len(buffer) >= size:
            full.set()
            consumed.clear()
            await s.wait(consumed)
        return value

    s.enable_acks = False
    s.add_processor(add_to_buffer)
    s._enable_passive(channel_it)
    try:
        while not s.should_stop:
            await s.wait_for_stopped(full, timeout=within)
            if not buffer and not tick():
                continue
            consuming = asyncio.get_running_loop().create_future()
            try:
                yield list(buffer)
            finally:
                buffer.clear()
                notify(consuming)
                full.clear()
                consumed.set()
    finally:
        s.enable_acks = previous_acks
        s._processors.remove(add_to_buffer)


class TimeSlices:
    """Hands the event loop back once a stretch of work has run for `budget_s`, and lets
    everything else that is ready run before the stretch goes on.

    Every agent of the worker runs on one thread and one event loop. A stretch of work with no
    await in it, such as the calibration agent's batch of a few hundred records (50-80 ms at
    1,300 events/s), holds every decision that comes in meanwhile for its whole length. Handing
    the loop back once per slice is not enough: a record's way to its decision is several hops
    through the loop (the consumer thread's hand-over, Faust's delivery to the stream, the
    agent's batch, the producer's buffer and its sender), and each hop that became ready during
    a slice waited for the next one. So `pause()` keeps yielding while the loop has other
    callbacks ready, and the batch goes on only when the loop would otherwise wait for I/O or a
    timer: the agent's work runs in the loop's idle time, and a decision waits for at most one
    slice, not one per hop (docs/worker.md, "The event loop as a scheduler"). Under a load that
    never leaves the loop idle the stretch goes on after `max_defer_s` anyway, so the agent
    still makes progress.

    Only where the agent may be interrupted, that is where a rebalance or another task may run
    without breaking what it holds. The ready queue is CPython's event loop's own (`_ready`);
    on a loop without one, `pause()` hands the loop back once, as a plain `sleep(0)`.
    """

    def __init__(self, budget_s: float, max_defer_s: float = 0.05) -> None:
        self.budget_s = budget_s
        self.max_defer_s = max_defer_s
        self._since = time.perf_counter()
        self.pauses = 0
        #: Pauses that ended at `max_defer_s` with other work still ready.
        self.cut_short = 0

    def start(self) -> None:
        """The stretch starts now (after the agent has waited for input, say)."""
        self._since = time.perf_counter()

    async def pause(self) -> None:
        """If the stretch has used its budget: let the loop run what is ready, until nothing
        else is (or `max_defer_s` has passed); else nothing."""
        if time.perf_counter() - self._since < self.budget_s:
            return
        self.pauses += 1
        await asyncio.sleep(0)
        ready = getattr(asyncio.get_running_loop(), "_ready", None)
        if ready:
            until = time.perf_counter() + self.max_defer_s
            while ready:
                if time.perf_counter() >= until:
                    self.cut_short += 1
                    break
                await asyncio.sleep(0)
        self._since = time.perf_counter()


class CaughtUp:
    """Whether an input partition has nothing left that the agent has not seen yet.

    The consumer's high watermark (from its last fetch) against the next offset the merge would
    read; before the merge has seen a record of that partition, against the consumer's own read
    position. A partition this worker does not own has nothing to wait for.
    """

    def __init__(self, app: faust.App) -> None:
        self._app = app

    def __call__(self, topic: str, partition: int, next_offset: int | None) -> bool:
        consumer = cast(Any, self._app.consumer)
        tp = TP(topic, partition)
        try:
            high = consumer.highwater(tp)
        except Exception:  # not assigned (any more): nothing of it will come here
            return True
        if high is None:
            return False
        if next_offset is None:
            next_offset = consumer._read_offset.get(tp) or 0
        return bool(high <= next_offset)


class StateTable:
    """Reads and writes of the state table on the partition of the record they belong to.

    faust's table and its RocksDB store find the partition of a key from the current event,
    which a batch folded outside stream iteration does not have; this sets it to a record of the
    same partition (the inputs are co-partitioned, so that is the changelog partition too). A
    write goes to the table's store, then to its changelog on that partition, as `table[key] =
    value` does.
    """

    def __init__(self, table: TableT[str, Any]) -> None:
        self._table = table
        self._events: dict[int, EventT[Any]] = {}
        self._verified: set[str] = set()

    def remember(self, event: EventT[Any]) -> None:
        self._events[event.message.partition] = event

    def forget(self, partitions: Iterable[int]) -> None:
        for partition in partitions:
            self._events.pop(partition, None)

    def partitions(self) -> list[int]:
        """The partitions this worker has folded records of, and still owns."""
        return list(self._events)

    def keys_after(self, partition: int, after: str | None, limit: int) -> list[str]:
        """Up to `limit` keys of the partition's store, in key order, after `after` (None: from
        the first). Empty for a store with no partitions of its own (the memory store)."""
        table = cast(Any, self._table)
        store = table.data
        dbs = getattr(store, "_dbs", None)
        if dbs is None or partition not in dbs:
            return []
        it = dbs[partition].iter()
        if after is None:
            it.seek_to_first()
        else:
            it.seek(store._encode_key(after))
        keys: list[str] = []
        while it.valid() and len(keys) < limit:
            raw = it.key()
            if raw != store.offset_key:
                key = store._decode_key(raw)
                if key != after:
                    keys.append(key)
            it.next()
        return keys

    def get(self, key: str, partition: int) -> Any:
        token = _current_event.set(weakref.ref(self._events[partition]))
        try:
            return self._table.get(key)
        finally:
            _current_event.reset(token)

    def set(self, key: str, partition: int, value: Any) -> Any:
        """Returns the changelog send's future, done once the broker has the record."""
        event = self._events[partition]
        self._verify_partitions(event.message.topic)
        token = _current_event.set(weakref.ref(event))
        try:
            table = cast(Any, self._table)
            table.data[key] = value
            return table.send_changelog(partition, key, value)
        finally:
            _current_event.reset(token)

    def delete(self, key: str, partition: int) -> None:
        """Remove a key from the store and write its tombstone to the changelog partition."""
        table = cast(Any, self._table)
        token = _current_event.set(weakref.ref(self._events[partition]))
        try:
            del table.data[key]
            table.send_changelog(partition, key, None, value_serializer="raw")
        finally:
            _current_event.reset(token)

    async def verify_at_start(self, source_topics: Iterable[str], wait_s: float = 10.0) -> None:
        """Check the changelog's partitions before the first batch is taken.

        A mismatch found at a write would crash the agent with a batch in hand, and Faust does
        not hand those records to the restarted agent; found here, every restart fails at once,
        so a misconfigured worker is a crash loop its liveness probe reports. Counts still
        unknown after `wait_s` (a changelog created a moment ago) are checked at the first write.
        """
        deadline = time.monotonic() + wait_s
        pending = set(source_topics)
        while pending and time.monotonic() < deadline:
            for topic in list(pending):
                self._verify_partitions(topic)
                if topic in self._verified:
                    pending.discard(topic)
            if pending:
                await asyncio.sleep(0.5)

    def _verify_partitions(self, source_topic: str) -> None:
        """The changelog must have the source's partitions, as `table[key] = value` checks.

        faust's own check takes a changelog created a moment ago, which the consumer's metadata
        lists with 0 partitions, for a mismatch and crashes the agent; here an unknown or empty
        count is asked again at the next write, and only a real difference raises.
        """
        if source_topic in self._verified:
            return
        consumer = cast(Any, self._table).app.consumer
        changelog = cast(Any, self._table).changelog_topic_name
        source_n = consumer.topic_partitions(source_topic)
        changelog_n = consumer.topic_partitions(changelog)
        if not source_n or not changelog_n:
            return
        if source_n != changelog_n:
            raise PartitionsMismatch(
                f"The source topic {source_topic!r} for table {self._table.name!r} has "
                f"{source_n} partitions, but the changelog topic {changelog!r} has "
                f"{changelog_n}: they must have the same number of partitions."
            )
        self._verified.add(source_topic)
