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

from stream.errors import BrokerUnreachableError
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
