"""Faust on librdkafka: faust-streaming's confluent-kafka driver with defects fixed (unfinished).

Registered under its own URL scheme, `rdkafka://host:port`, so the installed package is left as it
is and the aiokafka driver (`kafka://`) stays the default. Status: a Faust app on it now gets its
assignment and reports ready, but it has not committed an offset in the benchmark's passthrough
(see docs/worker.md, "Faust on librdkafka"); nothing in the worker uses it. What this fixes in
`faust.transport.drivers.confluent` (faust-streaming 0.11-0.15), each a candidate upstream patch:

- Producer: it ignored the app's producer settings and forced one request in flight; here acks,
  linger, compression, request size and max in flight come from the app's settings, and keys are
  partitioned with librdkafka's `murmur2_random` (the Java client's partitioner, which Faust's
  aiokafka driver also uses) instead of Python's salted `hash()`; `key_partition` computes the same
  murmur2 locally.
- Producer: the delivery callback runs in librdkafka's polling thread, so it now completes the
  asyncio future through `call_soon_threadsafe`, and a delivery error fails it with a
  `ProducerSendError` (a `KafkaError` is not an exception, so `set_exception` raised TypeError).
  `flush` no longer blocks the event loop. Timestamps and headers are passed on.
- Topics: `create_topic` did nothing; it now creates through the admin client (an existing topic is
  fine), so changelog and repartition topics exist before the consumer subscribes to them.
- Consumer: the rebalance callbacks only scheduled Faust's handlers for later, so Faust never
  finished an assignment and never consumed; they now run Faust's handlers and wait for them.
  Fetching honours Faust's paused partitions (librdkafka pause/resume) instead of dropping the
  records of a paused partition, seeks and positions are synchronous calls (they were awaited),
  and headers reach the message.

What still differs from the aiokafka driver: librdkafka cannot run Faust's own partition assignor,
so the group uses the `range` assignor. The inputs are co-partitioned and every member subscribes to
the same topics, so `range` still gives partition n of every topic (and changelog) to one member;
standby replicas are not assigned.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, cast

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from faust.exceptions import ProducerSendError
from faust.transport.consumer import RecordMap
from faust.transport.drivers import TRANSPORTS
from faust.transport.drivers import confluent as base
from faust.types import TP, ConsumerMessage, RecordMetadata
from mode.utils.futures import notify
from mode.utils.times import Seconds, want_seconds

SCHEME = "rdkafka"


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (the Java client's `Utils.murmur2`), as a signed 32-bit int."""
    length = len(data)
    seed = 0x9747B28C
    m = 0x5BD1E995
    h = (seed ^ length) & 0xFFFFFFFF
    end = length - length % 4
    for i in range(0, end, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = (h * m) & 0xFFFFFFFF
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= data[end + 2] << 16
    if rest >= 2:
        h ^= data[end + 1] << 8
    if rest >= 1:
        h ^= data[end]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java client (and librdkafka's murmur2_random) picks for a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


# The two ends of a partition, as `get_watermark_offsets` returns them.
_LOW: Final[int] = 0
_HIGH: Final[int] = 1


def _servers(transport: Any) -> str:
    return base.server_list(transport.url, transport.default_port)


def _create_topic_now(
    servers: str,
    topic: str,
    partitions: int,
    replication: int,
    config: Mapping[str, Any],
    timeout_s: float,
) -> None:
    admin = AdminClient({"bootstrap.servers": servers})
    new = NewTopic(
        topic,
        num_partitions=partitions,
        replication_factor=max(replication, 1),
        config={k: str(v) for k, v in config.items()},
    )
    for future in admin.create_topics([new], operation_timeout=timeout_s).values():
        try:
            future.result(timeout=timeout_s + 5)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise


class _CreatesTopics:
    """Faust asks both the consumer thread and the producer to create topics; one body serves
    both: through the admin client, in a worker thread (it blocks), an existing topic being no
    error."""

    transport: Any

    async def create_topic(
        self,
        topic: str,
        partitions: int,
        replication: int,
        *,
        config: Mapping[str, Any] | None = None,
        timeout: Seconds = 30.0,
        retention: Seconds | None = None,
        compacting: bool | None = None,
        deleting: bool | None = None,
        ensure_created: bool = False,
    ) -> None:
        settings = {**_topic_config(retention, compacting, deleting), **(config or {})}
        await asyncio.get_running_loop().run_in_executor(
            None,
            _create_topic_now,
            _servers(self.transport),
            topic,
            partitions,
            replication,
            settings,
            float(want_seconds(timeout)),
        )


def _topic_config(
    retention: Seconds | None, compacting: bool | None, deleting: bool | None
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    policies = [name for name, on in (("compact", compacting), ("delete", deleting)) if on]
    if policies:
        config["cleanup.policy"] = ",".join(policies)
    if retention is not None:
        config["retention.ms"] = int(want_seconds(retention) * 1000)
    return config


class ConsumerThread(_CreatesTopics, base.ConfluentConsumerThread):
    """The consumer thread, with rebalances that complete and fetches that honour pauses."""

    _paused: set[TP]

    def _create_worker_consumer(self, transport: Any, loop: asyncio.AbstractEventLoop) -> Any:
        conf = self.app.conf
        self._paused = set()
        consumer = base.AsyncConsumer(
            {
                "bootstrap.servers": _servers(transport),
                "group.id": conf.id,
                "client.id": conf.broker_client_id,
                "auto.offset.reset": conf.consumer_auto_offset_reset,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "partition.assignment.strategy": "range",
                "fetch.max.bytes": conf.consumer_max_fetch_size,
                "check.crcs": conf.broker_check_crcs,
                "session.timeout.ms": int(conf.broker_session_timeout * 1000.0),
                "heartbeat.interval.ms": int(conf.broker_heartbeat_interval * 1000.0),
                "max.poll.interval.ms": int(conf.broker_max_poll_interval * 1000.0),
            },
            self.logger,
        )
        return consumer

    async def subscribe(self, topics: Iterable[str]) -> None:
        # librdkafka serves rebalance callbacks only inside poll/consume, and Faust starts
        # fetching only after its first assignment: the thread polls until that assignment,
        # keeping any record it reads for the first fetch.
        self._stash: list[Any] = []
        await self.cast_thread(self._subscribe_and_poll, list(topics))

    async def _subscribe_and_poll(self, topics: list[str]) -> None:
        raw = self._raw()
        self._assigned = False
        raw.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke)
        while not self._assigned and not self.should_stop:
            message = raw.poll(0.1)
            if message is not None and message.error() is None:
                self._stash.append(message)

    def _raw(self) -> confluent_kafka.Consumer:
        return self._ensure_consumer().consumer

    def _on_assign(self, consumer: Any, assigned: list[TopicPartition]) -> None:
        # Inside librdkafka's rebalance callback nothing may wait on the consumer from another
        # thread (its own calls block until the callback returns), so Faust's handler runs after
        # it; the new partitions stay paused until Faust makes them active (see getmany).
        tps = {TP(tp.topic, tp.partition) for tp in assigned}
        self._assignment = self.assignment() | tps
        consumer.assign(assigned)
        consumer.pause(assigned)
        self._paused |= tps
        self._assigned = True
        self.thread_loop.create_task(self.on_partitions_assigned(tps))

    def _on_revoke(self, consumer: Any, revoked: list[TopicPartition]) -> None:
        tps = {TP(tp.topic, tp.partition) for tp in revoked}
        # Faust commits after this; offsets of partitions already gone are discarded by it
        # (processed again by their next owner: at least once).
        self._assignment = self.assignment() - tps
        self._paused -= tps
        self.thread_loop.create_task(self.on_partitions_revoked(tps))

    def assignment(self) -> set[TP]:
        return set(getattr(self, "_assignment", ()))

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # librdkafka's consumer is thread-safe apart from polling; blocking calls go to a worker
        # thread instead of this thread's queue, which is busy polling (and would deadlock when a
        # rebalance handler running inside the poll waits on them).
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        raw = self._raw()
        assignment = [TopicPartition(tp.topic, tp.partition) for tp in self.assignment()]
        committed = await self._run(raw.committed, assignment, timeout=30)
        out: dict[TP, int] = {}
        # Faust seeks back here after dropping records it fetched while its flow was stopped
        # (during a rebalance): a partition without a committed offset goes back to where the
        # reset policy starts it, as the aiokafka driver does, or those records are skipped.
        reset = (
            confluent_kafka.OFFSET_BEGINNING
            if self.app.conf.consumer_auto_offset_reset == "earliest"
            else confluent_kafka.OFFSET_END
        )
        for tp in committed:
            start = tp.offset if tp.offset >= 0 else reset
            self._seek_now(raw, TopicPartition(tp.topic, tp.partition, start))
            out[TP(tp.topic, tp.partition)] = tp.offset
        return out

    def _seek_now(self, raw: confluent_kafka.Consumer, tp: TopicPartition) -> None:
        try:
            raw.seek(tp)
        except KafkaException:
            # Not fetching yet: an assign with the offset sets the start position instead.
            raw.incremental_unassign([TopicPartition(tp.topic, tp.partition)])
            raw.incremental_assign([tp])

    async def commit(self, tps: Mapping[TP, int]) -> bool:
        offsets = [TopicPartition(tp.topic, tp.partition, offset) for tp, offset in tps.items()]
        await self._run(self._raw().commit, offsets=offsets, asynchronous=False)
        return True

    async def position(self, tp: TP) -> int | None:
        (found,) = self._raw().position([TopicPartition(tp.topic, tp.partition)])
        return int(found.offset) if found.offset >= 0 else None

    async def seek_to_beginning(self, *partitions: Any) -> None:
        raw = self._raw()
        for tp in partitions:
            self._seek_now(
                raw, TopicPartition(tp.topic, tp.partition, confluent_kafka.OFFSET_BEGINNING)
            )

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        raw = self._raw()
        for tp, offset in partitions.items():
            self._seek_now(raw, TopicPartition(tp.topic, tp.partition, offset))

    def seek(self, partition: TP, offset: int) -> None:
        self._seek_now(self._raw(), TopicPartition(partition.topic, partition.partition, offset))

    def highwater(self, tp: TP) -> int:
        _, high = self._raw().get_watermark_offsets(
            TopicPartition(tp.topic, tp.partition), cached=True
        )
        return int(high) if high is not None and high >= 0 else 0

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        return await self._watermarks(partitions, _HIGH)

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return await self._watermarks(partitions, _LOW)

    async def _watermarks(self, partitions: tuple[TP, ...], which: int) -> Mapping[TP, int]:
        """One end (`_LOW` or `_HIGH`) of each partition, asked of the broker off the loop."""
        raw = self._raw()

        def ask() -> dict[TP, int]:
            ends = {
                tp: raw.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
                for tp in partitions
            }
            return {tp: end[which] for tp, end in ends.items()}

        return cast(Mapping[TP, int], await self._run(ask))

    def topic_partitions(self, topic: str) -> int | None:
        metadata = self._raw().list_topics(topic, timeout=10).topics.get(topic)
        return len(metadata.partitions) if metadata is not None and not metadata.error else None

    def verify_event_path(self, now: float, tp: TP) -> None:
        return None

    async def getmany(self, active_partitions: set[TP] | None, timeout: float) -> RecordMap:
        raw = self._raw()
        if active_partitions is not None:
            assigned = self.assignment()
            pause = (assigned - active_partitions) - self._paused
            resume = self._paused & active_partitions
            if pause:
                raw.pause([TopicPartition(tp.topic, tp.partition) for tp in pause])
                self._paused |= pause
            if resume:
                raw.resume([TopicPartition(tp.topic, tp.partition) for tp in resume])
                self._paused -= resume
        messages = await self.call_thread(
            raw.consume,  # type: ignore[arg-type]  # mode runs plain callables too
            num_messages=10000,
            timeout=timeout,
        )
        stash = getattr(self, "_stash", None)
        if stash:
            messages = stash + messages
            self._stash = []
        records: RecordMap = defaultdict(list)
        for message in messages:
            if message.error() is not None:
                continue
            records[TP(message.topic(), message.partition())].append(message)
        return records

    def key_partition(
        self, topic: str, key: bytes | None, partition: int | None = None
    ) -> int | None:
        if partition is not None or key is None:
            return partition
        count = self.topic_partitions(topic)
        return partition_for(key, count) if count else None


class Consumer(base.Consumer):
    def _new_consumer_thread(self) -> ConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def _to_message(self, tp: TP, record: Any) -> ConsumerMessage:
        timestamp_type, timestamp = record.timestamp()
        key = record.key()
        value = record.value()
        return ConsumerMessage(
            record.topic(),
            record.partition(),
            record.offset(),
            timestamp / 1000.0 if timestamp is not None else 0.0,
            timestamp_type,
            record.headers() or [],
            key,
            value,
            None,
            len(key) if key is not None else 0,
            len(value) if value is not None else 0,
            tp,
        )

    def verify_event_path(self, now: float, tp: TP) -> None:
        return None


class ProducerThread(base.ProducerThread):
    """librdkafka's producer with the app's settings; delivery reports reach asyncio safely."""

    async def on_start(self) -> None:
        conf = self.app.conf
        self.event_queue = asyncio.Queue()
        self._stopping = False
        config: dict[str, Any] = {
            "bootstrap.servers": _servers(self.transport),
            "client.id": conf.broker_client_id,
            "acks": "all" if conf.producer_acks == -1 else conf.producer_acks,
            "linger.ms": max(int(conf.producer_linger * 1000), 0),
            "partitioner": "murmur2_random",
            "message.max.bytes": conf.producer_max_request_size,
            "max.in.flight.requests.per.connection": 5,
            "enable.idempotence": conf.producer_acks == -1,
        }
        if conf.producer_compression_type:
            config["compression.type"] = conf.producer_compression_type
        self._producer = confluent_kafka.Producer(config)

    async def flush(self) -> None:
        producer = self._producer
        if producer is not None:
            loop = asyncio.get_running_loop()
            while await loop.run_in_executor(None, producer.flush, 1.0):
                pass

    def produce_record(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        on_delivery: Callable[[Any, Any], None],
    ) -> None:
        producer = self._ensure_producer()
        kwargs: dict[str, Any] = {"key": key, "value": value, "on_delivery": on_delivery}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp:
            kwargs["timestamp"] = int(timestamp * 1000)
        if headers:
            kwargs["headers"] = list(headers.items()) if isinstance(headers, dict) else headers
        while True:
            try:
                producer.produce(topic, **kwargs)
                break
            except BufferError:
                producer.poll(0.05)
        notify(self._flush_soon)


class Producer(_CreatesTopics, base.Producer):
    _producer_thread: ProducerThread

    def __post_init__(self) -> None:
        self._producer_thread = ProducerThread(self, loop=self.loop, beacon=self.beacon)

    async def on_start(self) -> None:
        await self._producer_thread.start()

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        loop = self.loop
        future: asyncio.Future[RecordMetadata] = loop.create_future()

        def settle(err: Any, msg: Any) -> None:
            if future.done():
                return
            if err is not None:
                future.set_exception(ProducerSendError(f"delivery to {topic} failed: {err}"))
            else:
                tp = TP(msg.topic(), msg.partition())
                future.set_result(RecordMetadata(tp.topic, tp.partition, tp, msg.offset()))

        def on_delivery(err: Any, msg: Any) -> None:  # librdkafka's polling thread
            loop.call_soon_threadsafe(settle, err, msg)

        self._producer_thread.produce_record(
            topic, key, value, partition, timestamp, headers, on_delivery
        )
        return future

    def key_partition(self, topic: str, key: bytes) -> TP:
        producer = self._producer_thread._ensure_producer()
        count = len(producer.list_topics(topic, timeout=10).topics[topic].partitions)
        return TP(topic, partition_for(key, count))


class Transport(base.Transport):
    Consumer = Consumer
    Producer = Producer


def register() -> None:
    """Make `rdkafka://` broker URLs resolve to this transport (idempotent)."""
    TRANSPORTS.aliases[SCHEME] = f"{__name__}:Transport"


def transport_names(urls: Iterable[str]) -> set[str]:
    return {url.split("://", 1)[0] for url in urls}
