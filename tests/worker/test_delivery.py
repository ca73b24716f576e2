"""The fetch loop hands each record to its agent inline while the flow runs, as Faust does
while it is suspended (stream/worker/delivery.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faust.types import TP
from mode.utils.locks import Event

from stream.worker import delivery
from stream.worker.consumer import AtLeastOnceApp, AtLeastOnceConsumer
from stream.worker.delivery import installed_loop_is_the_copied_one

PARTITION = TP("support.messages", 1)


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
    """delivery.py is Faust's drain loop with one call changed: with a Faust whose loop differs
    (an upgrade) the worker runs Faust's own, slower loop, and this fails until the copy is
    read against it."""
    assert installed_loop_is_the_copied_one(), (
        "faust-streaming's Consumer._drain_messages changed: compare it with "
        "stream/worker/delivery.py, carry the change over, then update COPIED_LOOP_SHA256"
    )


def test_with_another_faust_loop_the_worker_runs_fausts_own(
    consumer: AtLeastOnceConsumer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "COPIED_LOOP_SHA256", "0" * 64)
    assert not delivery.installed_loop_is_the_copied_one()
    tasks: list[Any] = []  # kept, so no two share an id

    async def callback(message: Msg) -> None:
        tasks.append(asyncio.current_task())

    assert drain(consumer, [5, 6], callback) == [5, 6]
    # Faust's wait_first: each hand-over in a task of its own, none counted as inline.
    assert len({id(t) for t in tasks}) == 2 and consumer.handed_inline == 0
