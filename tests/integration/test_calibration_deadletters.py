"""The calibration agent on the real broker: an undecodable record of its inputs is dead-lettered
with the reason (once), its partition moves on, and the next conversation is still judged."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from stream.core.events import event_to_dict
from stream.testing import EventFactory
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    committed_offset,
    produce,
    produce_at,
)
from tests.integration.test_worker import T0

pytestmark = pytest.mark.integration


def test_an_undecodable_decision_is_dead_lettered_and_judging_goes_on(
    isolated: Isolated, consuming_worker: Path
) -> None:
    cid = "c-cal-dead"
    decisions_topic = isolated.topic("escalation.decisions")
    contacts_topic = isolated.topic("support.contacts")
    letters = Collector(isolated, "support.deadletter")
    judgements = Collector(isolated, "escalation.calibration")

    # Given a record on the decisions topic that is not a decision, and a bad contact
    garbage = (decisions_topic, *produce_at(decisions_topic, cid.encode(), b"\x00not a decision"))
    bad_contact = (contacts_topic, *produce_at(contacts_topic, cid.encode(), b"\x01not avro"))
    # And then a whole conversation of the same customer, closed, with its outcome
    f = EventFactory(cid, start=T0)
    events = [
        f.account(),
        f.contact("conv-1"),
        f.customer("Where is my bag?"),
        f.contact("conv-1", action="closed"),
        f.outcome("conv-1", ticket_id="t-1", resolved_by="ai"),
    ]
    produce(isolated, [(e.type, event_to_dict(e)) for e in events])

    # Then the conversation after the bad records is judged
    judgements.wait_for(lambda rs: any(r["conversation_id"] == "conv-1" for r in rs), 180)
    # And the bad decision is dead-lettered by the calibration agent, with the reason
    letters.wait_for(lambda rs: len(rs) >= 2, timeout=120)
    letters.drain(quiet=3.0)
    by_position = {}
    for letter in letters.records:
        position = (letter["source_topic"], letter["partition"], letter["offset"])
        assert position not in by_position, f"{position} dead-lettered twice"
        by_position[position] = letter
    assert set(by_position) == {garbage, bad_contact}
    decision_letter = by_position[garbage]
    assert decision_letter["error_type"] == "decode"
    assert "escalation.Decision" in decision_letter["reason"]
    assert decision_letter["value"] == b"\x00not a decision"
    assert decision_letter["key"] == cid.encode()
    assert decision_letter["consumer"] == isolated.app_id
    # And the bad contact has exactly one dead letter, the customer agent's
    assert by_position[bad_contact]["error_type"] == "decode"

    # And the decisions partition moved past the bad record
    _, partition, offset = garbage
    deadline = time.monotonic() + 120
    while committed_offset(isolated.app_id, decisions_topic, partition) <= offset:
        assert time.monotonic() < deadline, f"{decisions_topic}[{partition}] stuck at {offset}"
        time.sleep(0.5)
    letters.close()
    judgements.close()
