"""The worker's idle sweep (stream/worker/sweep.py) without a broker: which keys it touches, how."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any, cast

from stream.core import statecodec
from stream.core.eventtime import DAY_MS
from stream.core.policy import default_policy
from stream.core.state import CustomerState
from stream.serde import serde_for_topic
from stream.testing import EventFactory, message_record
from stream.topics import EVENT_TOPICS
from stream.worker.floors import PartitionFloors, decode, encode, floor_key
from stream.worker.fold import BatchFold
from stream.worker.handler import RawRecord, RecordHandler
from stream.worker.sweep import RECENT_S, IdleSweep, Tally
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


class FloorTable:
    """The floor table of partition 0: writes acknowledged at once unless `hold` is set."""

    def __init__(self, stored: dict[str, bytes] | None = None) -> None:
        self.data: dict[str, Any] = dict(stored or {})
        self.hold = False
        self.sent: list[Future[None]] = []

    def remember(self, event: Any) -> None:
        pass

    def forget(self, partitions: Iterable[int]) -> None:
        pass

    def get(self, key: str, partition: int) -> Any:
        return self.data.get(key)

    def set(self, key: str, partition: int, value: Any) -> Future[None]:
        self.data[key] = value
        sent: Future[None] = Future()
        if not self.hold:
            sent.set_result(None)
        self.sent.append(sent)
        return sent


class Reader:
    """The agent's reads of partition 0 as the floors see them, and the consumer's commits."""

    def __init__(self, store: FloorTable) -> None:
        self.committed: dict[str, int] = {}
        self.offsets: dict[str, int] = {}
        self.floors = PartitionFloors(store, lambda topic, p: self.committed.get(topic))

    def read(self, topic: str) -> None:
        offset = self.offsets[topic] = self.offsets.get(topic, -1) + 1
        message = SimpleNamespace(topic=topic, partition=0, offset=offset)
        self.floors.restore(SimpleNamespace(message=message))

    def commit(self) -> None:
        self.committed = {topic: offset + 1 for topic, offset in self.offsets.items()}


def setup(
    held: list[int] | None = None, per_tick: int = 10, stored: dict[str, bytes] | None = None
) -> tuple[Table, BatchFold, RecordHandler, IdleSweep, int]:
    """Two idle customers on partition 0, one with an account; `held`: times the merge holds."""
    events = EventFactory("a-kept")
    kept = idle_customer(events, account=True).state
    bare = idle_customer(events.of("b-bare"), account=False).state
    assert kept is not None and bare is not None
    states = {"a-kept": kept, "b-bare": bare}
    last = events.clock
    table = Table(states)
    reader = Reader(FloorTable(stored))
    handler = RecordHandler(default_policy, consumer="tests", floor=reader.floors.get)
    folder = BatchFold(handler, lambda c, p: table.data.get(c), cache_size=10)

    def times(partition: int) -> Iterator[int]:
        yield from held or ()

    sweep = IdleSweep(table, folder, reader.floors, handler.clock, TOPICS, times, per_tick)
    handler.reader = reader  # type: ignore[attr-defined]  # for `advance`
    return table, folder, handler, sweep, last


def advance(
    handler: RecordHandler, at: int, topics: list[str] = TOPICS, commit: bool = True
) -> None:
    """Other customers' records at `at` on `topics`, read and (unless told) committed."""
    reader: Reader = handler.reader  # type: ignore[attr-defined]
    for topic in topics:
        reader.read(topic)
        assert handler.clock.admit(f"{topic}[0]", at, at) is None
    if commit:
        reader.commit()


def settled(sweep: IdleSweep) -> Tally:
    """Two ticks: the first proposes the floor, the second writes and keeps it, and sweeps."""
    first = sweep.tick()
    assert not (first.trimmed or first.gone)
    return sweep.tick()


def test_nothing_is_swept_until_every_input_topic_has_a_watermark() -> None:
    table, _, handler, sweep, last = setup()
    advance(handler, last + 30 * DAY_MS, TOPICS[:-1])
    tally = settled(sweep)
    assert tally.floors == {0: None} and not (table.writes or table.deletes)


def test_idle_customers_are_trimmed_or_deleted_at_the_partition_floor() -> None:
    table, _, handler, sweep, last = setup()
    advance(handler, last + 30 * DAY_MS)
    tally = settled(sweep)
    assert (tally.visited, tally.trimmed, tally.gone) == (2, 1, 1)
    assert table.deletes == ["b-bare"] and table.writes == ["a-kept"]
    kept = statecodec.decode(table.data["a-kept"])
    assert kept.account is not None and not (kept.conversations or kept.closed or kept.contacts)


def test_a_record_held_for_event_time_order_keeps_the_floor_down() -> None:
    held_at = EventFactory().clock  # as old as the idle customers' first events
    table, _, handler, sweep, last = setup(held=[held_at])
    advance(handler, last + 30 * DAY_MS)
    assert settled(sweep).floors == {0: held_at}
    assert not (table.writes or table.deletes)


