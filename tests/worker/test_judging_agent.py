"""The calibration agent's record handling, without a broker."""

from __future__ import annotations

from typing import Any

from stream.core.events import event_to_dict
from stream.core.judge import JudgeFacts
from stream.core.policy import default_policy
from stream.serde import serde_for_topic
from stream.settings import Settings
from stream.testing import EventFactory
from stream.worker import metrics
from stream.worker.judging import Judging, limits_for


def judged_count(verdict: str) -> float:
    return metrics.JUDGEMENTS.labels(judgement=verdict)._value.get()  # type: ignore[no-any-return]


def test_records_fold_into_the_table_and_judgements_are_encoded() -> None:
    settings = Settings(topic_prefix="t.")
    judging = Judging(settings, default_policy)
    table: dict[str, Any] = {}
    before = judged_count("unknown")
    f = EventFactory("c1")
    close = f.contact("conv-1", action="closed")
    out = f.outcome("conv-1", ticket_id="t1", resolved_by="ai")
    for topic, event in (("support.contacts", close), ("ticketing.outcomes", out)):
        value = serde_for_topic(topic).encode(event_to_dict(event))
        customer, memory, publish = judging.handle(f"t.{topic}", value, table.get)
        assert customer == "c1"
        table[customer] = memory
    assert len(publish) == 1
    key, value = publish[0]
    record = judging.output.decode(value)
    assert key == b"conv-1" and record["verdict"] == "unknown"
    # Each published judgement is counted by its verdict on the worker's metrics
    assert judged_count("unknown") == before + 1
    assert "no decision was made" in record["reason"]
    facts = table["c1"]["conversations"]["conv-1"]
    assert JudgeFacts.from_record(facts).closed_at == close.occurred_at


def test_an_undecodable_record_is_counted_and_skipped() -> None:
    judging = Judging(Settings(), default_policy)
    assert judging.handle("ticketing.outcomes", b"\x00garbage", dict().get) == (None, None, [])
    assert judging.skipped == 1


def test_the_horizon_is_the_reopen_window_plus_lateness_unless_set() -> None:
    policy = default_policy()
    limits = limits_for(Settings(), policy)
    expected = int(policy.calibration.missed_reopen_hours * 3_600_000)
    assert limits.horizon_ms == expected + policy.lateness_seconds * 1000
    assert limits_for(Settings(calibration_horizon_hours=2), policy).horizon_ms == 7_200_000
