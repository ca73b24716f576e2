"""The policy in force: loaded from a file at start, replaced live from the compacted policy topic.

Every worker must see every policy, so the topic is read outside the consumer group: each worker
assigns itself all of its partitions from the beginning, and the latest valid record wins. An
invalid record is refused, logged and dead-lettered; the policy in force stays.

No document may end the feed: a record is bounded in size and YAML nesting before it is parsed
(a deeply nested document makes PyYAML's composer recurse until RecursionError), every record is
handled inside its own `except Exception`, and a failing consumer is rebuilt after a pause. The
feed's health (alive, caught up, last error) is part of the worker's readiness and its metrics.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import structlog
import yaml
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    Message,
    Producer,
    TopicPartition,
)

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
        """Adopt a published policy document if it is valid; otherwise keep the one in force.

        Never raises: whatever goes wrong with one document is its verdict.
        """
        try:
            return self._offer(data)
        except Exception as exc:  # RecursionError, MemoryError-free bugs: the feed goes on
            return PolicyVerdict(False, None, f"{type(exc).__name__}: {exc}")

    def _offer(self, data: bytes | None) -> PolicyVerdict:
        if data is not None and len(data) > MAX_POLICY_BYTES:
            return PolicyVerdict(
                False, None, f"policy record is {len(data)} bytes, over {MAX_POLICY_BYTES}"
            )
        try:
            document = serde_for_topic("escalation.policy").decode(data)
        except SerdeError as exc:
            return PolicyVerdict(False, None, str(exc))
        problem = yaml_bound_problem(document["yaml"])
        if problem is not None:
            return PolicyVerdict(False, document["version"], problem)
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


# A policy file is a few kilobytes and a handful of levels deep; these leave ample room.
MAX_POLICY_BYTES: Final = 256 * 1024
MAX_YAML_DEPTH: Final = 32


def yaml_bound_problem(text: str) -> str | None:
    """Why a YAML text is too big or too deep to parse safely, or None.

    Walks PyYAML's event stream, which is flat (no recursion), so a document nested ten thousand
    levels deep is refused by counting before the recursive composer ever sees it.
    """
    size = len(text.encode("utf-8", "replace"))
    if size > MAX_POLICY_BYTES:
        return f"yaml: policy text is {size} bytes, over {MAX_POLICY_BYTES}"
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_YAML_DEPTH:
                    return f"yaml: nested deeper than {MAX_YAML_DEPTH} levels"
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.YAMLError as exc:
        return f"not valid YAML: {exc}"
    return None


class PolicyTopicError(Exception):
    """The consumer of the policy topic reported an error (the broker's words)."""


def policy_topic_consumer(config: dict[str, Any], purpose: str) -> Consumer:
    """A consumer that reads the policy topic's partitions whole and says where each ends. The
    group (`PURPOSE-unused`) is required by librdkafka but never joined with or committed to."""
    return Consumer(
        {
            **config,
            "group.id": f"{purpose}-unused",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )


def next_policy_record(consumer: Consumer, at_end: set[int]) -> Message | None:
    """The next record of the policy topic, or None: nothing within half a second, or the end of
    a partition reached (then added to `at_end`). Any other error is a `PolicyTopicError`."""
    msg = consumer.poll(0.5)
    if msg is None:
        return None
    error = msg.error()
    if error is None:
        return msg
    if error.code() == KafkaError._PARTITION_EOF:
        at_end.add(msg.partition() or 0)
        return None
    raise PolicyTopicError(str(error))


@dataclass
class FeedHealth:
    """What readiness and metrics report about the feed; written by its thread only."""

    alive: bool = False
    caught_up: bool = False
    adopted: int = 0
    rejected: int = 0
    restarts: int = 0
    last_error: str | None = None
    errors: deque[float] = field(default_factory=lambda: deque(maxlen=64))

    def body(self) -> dict[str, Any]:
        return {
            "alive": self.alive,
            "caught_up": self.caught_up,
            "adopted": self.adopted,
            "rejected": self.rejected,
            "restarts": self.restarts,
            "last_error": self.last_error,
        }


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
        self._last_error_log = float("-inf")
        self.ready = threading.Event()
        self.health = FeedHealth()

    def stop(self) -> None:
        self._stopping.set()

    def healthy(self) -> bool:
        """Alive and caught up with the topic: what the worker's readiness needs from the feed."""
        return self.is_alive() and self.health.alive and self.health.caught_up

    def run(self) -> None:
        """Follows the topic until stopped; a consumer that fails is rebuilt, never given up."""
        backoff = 1.0
        while not self._stopping.is_set():
            self.health.alive = True
            try:
                self._follow()
                return
            except Exception as exc:
                self.health.restarts += 1
                self.health.last_error = f"{type(exc).__name__}: {exc}"
                log.error("policy_feed_restarting", error=self.health.last_error, retry_in=backoff)
                metrics.set_policy_feed_healthy(False)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self.health.alive = False

    def _follow(self) -> None:
        consumer = policy_topic_consumer(self._config, "policy-feed")
        try:
            partitions = self._assign(consumer)
            at_end: set[int] = set()
            caught_up = False
            while not self._stopping.is_set():
                try:
                    msg = next_policy_record(consumer, at_end)
                except PolicyTopicError as exc:
                    self._transient_error(str(exc))
                    continue
                if msg is not None:
                    self._handle(msg.key(), msg.value(), msg.partition() or 0, msg.offset() or 0)
                elif not caught_up and at_end >= partitions:
                    caught_up = self.health.caught_up = True
                    metrics.set_policy_feed_healthy(True)
                    self.ready.set()
        finally:
            consumer.close()

    def _transient_error(self, error: str) -> None:
        """Logged at most once per 10 s: a broker outage yields an error per poll otherwise."""
        now = time.monotonic()
        self.health.last_error = error
        self.health.errors.append(now)
        if now - self._last_error_log >= 10.0:
            recent = sum(1 for t in self.health.errors if now - t < 10.0)
            log.warning("policy_feed_error", error=error, errors_last_10s=recent)
            self._last_error_log = now

    def _handle(self, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
        """One record: adopted, or refused and dead-lettered; nothing it holds ends the feed."""
        verdict = self._holder.offer(value)
        metrics.record_policy_offer(verdict.adopted)
        if verdict.adopted:
            self.health.adopted += 1
            log.info("policy_adopted", version=verdict.version, offset=offset)
            return
        self.health.rejected += 1
        log.error("policy_rejected", version=verdict.version, reason=verdict.reason, offset=offset)
        try:
            self._on_rejected(key, value, partition, offset, verdict.reason)
        except Exception as exc:
            self.health.last_error = f"dead letter of policy offset {offset}: {exc}"
            log.error("policy_dead_letter_failed", offset=offset, error=str(exc))

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
