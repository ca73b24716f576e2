"""Faust's aiokafka producer with a flush that waits for every buffered send.

Faust commits a consumer offset right after `producer.flush()`, so the flush is what keeps
at-least-once: every decision, handoff and changelog record sent with `send_soon` for a record
must have left Faust's send buffer before that record's offset is committed. Faust's own buffer
flush gives up as soon as 0.1 s pass without one buffered send completing, and returns with
records still queued; on a CPU-starved host (or behind a slow `send`), the offset is then
committed ahead of its outputs, and a crash at that moment loses them for good.

Here the buffer counts what was put and not yet handed to the Kafka client, and its flush waits
until that count is zero. aiokafka's own flush, which Faust calls next, then waits until the
client has delivered it. The wait has no deadline on purpose: a commit must never pass an output
that was not sent, and a buffer that cannot drain is a producer that is stopping, which is refused.
"""

from __future__ import annotations

import asyncio
from typing import Any

from faust.transport.drivers.aiokafka import Producer as AIOKafkaProducer
from faust.transport.producer import ProducerBuffer
from faust.types.tuples import FutureMessage

#: How often a waiting flush checks that the buffer is still running.
_RECHECK_SECONDS = 1.0


class DrainingBuffer(ProducerBuffer):
    """A send buffer whose flush returns only once every message put in it was handed over."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.unsent = 0
        self._drained = asyncio.Event()
        self._drained.set()

    def put(self, fut: FutureMessage) -> None:
        self.unsent += 1
        self._drained.clear()
        super().put(fut)

    async def _send_pending(self, fut: FutureMessage) -> None:
        try:
            await super()._send_pending(fut)
        finally:
            self.unsent -= 1
            if self.unsent == 0:
                self._drained.set()

    async def flush_atmost(self, max_messages: int | None) -> int:
        # A bounded flush (Faust's backpressure) and threaded producers, which hand messages to
        # another loop, keep Faust's own behaviour; only the full flush before a commit drains.
        if max_messages is not None or getattr(self, "threaded_producer", None) is not None:
            return await super().flush_atmost(max_messages)
        before = self.unsent
        while self.unsent:
            if self.state != "running":
                raise RuntimeError(
                    f"cannot flush: {self.unsent} buffered sends and the producer is {self.state}"
                )
            try:
                await asyncio.wait_for(self._drained.wait(), timeout=_RECHECK_SECONDS)
            except TimeoutError:
                continue
        return before


class DrainingProducer(AIOKafkaProducer):
    """Faust's aiokafka producer with a `DrainingBuffer`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        threaded = getattr(self.buffer, "threaded_producer", None)
        self.buffer = DrainingBuffer(loop=self.loop, beacon=self.beacon)
        if threaded is not None:
            self.buffer.threaded_producer = threaded
        self.buffer.app = self.app
