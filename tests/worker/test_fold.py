"""The batched fold without a broker: decisions as one at a time, one write per customer."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import stream.worker.fold as fold_module
from stream.core import statecodec
from stream.core.events import Event, event_from_dict
from stream.core.policy import default_policy
from stream.core.step import step
from stream.serde import serde_for_topic
from stream.worker.fold import BatchFold, dimension_keys
from stream.worker.handler import Handled, RawRecord, RecordHandler
from tests.worker.test_handler import T0, message


def record(n: int, customer: str = "c-1", **fields: Any) -> tuple[RawRecord, Event | Handled]:
    values = message(
        **{
            "event_id": f"msg-{customer}-{n}",
            "customer_id": customer,
            "message_id": f"m-{customer}-{n}",
            "occurred_at": T0 + n * 1000,
            "text": f"Where is my bag number {n}?",
            **fields,
        }
    )
    raw = RawRecord(
        "support.messages",
        0,
        n,
        customer.encode(),
        serde_for_topic("support.messages").encode(values),
    )
    return raw, event_from_dict("message", values)


class Store:
    """The table as the fold sees it: counts reads and keeps what the agent writes back."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.reads = 0

    def load(self, customer_id: str, partition: int) -> Any:
        self.reads += 1
        return self.data.get(customer_id)

    def write_back(self, states: dict[str, tuple[int, bytes]]) -> None:
        for customer_id, (_, state) in states.items():
            self.data[customer_id] = state


@pytest.fixture
def handler() -> RecordHandler:
    return RecordHandler(default_policy, consumer="tests")


def test_a_batch_gives_the_decisions_of_one_event_at_a_time_and_one_write_per_customer(
    handler: RecordHandler,
) -> None:
    records = [record(n, customer=f"c-{n % 3}") for n in range(12)]
    # Given the same records folded one at a time through the handler
    one_by_one = Store()
    expected: list[bytes] = []
    for raw, _ in records:
        handled = handler.handle(raw, lambda cid: one_by_one.data.get(cid))
        assert handled.customer_id is not None and handled.state is not None
        one_by_one.data[handled.customer_id] = handled.state
        expected.extend(handled.decisions)

    # When they are folded as two batches, each flushed
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=100)
    first = fold.fold(records[:6])
    assert fold.dirty == 3
    first_written = fold.flush().states
    store.write_back(first_written)
    second = fold.fold(records[6:])
    second_written = fold.flush().states
    store.write_back(second_written)

    # Then the decisions are the same, in the same order, and each flush writes each customer once
    assert [v for _, v in first.decisions + second.decisions] == expected
    assert sorted(first_written) == sorted(second_written) == ["c-0", "c-1", "c-2"]
    assert fold.dirty == 0
    assert store.data == one_by_one.data
    # And the table is read only for customers the cache has not seen
    assert store.reads == 3
    assert first.events == second.events == 6


def test_batches_between_flushes_write_each_customer_once_and_nothing_before(
    handler: RecordHandler,
) -> None:
    records = [record(n, customer=f"c-{n % 2}") for n in range(8)]
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=1)
    decided = [fold.fold(records[n : n + 2]).decisions for n in range(0, 8, 2)]
    # Nothing is written until the flush, and the cache keeps dirty states beyond its size
    assert store.data == {}
    assert len(fold.cache) == fold.dirty == 2
    written = fold.flush()
    assert sorted(written.states) == ["c-0", "c-1"]
    # One decision per record, whatever its action (the fourth same question may offer a person)
    assert sum(n for name, n in written.counts.items() if name.startswith("action:")) == 8
    assert all(len(d) == 2 for d in decided)
    store.write_back(written.states)
    # After the flush the cache is trimmed to its size and the states are the table's
    assert len(fold.cache) == 1 and fold.dirty == 0
    assert fold.flush().states == {}
    state = statecodec.decode(store.data["c-0"])
    assert [t.message_id for c in state.conversations.values() for t in c.turns] == [
        f"m-c-0-{n}" for n in range(0, 8, 2)
    ]


def test_a_rebalance_forgets_unwritten_states_of_revoked_partitions_only(
    handler: RecordHandler,
) -> None:
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=10)
    kept = record(0, customer="c-kept")
    raw, event = record(0, customer="c-gone")
    moved = (dataclasses.replace(raw, partition=1), event)
    fold.fold([kept, moved])
    fold.forget({1})
    assert sorted(fold.flush().states) == ["c-kept"]
    assert len(fold.cache) == 1


