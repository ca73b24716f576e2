"""The policy in force: loaded from a file at start, replaced live from the compacted policy topic.

Every worker must see every policy, so the topic is read outside the consumer group: each worker
assigns itself all of its partitions from the beginning, and the latest valid record wins. An
invalid record is refused, logged and dead-lettered; the policy in force stays.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition

from stream.core.policy import Policy, PolicyError, parse_policy, policy_warnings
from stream.serde import SerdeError, serde_for_topic
from stream.worker import metrics
from stream.worker.handler import RawRecord

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PolicyVerdict:
    adopted: bool
    version: str | None
    reason: str


class PolicyInForce:
    """Holds the current policy; readers take a reference, writers swap it atomically."""

    def __init__(self, initial: Policy) -> None:
        self._policy = initial

    def get(self) -> Policy:
        return self._policy

    def offer(self, data: bytes | None) -> PolicyVerdict:
        """Adopt a published policy document if it is valid; otherwise keep the one in force."""
        try:
            document = serde_for_topic("escalation.policy").decode(data)
        except SerdeError as exc:
            return PolicyVerdict(False, None, str(exc))
        try:
            candidate = parse_policy(document["yaml"])
        except PolicyError as exc:
            return PolicyVerdict(False, document["version"], str(exc))
        if candidate.version != document["version"]:
            return PolicyVerdict(
                False,
                document["version"],
                f"version: the document says {document['version']!r} "
                f"but the policy inside says {candidate.version!r}",
            )
        for warning in policy_warnings(candidate):
            log.warning("policy_warning", version=candidate.version, warning=warning)
        self._policy = candidate
        return PolicyVerdict(True, candidate.version, "adopted")


class PolicyFeed(threading.Thread):
    """Follows the policy topic for the life of the worker; bounded polls, stops on `stop()`."""

    def __init__(
        self,
        holder: PolicyInForce,
        topic: str,
        client_config: dict[str, Any],
        on_rejected: Callable[[bytes | None, bytes | None, int, int, str], None],
    ) -> None:
        super().__init__(name="policy-feed", daemon=True)
        self._holder = holder
        self._topic = topic
        self._config = client_config
        self._on_rejected = on_rejected
        self._stopping = threading.Event()
        self.ready = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        consumer = Consumer(
            {
                **self._config,
                "group.id": "policy-feed-unused",  # required by librdkafka; never committed
                "enable.auto.commit": False,
                "enable.partition.eof": True,
            }
        )
        try:
            partitions = self._assign(consumer)
            at_end: set[int] = set()
            while not self._stopping.is_set():
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        at_end.add(msg.partition() or 0)
                        if at_end >= partitions:
                            self.ready.set()
                    else:
                        log.warning("policy_feed_error", error=str(error))
                    continue
                verdict = self._holder.offer(msg.value())
                metrics.record_policy_offer(verdict.adopted)
                if verdict.adopted:
                    log.info("policy_adopted", version=verdict.version, offset=msg.offset())
                else:
                    log.error("policy_rejected", version=verdict.version, reason=verdict.reason)
                    self._on_rejected(
                        msg.key(),
                        msg.value(),
                        msg.partition() or 0,
                        msg.offset() or 0,
                        verdict.reason,
                    )
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer) -> set[int]:
        deadline = time.monotonic() + 60
        while not self._stopping.is_set():
            metadata = consumer.list_topics(self._topic, timeout=5)
            topic = metadata.topics.get(self._topic)
            if topic is not None and topic.error is None and topic.partitions:
                ids = set(topic.partitions)
                consumer.assign([TopicPartition(self._topic, p, OFFSET_BEGINNING) for p in ids])
                return ids
            if time.monotonic() > deadline:
                log.error("policy_topic_missing", topic=self._topic)
                deadline = time.monotonic() + 60
            time.sleep(1)
        return set()


def rejecting_to_deadletter(
    producer: Producer,
    topic: str,
    deadletter_topic: str,
    encode: Callable[[RawRecord, str, str], bytes],
) -> Callable[[bytes | None, bytes | None, int, int, str], None]:
    def reject(
        key: bytes | None, value: bytes | None, partition: int, offset: int, reason: str
    ) -> None:
        raw = RawRecord(topic, partition, offset, key, value)
        producer.produce(deadletter_topic, key=key, value=encode(raw, "policy", reason))
        producer.flush(10)

    return reject
