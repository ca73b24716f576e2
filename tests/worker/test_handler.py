"""The worker's record handler without a broker: every path a record can take."""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing

from stream.core import statecodec
from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.testing import message_record
from stream.worker.handler import RawRecord, RecordHandler
from tests.faults import inject_fault

T0 = 1_767_225_600_000


def message(**fields: Any) -> dict[str, Any]:
    return message_record(**{"occurred_at": T0, **fields})


def raw(
    value: bytes | None, key: bytes | None = b"c-1", topic: str = "support.messages"
) -> RawRecord:
    return RawRecord(topic, 2, 41, key, value, [("trace", b"t-1")], T0 + 5)


@pytest.fixture
def handler() -> RecordHandler:
    return RecordHandler(default_policy, consumer="tests")


def encode(record: dict[str, Any]) -> bytes:
    return serde_for_topic("support.messages").encode(record)


def letter(data: bytes | None) -> dict[str, Any]:
    assert data is not None
    return serde_for_topic("support.deadletter").decode(data)


def test_a_valid_record_gives_state_decisions_and_a_handoff(handler: RecordHandler) -> None:
    handled = handler.handle(raw(encode(message())), lambda _: None)
    assert handled.deadletter is None and handled.customer_id == "c-1"
    (decision,) = [serde_for_topic("escalation.decisions").decode(d) for d in handled.decisions]
    assert decision["action"] == "escalate"
    assert decision["triggers"][0]["trigger"] == "explicit_request"
    (package,) = [serde_for_topic("escalation.handoffs").decode(h) for h in handled.handoffs]
    assert package["handoff_id"] == decision["decision_id"]
    assert handled.state is not None
    assert statecodec.decode(handled.state).customer_id == "c-1"


def test_the_state_is_loaded_for_the_customer_and_carried_on(handler: RecordHandler) -> None:
    first = handler.handle(raw(encode(message(text="Hello"))), lambda _: None)
    asked: list[str] = []

    def load(customer_id: str) -> dict[str, Any] | None:
        asked.append(customer_id)
        return first.state

    again = handler.handle(raw(encode(message(text="Hello"))), load)
    assert asked == ["c-1"]
    # The same message read again is a redelivery: its decision again, the same id.
    assert again.decisions == first.decisions


@pytest.mark.parametrize(
    ("record", "key", "topic", "error_type", "reason"),
    [
        (b"\x00garbage", b"c-1", "support.messages", "decode", "not Avro single-object encoded"),
        (None, b"c-1", "support.messages", "decode", "empty message"),
        (encode(message()), b"c-2", "support.messages", "validation", "customer_id"),
        (encode(message()), None, "support.messages", "validation", "key 'null'"),
        (
            encode(message(intent_confidence=1.5)),
            b"c-1",
            "support.messages",
            "validation",
            "intent_confidence",
        ),
        (encode(message()), b"c-1", "support.unknown", "validation", "no event type"),
    ],
    ids=["garbage", "tombstone", "wrong-key", "no-key", "out-of-range", "unknown-topic"],
)
def test_a_bad_record_becomes_a_dead_letter_with_its_reason_and_bytes(
    handler: RecordHandler,
    record: bytes | None,
    key: bytes | None,
    topic: str,
    error_type: str,
    reason: str,
) -> None:
    handled = handler.handle(raw(record, key, topic), lambda _: None)
    assert handled.decisions == [] and handled.state is None
    dead = letter(handled.deadletter)
    assert dead["error_type"] == error_type
    assert reason in dead["reason"] and handled.reason == dead["reason"]
    assert (dead["source_topic"], dead["partition"], dead["offset"]) == (topic, 2, 41)
    assert (dead["key"], dead["value"], dead["timestamp"]) == (key, record, T0 + 5)
    assert dead["headers"] == [{"key": "trace", "value": b"t-1"}]
    assert dead["consumer"] == "tests"


def test_a_fold_that_raises_is_dead_lettered_not_raised(handler: RecordHandler) -> None:
    """A state in the table that cannot be read (say, written by a broken release) must cost one
    record, not the partition."""
    data = encode(message())
    dead = letter(handler.handle(raw(data), lambda _: {"not": "a state"}).deadletter)
    assert dead["error_type"] == "processing"
    assert dead["reason"] == "RecordError: CustomerState.customer_id: required field is missing"
    assert dead["value"] == data


def test_a_trigger_error_is_logged_counted_and_escalates(
    handler: RecordHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the explicit-request check broken
    from stream.core.triggers import explicit_request
    from stream.worker import metrics

    inject_fault(monkeypatch, explicit_request)
    counter = metrics.TRIGGER_ERRORS.labels(trigger="explicit_request")
    before = counter._value.get()
    # When a customer turn is handled
    with structlog.testing.capture_logs() as logs:
        handled = handler.handle(raw(encode(message(text="Hello"))), lambda _: None)
    # Then the decision escalates naming the failure, and it is logged and counted
    (decision,) = [serde_for_topic("escalation.decisions").decode(d) for d in handled.decisions]
    assert decision["action"] == "escalate"
    assert decision["triggers"][0]["rule"] == "trigger_error.explicit_request"
    assert [e.trigger for e in handled.trigger_errors] == ["explicit_request"]
    (line,) = [entry for entry in logs if entry["event"] == "trigger_error"]
    assert line["log_level"] == "error"
    assert line["trigger"] == "explicit_request"
    assert line["detail"] == "InjectedFault: injected fault in check"
    assert (line["topic"], line["partition"], line["offset"]) == ("support.messages", 2, 41)
    assert counter._value.get() == before + 1


def test_an_event_dated_ahead_of_its_record_is_dead_lettered_with_the_reason(
    handler: RecordHandler,
) -> None:
    # Given a record produced at T0 + 5 ms whose event claims the year 9999
    data = encode(message(occurred_at=253_402_214_400_000))
    handled = handler.handle(raw(data), lambda _: None)
    # Then it is a dead letter naming the bound, and no state was written
    dead = letter(handled.deadletter)
    assert dead["error_type"] == "event_time"
    assert dead["reason"].startswith("event time out of bounds: event time 9999-12-31")
    assert "ahead of the record timestamp" in dead["reason"]
    assert handled.state is None and handled.decisions == []


def test_an_event_far_behind_its_partition_is_dead_lettered(handler: RecordHandler) -> None:
    ok = handler.handle(raw(encode(message())), lambda _: None)
    assert ok.deadletter is None
    old = encode(message(event_id="msg-old", message_id="m-old", occurred_at=T0 - 8 * 86_400_000))
    dead = letter(handler.handle(raw(old), lambda _: ok.state).deadletter)
    assert dead["error_type"] == "event_time"
    assert "behind the stream's watermark" in dead["reason"]
