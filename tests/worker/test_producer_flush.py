"""The flush before a commit waits for every buffered send, however slow each one is."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.transport.producer import ProducerBuffer

from stream.settings import Settings
from stream.worker.app import build_app
from stream.worker.producer import DrainingBuffer

#: Longer than Faust's own 0.1 s wait for one buffered send.
SLOW_SEND_SECONDS = 0.3


class SlowChannel:
    """A channel whose publish takes longer than Faust's flush waits for one send."""

    def __init__(self) -> None:
        self.published: list[int] = []

    async def publish_message(self, fut: Any, wait: bool = False) -> None:
        await asyncio.sleep(SLOW_SEND_SECONDS)
        self.published.append(fut.number)


def _future(channel: SlowChannel, number: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(channel=channel), number=number)


async def _flushed(buffer: ProducerBuffer, count: int, at_most: int | None = None) -> list[int]:
    """Put `count` sends in a running buffer, flush it (all, or `at_most`), and say what was
    published by then."""
    buffer.app = SimpleNamespace(conf=SimpleNamespace(producer_threaded=False))  # type: ignore[assignment]
    channel = SlowChannel()
    await buffer.start()
    try:
        for number in range(count):
            buffer.put(_future(channel, number))
        if at_most is None:
            await buffer.flush()
        else:
            await buffer.flush_atmost(at_most)
        at_flush = list(channel.published)
        # Let the rest go out, so that stopping the buffer is not refused (bounded).
        for _ in range(100):
            if len(channel.published) == count:
                break
            await asyncio.sleep(SLOW_SEND_SECONDS / 3)
        return at_flush
    finally:
        await buffer.stop()


def test_fausts_own_flush_returns_with_sends_still_buffered() -> None:
    """The defect the draining buffer exists for: a commit after it passes unsent sends."""
    published = asyncio.run(_flushed(ProducerBuffer(), 4))
    assert len(published) < 4


def test_draining_flush_returns_only_after_every_send() -> None:
    published = asyncio.run(_flushed(DrainingBuffer(), 4))
    assert published == [0, 1, 2, 3]


def test_a_bounded_flush_still_returns_early_as_fausts_backpressure_expects() -> None:
    published = asyncio.run(_flushed(DrainingBuffer(), 4, at_most=1))
    assert len(published) < 4


def test_draining_flush_of_an_empty_buffer_returns_at_once() -> None:
    assert asyncio.run(_flushed(DrainingBuffer(), 0)) == []


def test_the_worker_app_flushes_through_the_draining_buffer() -> None:
    app = build_app(Settings(bootstrap_servers="127.0.0.1:1"))
    assert isinstance(app.producer.buffer, DrainingBuffer)


def test_the_producer_lingers_as_the_settings_say() -> None:
    """The linger reaches the aiokafka producer's own settings, in milliseconds."""
    for seconds, millis in ((0.003, 3), (0.01, 10)):
        app = build_app(Settings(bootstrap_servers="127.0.0.1:1", producer_linger_seconds=seconds))
        assert app.producer._settings_default()["linger_ms"] == millis
