"""The generic dataclass <-> record converter: every record class round-trips, defaults fill what a
record leaves out, and a broken record names its class and field."""

from __future__ import annotations

import dataclasses
import json

import pytest

from stream.core.decision import AccountSnapshot, Decision, Evidence, HandoffPackage, TriggerHit
from stream.core.records import RecordError, from_record, to_record
from stream.core.state import ConversationState, CustomerState, Turn
from stream.testing import EventFactory, Run, make_policy


def _escalated_state() -> tuple[CustomerState, Decision, HandoffPackage]:
    f = EventFactory()
    run = Run(make_policy())
    run.feed(
        f.account(tier="enterprise", flags=("vip",)),
        f.contact("conv-1"),
        f.customer("I was charged twice, this is ridiculous"),
        f.ai("I can refund that.", action="refund", klass="financial", amount=250.0),
        f.sentiment("msg-3", -0.8),
    )
    assert run.state is not None and run.handoffs
    return run.state, run.decisions[-1], run.handoffs[-1]


def test_state_decision_and_package_round_trip_through_json() -> None:
    state, decision, package = _escalated_state()
    for value in (state, decision, package):
        record = json.loads(json.dumps(value.to_record()))
        again = type(value).from_record(record)
        assert again == value
        assert again.to_record() == value.to_record()


def test_record_keys_are_the_field_names() -> None:
    state, _, _ = _escalated_state()
    record = state.to_record()
    assert list(record) == [f.name for f in dataclasses.fields(CustomerState)]
    conversation = record["conversations"]["conv-1"]
    assert list(conversation) == [f.name for f in dataclasses.fields(ConversationState)]
    assert list(conversation["turns"][0]) == [f.name for f in dataclasses.fields(Turn)]


def test_missing_fields_take_their_defaults() -> None:
    assert from_record(Evidence, {"kind": "amount", "detail": "250 > 100"}) == Evidence(
        "amount", "250 > 100"
    )
    assert from_record(AccountSnapshot, {}) == AccountSnapshot()


def test_a_missing_required_field_names_class_and_field() -> None:
    with pytest.raises(RecordError, match=r"^Evidence\.detail: required field is missing$"):
        from_record(Evidence, {"kind": "amount"})


def test_a_nested_error_names_the_path() -> None:
    record = {"trigger": "confidence", "rule": "r", "action": "escalate", "reason": "x"}
    record["evidence"] = [{"kind": "k"}]  # type: ignore[list-item]
    with pytest.raises(RecordError, match=r"TriggerHit\.evidence: Evidence\.detail"):
        from_record(TriggerHit, record)


def test_an_unknown_hit_action_reads_as_escalate() -> None:
    """Fail safe: a stored hit whose action this code does not know holds and escalates."""
    hit = from_record(
        TriggerHit, {"trigger": "t", "rule": "r", "action": "teleport", "reason": "x"}
    )
    assert hit.action == "escalate"


def test_an_unknown_decision_action_is_refused() -> None:
    _, decision, _ = _escalated_state()
    record = {**decision.to_record(), "action": "teleport"}
    with pytest.raises(RecordError, match=r"Decision\.action: 'teleport' is not one of"):
        Decision.from_record(record)


def test_fields_outside_the_record_are_left_out_and_reset() -> None:
    hit = TriggerHit("t", "r", "escalate", "x", priority="urgent", message="hello")
    record = to_record(hit)
    assert "priority" not in record and "message" not in record
    assert from_record(TriggerHit, record) == dataclasses.replace(hit, priority=None, message=None)


def test_keys_a_newer_writer_added_are_ignored() -> None:
    assert from_record(Evidence, {"kind": "k", "detail": "d", "added_later": 1}) == Evidence(
        "k", "d"
    )


def test_tuples_become_lists_and_come_back_as_tuples() -> None:
    turn = Turn("m1", "customer", "hi", 5, markers=(("frustration", "ugh"),))
    record = turn.to_record()
    assert record["markers"] == [["frustration", "ugh"]]
    assert Turn.from_record(json.loads(json.dumps(record))).markers == (("frustration", "ugh"),)
