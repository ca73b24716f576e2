"""Waiting for a worker to consume: events produced while it still starts pile up as a backlog."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from stream.serde import RegistryConfig, serde_for_topic


def wait_until_consuming(
    client_config: dict[str, Any],
    group_id: str,
    accounts_topic: str,
    timeout: float = 90.0,
    *,
    registry: RegistryConfig | None = None,
) -> None:
    """Produce a warm-up account snapshot and block until the worker's group has committed it.

    A backlog spread over the five input topics is read topic by topic rather than in the order
    it was produced, so demos, benchmarks and tests start producing only once this returns.
    """
    record = {
        "event_id": f"warmup-{uuid.uuid4().hex}",
        "customer_id": "warmup",
        "occurred_at": 0,
        "schema_version": 1,
        "tier": "standard",
        "plan": None,
        "enterprise_contract": False,
        "contract_id": None,
        "primary_email": None,
        "balance": 0.0,
        "currency": "USD",
        "flags": [],
        "open_cases": 0,
    }
    producer = Producer({**client_config, "partitioner": "murmur2_random"})
    producer.produce(
        accounts_topic,
        key=b"warmup",
        value=serde_for_topic("support.accounts", registry).encode(record),
    )
    if producer.flush(30):
        raise TimeoutError(f"warm-up record not delivered to {accounts_topic}")
    consumer = Consumer({**client_config, "group.id": group_id, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(accounts_topic, timeout=10).topics[accounts_topic]
        tps = [TopicPartition(accounts_topic, p) for p in partitions.partitions]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if any(tp.offset > 0 for tp in consumer.committed(tps, timeout=10)):
                    return
            except KafkaException:  # a new cluster is still electing its group coordinator
                pass
            time.sleep(0.5)
    finally:
        consumer.close()
    raise TimeoutError(f"group {group_id} did not start consuming within {timeout:.0f}s")
