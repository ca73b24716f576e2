"""How the worker's consumer fetches: a few records per request instead of one.

faust-streaming builds its aiokafka consumer with `fetch_min_bytes` 1 and `fetch_max_wait_ms`
1500 and exposes neither. With a minimum of one byte the broker answers a fetch as soon as one
record is there, so under paced traffic (a few hundred events/s) the worker sent a fetch request
per record or two: in a 20 s run at 350 events/s, 2,600-3,900 fetches, each a request, a response
parsed for every assigned partition and a hop between Faust's consumer thread and the agent's
loop. Asking for `fetch_min_bytes` with a short `fetch_max_wait_ms` lets the broker gather what
arrives within the wait into one answer: 690-840 fetches in the same run, 20% less CPU per event,
and at most the wait added to a record's way in. A backlog fills the minimum at once, so draining
one is unchanged, and so is every decision: only how records are grouped into fetches changes.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


class BatchedFetchThread(AIOKafkaConsumerThread):
    """Faust's aiokafka consumer thread, with the app's `fetch_min_bytes` and
    `fetch_max_wait_ms` (attributes of the app; Faust's defaults where it has none)."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        configure_fetch(
            consumer,
            getattr(self.app, "fetch_min_bytes", None),
            getattr(self.app, "fetch_max_wait_ms", None),
        )
        return consumer


def configure_fetch(consumer: Any, min_bytes: int | None, max_wait_ms: int | None) -> None:
    """Set an aiokafka consumer's fetch minimum and wait before it is started.

    aiokafka keeps its constructor's `fetch_min_bytes` and `fetch_max_wait_ms` under these names
    and hands them to its fetcher in `start()`; Faust passes fixed values to the constructor.
    """
    for name, value in (("_fetch_min_bytes", min_bytes), ("_fetch_max_wait_ms", max_wait_ms)):
        if value is None:
            continue
        if not hasattr(consumer, name):
            raise RuntimeError(f"this aiokafka consumer has no {name}; cannot set it to {value}")
        setattr(consumer, name, value)
