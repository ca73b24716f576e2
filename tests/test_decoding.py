"""Decoding hostile input: unknown enum values are named, non-finite numbers refused, and any
bytes at all give a SerdeError or a valid event, never another exception (hypothesis fuzz)."""

from __future__ import annotations

import io
import math
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.events import EVENT_TYPES, EventError, event_from_dict
from stream.serde import HEADER_SIZE, SerdeError, serde_for_topic
from stream.topics import EVENT_TOPICS

T0 = 1_767_225_600_000


def message(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "event_id": "e-1",
        "customer_id": "c-1",
        "occurred_at": T0,
        "schema_version": 1,
        "conversation_id": "v-1",
        "message_id": "m-1",
        "role": "customer",
        "text": "hello",
        "channel": "chat",
        "category": None,
        "intent": None,
        "intent_confidence": None,
        "proposed_action": None,
        "action_attempted": False,
        "action_failed": False,
    }
    record.update(fields)
    return record


def with_enum_index(topic: str, record: dict[str, Any], field: str, index: int) -> bytes:
    """The record encoded with `field`'s enum index replaced, as a broken producer would."""
    serde = serde_for_topic(topic)
    data = serde.encode(record)
    # Re-encode with the enum read as an int, so any index can be written.
    schema = serde._writer_json[data[2:HEADER_SIZE]]  # type: ignore[union-attr]
    plain = {
        **schema,
        "fields": [{**f, "type": "int"} if f["name"] == field else f for f in schema["fields"]],
    }
    symbols = next(f["type"]["symbols"] for f in schema["fields"] if f["name"] == field)
    body = io.BytesIO()
    rewritten = {**record, field: index if index >= 0 else symbols.index(record[field])}
    fastavro.schemaless_writer(body, fastavro.parse_schema(plain), rewritten)
    return data[:HEADER_SIZE] + body.getvalue()


@pytest.mark.parametrize(
    ("topic", "record", "field", "allowed"),
    [
        ("support.messages", message(), "role", "customer, ai_agent, human_agent, system"),
    ],
)
def test_an_unknown_enum_value_names_the_field_and_the_allowed_values(
    topic: str, record: dict[str, Any], field: str, allowed: str
) -> None:
    serde = serde_for_topic(topic)
    # The rewriting itself is faithful: the real index decodes to the same record
    assert serde.decode(with_enum_index(topic, record, field, -1)) == record
    with pytest.raises(SerdeError) as caught:
        serde.decode(with_enum_index(topic, record, field, 9))
    text = str(caught.value)
    assert f"field {field} has no value at enum index 9" in text
    assert f"allowed values: {allowed}" in text
    assert "IndexError" not in text


def test_every_input_enum_is_named() -> None:
    contact = {
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": T0,
        "schema_version": 1,
        "contact_id": "k",
        "conversation_id": "v",
        "action": "opened",
        "issue_key": "billing:1",
        "category": None,
        "channel": "chat",
    }
    with pytest.raises(SerdeError, match="field action has no value at enum index 3 of"):
        serde_for_topic("support.contacts").decode(
            with_enum_index("support.contacts", contact, "action", 3)
        )


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("kind", "field"),
    [("account", "balance"), ("outcome", "handle_time_seconds"), ("message", "amount")],
)
def test_non_finite_numbers_are_refused_naming_the_field(kind: str, field: str, bad: float) -> None:
    record: dict[str, Any] = {"event_id": "e", "customer_id": "c", "occurred_at": T0}
    if kind == "account":
        record["balance"] = bad
    elif kind == "outcome":
        record.update(ticket_id="t", conversation_id="v", handle_time_seconds=bad)
    else:
        record = message(
            proposed_action={"type": "refund", "consequence_class": "financial", "amount": bad}
        )
    with pytest.raises(EventError, match=f"{field}: expected a finite number"):
        event_from_dict(kind, record)


def test_a_nan_balance_on_the_wire_is_refused() -> None:
    serde = serde_for_topic("support.accounts")
    record = {
        "event_id": "e",
        "customer_id": "c",
        "occurred_at": T0,
        "schema_version": 1,
        "tier": "standard",
        "plan": None,
        "enterprise_contract": False,
        "contract_id": None,
        "primary_email": None,
        "balance": math.nan,
        "currency": "USD",
        "flags": [],
        "open_cases": 0,
    }
    decoded = serde.decode(serde.encode(record))
    with pytest.raises(EventError, match="account.balance: expected a finite number"):
        event_from_dict("account", decoded)


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def decode_or_refuse(kind: str, data: bytes) -> None:
    """What the worker does with a record's bytes: a typed event, or a named refusal."""
    try:
        record = serde_for_topic(EVENT_TOPICS[kind]).decode(data)
        event_from_dict(kind, record)
    except (SerdeError, EventError) as exc:
        assert str(exc)


@FUZZ
@given(st.sampled_from(EVENT_TYPES), st.binary(max_size=300))
def test_arbitrary_bytes_decode_or_are_refused(kind: str, data: bytes) -> None:
    decode_or_refuse(kind, data)


@FUZZ
@given(st.sampled_from(EVENT_TYPES), st.binary(max_size=300), st.data())
def test_arbitrary_bodies_behind_a_valid_header_decode_or_are_refused(
    kind: str, body: bytes, data: st.DataObject
) -> None:
    # Past the header check, so the fuzz reaches the Avro body reader and the validation
    serde = serde_for_topic(EVENT_TOPICS[kind])
    header = data.draw(st.sampled_from(sorted(serde._writer_json)))  # type: ignore[union-attr]
    decode_or_refuse(kind, b"\xc3\x01" + header + body)


@FUZZ
@given(st.sampled_from(EVENT_TYPES), st.dictionaries(st.text(max_size=20), st.from_type(object)))
def test_arbitrary_records_are_typed_or_refused(kind: str, record: dict[str, Any]) -> None:
    try:
        event_from_dict(kind, record)
    except EventError as exc:
        assert str(exc)
