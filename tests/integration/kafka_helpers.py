"""Real-broker helpers for integration tests: isolated topics, a worker, produce and collect."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from stream.core.events import Event, event_to_dict
from stream.replay import CORPUS_PATH
from stream.serde import serde_for_topic
from stream.settings import Settings
from stream.topics import EVENT_TOPICS, ensure_topics, load_definitions
from stream.worker import readiness

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REPO = Path(__file__).resolve().parents[2]
# The real airline conversations, from the shared data sets the settings point at.
CORPUS = Settings().datasets_dir / CORPUS_PATH


def broker_available() -> bool:
    try:
        AdminClient({"bootstrap.servers": BOOTSTRAP}).list_topics(timeout=5)
    except KafkaException:
        return False
    return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def visible(bootstrap: str, partitions: dict[str, int], timeout: float = 60.0) -> None:
    """Block until the broker's metadata lists every topic with its partitions (bounded).

    A topic created a moment ago is "unknown" to metadata requests for a while (a fraction of a
    second, longer on a loaded broker, and while other topics are being deleted): a collector
    that asked then was assigned no partition and read nothing for good, and a worker started
    then refused to start over topics it found missing. Both looked like a worker that decided
    nothing ("0 dead letters").
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"meta-{uuid.uuid4().hex}"})
    try:
        deadline = time.monotonic() + timeout
        missing = dict(partitions)
        while missing:
            listed = consumer.list_topics(timeout=10).topics
            missing = {
                name: n
                for name, n in missing.items()
                if name not in listed or len(listed[name].partitions) != n
            }
            if missing:
                assert time.monotonic() < deadline, f"not in the broker's metadata: {missing}"
                time.sleep(0.2)
    finally:
        consumer.close()


