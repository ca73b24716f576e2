"""Produces replay events to the input topics of a real Kafka cluster, at a set rate or flat out."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from confluent_kafka import KafkaError, Message, Producer
from tqdm import tqdm

from stream.errors import RunError, UsageError
from stream.serde import RegistryConfig, serde_for_topic
from stream.topics import EVENT_TOPICS

# Small lingering batches keep a rate-limited replay smooth and a flat-out one fast; idempotence
# makes librdkafka's own retries safe, so a retried batch never duplicates an event.
PRODUCER_DEFAULTS: Final[Mapping[str, Any]] = {
    "enable.idempotence": True,
    "acks": "all",
    "linger.ms": 5,
    "batch.size": 512 * 1024,
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 256 * 1024,
    # The Java client's partitioner (and aiokafka's, under Faust): a customer lands on the same
    # partition whichever client produced the event, which co-partitioning relies on.
    "partitioner": "murmur2_random",
}

# A full local queue is waited out in steps of this, at most this many times per event.
_QUEUE_FULL_WAIT_S: Final[float] = 0.1
_QUEUE_FULL_TRIES: Final[int] = 600
# The rate limiter never sleeps longer than this at once, so delivery callbacks keep flowing.
_MAX_SLEEP_S: Final[float] = 0.05
_PROGRESS_EVERY: Final[int] = 256


class ProduceError(RunError):
    """Some events were not delivered; the message says how many and the first reasons."""


def default_encoder(
    topic_for_type: Mapping[str, str] = EVENT_TOPICS, registry: RegistryConfig | None = None
) -> Callable[[str, dict[str, Any]], bytes]:
    """Avro with the schema of each event type's standard topic: single-object encoding, or the
    Confluent wire format when the settings name a registry (`Settings.registry()`), as the worker
    then expects.

    The schema follows the event type, not the destination name, so a replay into renamed or
    prefixed topics still writes the records every consumer of the standard topics can decode.
    """
    serdes = {
        event_type: serde_for_topic(topic, registry) for event_type, topic in topic_for_type.items()
    }

    def encode(event_type: str, record: dict[str, Any]) -> bytes:
        return serdes[event_type].encode(record)

    return encode


class _TokenBucket:
    """At most `rate` events per second on average, with a burst of a tenth of a second."""

    def __init__(self, rate: float) -> None:
        if not rate > 0 or math.isinf(rate):
            raise UsageError(f"rate must be a positive number of events per second, got {rate}")
        self.rate = rate
        self.capacity = max(1.0, rate / 10)
        self.tokens = 1.0
        self.last = time.monotonic()
        # Each step sleeps at least _MAX_SLEEP_S or until the token is due, so this many steps
        # always cover the wait for one token.
        self.max_steps = math.ceil(1.0 / rate / _MAX_SLEEP_S) + 8

    def take(self, serve: Callable[[float], object]) -> None:
        """Block until a token is available; `serve(0)` runs between the short sleeps."""
        for _ in range(self.max_steps):
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
            self.last = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return
            serve(0)
            time.sleep(min((1.0 - self.tokens) / self.rate, _MAX_SLEEP_S))
        self.tokens = 0.0


def produce(
    events: Iterable[tuple[str, dict[str, Any]]],
    bootstrap: str,
    *,
    rate: float | None = None,
    topic_for: Mapping[str, str] | None = None,
    encode: Callable[[str, dict[str, Any]], bytes] | None = None,
    progress: bool = True,
    producer_config: dict[str, Any] | None = None,
    total: int | None = None,
    flush_timeout: float = 60.0,
) -> dict[str, int]:
    """Produce `(event_type, record)` pairs, keyed by `customer_id`; returns delivered per topic.

    `rate` is events per second (None: as fast as the broker takes them). The Kafka timestamp is
    the wall clock at produce time, so retention never drops a replay of old event times; the
    event time travels in the record's `occurred_at`. Raises ProduceError after the flush when
    any event was not delivered.
    """
    topics = dict(EVENT_TOPICS if topic_for is None else topic_for)
    encoder = encode or default_encoder()
    config: dict[str, Any] = {**PRODUCER_DEFAULTS, "bootstrap.servers": bootstrap}
    config.update(producer_config or {})
    producer = Producer(config)
    bucket = _TokenBucket(rate) if rate is not None else None

    delivered: Counter[str] = Counter()
    failures: list[str] = []
    failed = 0

    def on_delivery(err: KafkaError | None, msg: Message) -> None:
        nonlocal failed
        if err is None:
            delivered[msg.topic() or ""] += 1
            return
        failed += 1
        if len(failures) < 5:
            failures.append(f"{msg.topic()}: {err.str()}")

    bar = tqdm(total=total, unit="ev", disable=not progress, mininterval=0.5, smoothing=0.1)
    pending_updates = 0
    sent = 0
    try:
        for event_type, record in events:
            topic = topics.get(event_type)
            if topic is None:
                raise UsageError(f"no topic for event type {event_type!r}; known: {sorted(topics)}")
            if bucket is not None:
                bucket.take(producer.poll)
            value = encoder(event_type, record)
            key = record["customer_id"].encode()
            for _ in range(_QUEUE_FULL_TRIES):
                try:
                    producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
                    break
                except BufferError:
                    # The local queue is full: serve delivery reports until there is room.
                    producer.poll(_QUEUE_FULL_WAIT_S)
            else:
                raise ProduceError(
                    f"local producer queue stayed full for "
                    f"{_QUEUE_FULL_TRIES * _QUEUE_FULL_WAIT_S:.0f}s; is the broker at "
                    f"{bootstrap} reachable?"
                )
            producer.poll(0)
            sent += 1
            pending_updates += 1
            if pending_updates >= _PROGRESS_EVERY:
                bar.update(pending_updates)
                pending_updates = 0
        bar.update(pending_updates)
    finally:
        remaining = producer.flush(flush_timeout)
        bar.close()
    if failed or remaining:
        raise ProduceError(
            f"{failed + remaining} of {sent} events not delivered "
            f"({failed} failed, {remaining} still queued after {flush_timeout}s): "
            + "; ".join(failures)
        )
    return dict(delivered)
