"""The at-least-once commit rule and the consumer that applies it, without a broker.

The takeover case these pin down: a worker committed offsets 0-7 of a partition it took over, the
record at offset 8 was dropped between fetch and agent, and 9-11 were acked. Faust committed 12.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiokafka
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


def holes(topic: str = TOPIC) -> float:
    return (
        metrics.REGISTRY.get_sample_value("escalation_offset_holes_total", {"topic": topic}) or 0.0
    )


def test_a_lasting_hole_at_commit_is_counted_and_the_commit_holds(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = holes()
    consumer._acked[PARTITION] = [9, 10, 11]
    assert consumer._new_offset(PARTITION) is None
    assert holes() == before  # right after a rebalance this is normal for a moment
    monkeypatch.setattr("stream.worker.consumer.HOLE_LOG_SECONDS", 0.0)
    for _ in range(3):
        assert consumer._new_offset(PARTITION) is None
    assert holes() - before == 3.0


def test_the_agent_gets_each_partitions_records_in_order_with_none_missing() -> None:
    ledger = FetchLedger(compacted=False)
    ledger.sought(8)
    assert ledger.admit(8) is None
    assert ledger.admit(10) == 9  # 9 was lost between fetch and agent
    assert ledger.admit(11) == 9
    ledger.sought(9)  # the seek back
    assert ledger.admit(9) is None  # fetched again after it
    assert ledger.admit(10) is None
    assert ledger.admit(4) is None  # processed before: folded again, as after a crash
    assert ledger.next[""] == 11


def test_each_reader_of_a_partition_gets_every_record() -> None:
    ledger = FetchLedger(compacted=False)
    ledger.sought(0)
    assert [ledger.admit(o, "decide") for o in (0, 1, 2)] == [None, None, None]
    assert ledger.admit(0, "judge") is None
    assert ledger.admit(2, "judge") == 1  # the judge missed 1, which the other reader had


def test_a_second_seek_to_the_committed_offset_does_not_move_a_reader_back() -> None:
    ledger = FetchLedger(compacted=False)
    ledger.sought(12)
    assert ledger.admit(12) is None
    ledger.sought(12)  # Faust seeks again on the same assignment; 12 is with the agent
    assert ledger.admit(13) is None
    assert ledger.admit(12) is None  # its copy fetched again: read again


def test_a_compacted_topics_gap_is_admitted_only_where_the_broker_showed_it() -> None:
    ledger = FetchLedger(compacted=True)
    ledger.sought(0)
    for offset in (0, 1, 4, 5):
        ledger.fetched(offset)
    assert [ledger.admit(o) for o in (0, 1, 4)] == [None, None, None]
    assert ledger.admit(7) == 5  # 5 was fetched: a record lost, not compacted away


def test_with_nothing_committed_the_first_record_fetched_comes_first() -> None:
    ledger = FetchLedger(compacted=False)
    ledger.sought(None)
    ledger.fetched(0)
    ledger.fetched(1)
    assert ledger.admit(1) == 0


def test_a_refused_record_seeks_its_partition_back_once(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sought: list[tuple[TP, int]] = []

    async def seek(self: Any, partition: TP, offset: int) -> None:
        sought.append((partition, offset))

    monkeypatch.setattr(AIOKafkaConsumer, "seek", seek)
    monkeypatch.setattr(consumer, "assignment", lambda: {PARTITION})
    before = holes()

    refused = Msg(PARTITION, 10)
    consumer._unacked_messages.add(refused)

    async def deliver() -> list[bool]:
        consumer._sought({PARTITION: 8})
        admitted = [consumer.admit(m, "customer-decisions") for m in (Msg(PARTITION, 8), refused)]
        admitted.append(consumer.admit(Msg(PARTITION, 11), "customer-decisions"))
        await asyncio.sleep(0)  # the seek back runs, and sets the partition's next offset to 9
        admitted += [consumer.admit(Msg(PARTITION, o), "customer-decisions") for o in (9, 10, 11)]
        return admitted

    assert asyncio.run(deliver()) == [True, False, False, True, True, True]
    assert sought == [(PARTITION, 9)]
    assert holes() - before == 1.0
    # a rebalance does not wait for the refused record to be acked: it comes again
    assert refused not in consumer._unacked_messages


def test_a_seek_during_a_batch_keeps_its_read_offset_and_old_records_wait_for_it(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = TP(TOPIC, 3)
    batch = [
        (PARTITION, Msg(PARTITION, 9)),
        (PARTITION, Msg(PARTITION, 10)),
        (other, Msg(other, 4)),
    ]

    async def getmany(self: Any, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        for item in batch:
            yield item

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)
    monkeypatch.setattr(consumer, "assignment", lambda: {PARTITION, other})
    consumer._sought({PARTITION: 8, other: 4})

    async def drain() -> list[Any]:
        seen = []
        async for tp, message in consumer.getmany(1.0):
            seen.append(message)
            consumer._read_offset[tp] = message.offset  # as Faust's drain loop does
            if message.offset == 9:
                # the partition is sought back to its committed offset while 9 is handed over
                consumer._seeking([PARTITION])
                consumer._sought({PARTITION: 8})
        return seen

    seen = asyncio.run(drain())
    assert [m.offset for m in seen] == [9, 10, 4]
    # the read offset is the seek's again, so 8, 9 and 10 fetched anew are not dropped as read
    assert consumer._read_offset[PARTITION] == 8
    # 10 was asked for before the seek and comes after the missing 8: refused, no seek back
    # (the seek fetches it again); 4 on the other partition goes on
    before = holes()
    assert consumer.admit(seen[1], "customer-decisions") is False
    assert consumer.admit(seen[2], "customer-decisions") is True
    assert holes() == before


def test_a_partition_whose_records_stopped_coming_is_stalled_only_after_a_quiet_time() -> None:
    ledger = FetchLedger(compacted=False)
    ledger.sought(12, now=100.0)
    ledger.fetched(12, now=101.0)
    ledger.fetched(13, now=101.0)
    assert ledger.admit(12, "decide") is None  # 13 was lost on its way and nothing came after
    assert ledger.lowest_next() == 13
    assert not ledger.stalled(high=20, now=105.0, quiet_s=10.0)
    assert ledger.stalled(high=20, now=112.0, quiet_s=10.0)
    assert not ledger.stalled(high=13, now=112.0, quiet_s=10.0)  # caught up: nothing to wait for


FRESH, ZERO, COMMITTED = TP(TOPIC, 0), TP(TOPIC, 1), TP(TOPIC, 3)
CHANGELOG = TP("worker-customer-state-changelog", 0)


def test_aiokafka_leaves_a_partition_with_nothing_committed_where_its_fetch_left_it() -> None:
    """The takeover stall's cause, in aiokafka itself: Faust's seek to the committed offsets after
    a rebalance does not move such a partition, so what the fetch took meanwhile and Faust threw
    away (flow stopped, old generation) is never fetched again."""
    committed = {FRESH: None, ZERO: 0, COMMITTED: 7}
    sought: list[tuple[TP, int]] = []

    class Fetcher:
        def seek_to(self, tp: TP, offset: int) -> None:
            sought.append((tp, offset))

    async def seek_to_committed() -> dict[Any, Any]:
        client = aiokafka.AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1", group_id="g")
        client._fetcher = Fetcher()
        client._subscription.assigned_partitions = lambda: set(committed)  # type: ignore[method-assign]

        async def offset_of(tp: TP) -> int | None:
            return committed[tp]

        client.committed = offset_of  # type: ignore[method-assign]
        return dict(await client.seek_to_committed())  # never started: nothing to stop

    assert asyncio.run(seek_to_committed()) == committed
    assert sought == [(COMMITTED, 7)]


def test_a_partition_with_nothing_committed_is_sought_back_to_its_start_after_a_rebalance(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    committed = {FRESH: None, ZERO: 0, COMMITTED: 7, CHANGELOG: None}
    sought: list[tuple[TP, int]] = []

    async def seek_to_committed() -> dict[TP, int | None]:
        for tp, offset in committed.items():
            if offset:  # as aiokafka does
                sought.append((tp, offset))
        return dict(committed)

    async def earliest_offsets(*tps: TP) -> dict[TP, int]:
        return {tp: 3 for tp in tps}

    thread = consumer._thread
    monkeypatch.setattr(thread, "seek_to_committed", seek_to_committed)
    monkeypatch.setattr(thread, "earliest_offsets", earliest_offsets)
    monkeypatch.setattr(thread, "seek", lambda tp, offset: sought.append((tp, offset)))
    monkeypatch.setattr(consumer, "assignment", lambda: set(committed))
    monkeypatch.setattr(consumer, "_is_changelog_tp", lambda tp: tp == CHANGELOG)
    monkeypatch.setattr(consumer.app.topics, "acks_enabled_for", lambda topic: topic == TOPIC)

    # Faust's own seek leaves the partitions with nothing (or 0) committed where they were
    asyncio.run(AIOKafkaConsumer.seek_to_committed(consumer))
    assert sought == [(COMMITTED, 7)]

    sought.clear()
    asyncio.run(consumer.perform_seek())
    # the worker's sends them back to where `auto_offset_reset = "earliest"` starts them; the
    # changelog's position is the table recovery's business and stays
    assert sorted(sought) == [(FRESH, 3), (ZERO, 0), (COMMITTED, 7)]
    assert consumer._committed_offset.get(FRESH) is None  # nothing claimed as committed
    # and the ledger knows where to seek back should its records stop coming
    assert consumer._ledger(FRESH).lowest_next() == 3
    assert consumer._ledger(ZERO).lowest_next() == 0
