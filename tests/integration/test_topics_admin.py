"""ensure_topics on the real broker: creates, is idempotent, reports drift without hiding it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from stream.topics import (
    TopicDefinition,
    TopicReport,
    admin_config_from_bootstrap,
    ensure_topics,
    load_definitions,
)
from tests.integration.kafka_helpers import set_topic_config, visible

pytestmark = pytest.mark.integration

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
# A customer-keyed input, a compacted snapshot topic and the single-partition policy topic.
SAMPLE = ("support.messages", "support.accounts", "escalation.policy")
T = TypeVar("T")


@pytest.fixture(scope="module")
def admin() -> AdminClient:
    client = AdminClient(admin_config_from_bootstrap(BOOTSTRAP))
    try:
        client.list_topics(timeout=5)
    except KafkaException as exc:
        pytest.skip(f"no Kafka at {BOOTSTRAP} ({exc}); start one with deploy/kafka/kafka.sh up")
    return client


@pytest.fixture
def prefix(admin: AdminClient) -> Iterator[str]:
    """A unique topic prefix per test, so tests never see each other's topics; deleted after."""
    value = f"it-t{uuid.uuid4().hex[:12]}."
    yield value
    names = [name for name in admin.list_topics(timeout=10).topics if name.startswith(value)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            future.result(timeout=60)


@pytest.fixture
def defs(prefix: str) -> dict[str, TopicDefinition]:
    loaded = load_definitions()
    return {prefix + name: loaded[name].renamed(prefix + name) for name in SAMPLE}


def partitions_of(admin: AdminClient, topic: str) -> int:
    # Another client's metadata can lag a topic just created on a loaded broker: bounded wait.
    deadline = time.monotonic() + 30
    while True:
        count = len(admin.list_topics(topic=topic, timeout=10).topics[topic].partitions)
        if count or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


def while_unknown(call: Callable[[], T], timeout: float = 60.0) -> T:
    """Calls again while the broker answers "unknown topic or partition" (bounded).

    A loaded broker can list a topic created a moment ago and still not know it when asked for
    or told its configs; any other error, or the same one past the deadline, is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except KafkaException as exc:
            unknown = exc.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART
            if not unknown or time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def topic_config(admin: AdminClient, topic: str) -> dict[str, str | None]:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = while_unknown(lambda: admin.describe_configs([resource])[resource].result(timeout=30))
    return {key: entry.value for key, entry in entries.items()}


def create_topic(admin: AdminClient, topic: str, partitions: int) -> None:
    future = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    future[topic].result(timeout=30)
    visible(BOOTSTRAP, {topic: partitions})


def statuses(reports: list[TopicReport]) -> dict[str, str]:
    return {r.topic: r.status for r in reports}


def test_creates_missing_topics_then_reports_ok(
    admin: AdminClient, prefix: str, defs: dict[str, TopicDefinition]
) -> None:
    config = admin_config_from_bootstrap(BOOTSTRAP)

    first = ensure_topics(config, defs)

    assert statuses(first) == dict.fromkeys(defs, "created")
    assert partitions_of(admin, prefix + "support.messages") == 4
    assert partitions_of(admin, prefix + "escalation.policy") == 1
    accounts = topic_config(admin, prefix + "support.accounts")
    assert accounts["cleanup.policy"] == "compact"
    assert accounts["retention.ms"] == "-1"

    # Running it again right away changes nothing: the definitions are already in force.
    second = ensure_topics(config, defs)

    assert statuses(second) == dict.fromkeys(defs, "ok"), [r.detail for r in second]


def test_check_mode_creates_nothing(
    admin: AdminClient, prefix: str, defs: dict[str, TopicDefinition]
) -> None:
    reports = ensure_topics(admin_config_from_bootstrap(BOOTSTRAP), defs, apply=False)

    assert statuses(reports) == dict.fromkeys(defs, "drift")
    assert all("does not exist" in r.detail for r in reports)
    assert not [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]


def test_fewer_partitions_is_drift_until_growth_is_asked_for(
    admin: AdminClient, prefix: str, defs: dict[str, TopicDefinition]
) -> None:
    config = admin_config_from_bootstrap(BOOTSTRAP)
    messages = prefix + "support.messages"
    # Given a topic someone created by hand with too few partitions
    create_topic(admin, messages, partitions=2)

    # When the definitions are ensured
    reports = {r.topic: r for r in ensure_topics(config, defs)}

    # Then it is reported, left alone, and the other topics are still created
    assert reports[messages].status == "drift"
    assert "has 2 partitions, defined 4" in reports[messages].detail
    assert partitions_of(admin, messages) == 2
    assert reports[prefix + "support.accounts"].status == "created"

    # And growing happens only on request, after which the topic is in line
    grown = {r.topic: r for r in ensure_topics(config, defs, grow_partitions=True)}
    assert grown[messages].status == "updated"
    assert "partitions 2 -> 4" in grown[messages].detail
    deadline = time.monotonic() + 10
    while partitions_of(admin, messages) != 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert statuses(ensure_topics(config, defs)) == dict.fromkeys(defs, "ok")


def test_more_partitions_is_drift(
    admin: AdminClient, prefix: str, defs: dict[str, TopicDefinition]
) -> None:
    policy = prefix + "escalation.policy"
    create_topic(admin, policy, partitions=3)

    reports = {
        r.topic: r
        for r in ensure_topics(admin_config_from_bootstrap(BOOTSTRAP), defs, grow_partitions=True)
    }

    assert reports[policy].status == "drift"
    assert "has 3 partitions, defined 1" in reports[policy].detail
    assert "cannot reduce" in reports[policy].detail


def wait_for_config(admin: AdminClient, topic: str, key: str, value: str) -> None:
    deadline = time.monotonic() + 30
    while topic_config(admin, topic)[key] != value:
        assert time.monotonic() < deadline, f"{topic} {key} never became {value}"
        time.sleep(0.2)


def test_config_difference_is_reported_then_updated(
    admin: AdminClient, prefix: str, defs: dict[str, TopicDefinition]
) -> None:
    config = admin_config_from_bootstrap(BOOTSTRAP)
    messages = prefix + "support.messages"
    ensure_topics(config, defs)
    visible(BOOTSTRAP, {name: d.partitions for name, d in defs.items()})
    # Given someone shortened the retention of a topic by hand
    while_unknown(lambda: set_topic_config(messages, retention_ms="3600000"))
    defined = defs[messages].config["retention.ms"]
    # A KRaft broker applies a config change after acknowledging it; under load that takes a while.
    wait_for_config(admin, messages, "retention.ms", "3600000")

    # When checking, the difference is drift and nothing changes (a loaded broker can take a
    # moment before every client's metadata lists the topic just created, and before it
    # describes the config just altered: bounded wait)
    deadline = time.monotonic() + 30
    while True:
        checked = {r.topic: r for r in ensure_topics(config, defs, apply=False)}
        if checked[messages].status == "drift" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert checked[messages].status == "drift"
    assert f"retention.ms is 3600000, defined {defined}" in checked[messages].detail
    assert topic_config(admin, messages)["retention.ms"] == "3600000"

    # When applying, the definition is restored
    applied = {r.topic: r for r in ensure_topics(config, defs)}
    assert applied[messages].status == "updated"
    assert f"retention.ms 3600000 -> {defined}" in applied[messages].detail
    wait_for_config(admin, messages, "retention.ms", defined)
    assert statuses(ensure_topics(config, defs)) == dict.fromkeys(defs, "ok")