@dataclass
class Isolated:
    """A unique topic prefix and app id, with every defined topic created under the prefix."""

    # A letter before the random part: ten bare digits would read as a phone number to the log
    # redaction, and a test that looks for its topics in the worker's log would not find them.
    prefix: str = field(default_factory=lambda: f"it-t{uuid.uuid4().hex[:10]}.")
    # The shared test broker unless a test runs its own (tests/integration/private_broker.py).
    bootstrap: str = BOOTSTRAP

    def __post_init__(self) -> None:
        self.app_id = f"{self.prefix}worker"
        definitions = {
            self.topic(name): d.renamed(self.topic(name)) for name, d in load_definitions().items()
        }
        reports = ensure_topics({"bootstrap.servers": self.bootstrap}, definitions)
        bad = [r for r in reports if r.status not in ("created", "ok")]
        assert not bad, bad
        visible(self.bootstrap, {name: d.partitions for name, d in definitions.items()})

    def topic(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def delete(self) -> None:
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(self.prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(KafkaException):
                    future.result(timeout=60)


def isolated_topics() -> Iterator[Isolated]:
    """Topics of their own on the real broker, deleted after; skips (fails under `make test`)
    when no broker answers."""
    if not broker_available():
        pytest.skip("no Kafka broker; start one with deploy/kafka/kafka.sh up")
    topics = Isolated()
    yield topics
    topics.delete()


def cli_env(isolated: Isolated, **extra: str) -> dict[str, str]:
    """The environment of an `escalation` command run against the isolated topics."""
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": BOOTSTRAP,
        "ESCALATION_TOPIC_PREFIX": isolated.prefix,
        "ESCALATION_APP_ID": isolated.app_id,
        **extra,
    }


def produce(
    isolated: Isolated,
    events: Iterable[tuple[str, dict[str, Any]]],
    pace: float = 0.0,
    *,
    at_event_time: bool = False,
    through_outage: bool = False,
) -> int:
    """Produce events keyed by customer; with `pace`, one at a time, delivered, `pace` s apart.

    With `at_event_time`, each record's timestamp is its event time, as the support platform
    stamps them, so a time range of the topics selects the events of that range.

    With `through_outage`, paced records are not awaited one by one: librdkafka holds them
    through a broker outage (up to 5 minutes) and delivers them when the broker is back, where a
    flush per record would fail; its reconnect logs are silenced.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": isolated.bootstrap,
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
    }
    if through_outage:
        config |= {"message.timeout.ms": 300_000, "log_level": 0}
    producer = Producer(config)
    count = 0
    for kind, record in events:
        topic = EVENT_TOPICS[kind]
        producer.produce(
            isolated.topic(topic),
            key=record["customer_id"].encode(),
            value=serde_for_topic(topic).encode(record),
            timestamp=record["occurred_at"] if at_event_time else 0,
        )
        count += 1
        if pace:
            if through_outage:
                producer.poll(0)
            else:
                assert producer.flush(10) == 0
            time.sleep(pace)
    assert producer.flush(240 if through_outage else 30) == 0
    return count


def produce_events(isolated: Isolated, events: Iterable[Event]) -> int:
    """Produce typed events as the support platform would: by customer, stamped at event time."""
    return produce(isolated, ((e.type, event_to_dict(e)) for e in events), at_event_time=True)


def produce_raw(
    isolated: Isolated,
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> None:
    producer = Producer({"bootstrap.servers": isolated.bootstrap, "partitioner": "murmur2_random"})
    producer.produce(isolated.topic(topic), key=key, value=value, headers=headers)
    assert producer.flush(30) == 0


class Collector:
    """Reads an output topic from the beginning and decodes it; waits, bounded, for a condition."""

    def __init__(self, isolated: Isolated, topic: str) -> None:
        self.topic = isolated.topic(topic)
        self.serde = serde_for_topic(topic)
        self.records: list[dict[str, Any]] = []
        self.raw: list[Any] = []
        self._consumer = Consumer(
            {
                "bootstrap.servers": isolated.bootstrap,
                "group.id": f"collector-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        # Never assigned to nothing: a topic the metadata does not list yet is asked again.
        deadline = time.monotonic() + 60
        partitions: dict[int, Any] = {}
        while not partitions:
            partitions = (
                self._consumer.list_topics(self.topic, timeout=10).topics[self.topic].partitions
            )
            if not partitions:
                assert time.monotonic() < deadline, f"{self.topic} has no partitions in metadata"
                time.sleep(0.2)
        self._consumer.assign(
            [TopicPartition(self.topic, p, 0) for p in partitions]  # from the start
        )

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 90.0
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.records):
                return self.records
            for msg in self._consumer.consume(500, timeout=0.5):
                if msg.error():
                    continue
                self.raw.append(msg)
                self.records.append(self.serde.decode(msg.value()))
        raise AssertionError(
            f"timed out after {timeout}s on {self.topic}; have {len(self.records)} records: "
            f"{self.records[-5:]}"
        )

    def drain(self, quiet: float = 3.0) -> list[dict[str, Any]]:
        """Everything that arrives until the topic has been quiet for `quiet` seconds."""
        last = time.monotonic()
        deadline = last + 120
        while time.monotonic() - last < quiet and time.monotonic() < deadline:
            batch = self._consumer.consume(500, timeout=0.5)
            for msg in batch:
                if not msg.error():
                    self.raw.append(msg)
                    self.records.append(self.serde.decode(msg.value()))
                    last = time.monotonic()
        return self.records

    def close(self) -> None:
        self._consumer.close()


@contextmanager
def running_worker(
    isolated: Isolated,
    data_dir: Path,
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    module: str = "stream.worker",
) -> Iterator[subprocess.Popen[bytes]]:
    """A real worker process on the isolated topics; stopped (SIGTERM, then SIGKILL) on exit.

    `module` is what `python -m` runs: a test's own entry point may build the worker with a
    fault injected (tests/integration/broken_model_worker.py)."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": isolated.bootstrap,
        "ESCALATION_TOPIC_PREFIX": isolated.prefix,
        "ESCALATION_APP_ID": isolated.app_id,
        "ESCALATION_DATA_DIR": str(data_dir),
        "ESCALATION_WEB_PORT": str(free_port()),
        **(extra_env or {}),
    }
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO, env=env, stdout=log, stderr=log
        )
        try:
            yield process
        finally:
            stop(process)


