"""The calibration agent's record handling, without a broker."""

from __future__ import annotations

from typing import Any

from stream.core.events import event_to_dict
from stream.core.judge import JudgeFacts
from stream.core.policy import default_policy
from stream.serde import serde_for_schema, serde_for_topic
from stream.settings import Settings
from stream.testing import EventFactory
from stream.worker import metrics
from stream.worker.handler import RawRecord, RecordHandler
from stream.worker.judging import Judging, limits_for

DEADLETTER = serde_for_schema("escalation.DeadLetter")


def judging_of(settings: Settings) -> Judging:
    handler = RecordHandler(default_policy, consumer=settings.app_id)
    return Judging(settings, default_policy, handler.deadletter)


def raw(topic: str, value: bytes | None, key: bytes | None = b"c1", offset: int = 7) -> RawRecord:
    return RawRecord(topic, 2, offset, key, value, (), 1_700_000_000_000)


def judged_count(verdict: str) -> float:
    return metrics.JUDGEMENTS.labels(judgement=verdict)._value.get()  # type: ignore[no-any-return]


def test_records_fold_into_the_table_and_judgements_are_encoded() -> None:
    settings = Settings(topic_prefix="t.")
    judging = judging_of(settings)
    table: dict[str, Any] = {}
    before = judged_count("unknown")
    f = EventFactory("c1")
    close = f.contact("conv-1", action="closed")
    out = f.outcome("conv-1", ticket_id="t1", resolved_by="ai")
    for topic, event in (("support.contacts", close), ("ticketing.outcomes", out)):
        value = serde_for_topic(topic).encode(event_to_dict(event))
        judged = judging.handle(raw(f"t.{topic}", value), table.get)
        assert judged.customer_id == "c1" and judged.deadletter is None
        table["c1"] = judged.memory
    assert len(judged.publish) == 1
    key, value = judged.publish[0]
    record = judging.output.decode(value)
    assert key == b"conv-1" and record["verdict"] == "unknown"
    # Each published judgement is counted by its verdict on the worker's metrics
    assert judged_count("unknown") == before + 1
    assert "no decision was made" in record["reason"]
    facts = table["c1"]["conversations"]["conv-1"]
    assert JudgeFacts.from_record(facts).closed_at == close.occurred_at


def test_an_undecodable_decision_is_dead_lettered_with_the_reason() -> None:
    settings = Settings(topic_prefix="t.")
    judging = judging_of(settings)
    bad = raw("t.escalation.decisions", b"\x00garbage", offset=41)
    judged = judging.handle(bad, dict().get)
    assert judged.customer_id is None and judged.publish == []
    assert judged.deadletter is not None
    letter = DEADLETTER.decode(judged.deadletter)
    assert letter["source_topic"] == "t.escalation.decisions"
    assert (letter["partition"], letter["offset"]) == (2, 41)
    assert letter["value"] == b"\x00garbage" and letter["key"] == b"c1"
    assert letter["error_type"] == "decode"
    assert letter["reason"] == judged.reason and "escalation.Decision" in letter["reason"]
    assert letter["consumer"] == settings.app_id
    assert judging.skipped == 1


def test_a_record_of_a_topic_it_does_not_judge_is_dead_lettered_with_the_topic() -> None:
    judging = judging_of(Settings())
    judged = judging.handle(raw("support.messages", b"\x00garbage"), dict().get)
    assert judged.deadletter is not None
    letter = DEADLETTER.decode(judged.deadletter)
    assert letter["error_type"] == "validation"
    assert letter["reason"] == "topic 'support.messages' is not judged here"
    assert judging.skipped == 1


def test_a_decision_missing_fields_is_dead_lettered_as_invalid() -> None:
    judging = judging_of(Settings())
    # A valid record of another schema on the decisions topic: it decodes as nothing usable.
    f = EventFactory("c1")
    value = serde_for_topic("support.contacts").encode(event_to_dict(f.contact("conv-1")))
    judged = judging.handle(raw("escalation.decisions", value), dict().get)
    assert judged.deadletter is not None
    letter = DEADLETTER.decode(judged.deadletter)
    assert letter["error_type"] == "decode"
    assert len(letter["reason"]) > 10


def test_an_undecodable_contact_or_outcome_is_left_to_the_customer_agents_dead_letter() -> None:
    """Both agents read these topics with the same decoder: the customer agent letters the record
    (tests/integration/test_poison_matrix.py), so it is not lettered twice."""
    judging = judging_of(Settings())
    for topic in ("support.contacts", "ticketing.outcomes"):
        judged = judging.handle(raw(topic, b"\x00garbage"), dict().get)
        assert judged.deadletter is None and judged.customer_id is None
        assert judged.reason is not None
    assert judging.skipped == 2


def test_a_fold_that_raises_is_dead_lettered_as_processing(monkeypatch: Any) -> None:
    import stream.worker.judging as module

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("judge broke")

    monkeypatch.setattr(module, "remember", broken)
    judging = judging_of(Settings())
    f = EventFactory("c1")
    value = serde_for_topic("ticketing.outcomes").encode(event_to_dict(f.outcome("conv-1")))
    judged = judging.handle(raw("ticketing.outcomes", value), dict().get)
    assert judged.customer_id is None and judged.deadletter is not None
    letter = DEADLETTER.decode(judged.deadletter)
    assert letter["error_type"] == "processing"
    assert letter["reason"] == "RuntimeError: judge broke"