def test_the_cache_is_bounded_and_a_dropped_state_comes_back_from_the_table(
    handler: RecordHandler,
) -> None:
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=2)
    for n in range(5):
        fold.fold([record(n, customer=f"c-{n}")])
        store.write_back(fold.flush().states)
    assert len(fold.cache) == 2
    fold.fold([record(9, customer="c-0")])
    store.write_back(fold.flush().states)
    state = statecodec.decode(store.data["c-0"])
    assert [t.message_id for c in state.conversations.values() for t in c.turns] == [
        "m-c-0-0",
        "m-c-0-9",
    ]


def test_a_fold_that_raises_is_a_dead_letter_and_the_state_is_as_before_it(
    handler: RecordHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=10)
    fold.fold([record(0)])
    real_step = fold_module.step

    def failing_step(state: Any, event: Event, policy: Any, model: Any = None) -> Any:
        if event.event_id == "msg-c-1-2":
            state.conversations.clear()  # half-way through, the state is already changed
            raise RuntimeError("boom")
        return real_step(state, event, policy, model)

    monkeypatch.setattr(fold_module, "step", failing_step)
    out = fold.fold([record(1), record(2), record(3)])
    store.write_back(fold.flush().states)

    # Then the failing record is a dead letter with the reason, the others are decided
    ((raw, dead),) = out.deadletters
    assert raw.offset == 2 and dead.reason == "RuntimeError: boom"
    assert len(out.decisions) == 2
    # And the written state holds every turn but the failing one, also of the unflushed batch
    state = statecodec.decode(store.data["c-1"])
    assert [t.message_id for c in state.conversations.values() for t in c.turns] == [
        "m-c-1-0",
        "m-c-1-1",
        "m-c-1-3",
    ]


def test_decision_counts_are_aggregated_per_flush(handler: RecordHandler) -> None:
    store = Store()
    fold = BatchFold(handler, store.load, cache_size=10)
    out = fold.fold([record(n, customer=f"c-{n}") for n in range(2)])
    more = fold.fold([record(n, customer=f"c-{n}") for n in range(2, 4)])
    counts = fold.flush().counts
    decisions = [
        serde_for_topic("escalation.decisions").decode(v) for _, v in out.decisions + more.decisions
    ]
    assert len(decisions) == 4
    assert counts["action:escalate"] == sum(d["action"] == "escalate" for d in decisions)
    assert sum(counts.values()) == sum(2 + len(d["triggers"]) for d in decisions)


def test_dimension_keys_name_action_category_and_each_trigger(handler: RecordHandler) -> None:
    _, event = record(0, text="I want to speak to a real person")
    assert not isinstance(event, Handled)
    (decision,) = step(None, event, default_policy()).decisions
    assert dimension_keys(decision) == [
        "action:escalate",
        "category:billing:escalate",
        "trigger:explicit_request:escalate",
    ]


def test_a_flush_written_in_parts_writes_what_one_flush_writes(handler: RecordHandler) -> None:
    records = [record(n, customer=f"c-{n % 4}") for n in range(12)]
    # Given the same batches, one flushed at once and one flushed in parts with a batch between
    whole_store, parts_store = Store(), Store()
    whole = BatchFold(handler, whole_store.load, cache_size=2)
    parts = BatchFold(handler, parts_store.load, cache_size=2)
    whole.fold(records[:8])
    parts.fold(records[:8])
    assert parts.dirty_customers() == ["c-0", "c-1", "c-2", "c-3"]
    writing = iter(parts.dirty_customers())
    # When the first part has no time at all, it still writes one customer
    first, done = parts.flush_some(writing, 0.0)
    assert list(first) == ["c-0"] and not done
    parts_store.write_back(first)
    # and a customer folded again before its turn is written once, with what it holds then
    whole.fold(records[8:])
    whole_store.write_back(whole.flush().states)
    parts.fold(records[8:])
    rest, done = parts.flush_some(writing, 10.0)
    assert done and sorted(rest) == ["c-1", "c-2", "c-3"]
    parts_store.write_back(rest)
    # Then c-0, folded again after its write, is the only dirty customer left
    assert parts.dirty_customers() == ["c-0"]
    parts.trim()
    # and the trim keeps it in the cache, beyond the cache's size, until it is written
    assert parts.is_dirty("c-0") and parts.cache.get("c-0") is not None
    assert len(parts.cache) == 2
    last, done = parts.flush_some(iter(parts.dirty_customers()), 10.0)
    assert done and list(last) == ["c-0"]
    parts_store.write_back(last)
    # and the table holds what the whole flushes wrote, with every decision counted once
    assert parts_store.data == whole_store.data
    assert sum(n for k, n in parts.take_counts().items() if k.startswith("action:")) == 12
    assert parts.take_counts() == {}
