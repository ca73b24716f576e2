"""Event sources: JSON Lines with line numbers and an error policy; Kafka ranges by event time."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, KafkaError, KafkaException, TopicPartition
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.backtest.sources import (
    MAX_PRINTED_SKIPS,
    TIE_RANK,
    InputError,
    JsonlSource,
    KafkaSource,
    Skipped,
    SourceError,
    check_on_error,
    parse_line,
    topics_with_prefix,
)
from stream.core.events import Event, MessageEvent, event_to_dict
from stream.serde import serde_for_topic
from stream.testing import EventFactory, jsonl_line, write_events
from stream.topics import EVENT_TOPICS

# --- JSON Lines -------------------------------------------------------------------------------


def _lines(factory: EventFactory, n: int = 3) -> list[str]:
    return [jsonl_line(factory.of("c1").customer(f"turn {i}", "conv-1")) for i in range(n)]


def test_a_file_is_read_in_file_order_with_counts(
    tmp_path: Path, event_factory: EventFactory
) -> None:
    events: list[Event] = [
        event_factory.of("c1").account(),
        event_factory.of("c1").customer("hello", "conv-1"),
        event_factory.of("c1").ai(
            "hi",
            "conv-1",
            action="answer",
        ),
        event_factory.of("c1").outcome("conv-1", resolved_by="ai", ticket_id="ticket-conv-1"),
    ]
    source = JsonlSource(write_events(tmp_path / "e.jsonl", events))
    assert list(source) == events
    summary = source.summary()
    assert summary["events"] == 4
    assert summary["by_type"] == {"message": 2, "account": 1, "outcome": 1}
    assert summary["skipped_count"] == 0 and summary["skipped"] == []
    assert source.estimated_total() == 4


def test_a_malformed_line_stops_the_run_by_default_naming_its_line(
    tmp_path: Path, event_factory: EventFactory
) -> None:
    # Given a file whose third line is cut off
    lines = _lines(event_factory, 4)
    lines[2] = lines[2][:25]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    # When it is read with the default error policy
    source = JsonlSource(path)
    seen: list[Event] = []
    with pytest.raises(InputError) as caught:
        for event in source:
            seen.append(event)
    # Then the run stops at that line, saying which line and why
    assert str(caught.value).startswith(f"{path}:3: not valid JSON")
    assert caught.value.skipped.line == 3
    assert len(seen) == 2


def test_with_skip_bad_lines_are_counted_listed_and_printed(
    tmp_path: Path, event_factory: EventFactory
) -> None:
    lines = _lines(event_factory, 5)
    lines[1] = "{not json"
    lines[3] = '{"type": "message", "customer_id": "c1"}'
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    warn = io.StringIO()
    source = JsonlSource(path, "skip", warn=warn)
    events = list(source)
    assert len(events) == 3
    summary = source.summary()
    assert summary["skipped_count"] == 2
    assert [s["line"] for s in summary["skipped"]] == [2, 4]
    assert "not valid JSON" in summary["skipped"][0]["reason"]
    assert "message.event_id: required field is missing" in summary["skipped"][1]["reason"]
    printed = warn.getvalue().splitlines()
    assert printed[0].startswith(f"skipped {path}:2: not valid JSON")
    assert printed[1].startswith(f"skipped {path}:4: message.")


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_an_unknown_event_type_is_an_error_that_names_it(tmp_path: Path, on_error: str) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text('{"type": "chat_transcript", "event_id": "x"}\n')
    source = JsonlSource(path, "stop" if on_error == "stop" else "skip", warn=None)
    if on_error == "stop":
        with pytest.raises(InputError, match=r"e\.jsonl:1: unknown event type 'chat_transcript'"):
            list(source)
    else:
        assert list(source) == []
        assert "unknown event type 'chat_transcript'" in source.skipped[0].reason


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"customer_id": "c1"}', 'missing "type"'),
        ('{"type": 3}', '"type" must be a string'),
        (b'{"type": "message", "text": "\xff"}', "not UTF-8"),
    ],
)
def test_each_kind_of_bad_line_says_what_is_wrong(
    tmp_path: Path, line: str | bytes, reason: str
) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(line if isinstance(line, bytes) else line.encode())
    with pytest.raises(InputError, match=":1: ") as caught:
        list(JsonlSource(path))
    assert reason in str(caught.value)


def test_blank_lines_are_not_events_and_not_errors(
    tmp_path: Path, event_factory: EventFactory
) -> None:
    lines = _lines(event_factory, 2)
    path = tmp_path / "e.jsonl"
    path.write_text(f"\n{lines[0]}\n   \n{lines[1]}")  # no final newline either
    source = JsonlSource(path)
    assert len(list(source)) == 2
    assert source.skipped_count == 0


def test_stderr_names_the_first_skips_then_points_to_the_report(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text("garbage\n" * (MAX_PRINTED_SKIPS + 50))
    warn = io.StringIO()
    source = JsonlSource(path, "skip", warn=warn)
    assert list(source) == []
    printed = warn.getvalue().splitlines()
    assert len(printed) == MAX_PRINTED_SKIPS + 1
    assert "the report lists them" in printed[-1]
    assert source.skipped_count == MAX_PRINTED_SKIPS + 50
    assert len(source.summary()["skipped"]) == MAX_PRINTED_SKIPS + 50


def test_events_older_than_one_already_seen_for_the_customer_are_counted(
    tmp_path: Path, event_factory: EventFactory
) -> None:
    late = event_factory.of("c1").customer("late", "conv-1", at=event_factory.clock - 5000)
    events = [event_factory.of("c1").customer("first", "conv-1"), late]
    source = JsonlSource(write_events(tmp_path / "e.jsonl", events))
    assert list(source) == events  # processed in file order all the same
    assert source.out_of_order == 1


def test_parse_line_round_trips_every_event_type(event_factory: EventFactory) -> None:
    events: list[Event] = [
        event_factory.of("c1").account(flags=("vip",)),
        event_factory.of("c1").contact("conv-1", "billing:1"),
        event_factory.of("c1").customer("hi", "conv-1"),
        event_factory.of("c1").ai(
            "refund", "conv-1", action="refund", klass="financial", amount=12.5, currency="USD"
        ),
        event_factory.of("c1").sentiment("m-1", -0.7, "conv-1"),
        event_factory.of("c1").outcome(
            "conv-1", resolved_by="human", handle_time_seconds=30, ticket_id="ticket-conv-1"
        ),
    ]
    for event in events:
        assert parse_line(jsonl_line(event)) == event


def test_on_error_accepts_only_stop_or_skip() -> None:
    assert check_on_error("skip") == "skip"
    with pytest.raises(ValueError, match="stop, skip"):
        check_on_error("ignore")


def test_skipped_records_say_where_they_are() -> None:
    assert Skipped("f.jsonl", "bad", line=7).to_record() == {
        "where": "f.jsonl:7",
        "reason": "bad",
        "line": 7,
    }
    record = Skipped("support.messages", "bad", partition=2, offset=41).to_record()
    assert record["where"] == "support.messages[2]@41"
    assert (record["topic"], record["partition"], record["offset"]) == ("support.messages", 2, 41)


# --- Kafka, against an in-memory stand-in for the consumer --------------------------------------


class _Error:
    def __init__(self, code: int) -> None:
        self._code = code

    def code(self) -> int:
        return self._code

    def fatal(self) -> bool:
        return False

    def str(self) -> str:
        return "end of partition"


class _Message:
    def __init__(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None = None,
        value: bytes | None = None,
        error: _Error | None = None,
        timestamp: int = 0,
    ) -> None:
        self._values = (topic, partition, offset, key, value, error)
        self._timestamp = timestamp

    def timestamp(self) -> tuple[int, int]:
        return TIMESTAMP_CREATE_TIME, self._timestamp

    def topic(self) -> str:
        return self._values[0]

    def partition(self) -> int:
        return self._values[1]

    def offset(self) -> int:
        return self._values[2]

    def key(self) -> bytes | None:
        return self._values[3]

    def value(self) -> bytes | None:
        return self._values[4]

    def error(self) -> _Error | None:
        return self._values[5]


Log = dict[tuple[str, int], list[tuple[bytes | None, bytes | None, int]]]


class FakeConsumer:
    """Partitions as lists of (key, value, timestamp); delivers random interleavings of them."""

    def __init__(self, logs: Log, seed: int = 0, batch: int = 3, deliver: bool = True) -> None:
        self.logs = logs
        self.rng = random.Random(seed)
        self.batch = batch
        self.deliver = deliver
        self.positions: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self.pauses = 0
        self.eof_sent: set[tuple[str, int]] = set()
        self.closed = False

    def list_topics(self, timeout: float | None = None) -> Any:
        topics: dict[str, Any] = {}
        for topic, partition in self.logs:
            topics.setdefault(topic, SimpleNamespace(error=None, partitions={}))
            topics[topic].partitions[partition] = None
        return SimpleNamespace(topics=topics)

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float = 0) -> Any:
        found = []
        for tp in tps:
            log = self.logs[(tp.topic, tp.partition)]
            offset = next((i for i, (_, _, ts) in enumerate(log) if ts >= tp.offset), -1)
            found.append(TopicPartition(tp.topic, tp.partition, offset))
        return found

    def get_watermark_offsets(self, tp: TopicPartition, **_: Any) -> tuple[int, int]:
        return 0, len(self.logs[(tp.topic, tp.partition)])

    def assign(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self.positions[(tp.topic, tp.partition)] = tp.offset

    def pause(self, tps: list[TopicPartition]) -> None:
        self.pauses += 1
        self.paused.update((tp.topic, tp.partition) for tp in tps)

    def resume(self, tps: list[TopicPartition]) -> None:
        self.paused.difference_update((tp.topic, tp.partition) for tp in tps)

    def consume(self, num_messages: int = 1, timeout: float = 0) -> list[_Message]:
        out: list[_Message] = []
        if not self.deliver:
            return out
        keys = [key for key in self.positions if key not in self.paused]
        self.rng.shuffle(keys)
        for key in keys:
            log = self.logs[key]
            for _ in range(self.rng.randint(0, self.batch)):
                position = self.positions[key]
                if position >= len(log):
                    if key not in self.eof_sent:
                        self.eof_sent.add(key)
                        out.append(
                            _Message(*key, position, error=_Error(KafkaError._PARTITION_EOF))
                        )
                    break
                k, v, ts = log[position]
                out.append(_Message(key[0], key[1], position, k, v, timestamp=ts))
                self.positions[key] = position + 1
        return out

    def close(self) -> None:
        self.closed = True


class FakeKafkaSource(KafkaSource):
    def __init__(self, consumer: FakeConsumer, start: int, end: int, **kwargs: Any) -> None:
        kwargs.setdefault("warn", None)
        super().__init__({"bootstrap.servers": "fake:9092"}, start, end, **kwargs)
        self.fake = consumer

    def _consumer(self) -> Any:
        return self.fake


def _encode(event: Event) -> tuple[bytes, bytes, int]:
    value = serde_for_topic(EVENT_TOPICS[event.type]).encode(event_to_dict(event))
    return event.customer_id.encode(), value, event.occurred_at


def _logs(events: Sequence[tuple[int, Event]]) -> Log:
    """Events appended, in list order, to (topic of their type, given partition)."""
    logs: Log = {}
    for kind, topic in EVENT_TOPICS.items():
        if kind in ("message", "account"):
            for partition in (0, 1):
                logs[(topic, partition)] = []
    for partition, event in events:
        logs[(EVENT_TOPICS[event.type], partition)].append(_encode(event))
    return logs


MESSAGE_AND_ACCOUNT = {"message": EVENT_TOPICS["message"], "account": EVENT_TOPICS["account"]}


def _order_key(event: Event, partition: int) -> tuple[int, int, int]:
    return (event.occurred_at, TIE_RANK[event.type], partition)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 1),  # partition
            st.booleans(),  # message or account
            st.integers(0, 4_000),  # how far event time moves on
            st.integers(0, 1_000),  # how late, within the 1 s bound
        ),
        min_size=1,
        max_size=60,
    ),
    st.integers(0, 1_000),
)
def test_a_range_comes_out_in_event_time_order_when_within_the_bound(
    script: list[tuple[int, bool, int, int]], seed: int
) -> None:
    # Given two partitions of two topics whose events are at most 1 s late within their partition
    factory = EventFactory()
    clock = {0: 1_000_000, 1: 1_000_000}
    placed: list[tuple[int, Event]] = []
    for partition, is_message, step_ms, late_ms in script:
        clock[partition] += step_ms
        at = clock[partition] - late_ms
        customer = f"c{partition}"
        event = (
            factory.of(customer).customer("hi", f"conv-{partition}", at=at)
            if is_message
            else factory.of(customer).account(at=at)
        )
        placed.append((partition, event))
    consumer = FakeConsumer(_logs(placed), seed=seed)
    # When the whole range is read through interleaved, uneven batches
    source = FakeKafkaSource(consumer, 0, 10**13, topics=MESSAGE_AND_ACCOUNT, reorder_ms=1_000)
    got = list(source)
    # Then every event comes once, in event time order, and the consumer is closed
    partition_of = {event.event_id: partition for partition, event in placed}
    keys = [_order_key(e, partition_of[e.event_id]) for e in got]
    assert sorted(e.event_id for e in got) == sorted(e.event_id for _, e in placed)
    assert [k[0] for k in keys] == sorted(k[0] for k in keys)
    assert keys == sorted(keys)
    assert source.out_of_order == 0
    assert consumer.closed


def test_an_event_later_than_the_bound_is_processed_and_counted(
    event_factory: EventFactory,
) -> None:
    # One message per poll: `newer` has left the heap (the watermark passed it) when `late` comes.
    early = event_factory.of("c0").customer("first", "conv", at=1000000)
    newer = event_factory.of("c0").customer("second", "conv", at=1100000)
    newest = event_factory.of("c0").customer("third", "conv", at=1200000)
    late = event_factory.of("c0").customer("late", "conv", at=1000500)
    placed = [early, newer, newest, late]
    consumer = FakeConsumer(_logs([(0, e) for e in placed]), batch=1)
    source = FakeKafkaSource(consumer, 0, 10**13, topics=MESSAGE_AND_ACCOUNT, reorder_ms=1_000)
    got = list(source)
    assert [e.event_id for e in got] == [e.event_id for e in (early, newer, late, newest)]
    assert source.out_of_order == 1


def test_the_range_is_of_record_timestamps_found_by_offsets_for_times(
    event_factory: EventFactory,
) -> None:
    events = [event_factory.of("c0").customer(f"t{i}", "conv", at=1000 * i) for i in range(1, 8)]
    consumer = FakeConsumer(_logs([(0, e) for e in events]))
    source = FakeKafkaSource(consumer, 3_000, 6_000, topics=MESSAGE_AND_ACCOUNT, reorder_ms=0)
    assert [e.occurred_at for e in source] == [3_000, 4_000, 5_000]
    assert source.planned == 3
    assert source.outside_range == 0


class ElectingConsumer(FakeConsumer):
    """Answers "not leader" to the first offset lookups, as a just-created topic does."""

    def __init__(self, logs: Log, refusals: int, code: int) -> None:
        super().__init__(logs)
        self.refusals = refusals
        self.code = code

    def offsets_for_times(self, tps: list[TopicPartition], timeout: float = 0) -> Any:
        if self.refusals:
            self.refusals -= 1
            raise KafkaException(KafkaError(self.code))
        return super().offsets_for_times(tps, timeout)


def test_a_partition_without_a_leader_yet_is_asked_again(
    event_factory: EventFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stream.backtest.sources._LEADER_RETRY_S", 0.0)
    events = [event_factory.of("c0").customer(f"t{i}", "conv", at=1000 * i) for i in range(1, 4)]
    consumer = ElectingConsumer(
        _logs([(0, e) for e in events]), 2, KafkaError.NOT_LEADER_FOR_PARTITION
    )
    source = FakeKafkaSource(consumer, 0, 10_000, topics=MESSAGE_AND_ACCOUNT, reorder_ms=0)
    assert [e.occurred_at for e in source] == [1_000, 2_000, 3_000]
    assert consumer.refusals == 0


def test_another_offset_lookup_error_fails_at_once(event_factory: EventFactory) -> None:
    events = [event_factory.of("c0").customer("t", "conv", at=1_000)]
    consumer = ElectingConsumer(
        _logs([(0, e) for e in events]), 1, KafkaError.TOPIC_AUTHORIZATION_FAILED
    )
    source = FakeKafkaSource(consumer, 0, 10_000, topics=MESSAGE_AND_ACCOUNT, reorder_ms=0)
    with pytest.raises(SourceError, match="cannot look up offsets: TOPIC_AUTHORIZATION_FAILED"):
        list(source)


def test_records_out_of_timestamp_order_at_the_edges_are_found_within_the_bound(
    event_factory: EventFactory,
) -> None:
    # Given timestamps that step back by less than the bound around both edges of [2000, 3000)
    times = [1_000, 2_000, 2_950, 3_100, 2_990, 4_000]
    events = [event_factory.of("c0").customer(f"t{t}", "conv", at=t) for t in times]
    consumer = FakeConsumer(_logs([(0, e) for e in events]))
    # When the range is read with a 500 ms bound
    source = FakeKafkaSource(consumer, 2_000, 3_000, topics=MESSAGE_AND_ACCOUNT, reorder_ms=500)
    # Then 2990, after 3100 in the log, is in; 3100 was read in the margin and is counted
    assert [e.occurred_at for e in source] == [2_000, 2_950, 2_990]
    assert source.outside_range == 1


def test_partitions_ahead_are_paused_when_the_buffer_is_full(event_factory: EventFactory) -> None:
    # Partition 1 is an hour ahead of partition 0, so its events wait in the heap.
    slow = [event_factory.of("c0").customer("x", "a", at=1000000 + i) for i in range(30)]
    fast = [event_factory.of("c1").customer("y", "b", at=5000000 + i) for i in range(30)]
    consumer = FakeConsumer(_logs([(0, e) for e in slow] + [(1, e) for e in fast]), batch=5)
    source = FakeKafkaSource(
        consumer, 0, 10**13, topics=MESSAGE_AND_ACCOUNT, reorder_ms=0, max_buffered=4
    )
    got = list(source)
    assert consumer.pauses >= 1
    assert [e.occurred_at for e in got] == sorted(e.occurred_at for e in slow + fast)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"c0", b"\x00garbage", "not Avro single-object encoded"),
        (b"someone-else", None, "key 'someone-else' is not the record's customer_id 'c0'"),
    ],
)
def test_undecodable_or_wrongly_keyed_records_are_reported_like_bad_lines(
    event_factory: EventFactory, key: bytes, value: bytes | None, reason: str
) -> None:
    good = [event_factory.of("c0").customer(f"t{i}", "conv", at=1000 * i) for i in range(1, 4)]
    logs = _logs([(0, e) for e in good])
    topic = EVENT_TOPICS["message"]
    bad_value = value if value is not None else logs[(topic, 0)][1][1]
    logs[(topic, 0)][1] = (key, bad_value, 2_000)
    with pytest.raises(InputError) as caught:
        list(FakeKafkaSource(FakeConsumer(logs), 0, 10**13, topics=MESSAGE_AND_ACCOUNT))
    assert str(caught.value).startswith(f"{topic}[0]@1: ")
    assert reason in str(caught.value)
    source = FakeKafkaSource(
        FakeConsumer(logs), 0, 10**13, topics=MESSAGE_AND_ACCOUNT, on_error="skip"
    )
    assert len(list(source)) == 2
    assert source.summary()["skipped"][0]["where"] == f"{topic}[0]@1"


def test_a_range_that_does_not_finish_in_time_is_an_error(event_factory: EventFactory) -> None:
    events = [event_factory.of("c0").customer("t", "conv", at=1000)]
    consumer = FakeConsumer(_logs([(0, events[0])]), deliver=False)
    source = FakeKafkaSource(consumer, 0, 10**13, topics=MESSAGE_AND_ACCOUNT, idle_timeout_s=0.3)
    with pytest.raises(SourceError, match=r"idle timeout .* support\.messages\[0\] at 0 of 1"):
        list(source)
    assert consumer.closed


def test_a_missing_topic_is_an_error_naming_it(event_factory: EventFactory) -> None:
    consumer = FakeConsumer(_logs([]))
    source = FakeKafkaSource(consumer, 0, 10**13, topics={"outcome": "ticketing.outcomes"})
    with pytest.raises(SourceError, match="topic 'ticketing.outcomes' .* does not exist"):
        list(source)


def test_kafka_arguments_are_checked_before_connecting() -> None:
    with pytest.raises(ValueError, match="unknown event type 'chat'"):
        KafkaSource({}, 0, 1, topics={"chat": "x"})
    with pytest.raises(ValueError, match="range is empty"):
        KafkaSource({}, 5, 5)
    assert topics_with_prefix("t1.")["message"] == "t1.support.messages"


def test_json_lines_records_are_the_avro_records_with_a_type(event_factory: EventFactory) -> None:
    event = event_factory.of("c1").ai(
        "refund", "conv-1", action="refund", klass="financial", amount=10.0, currency="USD"
    )
    record = json.loads(jsonl_line(event))
    assert record.pop("type") == "message"
    assert (
        serde_for_topic("support.messages").decode(
            serde_for_topic("support.messages").encode(record)
        )
        == record
    )
    assert isinstance(parse_line(jsonl_line(event)), MessageEvent)
