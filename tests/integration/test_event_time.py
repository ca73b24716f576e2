"""Future and past event times on the real broker: dead-lettered live, refused in the backtest.

A contact dated in the year 9999 used to become the customer's contact watermark, so every later
contact looked late and repeat-contact detection stopped for that customer for good.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.backtest.run import run_policy
from stream.backtest.sources import KafkaSource, topics_with_prefix
from stream.core.policy import default_policy
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    Collector,
    Isolated,
    broker_available,
    produce,
    running_worker,
    wait_until_consuming,
)
from tests.integration.test_worker import T0, account, contact, message

pytestmark = pytest.mark.integration

DAY = 86_400_000
YEAR_9999 = 253_402_214_400_000


@pytest.fixture
def isolated() -> Iterator[Isolated]:
    if not broker_available():
        pytest.skip("no Kafka broker; start one with deploy/kafka/kafka.sh up")
    topics = Isolated()
    yield topics
    topics.delete()


def test_future_and_past_event_times_are_dead_lettered_and_the_backtest_agrees(
    isolated: Isolated, tmp_path: Path
) -> None:
    started = int(time.time() * 1000) - 60_000
    cid = "c-time"
    # Given two contacts on one issue, one dated in the year 9999, one from 1970, then the third
    events = [
        account(cid, T0),
        message(cid, "v-1", 1, T0, "customer", "My invoice is wrong"),
        contact(cid, 1, T0, "billing:inv-7", "v-1"),
        contact(cid, 2, T0 + DAY, "billing:inv-7", "v-2"),
        contact(cid, 3, YEAR_9999, "billing:inv-7", "v-3"),
        contact(cid, 4, 1_000, "billing:inv-7", "v-4"),
        message(cid, "v-5", 1, T0 + 2 * DAY, "customer", "Still wrong"),
        contact(cid, 5, T0 + 2 * DAY + 1, "billing:inv-7", "v-5"),
    ]
    dead = Collector(isolated, "support.deadletter")
    decisions = Collector(isolated, "escalation.decisions")
    # When the live worker reads them
    with running_worker(isolated, tmp_path / "state", tmp_path / "worker.log"):
        wait_until_consuming(isolated)
        produce(isolated, events, pace=0.05)
        letters = dead.wait_for(lambda rs: len(rs) >= 2, timeout=240)
        live = decisions.wait_for(
            lambda rs: any(r["conversation_id"] == "v-5" and r["action"] == "escalate" for r in rs),
            timeout=240,
        )
        decisions.drain(quiet=3.0)
    # Then both bad times are dead letters naming the bound, and the third contact escalates
    assert sorted(r["error_type"] for r in letters) == ["event_time", "event_time"]
    reasons = sorted(r["reason"] for r in letters)
    assert "ahead of the record timestamp" in reasons[1] and "9999-12-31" in reasons[1]
    assert "behind the stream's watermark" in reasons[0] and "1970-01-01" in reasons[0]
    (escalation,) = [r for r in live if r["action"] == "escalate"]
    assert escalation["triggers"][0]["trigger"] == "repeat_contact"

    # And the backtest of the same records refuses the same two and decides the same
    source = KafkaSource(
        {"bootstrap.servers": BOOTSTRAP},
        started,
        int(time.time() * 1000) + 60_000,
        topics=topics_with_prefix(isolated.prefix),
        idle_timeout_s=30,
        warn=None,
    )
    replayed = run_policy(source, default_policy())
    assert source.refused_count == 2
    assert sorted(r.reason for r in source.refused) == reasons
    key = lambda r: r["decision_id"]  # noqa: E731
    assert sorted(live, key=key) == sorted((d.to_record() for d in replayed.decisions), key=key)
    dead.close()
    decisions.close()
