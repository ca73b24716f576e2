"""Whether a Kafka cluster answers, asked once before a command relies on it.

Without this, a client aimed at a dead address retries for as long as its own timeouts allow and
the user sees a traceback or a stream of librdkafka lines; with it, the command stops with one
sentence naming the address and the wait (`BrokerUnreachableError`, exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ClusterMetadata  # type: ignore[attr-defined]

from stream.errors import BrokerUnreachableError, RunError
from stream.logs import librdkafka_log

DEFAULT_WAIT_SECONDS: Final[float] = 10.0


def require_broker(
    config: Mapping[str, Any],
    timeout: float = DEFAULT_WAIT_SECONDS,
    admin: AdminClient | None = None,
) -> ClusterMetadata:
    """The cluster's metadata, or `BrokerUnreachableError` if no broker answers within `timeout`.

    Asks through `admin` when the caller has one; otherwise through a client of its own whose
    librdkafka lines go through the project's logging.
    """
    if admin is None:
        admin = AdminClient({"logger": librdkafka_log(), **config})
    try:
        metadata: ClusterMetadata = admin.list_topics(timeout=timeout)
    except KafkaException:
        raise BrokerUnreachableError(str(config.get("bootstrap.servers", "?")), timeout) from None
    return metadata


def require_topic(metadata: ClusterMetadata, topic: str, holds: str = "") -> None:
    """`RunError` (exit 1, as every command on a missing topic) unless `topic` exists in the
    cluster's `metadata`: asked once, before a client would retry into it for a minute. `holds`
    says what the topic carries, for the message."""
    if topic not in metadata.topics:
        what = f" ({holds})" if holds else ""
        raise RunError(
            f"topic {topic!r}{what} does not exist; run `escalation topics` with the same "
            "ESCALATION_* settings to create it"
        )
