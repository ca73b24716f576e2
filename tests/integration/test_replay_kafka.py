"""The replay producer against the real broker: every event arrives, keyed, decodable, in order."""

from __future__ import annotations

import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from stream.replay import ReplayConfig, iter_events
from stream.replay.kafka import ProduceError, produce
from stream.serde import serde_for_topic
from stream.testing import murmur2_partition
from stream.topics import EVENT_TOPICS
from tests.integration.kafka_helpers import BOOTSTRAP, CORPUS

pytestmark = pytest.mark.integration

PARTITIONS = 4
SOURCE = CORPUS
Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def admin() -> AdminClient:
    client = AdminClient({"bootstrap.servers": BOOTSTRAP})
    try:
        client.list_topics(timeout=5)
    except KafkaException as exc:
        pytest.skip(f"no Kafka at {BOOTSTRAP} ({exc}); start one with deploy/kafka/kafka.sh up")
    return client


@pytest.fixture(scope="module")
def events() -> Events:
    if not SOURCE.exists():
        pytest.fail(f"the shared corpus is missing: {SOURCE}")
    return list(iter_events(SOURCE, ReplayConfig(seed=11, conversations=150)))


@pytest.fixture
def topics(admin: AdminClient) -> Iterator[dict[str, str]]:
    """Unique topics per test, 4 partitions like the real inputs; deleted after."""
    suffix = uuid.uuid4().hex[:12]
    mapping = {kind: f"it-replay-{suffix}.{name}" for kind, name in EVENT_TOPICS.items()}
    new = [
        NewTopic(name, num_partitions=PARTITIONS, replication_factor=1) for name in mapping.values()
    ]
    for future in admin.create_topics(new, operation_timeout=30).values():
        future.result(timeout=60)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        known = admin.list_topics(timeout=10).topics
        if all(name in known for name in mapping.values()):
            break
        time.sleep(0.1)
    yield mapping
    for future in admin.delete_topics(list(mapping.values()), operation_timeout=30).values():
        future.result(timeout=60)


def consume(topics: list[str], expected: int, timeout: float = 60.0) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"it-replay-{uuid.uuid4().hex[:12]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    received: list[Any] = []
    try:
        consumer.subscribe(topics)
        deadline = time.monotonic() + timeout
        while len(received) < expected and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=1000, timeout=0.5):
                if message.error() is not None:
                    raise KafkaException(message.error())
                received.append(message)
        # A short extra read: anything beyond the expected count would be a duplicate.
        for message in consumer.consume(num_messages=1000, timeout=1.0):
            received.append(message)
    finally:
        consumer.close()
    return received


def test_murmur2_matches_the_java_client() -> None:
    # Vectors of Kafka's UtilsTest.testMurmur2, as signed Java ints.
    for text, java in (("21", -973932308), ("foobar", -790332482), ("abc", 479470107)):
        assert murmur2_partition(text.encode(), 2**31) == java & 0x7FFFFFFF


def test_replay_reaches_every_topic_keyed_by_customer_and_decodes(
    events: Events, topics: dict[str, str]
) -> None:
    delivered = produce(events, BOOTSTRAP, topic_for=topics, progress=False)

    expected = Counter(topics[kind] for kind, _ in events)
    assert delivered == dict(expected)
    received = consume(list(topics.values()), len(events))
    assert Counter(message.topic() for message in received) == expected

    kind_of = {topic: kind for kind, topic in topics.items()}
    by_id = {record["event_id"]: (kind, record) for kind, record in events}
    order = {record["event_id"]: index for index, (_, record) in enumerate(events)}
    partition_of: dict[str, set[int]] = defaultdict(set)
    last_seen: dict[tuple[str, int], int] = {}
    for message in received:
        kind = kind_of[message.topic()]
        record = serde_for_topic(EVENT_TOPICS[kind]).decode(message.value())
        assert by_id[record["event_id"]] == (kind, record)
        assert message.key() == record["customer_id"].encode()
        assert message.partition() == murmur2_partition(message.key(), PARTITIONS)
        partition_of[record["customer_id"]].add(message.partition())
        # Within a partition, events arrive in the order they were produced.
        slot = (message.topic(), message.partition())
        assert order[record["event_id"]] > last_seen.get(slot, -1)
        last_seen[slot] = order[record["event_id"]]
        # The Kafka timestamp is the produce time; the event time stays in the record.
        assert message.timestamp()[1] > time.time() * 1000 - 600_000
    assert all(len(parts) == 1 for parts in partition_of.values())


def test_rate_limit_paces_the_replay(events: Events, topics: dict[str, str]) -> None:
    some = events[:120]
    started = time.monotonic()
    delivered = produce(some, BOOTSTRAP, rate=200.0, topic_for=topics, progress=False)
    elapsed = time.monotonic() - started
    assert sum(delivered.values()) == len(some)
    # 120 events at 200/s with a 20-event burst take at least half a second.
    assert 0.45 < elapsed < 10.0


def test_unknown_event_type_is_refused(topics: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="no topic for event type"):
        produce([("invoice", {"customer_id": "c1"})], BOOTSTRAP, topic_for=topics, progress=False)


def test_undeliverable_events_raise_after_the_flush(topics: dict[str, str], events: Events) -> None:
    # A topic that does not exist and may not be auto-created: delivery fails, and says so.
    missing = {kind: f"{name}-absent" for kind, name in topics.items()}
    with pytest.raises(ProduceError, match="not delivered"):
        produce(
            events[:5],
            BOOTSTRAP,
            topic_for=missing,
            progress=False,
            producer_config={"allow.auto.create.topics": False, "message.timeout.ms": 3000},
            flush_timeout=15.0,
        )
