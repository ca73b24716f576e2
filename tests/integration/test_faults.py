"""The fault suite on a private broker (never the shared one): faults the worker must ride out,
each checked against the backtest of exactly what the worker consumed (DESIGN section 8)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream.serde import serde_for_topic
from stream.topics import EVENT_TOPICS
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    assert_backtest_parity,
    running_worker,
    wait_for_journal,
    wait_until_consuming,
)
from tests.integration.private_broker import PrivateBroker
from tests.integration.test_crash import conversation
from tests.integration.test_worker import T0, account

pytestmark = pytest.mark.integration

CUSTOMERS = 12
OUTAGE_S = 20


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path_factory.mktemp("faults") / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


def feed(isolated: Isolated, events: list[tuple[str, dict[str, Any]]], pace: float) -> None:
    """Produces paced, without waiting on each delivery: librdkafka holds records through an
    outage and delivers them when the broker is back (a flush per record would fail instead)."""
    producer = Producer(
        {
            "bootstrap.servers": isolated.bootstrap,
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "message.timeout.ms": 300_000,
            "log_level": 0,
        }
    )
    for kind, record in events:
        topic = EVENT_TOPICS[kind]
        producer.produce(
            isolated.topic(topic),
            key=record["customer_id"].encode(),
            value=serde_for_topic(topic).encode(record),
        )
        producer.poll(0)
        time.sleep(pace)
    assert producer.flush(240) == 0


def lines(path: Path) -> int:
    with path.open("rb") as log:
        return sum(1 for _ in log)


def test_a_broker_outage_under_load_loses_nothing_and_logs_little(
    private: PrivateBroker, tmp_path: Path
) -> None:
    isolated = Isolated(bootstrap=private.bootstrap())
    events = [account(f"c-crash-{n}", T0) for n in range(CUSTOMERS)] + [
        e for n in range(CUSTOMERS) for d in (0, 1) for e in conversation(n, d)
    ]
    messages = {r["event_id"] for kind, r in events if kind == "message"}
    decisions = Collector(isolated, "escalation.decisions")
    journal = tmp_path / "consumed.tsv"
    log = tmp_path / "worker.log"

    # Given a worker folding a stream of events
    with running_worker(
        isolated, tmp_path / "state", log, {"ESCALATION_JOURNAL_PATH": str(journal)}
    ) as worker:
        wait_until_consuming(isolated)
        feeding = threading.Thread(target=feed, args=(isolated, events, 0.02))
        feeding.start()
        decisions.wait_for(lambda rs: len(rs) >= 10)

        # When the broker stops for 20 s while records keep coming, then starts again
        before = lines(log)
        private.stop()
        time.sleep(OUTAGE_S)
        during = lines(log) - before
        private.start()
        feeding.join(timeout=300)

        # Then every message gets its decision, and the worker never stopped
        decisions.wait_for(lambda rs: {r["event_id"] for r in rs} >= messages, timeout=240)
        consumed = wait_for_journal(journal, len(events) + 1)
        decisions.drain(quiet=3.0)
        assert worker.poll() is None, log.read_text()[-3000:]

    print(f"outage: {during} log lines in {OUTAGE_S} s")
    # And the outage wrote a bounded number of log lines, not one per reconnect attempt
    assert during < 600, f"{during} log lines in a {OUTAGE_S} s outage"
    # And the decisions are exactly the backtest's over what the worker consumed
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= len(messages)
    decisions.close()
    isolated.delete()
