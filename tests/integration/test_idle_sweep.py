"""The idle sweep on the real broker: idle customers shrink or go; decisions stay the backtest's.

Customers who never come back are expired by the worker's timer (stream/worker/sweep.py) once
other customers' events move their partition's event time far enough on every input topic.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stream.core import statecodec
from stream.core.events import Event, event_to_dict
from stream.testing import DAY, HOUR, T0, EventFactory, murmur2_partition
from stream.topics import load_definitions
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    assert_backtest_parity,
    changelog_values,
    isolated_topics,
    journalled_worker,
    produce,
)

pytestmark = pytest.mark.integration

# Topics and an app id per test: a floor kept by one test's worker would govern the next's events.
isolated = pytest.fixture(isolated_topics)
# A sweep every second, not every few minutes.
SWEEP_EVERY_SECOND = {"ESCALATION_IDLE_SWEEP_SECONDS": "1"}


def on_one_partition(names: list[str]) -> dict[str, str]:
    """Customer ids on one input partition, by role: the sweep's clock is per partition."""
    count = load_definitions()["support.messages"].partitions
    target = murmur2_partition(b"idle-0", count)
    out: dict[str, str] = {}
    n = 0
    for name in names:
        while murmur2_partition(f"{name}-{n}".encode(), count) != target:
            n += 1
        out[name] = f"{name}-{n}"
        n += 1
    return out


def on_every_input_topic(others: EventFactory, at: int) -> list[Event]:
    """Another customer's events on every input topic, from `at`: they move the partition's
    watermarks, and so its floor, to `at` minus the past bound."""
    return [
        others.account(at=at),
        others.contact("o-1", "baggage:L1", at=at),
        others.customer("Where is my bag?", "o-1", at=at + 1, message_id="o-1-m"),
        others.sentiment("o-1-m", 0.1, "o-1", at=at + 2),
        others.outcome("o-1", at=at + 3),
    ]


def send(isolated: Isolated, events: list[Event]) -> int:
    return produce(isolated, [(e.type, event_to_dict(e)) for e in events])


def wait_for_values(
    isolated: Isolated,
    customer_id: str,
    done: Callable[[list[bytes | None]], bool],
    timeout: float = 180.0,
) -> list[bytes | None]:
    """The customer's changelog once `done(values)` holds (bounded)."""
    deadline = time.monotonic() + timeout
    values = changelog_values(isolated, customer_id)
    while not done(values):
        assert time.monotonic() < deadline, f"{customer_id}: changelog {values}"
        time.sleep(2.0)
        values = changelog_values(isolated, customer_id)
    return values


def test_idle_customers_are_swept_and_later_decisions_stay_the_backtests(
    isolated: Isolated, tmp_path: Path
) -> None:
    ids = on_one_partition(["idle-account", "idle-bare", "back", "others"])
    events = EventFactory(ids["idle-account"], T0)
    kept, bare, back, others = (
        events,
        events.of(ids["idle-bare"]),
        events.of(ids["back"]),
        events.of(ids["others"]),
    )
    # Given a customer with an account and an escalated, closed conversation, and one with no
    # account whose conversation is closed, both idle from day 0
    first: list[Event] = [
        kept.account(at=T0),
        kept.contact("a-1", "billing:inv-1"),
        kept.customer("I want to talk to a real person", "a-1"),
        kept.contact("a-1", "billing:inv-1", action="closed"),
        kept.outcome("a-1"),
        bare.contact("b-1", "billing:inv-2"),
        bare.customer("Where is my refund?", "b-1", message_id="b-1-m"),
        bare.sentiment("b-1-m", -0.2, "b-1"),
        bare.contact("b-1", "billing:inv-2", action="closed"),
        bare.outcome("b-1"),
        # And a customer with two contacts on one issue on days 14 and 15
        back.account(at=T0 + 14 * DAY),
        back.contact("r-1", "billing:inv-9", at=T0 + 14 * DAY),
        back.contact("r-2", "billing:inv-9", at=T0 + 15 * DAY),
    ]
    # And other customers' events on every input topic of the partition on day 20: the floor
    # (day 20 minus the 7-day past bound) is then past the idle customers' windows
    day20 = T0 + 20 * DAY
    first += on_every_input_topic(others, day20)
    decisions = Collector(isolated, "escalation.decisions")
    with journalled_worker(isolated, tmp_path, SWEEP_EVERY_SECOND) as worker:
        send(isolated, first)

        # When the sweep runs, then the customer with nothing left is deleted: a tombstone
        bare_log = wait_for_values(isolated, ids["idle-bare"], lambda v: bool(v) and v[-1] is None)
        assert any(v is not None for v in bare_log)
        # And the one with an account keeps only that: its last state is small
        kept_log = wait_for_values(
            isolated,
            ids["idle-account"],
            lambda v: bool(v) and v[-1] is not None and not statecodec.decode(v[-1]).closed,
        )
        last = kept_log[-1]
        assert last is not None
        state = statecodec.decode(last)
        assert (state.conversations, state.closed, state.contacts) == ({}, {}, [])
        assert state.account is not None and state.account.known
        largest = max(len(v) for v in kept_log if v is not None)
        assert len(last) <= 512 < largest, (len(last), largest)
        # And the customer seen within its window keeps its contacts
        back_state = statecodec.decode(changelog_values(isolated, ids["back"])[-1] or b"")
        assert len(back_state.contacts) == 2

        # When customers come back after the sweep
        later: list[Event] = [
            back.contact("r-3", "billing:inv-9", at=day20 + 10),
            kept.customer("I want to talk to a real person", "a-2", at=day20 + 20),
        ]
        send(isolated, later)
        # Then the third contact in seven days escalates on repeat contact, and the customer
        # whose state was swept gets a fresh decision
        out = decisions.wait_for(
            lambda rs: {r["conversation_id"] for r in rs} >= {"r-3", "a-2"}, timeout=180
        )
        consumed = worker.consumed(len(first) + len(later))
        decisions.drain(quiet=3.0)
        worker.assert_running()
    (repeat,) = [r for r in out if r["conversation_id"] == "r-3"]
    assert repeat["action"] == "escalate"
    assert repeat["triggers"][0]["trigger"] == "repeat_contact"
    swept_back = [r for r in out if r["conversation_id"] == "a-2"]
    assert [r["action"] for r in swept_back] == ["escalate"]
    assert "idle_sweep" in worker.log.read_text(errors="replace")
    # And every decision, before and after the sweep, is the backtest's over what was consumed
    assert assert_backtest_parity(isolated, consumed, decisions.records) >= 4
    decisions.close()


