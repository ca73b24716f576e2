"""The live judging memory: publishes what changed, forgets what is past its horizon, capped."""

from __future__ import annotations

from stream.core.decision import Decision
from stream.core.events import ContactEvent, OutcomeEvent
from stream.core.judge import JudgeSettings
from stream.core.judging import JudgingMemory, MemoryLimits, remember
from stream.testing import decision_of

HOUR = 3_600_000
T0 = 1_767_225_600_000
SETTINGS = JudgeSettings()
LIMITS = MemoryLimits(horizon_ms=49 * HOUR, idle_ms=72 * HOUR, max_conversations=3)


def decision(conv: str, at: int, action: str = "continue") -> Decision:
    return decision_of(
        action,
        at,
        conversation_id=conv,
        decision_id=f"d-{conv}-{action}",
        event_id=f"e-{conv}",
        priority="low",
        policy_version="p",
    )


def closed(conv: str, at: int) -> ContactEvent:
    return ContactEvent(f"close-{conv}", "c1", at, f"ct-{conv}", conv, "closed", "billing:x")


def outcome(conv: str, at: int, reopened_at: int | None = None) -> OutcomeEvent:
    return OutcomeEvent(
        f"out-{conv}-{at}", "c1", at, f"t-{conv}", conv, resolved_by="ai", reopened_at=reopened_at
    )


def fold(memory: JudgingMemory | None, *items: object) -> tuple[JudgingMemory, list[str]]:
    verdicts: list[str] = []
    for item in items:
        memory, out = remember(memory, item, SETTINGS, LIMITS)  # type: ignore[arg-type]
        verdicts += [j.verdict for j in out]
    assert memory is not None
    return memory, verdicts


def test_a_judgement_is_published_once_and_again_when_it_changes() -> None:
    memory, verdicts = fold(
        None,
        decision("a", T0),
        closed("a", T0 + 1000),
        outcome("a", T0 + 2000),
        closed("a", T0 + 1000),  # a redelivered close changes nothing
        outcome("a", T0 + 20 * HOUR, reopened_at=T0 + 20 * HOUR),
    )
    assert verdicts == ["ok_without", "missed_escalation"]
    # a contact that is not a close, and a decision without a conversation, are not kept
    _, more = fold(memory, ContactEvent("o", "c1", T0 + 21 * HOUR, "ct", "b", "opened", "k"))
    assert more == [] and "b" not in memory.conversations


def test_a_closed_conversation_is_forgotten_after_its_horizon() -> None:
    memory, _ = fold(None, decision("a", T0), closed("a", T0 + 1000), outcome("a", T0 + 2000))
    memory, _ = fold(memory, decision("b", T0 + 1000 + 49 * HOUR))
    assert "a" in memory.conversations  # exactly at the horizon: kept
    memory, _ = fold(memory, decision("b", T0 + 1001 + 49 * HOUR + 1))
    assert "a" not in memory.conversations and "a" not in memory.published
    # an outcome after that is judged on what it alone says
    _, verdicts = fold(memory, outcome("a", T0 + 60 * HOUR))
    assert verdicts == ["unknown"]


def test_at_most_max_conversations_are_kept_least_recent_first_out() -> None:
    memory, _ = fold(None, *(decision(c, T0 + i) for i, c in enumerate("abcd")))
    assert sorted(memory.conversations) == ["b", "c", "d"]


def test_the_memory_round_trips_through_its_record() -> None:
    memory, _ = fold(None, decision("a", T0), closed("a", T0 + 1000), outcome("a", T0 + 2000))
    assert JudgingMemory.from_record(memory.to_record()) == memory
