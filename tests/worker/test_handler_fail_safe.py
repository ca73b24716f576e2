"""The worker's record handler on a failure outside the triggers: decided, logged and counted.

Before, an exception in the text analysis left `step` and the handler dead-lettered the record:
no decision was published, so the AI carried on. Now the record gives an escalation naming the
failure, an error log line with where the record came from, and the trigger-error metric.
"""

from __future__ import annotations

from typing import Any

import pytest
import structlog.testing

from stream.core import step as step_module
from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.testing import message_record
from stream.worker import metrics
from stream.worker.handler import RawRecord, RecordHandler

T0 = 1_767_225_600_000


def test_a_broken_text_analysis_escalates_logs_and_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given the turn analysis raising, as a bug in the markers would
    def broken(*_a: Any, **_kw: Any) -> Any:
        raise RuntimeError("injected")

    monkeypatch.setattr(step_module, "analyze_turn", broken)
    handler = RecordHandler(default_policy, consumer="tests")
    counter = metrics.TRIGGER_ERRORS.labels(trigger="text_analysis")
    before = counter._value.get()
    value = serde_for_topic("support.messages").encode(
        message_record(occurred_at=T0, text="Where is my parcel?")
    )
    record = RawRecord("support.messages", 1, 7, b"c-1", value, [], T0 + 5)
    # When the customer turn is handled
    with structlog.testing.capture_logs() as logs:
        handled = handler.handle(record, lambda _: None)
    # Then it is decided, not dead-lettered: escalate, naming the text analysis, with a package
    assert handled.deadletter is None and handled.state is not None
    (decision,) = [serde_for_topic("escalation.decisions").decode(d) for d in handled.decisions]
    assert decision["action"] == "escalate"
    assert decision["triggers"][0]["rule"] == "trigger_error.text_analysis"
    assert len(handled.handoffs) == 1
    # And it is logged with where the record came from, and counted
    (line,) = [entry for entry in logs if entry["event"] == "trigger_error"]
    assert line["log_level"] == "error"
    assert (line["trigger"], line["detail"]) == ("text_analysis", "RuntimeError: injected")
    assert (line["topic"], line["partition"], line["offset"]) == ("support.messages", 1, 7)
    assert counter._value.get() == before + 1


def test_an_identifier_over_its_bound_is_dead_lettered_with_the_reason() -> None:
    handler = RecordHandler(default_policy, consumer="tests")
    value = serde_for_topic("support.messages").encode(
        message_record(occurred_at=T0, message_id="m" * 100_000)
    )
    record = RawRecord("support.messages", 1, 8, b"c-1", value, [], T0 + 5)
    handled = handler.handle(record, lambda _: None)
    assert handled.deadletter is not None and handled.state is None
    dead = serde_for_topic("support.deadletter").decode(handled.deadletter)
    assert dead["error_type"] == "validation"
    assert dead["reason"] == (
        "message.message_id: 100000 characters, more than the 256 an identifier may have"
    )