@dataclass
class WorkerRun:
    """A worker process started by `journalled_worker`, with its log and its journal."""

    process: subprocess.Popen[bytes]
    log: Path
    journal: Path

    def consumed(self, count: int, timeout: float = 120.0) -> list[tuple[str, int, int]]:
        """Its journal once it lists `count` records (bounded wait)."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while time.monotonic() < deadline:
            lines = self.journal.read_text().splitlines() if self.journal.exists() else []
            if len(lines) >= count:
                break
            time.sleep(0.5)
        assert len(lines) >= count, f"journal has {len(lines)} of {count} records"
        return [(t, int(p), int(o)) for t, p, o in (line.split("\t") for line in lines)]

    def assert_running(self) -> None:
        """Fails, with the end of its log, if the worker has exited."""
        assert self.process.poll() is None, self.log.read_text(errors="replace")[-3000:]


@contextmanager
def journalled_worker(
    isolated: Isolated,
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
    *,
    module: str = "stream.worker",
    state: str = "state",
) -> Iterator[WorkerRun]:
    """A worker that journals each record it folds, in order; yielded once it consumes.

    Its journal is `tmp_path / "consumed.tsv"`, its local store `tmp_path / state` and its log
    `tmp_path / "worker.log"`: a worker restarted with another store writes on in both. `extra_env`
    and `module` are as for `running_worker`."""
    log, journal = tmp_path / "worker.log", tmp_path / "consumed.tsv"
    env = {**(extra_env or {}), "ESCALATION_JOURNAL_PATH": str(journal)}
    with running_worker(isolated, tmp_path / state, log, env, module) as process:
        wait_until_consuming(isolated)
        yield WorkerRun(process, log, journal)


def wait_until_consuming(isolated: Isolated, timeout: float = 90.0) -> None:
    readiness.wait_until_consuming(
        {"bootstrap.servers": isolated.bootstrap},
        isolated.app_id,
        isolated.topic(EVENT_TOPICS["account"]),
        timeout,
    )


def messages_at(
    isolated: Isolated, positions: Iterable[tuple[str, int, int]], timeout: float = 60.0
) -> dict[tuple[str, int, int], Any]:
    """The raw records at these topic/partition/offset positions (bounded wait); fails naming how
    many were read if any is missing."""
    wanted = set(positions)
    found: dict[tuple[str, int, int], Any] = {}
    consumer = Consumer(
        {
            "bootstrap.servers": isolated.bootstrap,
            "group.id": f"read-back-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.assign(
            [TopicPartition(t, p, 0) for t, p in sorted({(t, p) for t, p, _ in wanted})]
        )
        deadline = time.monotonic() + timeout
        while len(found) < len(wanted) and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                position = (msg.topic(), msg.partition(), msg.offset())
                if not msg.error() and position in wanted:
                    found[position] = msg
    finally:
        consumer.close()
    assert len(found) == len(wanted), f"read back {len(found)} of {len(wanted)} records"
    return found


def read_back(
    isolated: Isolated, positions: list[tuple[str, int, int]]
) -> list[tuple[str, dict[str, Any]]]:
    """The records at these topic/partition/offset positions, decoded, in the order given."""
    kind_of = {isolated.topic(topic): kind for kind, topic in EVENT_TOPICS.items()}
    messages = messages_at(isolated, positions)
    out = []
    for position in positions:
        kind = kind_of[position[0]]
        out.append((kind, serde_for_topic(EVENT_TOPICS[kind]).decode(messages[position].value())))
    return out


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def set_topic_config(topic: str, timeout: float = 120.0, **config: str) -> None:
    """Changes configs of one topic (names with dots as keyword arguments with underscores) and
    returns once the broker reports them (bounded by `timeout`).

    The change is acknowledged by the controller before the broker applies it; under load that
    gap was long enough for a record produced next to meet the old limit.
    """
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
        ResourceType,
    )

    entries = [
        ConfigEntry(k.replace("_", "."), v, incremental_operation=AlterConfigOpType.SET)
        for k, v in config.items()
    ]
    admin = AdminClient({"bootstrap.servers": BOOTSTRAP})
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=entries)
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)
    wanted = {entry.name: entry.value for entry in entries}
    deadline = time.monotonic() + timeout
    while True:
        [described] = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
        now = {name: entry.value for name, entry in described.result(timeout=30).items()}
        if all(now.get(name) == value for name, value in wanted.items()):
            return
        assert time.monotonic() < deadline, f"{topic}: {wanted} not in force after {timeout}s"
        time.sleep(0.5)


def produce_at(
    topic: str, key: bytes | None, value: bytes | None, max_bytes: int = 1_048_576
) -> tuple[int, int]:
    """Produces one record and returns the partition and offset it was written at."""
    producer = Producer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "partitioner": "murmur2_random",
            "message.max.bytes": max_bytes + 4096,
        }
    )
    written: list[tuple[int, int]] = []

    def delivered(err: Any, msg: Any) -> None:
        assert err is None, err
        written.append((msg.partition(), msg.offset()))

    producer.produce(topic, key=key, value=value, on_delivery=delivered)
    assert producer.flush(30) == 0
    return written[0]


def committed_offset(group: str, topic: str, partition: int, bootstrap: str = BOOTSTRAP) -> int:
    """The group's committed offset on one partition; -1001 when it has committed none."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def changelog_values(isolated: Isolated, customer_id: str) -> list[bytes | None]:
    """Every record of the state changelog for one customer, in order (None: a tombstone)."""
    topic = f"{isolated.app_id}-customer-state-changelog"
    key = customer_id.encode()
    consumer = Consumer(
        {"bootstrap.servers": isolated.bootstrap, "group.id": f"cl-{uuid.uuid4().hex}"}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in parts}
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        values: list[bytes | None] = []
        seen = dict.fromkeys(parts, 0)
        deadline = time.monotonic() + 60
        while any(seen[p] < ends[p] for p in parts) and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                offset = msg.offset()
                if msg.error() or offset is None:
                    continue
                seen[msg.partition()] = offset + 1
                # Faust writes table keys in its JSON serializer: the customer id quoted
                if msg.key() in (key, b'"' + key + b'"'):
                    values.append(msg.value())
        return values
    finally:
        consumer.close()


