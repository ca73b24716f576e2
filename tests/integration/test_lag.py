"""`escalation lag` on the real broker: offsets, totals, time lag, the deploy gate, the exporter."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from stream.lag import LagProbe
from stream.topics import INPUT_TOPICS
from tests.commands import run_module
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    REPO,
    Isolated,
    cli_env,
    free_port,
    produce_raw,
)

pytestmark = pytest.mark.integration


def lag_cli(isolated: Isolated, *args: str) -> subprocess.CompletedProcess[str]:
    return run_module("stream.cli", "lag", *args, env=cli_env(isolated, COLUMNS="160"))


def commit(isolated: Isolated, topic: str, partition: int, offset: int) -> None:
    consumer = Consumer({"bootstrap.servers": BOOTSTRAP, "group.id": isolated.app_id})
    try:
        consumer.commit(
            offsets=[TopicPartition(isolated.topic(topic), partition, offset)], asynchronous=False
        )
    finally:
        consumer.close()


def test_lag_counts_every_unconsumed_record_and_drains_with_commits(isolated: Isolated) -> None:
    # Given 6 records on the messages topic and a group that never committed
    for n in range(6):
        produce_raw(isolated, "support.messages", f"c-{n}".encode(), b"x")
    time.sleep(1.5)  # so the oldest record has an age
    probe = LagProbe(
        {"bootstrap.servers": BOOTSTRAP},
        isolated.app_id,
        [isolated.topic(name) for name in INPUT_TOPICS],
    )
    try:
        report = probe.measure()
        assert report.total == 6
        assert {p.topic for p in report.partitions} == {isolated.topic(n) for n in INPUT_TOPICS}
        messages = [p for p in report.partitions if p.topic == isolated.topic("support.messages")]
        assert len(messages) == 4 and sum(p.end for p in messages) == 6
        assert all(p.committed is None for p in messages)
        lagging = [p for p in messages if p.lag]
        assert all(p.time_lag_seconds(report.measured_at) >= 1.0 for p in lagging)

        # When the group commits the end of one lagging partition
        first = lagging[0]
        commit(isolated, "support.messages", first.partition, first.end)
        after = probe.measure()

        # Then that partition's lag and time lag are zero and the total fell by exactly its lag
        same = next(
            p for p in after.partitions if (p.topic, p.partition) == (first.topic, first.partition)
        )
        assert same.committed == first.end and same.lag == 0
        assert same.time_lag_seconds(after.measured_at) == 0.0
        assert after.total == 6 - first.lag
    finally:
        probe.close()


def test_the_cli_prints_totals_and_gates_on_max_lag(isolated: Isolated) -> None:
    probe = LagProbe({"bootstrap.servers": BOOTSTRAP}, isolated.app_id, [])
    probe.topics = [isolated.topic(name) for name in INPUT_TOPICS]
    total = probe.measure().total
    probe.close()
    assert total > 0

    shown = lag_cli(isolated)
    assert shown.returncode == 0, shown.stderr
    assert "all topics" in shown.stdout and "support.messages" in shown.stdout
    all_topics = next(line for line in shown.stdout.splitlines() if "all topics" in line)
    assert f" {total} " in all_topics

    above = lag_cli(isolated, "--max-lag", str(total - 1))
    assert above.returncode == 1
    assert f"total lag {total} is above {total - 1}" in above.stderr
    assert lag_cli(isolated, "--max-lag", str(total)).returncode == 0


def test_a_missing_topic_is_a_clear_error_not_a_traceback(isolated: Isolated) -> None:
    result = lag_cli(isolated, "--topic", "no-such-topic-here")
    assert result.returncode == 1  # as backtest, export and the worker on a missing topic
    assert "topic 'no-such-topic-here' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_exports_the_same_numbers_as_prometheus_metrics(isolated: Isolated) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": isolated.prefix,
        "ESCALATION_APP_ID": isolated.app_id,
    }
    exporter = subprocess.Popen(
        [sys.executable, "-m", "stream.cli", "lag", "--serve", str(port), "--interval", "0.5"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        probe = LagProbe(
            {"bootstrap.servers": BOOTSTRAP},
            isolated.app_id,
            [isolated.topic(name) for name in INPUT_TOPICS],
        )
        expected = {(p.topic, str(p.partition)): p.lag for p in probe.measure().partitions}
        probe.close()
        samples: dict[tuple[str, str], float] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(samples) < len(expected):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
            except OSError:
                time.sleep(0.5)
                continue
            for family in text_string_to_metric_families(body.decode()):
                if family.name == "escalation_consumergroup_lag_messages":
                    samples = {
                        (s.labels["topic"], s.labels["partition"]): s.value
                        for s in family.samples
                        if s.labels["group"] == isolated.app_id
                    }
            time.sleep(0.5)
        assert samples == {k: float(v) for k, v in expected.items()}
    finally:
        exporter.terminate()
        exporter.wait(timeout=30)


def test_an_unreachable_broker_is_one_sentence_and_exit_1(isolated: Isolated) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
        "ESCALATION_BROKER_WAIT_SECONDS": "2",
    }
    result = subprocess.run(
        [sys.executable, "-m", "stream.cli", "lag"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no Kafka broker answered at 127.0.0.1:1 within 2 s" in result.stderr
    assert "Traceback" not in result.stderr
