"""The fetch loop hands each record to its agent inline while the flow runs, as Faust does
while it is suspended (stream/worker/delivery.py)."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.types import TP
from mode.utils.locks import Event

from stream.worker.consumer import AtLeastOnceApp, AtLeastOnceConsumer

PARTITION = TP("support.messages", 1)
#: sha256 of faust-streaming 0.15.3's `Consumer._drain_messages`, the loop delivery.py copies.
FAUST_DRAIN_LOOP_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


class Msg:
    def __init__(self, offset: int) -> None:
        self.tp, self.topic, self.offset = PARTITION, PARTITION.topic, offset


class Fetcher:
    def __init__(self) -> None:
        self._stopped = Event()


@pytest.fixture
def consumer() -> AtLeastOnceConsumer:
    app = AtLeastOnceApp("test-delivery", broker="kafka://127.0.0.1:1", web_enabled=False)
    consumer = app.consumer
    assert isinstance(consumer, AtLeastOnceConsumer)
    return consumer


def drain(consumer: Any, offsets: list[int], callback: Any) -> list[int]:
    """Runs the drain loop over one fetch of `offsets`; returns the read offsets it set."""
    fetcher = Fetcher()
    read: list[int] = []

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Msg]]:
        for offset in offsets:
            yield PARTITION, Msg(offset)
            read.append(consumer._read_offset[PARTITION])
        fetcher._stopped.set()

    async def run() -> None:
        consumer.getmany = getmany
        consumer.callback = callback
        await asyncio.wait_for(consumer._drain_messages(fetcher), timeout=10)

    # Faust's services create their tasks on the loop they were built with.
    consumer.loop.run_until_complete(run())
    return read


def test_records_are_handed_over_inline_in_the_drain_loops_own_task(
    consumer: AtLeastOnceConsumer,
) -> None:
    tasks: list[Any] = []
    before: list[int] = []

    async def callback(message: Msg) -> None:
        tasks.append(asyncio.current_task())
        before.append(len(asyncio.all_tasks()))

    assert drain(consumer, [5, 6, 7], callback) == [5, 6, 7]
    # One task throughout (the loop's own), and none started per record, where Faust's
    # wait_first started four for each.
    assert len(set(map(id, tasks))) == 1 and len(tasks) == 3
    assert before == [before[0]] * 3
    assert (consumer.handed_inline, consumer.handed_while_suspended) == (3, 0)


def test_while_the_flow_is_suspended_a_stuck_hand_over_is_given_up_as_in_faust(
    consumer: AtLeastOnceConsumer,
) -> None:
    consumer.suspend_flow.set()
    handed: list[int] = []

    async def stuck(message: Msg) -> None:
        handed.append(message.offset)
        await asyncio.Event().wait()  # never set: only the suspended flow ends the wait

    assert drain(consumer, [3, 4], stuck) == [3, 4]
    assert handed == [3, 4]
    assert (consumer.handed_inline, consumer.handed_while_suspended) == (0, 2)


def test_the_loop_copied_is_the_installed_fausts() -> None:
    """delivery.py is Faust's drain loop with one call changed: a Faust whose loop differs (an
    upgrade) must be read against it before the copy is trusted."""
    source = inspect.getsource(FaustConsumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == FAUST_DRAIN_LOOP_SHA256, (
        "faust-streaming's Consumer._drain_messages changed: compare it with "
        "stream/worker/delivery.py, carry the change over, then update the hash here"
    )
