"""TimeSlices: a stretch of agent work hands the event loop back once its budget is used."""

from __future__ import annotations

import asyncio

from stream.worker.batches import TimeSlices


def test_a_used_budget_lets_ready_tasks_run_between_records() -> None:
    async def run(budget_s: float) -> tuple[list[str], int]:
        order: list[str] = []

        async def other() -> None:
            order.append("other")

        slices = TimeSlices(budget_s)
        task = asyncio.create_task(other())
        slices.start()
        for n in range(3):
            order.append(f"record {n}")
            await slices.pause()
        await task
        return order, slices.pauses

    # A budget already used at every record: the ready task runs after the first record.
    order, pauses = asyncio.run(run(0.0))
    assert order == ["record 0", "other", "record 1", "record 2"] and pauses == 3
    # A budget not used up: the stretch runs to its end before anything else.
    order, pauses = asyncio.run(run(3600.0))
    assert order == ["record 0", "record 1", "record 2", "other"] and pauses == 0