def test_after_a_restart_an_event_older_than_the_swept_floor_is_refused_as_the_backtest_does(
    isolated: Isolated, tmp_path: Path
) -> None:
    ids = on_one_partition(["gone", "others"])
    gone = EventFactory(ids["gone"], T0)
    others = gone.of(ids["others"])
    # Given a customer with two closed conversations on one issue, on days 0 and 1
    first: list[Event] = [
        gone.contact("g-1", "billing:inv-5", at=T0),
        gone.contact("g-1", "billing:inv-5", action="closed", at=T0 + HOUR),
        gone.contact("g-2", "billing:inv-5", at=T0 + DAY),
        gone.contact("g-2", "billing:inv-5", action="closed", at=T0 + DAY + HOUR),
    ]
    # And other customers' events on every input topic of the partition on day 20, so the
    # partition's floor (day 13) is past that customer's windows and it is swept away
    day20 = T0 + 20 * DAY
    first += on_every_input_topic(others, day20)
    decisions = Collector(isolated, "escalation.decisions")
    dead = Collector(isolated, "support.deadletter")
    with journalled_worker(isolated, tmp_path, SWEEP_EVERY_SECOND, state="state-a") as worker:
        send(isolated, first)
        try:
            wait_for_values(isolated, ids["gone"], lambda v: bool(v) and v[-1] is None)
        except AssertionError as exc:
            process = worker.process
            alive = "running" if process.poll() is None else f"exited {process.returncode}"
            log = worker.log.read_text()[-4000:]
            raise AssertionError(f"{exc}; worker {alive}: {log}") from None

    # When the worker restarts with an empty local store (the state and the floor come back
    # from the changelogs, the gate's watermarks do not), and a third contact on the issue
    # comes dated day 2: more than the 7-day past bound behind the partition, under its floor
    later: list[Event] = [
        gone.contact("g-3", "billing:inv-5", at=T0 + 2 * DAY),
        others.customer("Still no bag, a new chat", "o-2", at=day20 + 10, message_id="o-2-m"),
    ]
    with journalled_worker(isolated, tmp_path, SWEEP_EVERY_SECOND, state="state-b") as worker:
        send(isolated, later)
        letters = dead.wait_for(lambda rs: len(rs) >= 1, timeout=180)
        last = later[-1].event_id
        decisions.wait_for(lambda rs: any(r["event_id"] == last for r in rs), timeout=180)
        consumed = worker.consumed(len(first) + len(later))
        decisions.drain(quiet=3.0)
        dead.drain(quiet=1.0)
        worker.assert_running()
    # Then it is dead-lettered, naming the floor, as an uninterrupted gate would refuse it (once,
    # or again when the record was handed over twice around the assignment)
    refused = {(r["source_topic"], r["partition"], r["offset"]) for r in letters}
    assert len(refused) == 1, letters
    for letter in dead.records:
        assert letter["error_type"] == "event_time"
        assert "before the partition's floor" in letter["reason"], letter["reason"]
    assert "partition_floor_restored" in worker.log.read_text(errors="replace")
    assert not [r for r in decisions.records if r["conversation_id"] == "g-3"]
    # And every published decision is the backtest's over what the worker folded
    folded = [p for p in consumed if p not in refused]
    assert len(folded) < len(consumed)
    assert assert_backtest_parity(isolated, folded, decisions.records) >= 2
    decisions.close()
    dead.close()
