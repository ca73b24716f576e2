"""Faust's Kafka consumer with an at-least-once commit: no offset is committed past a record the
agent did not process, and a record lost between fetch and agent is fetched again.

Three defects of faust-streaming 0.15 together lost a record under takeover (docs/worker.md, "A
record skipped under takeover"):
- Records of a batch fetched before a seek were still handed over after it; each moved the
  consumer's read offset past the seek, so the records fetched again from the committed offset
  were dropped as already read, while the copies handed over before the seek were cleared from
  the agent's queue when the flow resumed.
- The commit let one missing offset at the head through, and counted the record that revealed a
  gap as a gap too.
- A record skipped by the stream during a rebalance was acked as if processed.

Here: a record of a batch fetched before a seek of its partition is not handed over; the read
offset is put back when one was being handed over during the seek; only records the agent
processed are acked; the commit follows `commits.commit_point`; and a hole (an offset never
acked while later ones were) is logged, counted, and fetched again by seeking back to it.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, cast

import faust
import structlog
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP, Message

from stream.worker import metrics
from stream.worker.commits import FetchLedger, commit_point

log = structlog.get_logger(__name__)

#: How long a hole stays before the partition is sought back to it. The agent acks each
#: partition's records in offset order, so a hole is not a record still in flight; the wait
#: only keeps a rebalance under way from causing a seek.
HOLE_GRACE_SECONDS = 3.0


class AtLeastOnceConsumer(AIOKafkaConsumer):
    """The aiokafka consumer of Faust with the commit and seek rules above."""

    compacted: frozenset[str] = frozenset()

    def __init__(self, *args: Any, callback: Any, **kwargs: Any) -> None:
        async def handed_over(message: Message) -> None:
            self._ledger(message.tp).fetched(message.offset)
            await callback(message)

        super().__init__(*args, callback=handed_over, **kwargs)
        self._ledgers: dict[TP, FetchLedger] = {}
        self._seeks = 0  # seeks started so far
        self._sought_at: dict[TP, int] = {}  # partition -> number of its latest seek
        self._sought_to: dict[TP, int | None] = {}  # partition -> read offset that seek set
        self._holes: dict[TP, tuple[int, float]] = {}  # partition -> (hole, first seen)

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
        for tp, offset in positions.items():
            self._sought_to[tp] = offset
            self._ledger(tp).sought(offset)

    async def perform_seek(self) -> None:
        tps = {tp for tp in self.assignment() if not self._is_changelog_tp(tp)}
        self._seeking(tps)
        await super().perform_seek()
        self._sought({tp: self._read_offset.get(tp) for tp in tps})

    async def seek(self, partition: TP, offset: int) -> None:
        self._seeking([partition])
        await super().seek(partition, offset)
        self._sought({partition: offset})

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        issued = self._seeks
        async for tp, message in super().getmany(timeout):
            if self._sought_at.get(tp, 0) > issued:
                continue  # fetched before its partition was sought: fetched again after it
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
        if hole is None:
            self._holes.pop(tp, None)
        elif self._holes.get(tp, (None, 0.0))[0] != hole:
            self._holes[tp] = (hole, time.monotonic())

    async def commit(self, topics: Any = None, start_new_transaction: bool = True) -> bool:
        did_commit = bool(await super().commit(topics, start_new_transaction))
        now = time.monotonic()
        for tp, (hole, since) in list(self._holes.items()):
            if now - since < HOLE_GRACE_SECONDS or tp not in self.assignment():
                continue
            log.error(
                "offset_hole",
                topic=tp.topic,
                partition=tp.partition,
                offset=hole,
                committed=self._committed_offset.get(tp),
                action="commit held at the hole; seeking back to fetch it again",
            )
            metrics.record_offset_hole(tp.topic)
            self._holes[tp] = (hole, now)
            await self.seek(tp, hole)
        return did_commit

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        for tp in revoked:
            self._ledgers.pop(tp, None)
            self._holes.pop(tp, None)
        await super().on_partitions_revoked(revoked)


class AtLeastOnceApp(faust.App):
    """A Faust app whose consumer is `AtLeastOnceConsumer`; `compacted` names the compacted
    topics it reads, the only ones where an offset can be missing at the broker."""

    def __init__(self, *args: Any, compacted: Iterable[str] = (), **kwargs: Any) -> None:
        self._compacted = frozenset(compacted)
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
