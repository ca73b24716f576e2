"""The worker's idle sweep (stream/worker/sweep.py) without a broker: which keys it touches, how."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from stream.core import statecodec
from stream.core.eventtime import DAY_MS
from stream.core.policy import default_policy
from stream.core.state import CustomerState
from stream.testing import EventFactory
from stream.topics import EVENT_TOPICS
from stream.worker.fold import BatchFold
from stream.worker.handler import RecordHandler
from stream.worker.sweep import RECENT_S, YIELD_EVERY, IdleSweep, Tally
from tests.core.test_sweep import idle_customer

POLICY = default_policy()
TOPICS = list(EVENT_TOPICS.values())


class Table:
    """The table as the sweep sees it: one partition's keys in order, writes and deletes kept."""

    def __init__(self, states: dict[str, CustomerState]) -> None:
        budget = POLICY.state.max_state_bytes
        self.data = {k: statecodec.encode(s, budget)[0] for k, s in sorted(states.items())}
        self.writes: list[str] = []
        self.deletes: list[str] = []

    def partitions(self) -> list[int]:
        return [0]

    def keys_after(self, partition: int, after: str | None, limit: int) -> list[str]:
        return [k for k in sorted(self.data) if after is None or k > after][:limit]

    def get(self, key: str, partition: int) -> Any:
        return self.data.get(key)

    def set(self, key: str, partition: int, value: Any) -> None:
        self.data[key] = value
        self.writes.append(key)

    def delete(self, key: str, partition: int) -> None:
        del self.data[key]
        self.deletes.append(key)


def setup(
    held: list[int] | None = None, per_tick: int = 10
) -> tuple[Table, BatchFold, RecordHandler, IdleSweep, int]:
    """Two idle customers on partition 0, one with an account; `held`: times the merge holds."""
    events = EventFactory("a-kept")
    kept = idle_customer(events, account=True).state
    bare = idle_customer(events.of("b-bare"), account=False).state
    assert kept is not None and bare is not None
    states = {"a-kept": kept, "b-bare": bare}
    last = events.clock
    table = Table(states)
    handler = RecordHandler(default_policy, consumer="tests")
    folder = BatchFold(handler, lambda c, p: table.data.get(c), cache_size=10)

    def times(partition: int) -> Iterator[int]:
        yield from held or ()

    sweep = IdleSweep(table, folder, handler.clock, TOPICS, times, per_tick)
    return table, folder, handler, sweep, last


def advance(handler: RecordHandler, at: int, topics: list[str] = TOPICS) -> None:
    for topic in topics:
        assert handler.clock.admit(f"{topic}[0]", at, at) is None


def test_nothing_is_swept_until_every_input_topic_has_a_watermark() -> None:
    table, _, handler, sweep, last = setup()
    advance(handler, last + 30 * DAY_MS, TOPICS[:-1])
    tally = sweep.tick()
    assert tally.floors == {0: None} and not (table.writes or table.deletes)


def test_idle_customers_are_trimmed_or_deleted_at_the_partition_floor() -> None:
    table, _, handler, sweep, last = setup()
    advance(handler, last + 30 * DAY_MS)
    tally = sweep.tick()
    assert (tally.visited, tally.trimmed, tally.gone) == (2, 1, 1)
    assert table.deletes == ["b-bare"] and table.writes == ["a-kept"]
    kept = statecodec.decode(table.data["a-kept"])
    assert kept.account is not None and not (kept.conversations or kept.closed or kept.contacts)


def test_a_record_held_for_event_time_order_keeps_the_floor_down() -> None:
    held_at = EventFactory().clock  # as old as the idle customers' first events
    table, _, handler, sweep, last = setup(held=[held_at])
    advance(handler, last + 30 * DAY_MS)
    assert sweep.tick().floors == {0: held_at}
    assert not (table.writes or table.deletes)


def test_a_customer_folded_since_the_last_flush_is_left_to_the_next_pass() -> None:
    table, folder, handler, sweep, last = setup()
    folder._dirty["a-kept"] = (0, [])  # as `fold` marks a customer it folded
    advance(handler, last + 30 * DAY_MS)
    sweep.tick()
    assert table.writes == [] and table.deletes == ["b-bare"]


def test_the_walk_goes_on_where_it_stopped_and_starts_over_at_the_end() -> None:
    table, _, handler, sweep, last = setup(per_tick=1)
    advance(handler, last + 30 * DAY_MS)
    assert sweep.tick().visited == 1 and table.writes == ["a-kept"]
    assert sweep.tick().visited == 1 and table.deletes == ["b-bare"]
    assert sweep.tick().visited == 0  # the end: the next tick starts over
    assert sweep.tick().visited == 1  # and finds nothing more to do
    assert table.writes == ["a-kept"]


def test_a_customer_written_lately_waits_until_its_records_are_surely_committed() -> None:
    # Its records may be folded again after a crash, from the state the table has: not swept
    table, _, handler, sweep, last = setup()
    advance(handler, last + 30 * DAY_MS)
    sweep.written(["a-kept"], now=100.0)
    sweep.tick(now=100.0 + RECENT_S - 1)
    assert table.writes == [] and table.deletes == ["b-bare"]
    sweep.tick(now=100.0 + RECENT_S + 1)
    assert table.writes == ["a-kept"]


def test_the_timer_lets_the_agent_run_and_stops_on_a_partition_revoked_meanwhile() -> None:
    table, _, handler, sweep, last = setup(per_tick=1000)
    advance(handler, last + 30 * DAY_MS)
    many = {f"c-{n:04d}": CustomerState.new(f"c-{n:04d}") for n in range(2 * YIELD_EVERY)}
    budget = POLICY.state.max_state_bytes
    table.data.update({k: statecodec.encode(s, budget)[0] for k, s in many.items()})
    revoked: list[int] = []

    async def agent() -> None:
        # Runs when the sweep first yields, as the agent would: the partition is revoked
        revoked.append(0)

    async def both() -> Tally:
        task = asyncio.create_task(agent())
        tally = await sweep.run()
        await task
        return tally

    table.partitions = lambda: [p for p in [0] if p not in revoked]  # type: ignore[method-assign]
    tally = asyncio.run(both())
    assert tally.visited == YIELD_EVERY  # the first slice, then the revoke was seen