def test_the_horizon_is_the_reopen_window_plus_lateness_unless_set() -> None:
    policy = default_policy()
    limits = limits_for(Settings(), policy)
    expected = int(policy.calibration.missed_reopen_hours * 3_600_000)
    assert limits.horizon_ms == expected + policy.lateness_seconds * 1000
    assert limits_for(Settings(calibration_horizon_hours=2), policy).horizon_ms == 7_200_000


def encoded(topic: str, event: Any) -> bytes:
    return serde_for_topic(topic).encode(event_to_dict(event))


def test_a_batch_writes_each_customers_memory_once_as_record_by_record_would() -> None:
    settings = Settings(topic_prefix="t.")
    f, g = EventFactory("c1"), EventFactory("c2")
    records = [
        raw("t.support.contacts", encoded("support.contacts", f.contact("a", action="closed"))),
        raw("t.support.contacts", encoded("support.contacts", g.contact("b")), key=b"c2"),
        raw("t.ticketing.outcomes", encoded("ticketing.outcomes", f.outcome("a", ticket_id="t"))),
        raw("t.support.contacts", encoded("support.contacts", f.contact("z", action="closed"))),
    ]
    # Record by record, as the agent did before: one table write per record.
    one_by_one = judging_of(settings)
    table: dict[str, Any] = {}
    writes = published = 0
    for record in records:
        judged = one_by_one.handle(record, table.get)
        if judged.customer_id is not None:
            table[judged.customer_id] = judged.memory
            writes += 1
            published += len(judged.publish)
    # The same records as one batch: the same memory and judgements, one write for c1; an
    # opened contact (c2's) changes no memory and is written by neither.
    batch = judging_of(settings).handle_batch(records, lambda c, p: None)
    assert writes == 3 and published == 1
    assert batch.memories == {"c1": (2, table["c1"])} and batch.refused == []
    assert [key for key, _ in batch.publish] == [b"a"]


def test_a_fold_that_raises_in_a_batch_keeps_what_the_earlier_records_made(
    monkeypatch: Any,
) -> None:
    import stream.worker.judging as module

    real = module.remember

    def broken_on_b(memory: Any, item: Any, *args: Any) -> Any:
        if item.conversation_id == "b":
            # Half-way through a change, then it breaks.
            memory.conversations["b"] = memory.conversations["a"]
            raise RuntimeError("judge broke")
        return real(memory, item, *args)

    monkeypatch.setattr(module, "remember", broken_on_b)
    f = EventFactory("c1")
    close_a, close_c = f.contact("a", action="closed"), f.contact("c", action="closed")
    bad = raw(
        "support.contacts", encoded("support.contacts", f.contact("b", action="closed")), offset=8
    )
    records = [
        raw("support.contacts", encoded("support.contacts", close_a)),
        bad,
        raw("support.contacts", encoded("support.contacts", close_c), offset=9),
    ]
    batch = judging_of(Settings()).handle_batch(records, lambda c, p: None)
    # The failing record is dead-lettered as processing; the memory holds a and c, not b's
    # half-made change.
    assert [(r.offset, j.reason) for r, j in batch.refused] == [(8, "RuntimeError: judge broke")]
    letter = batch.refused[0][1].deadletter
    assert letter is not None and DEADLETTER.decode(letter)["error_type"] == "processing"
    partition, memory = batch.memories["c1"]
    assert sorted(memory["conversations"]) == ["a", "c"]
    assert memory["watermark"] == max(close_a.occurred_at, close_c.occurred_at)


def test_a_batch_folded_in_parts_gives_what_the_whole_batch_gives() -> None:
    # The agent folds a batch record by record, handing the event loop back in between; the
    # memories written, judgements and refusals must be those of the batch folded at once.
    settings = Settings(topic_prefix="t.")
    f, g = EventFactory("c1"), EventFactory("c2")
    records = [
        raw("t.support.contacts", encoded("support.contacts", f.contact("a", action="closed"))),
        raw("t.support.contacts", encoded("support.contacts", g.contact("b", action="closed"))),
        raw("t.ticketing.outcomes", encoded("ticketing.outcomes", f.outcome("a", ticket_id="t"))),
        raw("t.escalation.decisions", b"\x00garbage", offset=41),
        raw("t.support.contacts", encoded("support.contacts", f.contact("z", action="closed"))),
    ]
    whole = judging_of(settings).handle_batch(records, lambda c, p: None)
    loads: list[str] = []

    def load(customer_id: str, partition: int) -> None:
        loads.append(customer_id)

    parts = judging_of(settings).begin(load)
    for record in records:
        parts.fold([record])
    written = {c: (p, memory) for c, p, memory in parts.written()}
    assert written == whole.memories and sorted(written) == ["c1", "c2"]
    # Each customer's memory is read once, though c1's records are in three parts.
    assert sorted(loads) == ["c1", "c2"]
    assert parts.publish == whole.publish and [k for k, _ in parts.publish] == [b"a"]
    assert [(r.offset, j.reason) for r, j in parts.refused] == [
        (r.offset, j.reason) for r, j in whole.refused
    ]
    assert [r.offset for r, _ in parts.refused] == [41]