def wait_for_log(path: Path, needle: str, timeout: float = 60.0) -> str:
    """The first line of a log that contains `needle` (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            for line in path.read_text(errors="replace").splitlines():
                if needle in line:
                    return line
        time.sleep(0.5)
    raise AssertionError(f"no line with {needle!r} in {path} within {timeout}s")


def assert_backtest_parity(
    isolated: Isolated, consumed: list[tuple[str, int, int]], live: list[dict[str, Any]]
) -> int:
    """The backtest of the records the worker journalled, in its order, gives its decisions.

    Records the worker dead-lettered (undecodable or invalid) are skipped by the backtest too.
    Duplicates a redelivery published must be the same decision; returns the number compared.
    """
    from stream.backtest.run import run_policy
    from stream.core.events import EventError, event_from_dict
    from stream.core.policy import default_policy
    from stream.serde import SerdeError

    kind_of = {isolated.topic(topic): kind for kind, topic in EVENT_TOPICS.items()}
    found: dict[tuple[str, int, int], Any] = {}
    for position, msg in messages_at(isolated, consumed).items():
        kind = kind_of[msg.topic()]
        try:
            record = serde_for_topic(EVENT_TOPICS[kind]).decode(msg.value())
            event = event_from_dict(kind, record)
        except (SerdeError, EventError):
            continue
        # The worker dead-letters a record keyed to another customer; so does this.
        if msg.key() == event.customer_id.encode():
            found[position] = event
    expected = run_policy((found[p] for p in consumed if p in found), default_policy())
    replayed = {d.decision_id: d.to_record() for d in expected.decisions}
    published: dict[str, dict[str, Any]] = {}
    for record in live:
        first = published.setdefault(record["decision_id"], record)
        assert first == record, f"two different decisions with id {record['decision_id']}"
    assert set(published) == set(replayed), (
        f"live only: {sorted(set(published) - set(replayed))[:5]}, "
        f"backtest only: {sorted(set(replayed) - set(published))[:5]}"
    )
    for decision_id, record in published.items():
        want = replayed[decision_id]
        differ = {k: (record.get(k), want.get(k)) for k in record.keys() | want.keys()
                  if record.get(k) != want.get(k)}  # fmt: skip
        assert not differ, f"{decision_id}: live vs backtest {differ}"
    return len(published)


def committed_total(
    isolated: Isolated, topics: list[str], total: int, timeout: float = 300.0
) -> int:
    """Block until the worker's group has committed `total` records over `topics` (bounded)."""
    consumer = Consumer({"bootstrap.servers": isolated.bootstrap, "group.id": isolated.app_id})
    try:
        parts = [
            TopicPartition(topic, p)
            for topic in topics
            for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        deadline = time.monotonic() + timeout
        done = 0
        while time.monotonic() < deadline:
            done = sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
            if done >= total:
                return done
            time.sleep(1.0)
    finally:
        consumer.close()
    raise AssertionError(f"the worker committed {done} of {total} records within {timeout}s")
