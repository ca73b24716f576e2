"""Faust's Kafka consumer with an at-least-once commit: no offset is committed past a record the
agent did not process, and a record lost between fetch and agent is fetched again.

Three defects of faust-streaming 0.15 together lost a record under takeover (docs/worker.md, "A
record skipped under takeover"):
- Records of a batch fetched before a seek were still handed over after it; each moved the
  consumer's read offset past the seek, so the records fetched again from the committed offset
  were dropped as already read, while the copies handed over around the seek were cleared from
  the agent's queue when the flow resumed.
- The commit let one missing offset at the head through, and counted the record that revealed a
  gap as a gap too.
- A record skipped by the stream during a rebalance was acked as if processed.

Here:
- after each record of a batch asked for before a seek of its partition, the read offset is put
  back to the seek's, so what the seek fetches again is not dropped as read;
- each agent processes each partition's records in offset order with none missing (`admit`): a
  record that arrives after a missing one is refused, and the partition is sought back to it;
- only records the agent processed are acked;
- the commit follows `commits.commit_point`: should an offset still be missing, it holds there,
  logged and counted, and never commits past it.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, cast

import faust
import structlog
from faust.types import TP, Message

from stream.worker import metrics
from stream.worker.commits import FetchLedger, commit_point
from stream.worker.delivery import InlineDelivery
from stream.worker.fetching import BatchedFetchThread
from stream.worker.producer import DrainingProducer

log = structlog.get_logger(__name__)

#: How long a seek back to a missing record may take before a refused record asks for it again.
SEEK_BACK_RETRY_SECONDS = 5.0
#: How long a partition with records past what its readers got may stay quiet before it is
#: sought back (records lost with none after them, so no later record shows the loss).
QUIET_SECONDS = 10.0
#: How long a commit may be held at a hole before it is logged, and how often again.
HOLE_LOG_SECONDS = 10.0


class AtLeastOnceConsumer(InlineDelivery):
    """The aiokafka consumer of Faust with the commit and seek rules above, handing records
    over inline (stream/worker/delivery.py)."""

    compacted: frozenset[str] = frozenset()

    def __init__(self, *args: Any, callback: Any, **kwargs: Any) -> None:
        async def handed_over(message: Message) -> None:
            self._ledger(message.tp).fetched(message.offset, time.monotonic())
            await callback(message)

        super().__init__(*args, callback=handed_over, **kwargs)
        self._ledgers: dict[TP, FetchLedger] = {}
        self._seeks = 0  # seeks started so far
        self._sought_at: dict[TP, int] = {}  # partition -> number of its latest seek
        self._sought_to: dict[TP, int | None] = {}  # partition -> read offset that seek set
        # partition with nothing committed -> the first offset it was sought back to
        self._started_at: dict[TP, int] = {}
        # partition -> (hole, seen since, last logged)
        self._holes: dict[TP, tuple[int, float, float | None]] = {}
        # (partition, reader) -> (offset sought back to, since)
        self._seeking_back: dict[tuple[TP, str], tuple[int, float]] = {}
        self._seek_back_task: asyncio.Future[None] | None = None
        # records whose fetch was asked for before their partition was last sought
        self._before_seek: weakref.WeakSet[Message] = weakref.WeakSet()

    def _new_consumer_thread(self) -> BatchedFetchThread:
        """Faust's consumer thread with the app's fetch minimum and wait (worker/fetching.py)."""
        return BatchedFetchThread(self, loop=self.loop, beacon=self.beacon)

    def _ledger(self, tp: TP) -> FetchLedger:
        ledger = self._ledgers.get(tp)
        if ledger is None:
            ledger = self._ledgers[tp] = FetchLedger(compacted=tp.topic in self.compacted)
        return ledger

    # -- seeks: a batch fetched before a seek of a partition never hands that partition over

    def _seeking(self, tps: Iterable[TP]) -> None:
        self._seeks += 1
        for tp in tps:
            self._sought_at[tp] = self._seeks
            self._sought_to.pop(tp, None)

    def _sought(self, positions: Mapping[TP, int | None]) -> None:
        now = time.monotonic()
        for tp, offset in positions.items():
            self._sought_to[tp] = offset
            self._ledger(tp).sought(offset, now)

    async def perform_seek(self) -> None:
        tps = {tp for tp in self.assignment() if not self._is_changelog_tp(tp)}
        self._seeking(tps)
        await super().perform_seek()
        self._sought({tp: self._started_at.get(tp, self._read_offset.get(tp)) for tp in tps})

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Seek to the committed offsets, and a partition with none committed to its start.

        aiokafka's `seek_to_committed` leaves a partition with no committed offset (or offset 0)
        where its fetch position is. Faust counts on this seek after a rebalance to fetch again
        what it threw away meanwhile (a batch handed over while the flow was stopped, of an
        old generation, or of a paused partition): those records were taken from the fetcher,
        and the position had moved past them. So a partition taken over before its first
        commit lost every record fetched during the rebalance, with no error: the takeover
        stall (docs/worker.md). Such a partition goes back to its first offset, where
        `auto_offset_reset = "earliest"` starts it.
        """
        committed = await super().seek_to_committed()
        fresh = [
            tp
            for tp, offset in committed.items()
            if not offset
            and not self._is_changelog_tp(tp)
            and self.app.topics.acks_enabled_for(tp.topic)
        ]
        for tp in committed:
            self._started_at.pop(tp, None)
        if not fresh or self.app.conf.consumer_auto_offset_reset != "earliest":
            return committed
        try:
            starts = dict(await self.earliest_offsets(*fresh))
        except Exception as exc:  # the reset still works, at an offset the ledger won't know
            log.warning("earliest_offsets_failed", error=repr(exc), partitions=len(fresh))
            await self._thread.seek_to_beginning(*fresh)
            return committed
        for tp in fresh:
            start = 0 if committed[tp] == 0 else starts.get(tp, 0)
            await self._seek(tp, start)
            self._started_at[tp] = start
        return committed

    async def seek(self, partition: TP, offset: int) -> None:
        self._seeking([partition])
        await super().seek(partition, offset)
        self._sought({partition: offset})

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        issued = self._seeks
        async for tp, message in super().getmany(timeout):
            if self._sought_at.get(tp, 0) > issued:
                # Its fetch was asked for before its partition was sought: it may come from the
                # old position (then the seek fetches it again) or already from the new one
                # (then it is the only copy). Handed over either way; `admit` tells them apart
                # by order, and refuses an old one without asking for a seek.
                self._before_seek.add(message)
            yield tp, message
            # The drain loop has recorded it as read. A seek that began meanwhile set the read
            # offset back; put it back again, or what is fetched again below it is dropped.
            if self._sought_at.get(tp, 0) > issued and tp in self._sought_to:
                self._read_offset[tp] = self._sought_to[tp]

    # -- acks and commits

    def ack(self, message: Message) -> bool:
        # Faust's stream acks a record it skipped during a rebalance (stale generation, flow
        # stopped) without handing it to the agent: that record was not processed.
        if not message.tracked:
            return False
        return bool(super().ack(message))

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Gaps are the fetch ledger's (exact, and only where the broker showed them)."""

    def _new_offset(self, tp: TP) -> int | None:
        acked: list[int] = self._acked[tp]
        if not acked:
            return None
        ledger = self._ledger(tp)
        committed = self._committed_offset.get(tp)
        head = committed if committed is not None else ledger.first
        point = commit_point(head, acked, ledger.absent)
        self._note_hole(tp, point.hole)
        if point.offset is None:
            return None
        kept = sorted({a for a in acked if a >= point.offset})
        acked[:] = kept
        self._acked_index[tp] = set(kept)
        ledger.committed(point.offset)
        return point.offset

    def _note_hole(self, tp: TP, hole: int | None) -> None:
        """A commit held at an offset never acked while later ones were. Right after a
        rebalance that is normal for a moment (records acked just before it, the ones before
        them fetched again); lasting, it is a path not foreseen: it holds (a restart fetches the
        record again) and says so, never commits past it."""
        if hole is None:
            self._holes.pop(tp, None)
            return
        now = time.monotonic()
        seen = self._holes.get(tp)
        if seen is None or seen[0] != hole:
            self._holes[tp] = (hole, now, None)
            return
        since, logged = seen[1], seen[2]
        if now - since < HOLE_LOG_SECONDS or (
            logged is not None and now - logged < HOLE_LOG_SECONDS
        ):
            return
        self._holes[tp] = (hole, since, now)
        log.error(
            "offset_hole",
            topic=tp.topic,
            partition=tp.partition,
            offset=hole,
            held_seconds=round(now - since, 1),
            action="commit held before the offset until it is processed",
        )
        metrics.record_offset_hole(tp.topic)

    # -- admission: each partition's records reach the fold in offset order, none missing

    def admit(self, message: Message, reader: str) -> bool:
        """Whether the agent `reader` may process this record now.

        False for a record that arrives after one lost between fetch and agent: the partition is
        sought back to the lost one, and this record comes again after it.
        """
        tp = message.tp
        missing = self._ledger(tp).admit(message.offset, reader)
        pending = self._seeking_back.get((tp, reader))
        if missing is None:
            if pending is not None and message.offset == pending[0]:
                self._seeking_back.pop((tp, reader), None)
            return True
        # Refused: never acked, so the commit stays before it; and no longer waited for, so a
        # rebalance (which waits for every record handed over to be acked) does not hang on it.
        self._unacked_messages.discard(message)
        if message in self._before_seek:
            # From the position before a seek that has not delivered the missing record yet;
            # that seek went to it or before it, so this record comes again after it.
            return False
        now = time.monotonic()
        if pending is None or pending[0] != missing or now - pending[1] >= SEEK_BACK_RETRY_SECONDS:
            self._seeking_back[(tp, reader)] = (missing, now)
            log.warning(
                "offset_missing",
                reader=reader,
                topic=tp.topic,
                partition=tp.partition,
                offset=missing,
                arrived=message.offset,
                action="refused records after it; seeking back to fetch it again",
            )
            metrics.record_offset_hole(tp.topic)
            self._seek_back_task = asyncio.ensure_future(self._seek_back(tp, missing))
        return False

    async def _seek_back(self, tp: TP, offset: int) -> None:
        """Fetch a partition again from `offset`; a failure is logged, never raised: the commit
        stays before the missing record either way, and the next check asks again."""
        if tp not in self.assignment():
            return
        try:
            await self.seek(tp, offset)
        except Exception as exc:
            log.error(
                "seek_back_failed",
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
                error=repr(exc),
            )

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        did_commit = bool(await super().commit(topics, start_new_transaction))
        if topics is None and not self.app.rebalancing:
            await self._fetch_lost_tails()
        return did_commit

    async def _fetch_lost_tails(self) -> None:
        """Seek back a partition whose readers wait for records the broker has but that stopped
        coming: lost between fetch and agent with no record after them to show it."""
        now = time.monotonic()
        assignment = self.assignment()
        for tp, ledger in list(self._ledgers.items()):
            if (
                tp not in assignment
                or self._is_changelog_tp(tp)
                or tp in self._paused_partitions
                or tp in self._buffered_partitions
                or not self.app.topics.acks_enabled_for(tp.topic)
            ):
                continue
            try:
                high = self.highwater(tp)
            except Exception:  # no fetch position yet: nothing to compare with
                continue
            lowest = ledger.lowest_next()
            # Not known (nothing committed, nothing fetched since the seek): no offset to go
            # back to; Faust's own position is where `auto.offset.reset` starts.
            if lowest is None or not ledger.stalled(high, now, QUIET_SECONDS):
                continue
            log.warning(
                "offset_missing",
                topic=tp.topic,
                partition=tp.partition,
                offset=lowest,
                high_watermark=high,
                action="no record came for it; seeking back to fetch it again",
            )
            metrics.record_offset_hole(tp.topic)
            ledger.active_at = now
            await self._seek_back(tp, lowest)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._ledgers.pop(tp, None)
            self._holes.pop(tp, None)
            self._started_at.pop(tp, None)
        self._seeking_back = {k: v for k, v in self._seeking_back.items() if k[0] not in revoked}
        await super().on_partitions_revoked(revoked)


class AtLeastOnceApp(faust.App):
    """A Faust app whose consumer is `AtLeastOnceConsumer`, and whose producer's flush before a
    commit waits for every buffered send (`stream.worker.producer`); `compacted` names the
    compacted topics it reads, the only ones where an offset can be missing at the broker;
    `fetch_min_bytes` and `fetch_max_wait_ms` go to its consumer (None: Faust's)."""

    def __init__(
        self,
        *args: Any,
        compacted: Iterable[str] = (),
        fetch_min_bytes: int | None = None,
        fetch_max_wait_ms: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._compacted = frozenset(compacted)
        self.fetch_min_bytes = fetch_min_bytes
        self.fetch_max_wait_ms = fetch_max_wait_ms
        super().__init__(*args, **kwargs)

    def _new_consumer(self) -> Any:
        consumer = AtLeastOnceConsumer(
            self.transport,
            callback=self.topics.on_message,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
            loop=cast(Any, self.transport).loop,
        )
        consumer.compacted = self._compacted
        return consumer

    def _new_producer(self) -> Any:
        return DrainingProducer(self.transport, loop=self.loop, beacon=self.beacon)
