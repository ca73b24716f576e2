"""The live calibration agent on the real broker: its latest judgement of every conversation on
`escalation.calibration` equals the batch judge's on the same history, reopen update included."""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest

from stream.backtest.run import Inputs, run_policies
from stream.calibration.judged import FactsSink, conversation_facts, judge_all
from stream.core.decision import Decision
from stream.core.events import Event, OutcomeEvent, event_to_dict
from stream.core.judge import JudgeSettings
from stream.core.policy import default_policy
from stream.testing import HOUR
from tests.calibration.history import month_history
from tests.integration.kafka_helpers import Collector, Isolated, produce

pytestmark = pytest.mark.integration


def history() -> list[Event]:
    """The hand-written month, plus a reopen reported later for a conversation first judged ok."""
    events = month_history()
    first = next(
        e for e in events if isinstance(e, OutcomeEvent) and e.conversation_id == "conv-ok2"
    )
    reopen_at = first.occurred_at + 10 * HOUR
    events.append(
        dataclasses.replace(
            first, event_id="out-ok2-reopened", occurred_at=reopen_at, reopened_at=reopen_at
        )
    )
    return events


def latest(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        out[record["conversation_id"]] = record
    return out


def batch_judgements(events: list[Event], decisions: list[Decision] | None = None) -> Any:
    """The batch judge's record of every conversation with an outcome: over the decisions of
    `step` on `events` in file order, or over the given (live) decisions."""
    sink = FactsSink()
    if decisions is None:
        inputs = run_policies(events, {"p": default_policy()}, sinks={"p": sink})["p"].inputs
    else:
        inputs = Inputs()
        for event in events:
            inputs.add(event)
        for decision in decisions:
            sink(decision)
    facts = conversation_facts(sink, inputs)
    batch = judge_all(facts, JudgeSettings.from_policy(default_policy()))
    return {c: j.to_record() for c, j in batch.items() if j.resolved_by is not None}


@pytest.mark.usefixtures("consuming_worker")
def test_live_judgements_equal_the_batch_judgements(isolated: Isolated) -> None:
    events = history()
    in_file_order = batch_judgements(events)
    assert in_file_order["conv-ok2"]["verdict"] == "missed_escalation"  # after the late reopen
    assert in_file_order["conv-false"]["verdict"] == "false_escalation"
    assert in_file_order["conv-ghost"]["verdict"] == "unknown"
    assert len(in_file_order) == 9  # every conversation with an outcome; conv-noout has none

    # When the module's live worker consumes the events
    judgements = Collector(isolated, "escalation.calibration")
    decisions = Collector(isolated, "escalation.decisions")
    # The reopen of conv-ok2 is reported only once its first outcome has been judged
    *first, reopen = events
    produce(isolated, ((e.type, event_to_dict(e)) for e in first))
    judgements.wait_for(
        lambda records: latest(records).get("conv-ok2", {}).get("verdict") == "ok_without",
        timeout=180.0,
    )
    produce(isolated, [(reopen.type, event_to_dict(reopen))])
    decisions.drain(quiet=3.0)
    # Given the batch judge over the same history: these events and the decisions the
    # worker made on them (that they are `step`'s decisions is the parity test's promise)
    expected = batch_judgements(events, [Decision.from_record(r) for r in decisions.records])
    # Then, once every conversation is judged as the batch judges it, nothing differs
    with contextlib.suppress(AssertionError):  # the comparison below says what differs
        judgements.wait_for(lambda records: latest(records) == expected, timeout=180.0)
    judgements.drain(quiet=3.0)
    live = latest(judgements.records)
    differ = {
        c: {
            k: (v, live.get(c, {}).get(k))
            for k, v in expected[c].items()
            if live.get(c, {}).get(k) != v
        }
        for c in expected
        if live.get(c) != expected[c]
    }
    assert live == expected, differ
    assert {c: r["verdict"] for c, r in expected.items()} == {
        c: r["verdict"] for c, r in in_file_order.items()
    }
    # conv-ok2 was judged "ok without", then "missed" once the reopen came, on the same key (an
    # outcome read before the decisions it judges gives an "unknown" first)
    ok2 = [r["verdict"] for r in judgements.records if r["conversation_id"] == "conv-ok2"]
    assert ok2[-2:] == ["ok_without", "missed_escalation"]
    assert set(ok2[:-2]) <= {"unknown"}
    keys = {m.key() for m in judgements.raw}
    assert keys == {c.encode() for c in expected}