def test_a_customer_folded_since_the_last_flush_is_left_to_the_next_pass() -> None:
    table, folder, handler, sweep, last = setup()
    folder._dirty["a-kept"] = (0, [])  # as `fold` marks a customer it folded
    advance(handler, last + 30 * DAY_MS)
    settled(sweep)
    assert table.writes == [] and table.deletes == ["b-bare"]


def test_the_walk_goes_on_where_it_stopped_and_starts_over_at_the_end() -> None:
    table, _, handler, sweep, last = setup(per_tick=1)
    advance(handler, last + 30 * DAY_MS)
    sweep.tick()  # proposes the floor
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
    sweep.tick(now=100.0 + RECENT_S - 2)  # proposes the floor
    sweep.tick(now=100.0 + RECENT_S - 1)
    assert table.writes == [] and table.deletes == ["b-bare"]
    sweep.tick(now=100.0 + RECENT_S + 1)
    assert table.writes == ["a-kept"]


def test_the_timer_lets_the_agent_run_and_stops_on_a_partition_revoked_meanwhile() -> None:
    table, _, handler, sweep, last = setup(per_tick=1000)
    advance(handler, last + 30 * DAY_MS)
    sweep.tick()  # proposes the floor
    many = {f"c-{n:04d}": CustomerState.new(f"c-{n:04d}") for n in range(100)}
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
    # Every key uses the whole budget: the agent runs after the first one.
    sweep._work_slice_s = 0.0
    tally = asyncio.run(both())
    assert tally.visited == 1  # the first slice, then the revoke was seen


def test_a_floor_is_kept_only_once_what_was_read_before_it_is_committed_and_it_is_stored() -> None:
    table, _, handler, sweep, last = setup()
    reader: Reader = handler.reader  # type: ignore[attr-defined]
    store = cast(FloorTable, reader.floors._store)
    # Given other customers' records, read but not committed yet
    advance(handler, last + 30 * DAY_MS, commit=False)
    floor = last + 30 * DAY_MS - 7 * DAY_MS
    # When the sweep ticks, then it proposes the floor and sweeps nothing
    sweep.tick()
    sweep.tick()
    assert store.data == {} and reader.floors.get(0) is None and not table.deletes
    # When those records are committed, but a later one is read meanwhile
    reader.commit()
    store.hold = True
    advance(handler, last + 31 * DAY_MS, commit=False)
    # Then the floor is written, and used only once the broker has it
    sweep.tick()
    assert decode(store.data[floor_key(0)]) == floor and reader.floors.get(0) is None
    sweep.tick()
    assert reader.floors.get(0) is None and not table.deletes
    store.sent[-1].set_result(None)
    tally = sweep.tick()
    assert tally.floors == {0: floor} and table.deletes == ["b-bare"]
    # And the next floor waits for the later record's commit
    sweep.tick()
    assert reader.floors.get(0) == floor
    reader.commit()
    store.hold = False
    sweep.tick()
    assert reader.floors.get(0) == floor + DAY_MS


def test_a_floor_kept_before_a_restart_refuses_older_events_and_is_swept_at_at_once() -> None:
    # Given the floor a sweep kept before the worker restarted, in the floor table
    floor = EventFactory().clock + 30 * DAY_MS
    table, _, handler, sweep, _ = setup(stored={floor_key(0): encode(floor)})
    reader: Reader = handler.reader  # type: ignore[attr-defined]
    serde = serde_for_topic("support.messages")

    def record(at: int, event_id: str) -> RawRecord:
        value = serde.encode(message_record(occurred_at=at, event_id=event_id, message_id=event_id))
        return RawRecord("support.messages", 0, 0, b"c-1", value, (), floor + DAY_MS)

    # When the first record after the restart is read, with the gate's watermarks empty
    reader.read("support.messages")
    assert reader.floors.get(0) == floor and handler.clock.marks == {}
    # Then an event older than the floor is dead-lettered, naming the floor
    refused = handler.handle(record(floor - 1, "m-old"), lambda _: None)
    assert refused.deadletter is not None and refused.state is None
    dead = serde_for_topic("support.deadletter").decode(refused.deadletter)
    assert dead["error_type"] == "event_time"
    assert dead["reason"].startswith("event time out of bounds:")
    assert "before the partition's floor" in dead["reason"]
    # And one at the floor is folded
    assert handler.handle(record(floor, "m-new"), lambda _: None).deadletter is None
    # And the sweep uses the floor at once, before every input topic has a watermark
    tally = sweep.tick()
    assert tally.floors == {0: floor} and table.deletes == ["b-bare"]


def test_an_unreadable_floor_is_logged_and_not_used() -> None:
    _, _, handler, sweep, _ = setup(stored={floor_key(0): b"[1]"})
    reader: Reader = handler.reader  # type: ignore[attr-defined]
    reader.read("support.contacts")
    assert reader.floors.get(0) is None
    assert sweep.tick().floors == {0: None}
