"""The at-least-once commit rule and the consumer that applies it, without a broker.

The takeover case these pin down: a worker committed offsets 0-7 of a partition it took over, the
record at offset 8 was dropped between fetch and agent, and 9-11 were acked. Faust committed 12.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from stream.worker import metrics
from stream.worker.commits import CommitPoint, FetchLedger, commit_point
from stream.worker.consumer import AtLeastOnceApp, AtLeastOnceConsumer


def test_the_commit_stops_at_a_record_never_acked_at_the_head() -> None:
    assert commit_point(8, [9, 10, 11]) == CommitPoint(None, hole=8)


def test_the_commit_stops_at_a_record_never_acked_in_the_middle() -> None:
    assert commit_point(0, [0, 1, 2, 4, 5]) == CommitPoint(3, hole=3)


def test_the_commit_moves_over_acked_records_and_absent_offsets() -> None:
    assert commit_point(0, [0, 1, 4], absent=[2, 3]) == CommitPoint(5)
    assert commit_point(5, [5, 6, 7]) == CommitPoint(8)


def test_nothing_to_commit_without_acks_or_a_known_head() -> None:
    assert commit_point(3, []) == CommitPoint(None)
    assert commit_point(None, [4, 5]) == CommitPoint(None)
    # acks below the head (read again after a seek back) commit nothing and are no hole
    assert commit_point(6, [4, 5]) == CommitPoint(None)


def test_a_jump_in_the_fetch_is_a_gap_only_on_a_compacted_topic() -> None:
    compacted, plain = FetchLedger(compacted=True), FetchLedger(compacted=False)
    for ledger in (compacted, plain):
        ledger.sought(3)
        for offset in (3, 4, 7, 8):
            ledger.fetched(offset)
    assert compacted.absent == {5, 6}
    assert plain.absent == set()
    assert compacted.first == plain.first == 3
    compacted.committed(6)
    assert compacted.absent == {6}


def test_a_record_fetched_again_below_the_expected_offset_changes_nothing() -> None:
    ledger = FetchLedger(compacted=True)
    ledger.sought(0)
    for offset in (0, 1, 2, 1, 2, 3):
        ledger.fetched(offset)
    assert (ledger.absent, ledger.expected) == (set(), 4)


class Msg:
    """The fields of a Faust message the consumer's ack and fetch paths read."""

    def __init__(self, tp: TP, offset: int, tracked: bool = True) -> None:
        self.tp, self.topic, self.offset = tp, tp.topic, offset
        self.tracked, self.acked = tracked, False


TOPIC = "support.contacts"
PARTITION = TP(TOPIC, 2)


@pytest.fixture
def consumer() -> AtLeastOnceConsumer:
    app = AtLeastOnceApp("test-commits", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = app.consumer
    assert isinstance(consumer, AtLeastOnceConsumer)
    consumer._committed_offset[PARTITION] = 8
    return consumer


def test_faust_alone_commits_past_the_record_never_acked(consumer: AtLeastOnceConsumer) -> None:
    consumer._acked[PARTITION] = [9, 10, 11]
    assert FaustConsumer._new_offset(consumer, PARTITION) == 12


def test_the_worker_consumer_holds_the_commit_at_that_record(
    consumer: AtLeastOnceConsumer,
) -> None:
    consumer._acked[PARTITION] = [9, 10, 11]
    assert consumer._new_offset(PARTITION) is None
    assert consumer._holes[PARTITION][0] == 8
    consumer._acked[PARTITION].append(8)
    assert consumer._new_offset(PARTITION) == 12
    assert PARTITION not in consumer._holes
    assert consumer._acked[PARTITION] == []


def test_a_record_the_stream_skipped_is_not_acked(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumer.app.topics, "acks_enabled_for", lambda topic: topic == TOPIC)
    skipped, processed = Msg(PARTITION, 8, tracked=False), Msg(PARTITION, 9)
    assert consumer.ack(skipped) is False
    assert consumer.ack(processed) is True
    assert list(consumer._acked[PARTITION]) == [9]


def test_a_lasting_hole_is_counted_and_sought_back_to(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sought: list[tuple[TP, int]] = []

    async def seek(self: Any, partition: TP, offset: int) -> None:
        sought.append((partition, offset))

    monkeypatch.setattr(AIOKafkaConsumer, "seek", seek)
    monkeypatch.setattr(consumer, "assignment", lambda: {PARTITION})
    monkeypatch.setattr("stream.worker.consumer.HOLE_GRACE_SECONDS", 0.0)
    before = metrics.REGISTRY.get_sample_value("escalation_offset_holes_total", {"topic": TOPIC})
    consumer._acked[PARTITION] = [9, 10, 11]
    consumer._new_offset(PARTITION)
    asyncio.run(consumer.commit())
    assert sought == [(PARTITION, 8)]
    after = metrics.REGISTRY.get_sample_value("escalation_offset_holes_total", {"topic": TOPIC})
    assert (after or 0.0) - (before or 0.0) == 1.0
    assert consumer._ledgers[PARTITION].expected == 8


def test_records_fetched_before_a_seek_of_their_partition_are_not_handed_over(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TP(TOPIC, 3)
    batch = [(PARTITION, Msg(PARTITION, 8)), (PARTITION, Msg(PARTITION, 9)), (other, Msg(other, 4))]

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        for item in batch:
            yield item

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)

    async def drain() -> list[int]:
        seen = []
        async for tp, message in consumer.getmany(1.0):
            seen.append(message.offset)
            consumer._read_offset[tp] = message.offset  # as Faust's drain loop does
            if message.offset == 8:
                # the partition is sought back to its committed offset while 8 is handed over
                consumer._seeking([PARTITION])
                consumer._sought({PARTITION: 8})
        return seen

    assert asyncio.run(drain()) == [8, 4]
    # the read offset is the seek's again, so 8 and 9 are fetched anew and not dropped as read
    assert consumer._read_offset[PARTITION] == 8
