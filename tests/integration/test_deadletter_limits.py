"""Dead letters on the real broker: an input near 1 MiB is dead-lettered cut to fit, and a dead
letter the broker refuses stops the partition instead of being skipped (DESIGN section 8)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    committed_offset,
    produce,
    produce_at,
    set_topic_config,
    wait_for_log,
)
from tests.integration.test_worker import T0, account, message

pytestmark = pytest.mark.integration

NEAR_ONE_MIB = 1_040_000


def test_an_input_near_one_mib_is_dead_lettered_cut_to_fit(
    isolated: Isolated, consuming_worker: Path
) -> None:
    # Given a record of almost 1 MiB that is not an event, then a valid event on its partition
    value = b"\x00" + b"\xab" * (NEAR_ONE_MIB - 1)
    topic = isolated.topic("support.messages")
    partition, offset = produce_at(topic, b"c-big", value)
    produce(isolated, [message("c-big", "v-big", 1, T0, "customer", "Where is my bag?")])
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")

    # Then its dead letter is written, cut, naming the original by size, hash and position
    [letter] = dead.wait_for(lambda rs: any(r["offset"] == offset for r in rs))
    assert (letter["source_topic"], letter["partition"]) == (topic, partition)
    assert letter["error_type"] == "decode" and letter["truncated"] is True
    assert letter["value_size"] == NEAR_ONE_MIB
    assert letter["value_sha256"] == hashlib.sha256(value).hexdigest()
    assert value.startswith(letter["value"]) and letter["key"] == b"c-big"
    assert len(dead.raw[0].value()) <= 1_000_000
    # And the partition kept moving: the next event was decided
    decisions.wait_for(lambda rs: any(r["event_id"] == "msg-v-big-1" for r in rs))
    dead.close()
    decisions.close()


# Its bounded waits add up to more than the suite's 300 s per test when the machine is busy.
@pytest.mark.timeout(900)
def test_a_refused_dead_letter_stops_the_partition_until_it_is_written(
    isolated: Isolated, consuming_worker: Path
) -> None:
    # Given a dead-letter topic that refuses anything over 4 KiB (in force on the broker)
    dead_topic = isolated.topic("support.deadletter")
    set_topic_config(dead_topic, max_message_bytes="4096")
    try:
        # When a 20 KB bad record arrives, followed by a valid event on the same partition
        topic = isolated.topic("support.messages")
        partition, offset = produce_at(topic, b"c-hold", b"\x00" + b"z" * 20_000)
        produce(
            isolated,
            [account("c-hold", T0), message("c-hold", "v-hold", 1, T0, "customer", "Hello?")],
        )
        # Then the worker says it cannot write the dead letter ...
        line = wait_for_log(consuming_worker, "dead_letter_not_written", timeout=240)
        assert f'"offset": {offset}' in line and "MessageSizeTooLarge" in line
        # ... and neither commits past the record nor decides the event behind it
        decisions = Collector(isolated, "escalation.decisions")
        decisions.drain(quiet=4.0)
        assert not any(r["event_id"] == "msg-v-hold-1" for r in decisions.records)
        assert committed_offset(isolated.app_id, topic, partition) <= offset
    finally:
        # When the topic accepts it again
        set_topic_config(dead_topic, max_message_bytes="1048588")

    # Then the held dead letter is written and the partition moves on
    dead = Collector(isolated, "support.deadletter")
    letters = dead.wait_for(lambda rs: any(r["offset"] == offset for r in rs), timeout=240)
    held = next(r for r in letters if r["offset"] == offset)
    assert held["source_topic"] == topic and held["value"] == b"\x00" + b"z" * 20_000
    decisions.wait_for(lambda rs: any(r["event_id"] == "msg-v-hold-1" for r in rs), timeout=240)
    deadline = time.monotonic() + 120
    while committed_offset(isolated.app_id, topic, partition) <= offset:
        assert time.monotonic() < deadline, "the offset was not committed past the record"
        time.sleep(1)
    dead.close()
    decisions.close()
