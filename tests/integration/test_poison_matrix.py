"""Poison matrix on a private broker: every kind of bad record on every input topic is
dead-lettered with a named reason, the partition moves on, and decisions equal the backtest's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream.core.events import event_to_dict
from stream.serde import serde_for_topic
from stream.testing import EventFactory
from stream.topics import EVENT_TOPICS
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    assert_backtest_parity,
    committed_offset,
    journalled_worker,
)
from tests.integration.private_broker import PrivateBroker, running
from tests.integration.test_worker import T0

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    with running(tmp_path_factory.mktemp("poison") / "broker") as broker:
        yield broker


def valid_events(customer: str) -> dict[str, dict[str, Any]]:
    """One valid event of every kind for a customer, as records of their topics' schemas."""
    f = EventFactory(customer, start=T0)
    events = {
        "account": f.account(),
        "contact": f.contact("conv-1"),
        "message": f.customer("Where is my bag?"),
        "sentiment": f.sentiment("m-1", -0.1),
        "outcome": f.outcome(),
    }
    return {kind: event_to_dict(event) for kind, event in events.items()}


def poisons(kind: str, customer: str, record: dict[str, Any]) -> dict[str, Any]:
    """Every kind of bad record for one topic: name -> (key, value, expected error type)."""
    serde = serde_for_topic(EVENT_TOPICS[kind])
    good = serde.encode(record)
    other = "support.accounts" if kind != "account" else "support.messages"
    foreign = valid_events(customer)["account" if kind != "account" else "message"]
    key = customer.encode()
    matrix = {
        "garbage": (key, b"\x00\xffnot avro at all", "decode"),
        "empty": (key, b"", "decode"),
        "tombstone": (key, None, "decode"),
        "truncated": (key, good[: len(good) // 2], "decode"),
        "trailing bytes": (key, good + b"\x00\x01", "decode"),
        "another schema": (key, serde_for_topic(other).encode(foreign), "decode"),
        "wrong key": (b"somebody-else", good, "validation"),
        "no key": (None, good, "validation"),
    }
    if kind == "account":  # a compacted topic: the broker itself refuses a record with no key
        del matrix["no key"]
    return matrix


def test_every_bad_record_on_every_input_topic_is_dead_lettered_and_the_partition_moves(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")
    producer = Producer({"bootstrap.servers": isolated.bootstrap, "partitioner": "murmur2_random"})
    written: dict[tuple[str, int, int], tuple[str, str]] = {}  # position -> (kind, poison)
    last_valid: dict[str, tuple[int, int]] = {}  # topic -> (partition, offset)

    def remember(label: tuple[str, str] | None) -> Any:
        def delivered(err: Any, msg: Any) -> None:
            assert err is None, err
            if label is None:
                last_valid[msg.topic()] = (msg.partition(), msg.offset())
            else:
                written[(msg.topic(), msg.partition(), msg.offset())] = label

        return delivered

    with journalled_worker(isolated, tmp_path) as worker:
        # Given every kind of bad record on every input topic, each followed by valid events
        for kind in EVENT_TOPICS:
            customer = f"c-poison-{kind}"
            records = valid_events(customer)
            topic = isolated.topic(EVENT_TOPICS[kind])
            for name, (key, value, _) in poisons(kind, customer, records[kind]).items():
                producer.produce(topic, key=key, value=value, on_delivery=remember((kind, name)))
            for other, record in records.items():
                producer.produce(
                    isolated.topic(EVENT_TOPICS[other]),
                    key=customer.encode(),
                    value=serde_for_topic(EVENT_TOPICS[other]).encode(record),
                    on_delivery=remember(None) if other == kind else None,
                )
        assert producer.flush(30) == 0

        # Then each bad record is on the dead-letter topic with its error type and a reason
        letters = dead.wait_for(lambda rs: len(rs) >= len(written), timeout=120)
        by_position = {(r["source_topic"], r["partition"], r["offset"]): r for r in letters}
        for position, (kind, name) in written.items():
            letter = by_position.get(position)
            assert letter is not None, f"{kind}/{name} at {position} was not dead-lettered"
            expected = poisons(kind, "x", valid_events("x")[kind])[name][2]
            assert letter["error_type"] == expected, (kind, name, letter["reason"])
            assert len(letter["reason"]) > 10, (kind, name, letter["reason"])
        assert len(letters) == len(written)

        # And every partition moved past them: the valid record after them is committed
        deadline = time.monotonic() + 120
        for topic, (partition, offset) in last_valid.items():
            while committed_offset(isolated.app_id, topic, partition, isolated.bootstrap) <= offset:
                assert time.monotonic() < deadline, f"{topic}[{partition}] stuck before {offset}"
                time.sleep(0.5)
        # And the message of each customer was decided
        decisions.wait_for(
            lambda rs: {r["customer_id"] for r in rs} >= {f"c-poison-{k}" for k in EVENT_TOPICS}
        )
        consumed = worker.consumed(len(written) + 5 * len(EVENT_TOPICS) + 1)
        decisions.drain(quiet=2.0)

    # And the decisions are exactly the backtest's over what the worker consumed
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= len(EVENT_TOPICS)
    dead.close()
    decisions.close()
    isolated.delete()
