"""TimeSlices: a stretch of agent work hands the event loop back once its budget is used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from stream.worker.batches import TimeSlices


async def _stretch(
    slices: TimeSlices,
    other: Callable[[], Coroutine[Any, Any, None]],
    records: int,
    order: list[str],
) -> None:
    """`records` records of a stretch, with a pause after each, beside the task `other`."""
    task = asyncio.create_task(other())
    slices.start()
    for n in range(records):
        order.append(f"record {n}")
        await slices.pause()
    await task


def test_a_used_budget_lets_ready_tasks_run_between_records() -> None:
    async def run(budget_s: float) -> tuple[list[str], int]:
        order: list[str] = []

        async def other() -> None:
            order.append("other")

        slices = TimeSlices(budget_s)
        await _stretch(slices, other, 3, order)
        return order, slices.pauses

    # A budget already used at every record: the ready task runs after the first record.
    order, pauses = asyncio.run(run(0.0))
    assert order == ["record 0", "other", "record 1", "record 2"] and pauses == 3
    # A budget not used up: the stretch runs to its end before anything else.
    order, pauses = asyncio.run(run(3600.0))
    assert order == ["record 0", "record 1", "record 2", "other"] and pauses == 0


def test_a_pause_lets_every_hop_of_other_work_run_before_the_stretch_goes_on() -> None:
    """A record's way to its decision is several hops through the loop; each must not wait for
    another slice of the stretch."""

    async def run() -> list[str]:
        order: list[str] = []

        async def pipeline() -> None:
            for hop in range(4):
                order.append(f"hop {hop}")
                await asyncio.sleep(0)

        slices = TimeSlices(0.0)
        await _stretch(slices, pipeline, 2, order)
        assert slices.pauses == 2 and slices.cut_short == 0
        return order

    assert asyncio.run(run()) == ["record 0", "hop 0", "hop 1", "hop 2", "hop 3", "record 1"]


def test_a_loop_that_is_never_idle_still_lets_the_stretch_go_on() -> None:
    async def run() -> tuple[int, int, int]:
        done = asyncio.Event()
        spins = 0

        async def busy() -> None:
            nonlocal spins
            while not done.is_set() and spins < 10_000_000:
                spins += 1
                await asyncio.sleep(0)

        slices = TimeSlices(0.0, max_defer_s=0.01)
        task = asyncio.create_task(busy())
        await asyncio.sleep(0)
        await slices.pause()
        done.set()
        await task
        return slices.pauses, slices.cut_short, spins

    pauses, cut_short, spins = asyncio.run(run())
    assert (pauses, cut_short) == (1, 1)
    # It did yield to the busy task for a while, not just once.
    assert 1 < spins < 10_000_000
