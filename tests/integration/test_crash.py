"""A worker killed with SIGKILL and restarted loses no decision and no state (DESIGN section 8)."""

from __future__ import annotations

import signal
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from stream.topics import INPUT_TOPICS
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    committed_total,
    isolated_topics,
    produce,
    running_worker,
    stop,
    wait_until_consuming,
)
from tests.integration.test_worker import DAY, T0, account, contact, message

pytestmark = pytest.mark.integration

CUSTOMERS = 24
TURNS = 6  # per conversation, customer and AI agent alternating; none of them fires a trigger


# What every AI turn of the script says beside its text: a confident, harmless lookup.
AI_LOOKUP: dict[str, Any] = {
    "intent": "booking_lookup",
    "intent_confidence": 0.97,
    "proposed_action": {
        "type": "lookup",
        "consequence_class": "informational",
        "amount": None,
        "currency": None,
        "target": None,
    },
}


# Each test gets topics of its own.
isolated = pytest.fixture(isolated_topics)


def conversation(n: int, day: int) -> list[tuple[str, dict[str, Any]]]:
    cid, conv, t = f"c-crash-{n}", f"v-crash-{n}-{day}", T0 + day * DAY + n * 1000
    events = [contact(cid, day, t, f"baggage:L{n}", conv)]
    for turn in range(TURNS):
        role, text, extra = (
            ("customer", f"Hello, about my booking number {n}-{turn}", {})
            if turn % 2 == 0
            else ("ai_agent", "Let me look that up.", AI_LOOKUP)
        )
        events.append(
            message(cid, conv, turn, t + turn * 10_000 + 1, role, text, category="baggage", **extra)
        )
    return events


def test_sigkill_loses_no_decision_and_no_state(isolated: Isolated, tmp_path: Path) -> None:
    accounts = [account(f"c-crash-{n}", T0) for n in range(CUSTOMERS)]
    before = accounts + [e for n in range(CUSTOMERS) for d in (0, 1) for e in conversation(n, d)]
    after = [e for n in range(CUSTOMERS) for e in conversation(n, 2)]
    # The messages folded around the kill; after it, each customer's third contact escalates and
    # that conversation's messages update its handoff package instead of getting decisions.
    messages = {r["event_id"] for kind, r in before if kind == "message"}
    thirds = {f"contact-c-crash-{n}-2" for n in range(CUSTOMERS)}
    decisions = Collector(isolated, "escalation.decisions")
    state = tmp_path / "state"

    # Given a worker killed with SIGKILL while it is folding a stream of events
    fast = {"ESCALATION_SESSION_TIMEOUT_SECONDS": "6"}  # the restart need not wait out 45 s
    with running_worker(isolated, state, tmp_path / "a.log", fast) as worker:
        wait_until_consuming(isolated)
        feeding = threading.Thread(target=produce, args=(isolated, before, 0.003))
        feeding.start()
        decisions.wait_for(lambda rs: len(rs) >= len(messages) // 4)
        stop(worker, signal.SIGKILL)  # mid-stream: records keep arriving, some are in flight
        # The stream before the restart must be all out before the rest is produced: under load
        # it used to still be going, and a customer's third contact then overtook its second
        # (no escalation, which looked like state lost in the kill).
        feeding.join(timeout=300)
        assert not feeding.is_alive(), "the events before the restart were not all produced"

    # When it is restarted and the stream goes on
    with running_worker(isolated, state, tmp_path / "b.log", fast):
        produce(isolated, after, pace=0.002)
        # A slow worker on a loaded machine is not a lost decision: wait (bounded) until the
        # group has committed every input record. A committed offset comes after its record's
        # outputs were flushed, so whatever is missing after that is lost, not late.
        inputs = [isolated.topic(name) for name in INPUT_TOPICS]
        committed_total(isolated, inputs, len(before) + len(after) + 1, timeout=300)
        try:
            decisions.wait_for(
                lambda rs: {r["event_id"] for r in rs} >= messages | thirds,
                timeout=60,
            )
        except AssertionError:
            missing = sorted((messages | thirds) - {r["event_id"] for r in decisions.records})
            pytest.fail(
                f"{len(missing)} events have no decision although every input record is "
                f"committed (lost, not late): {missing[:30]}"
            )
        decisions.drain(quiet=3.0)

    # Then every message folded around the kill has its decision, and a duplicate is the same
    # decision with the same id
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in decisions.records:
        by_event[record["event_id"]].append(record)
    assert set(by_event) >= messages | thirds
    assert all(e in messages or e in thirds or "-2-" in e for e in by_event)
    for event_id, copies in by_event.items():
        assert all(copy == copies[0] for copy in copies), event_id
    # And the contact counts survived the kill: each customer's third contact escalates
    third = [by_event[event_id] for event_id in sorted(thirds)]
    assert all(d[0]["action"] == "escalate" for d in third)
    assert all(d[0]["triggers"][0]["trigger"] == "repeat_contact" for d in third)
    decisions.close()
