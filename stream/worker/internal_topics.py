"""The worker's changelog and internal topics, created and visible before Faust joins the group.

Faust creates them itself on start, but its consumer can join the group before the new topics
reach its metadata: the assignment then lacks the changelog partitions, and the customer agent
fails with `PartitionsMismatch` on its first event and on every in-place restart after it (the
liveness probe catches that loop; this keeps it from happening). Created here with Faust's own
names, partitions and cleanup settings, read from the built app, so nothing is named twice.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

log = structlog.get_logger(__name__)


def specs(app: Any) -> dict[str, tuple[int, dict[str, str]]]:
    """Name -> (partitions, config) of every changelog and internal topic of a built app."""
    default = int(app.conf.topic_partitions)
    wanted: dict[str, tuple[int, dict[str, str]]] = {}
    for table in app.tables.values():
        topic = table.changelog_topic
        wanted[topic.get_topic_name()] = (int(table.partitions or default), _config(topic))
    for agent in app.agents.values():
        channel = agent.channel
        if getattr(channel, "internal", False):
            for name in channel.topics:
                wanted[name] = (int(channel.partitions or default), _config(channel))
    return wanted


def _config(topic: Any) -> dict[str, str]:
    config = {str(k): str(v) for k, v in (topic.config or {}).items()}
    policies = [p for p, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on]
    if policies:
        config["cleanup.policy"] = ",".join(policies)
    if topic.retention:
        config["retention.ms"] = str(int(float(topic.retention) * 1000))
    return config


def prepare(
    app: Any, client_config: dict[str, Any], replication: int = 1, timeout: float = 30.0
) -> bool:
    """Creates what is missing and waits until the broker lists all of them (bounded).

    Returns False, with a warning logged, when they could not be made ready in time; the worker
    then starts anyway and Faust creates them as it always did.
    """
    wanted = specs(app)
    admin = AdminClient(client_config)
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
        missing = [
            NewTopic(name, partitions, replication, config=config)
            for name, (partitions, config) in wanted.items()
            if name not in existing
        ]
        if missing:
            for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
                try:
                    future.result(timeout=timeout)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise
                log.info("internal_topic_created", topic=name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            listed = admin.list_topics(timeout=timeout).topics
            if all(name in listed and listed[name].partitions for name in wanted):
                return True
            time.sleep(0.5)
    except KafkaException as exc:
        log.warning("internal_topics_not_prepared", error=str(exc.args[0]))
        return False
    log.warning("internal_topics_not_listed", topics=sorted(wanted), seconds=timeout)
    return False
