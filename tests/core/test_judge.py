"""The judge: every class with its reason, order-independent folds, and the counterfactual rule."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from stream.core.decision import Decision, TriggerHit
from stream.core.events import OutcomeEvent
from stream.core.judge import (
    JudgeFacts,
    JudgeSettings,
    judge,
    note_close,
    note_decision,
    note_outcome,
    rejudge,
)
from stream.testing import decision_of

HOUR = 3_600_000
T0 = 1_767_225_600_000
SETTINGS = JudgeSettings(false_escalation_max_seconds=120.0, missed_reopen_hours=48.0)


def decision(action: str, at: int = T0, trigger: str = "confidence", n: int = 1) -> Decision:
    hits = (
        () if action == "continue" else (TriggerHit(trigger, f"{trigger}.rule", "escalate", "x"),)
    )
    return decision_of(action, at, decision_id=f"d-{action}-{n}", event_id=f"e{n}", triggers=hits)


def outcome(at: int = T0 + HOUR, **fields: Any) -> OutcomeEvent:
    return OutcomeEvent(
        event_id=f"o-{at}",
        customer_id="c1",
        occurred_at=at,
        ticket_id="t1",
        conversation_id="conv",
        **fields,
    )


def facts(action: str | None, out: OutcomeEvent | None, closed: int | None = T0 + 1000) -> Any:
    f = JudgeFacts("conv", "c1")
    if action is not None:
        note_decision(f, decision("continue", T0 - 10, n=0))
        if action != "continue":
            note_decision(f, decision(action, T0))
    if closed is not None:
        note_close(f, closed)
    if out is not None:
        note_outcome(f, out)
    return f


CASES = [
    # (action, outcome fields, verdict, need, reason fragment)
    (
        "escalate",
        {"resolved_by": "human", "handle_time_seconds": 60.0},
        "false_escalation",
        "not_needed",
        "resolved by a human in 60 s (under 120 s)",
    ),
    (
        "escalate",
        {"resolved_by": "human", "handle_time_seconds": 119.9},
        "false_escalation",
        "not_needed",
        "119.9 s",
    ),
    (
        "escalate",
        {"resolved_by": "human", "handle_time_seconds": 120.0},
        "needed_escalation",
        "needed",
        "a human worked 120 s on it",
    ),
    (
        "escalate",
        {"resolved_by": "human", "handle_time_seconds": 30.0, "special_expertise": True},
        "needed_escalation",
        "needed",
        "special expertise",
    ),
    (
        "escalate",
        {"resolved_by": "human", "handle_time_seconds": 30.0, "reopened_at": T0 + 1000 + 10 * HOUR},
        "needed_escalation",
        "needed",
        "reopened 10.0 h after the close",
    ),
    ("escalate", {"resolved_by": "ai"}, "false_escalation", "not_needed", "resolved by the AI"),
    ("escalate", {"resolved_by": "human"}, "unknown", "unknown", "no handle time"),
    ("escalate", {"resolved_by": "unresolved"}, "unknown", "unknown", "says too little"),
    (
        "continue",
        {"resolved_by": "ai", "reopened_at": T0 + 1000 + 48 * HOUR},
        "missed_escalation",
        "needed",
        "reopened 48.0 h after the close",
    ),
    (
        "continue",
        {"resolved_by": "ai", "reopened_at": T0 + 1001 + 48 * HOUR},
        "ok_without",
        "not_needed",
        "reopened only after 48.0 h",
    ),
    (
        "offer_transfer",
        {"resolved_by": "ai", "reopened_at": T0 + 5 * HOUR},
        "missed_escalation",
        "needed",
        "not escalated",
    ),
    ("continue", {"resolved_by": "ai"}, "ok_without", "not_needed", "not reopened"),
    (
        "continue",
        {"resolved_by": "human", "handle_time_seconds": 900.0},
        "ok_without",
        "needed",
        "a human worked 900 s",
    ),
    ("continue", {"resolved_by": "unresolved"}, "unknown", "unknown", "says too little"),
    (None, {"resolved_by": "ai"}, "unknown", "not_needed", "no decision was made"),
]


@pytest.mark.parametrize(("action", "fields", "verdict", "need", "reason"), CASES)
def test_each_class_with_its_reason(
    action: str | None, fields: dict[str, Any], verdict: str, need: str, reason: str
) -> None:
    judged = judge(facts(action, outcome(**fields)), SETTINGS)
    assert (judged.verdict, judged.need) == (verdict, need)
    assert reason in judged.reason


def test_no_outcome_yet_is_unknown_with_the_window_from_the_close() -> None:
    judged = judge(facts("escalate", None), SETTINGS)
    assert judged.verdict == "unknown" and judged.reason == "no outcome yet"
    assert judged.reopen_window_ends_at == T0 + 1000 + 48 * HOUR
    assert judged.escalated and judged.decision_id == "d-escalate-1"
    assert judged.triggers == ("confidence",) and judged.rules == ("confidence.rule",)


def test_without_a_close_the_window_starts_at_the_first_outcome() -> None:
    first = outcome(T0 + HOUR, resolved_by="ai")
    reopen = outcome(T0 + 30 * HOUR, resolved_by="ai", reopened_at=T0 + 30 * HOUR)
    f = facts("continue", first, closed=None)
    note_outcome(f, reopen)
    judged = judge(f, SETTINGS)
    assert judged.verdict == "missed_escalation"
    assert "reopened 29.0 h after the close" in judged.reason
    assert judged.outcome_event_id == reopen.event_id


def test_settings_are_the_policy_calibration_block() -> None:
    strict = JudgeSettings(false_escalation_max_seconds=30.0, missed_reopen_hours=12.0)
    f = facts("escalate", outcome(resolved_by="human", handle_time_seconds=60.0))
    assert judge(f, strict).verdict == "needed_escalation"
    g = facts("continue", outcome(resolved_by="ai", reopened_at=T0 + 1000 + 20 * HOUR))
    assert judge(g, SETTINGS).verdict == "missed_escalation"
    assert judge(g, strict).verdict == "ok_without"


def test_folds_give_the_same_judgement_in_any_order() -> None:
    offer = decision("offer_transfer", T0 + 5, n=2)
    escalate = decision("escalate", T0 + 9, trigger="sentiment", n=3)
    cont = decision("continue", T0, n=1)
    first = outcome(T0 + HOUR, resolved_by="human", handle_time_seconds=50.0)
    later = outcome(
        T0 + 20 * HOUR, resolved_by="human", handle_time_seconds=50.0, reopened_at=T0 + 20 * HOUR
    )
    steps = [
        ("d", cont),
        ("d", offer),
        ("d", escalate),
        ("d", escalate),  # a redelivery
        ("c", T0 + 100),
        ("c", T0 + 50),
        ("o", first),
        ("o", later),
    ]
    seen = set()
    for order in itertools.permutations(steps):
        f = JudgeFacts("conv", "c1")
        for kind, value in order:
            if kind == "d":
                note_decision(f, value)  # type: ignore[arg-type]
            elif kind == "c":
                note_close(f, value)  # type: ignore[arg-type]
            else:
                note_outcome(f, value)  # type: ignore[arg-type]
        seen.add(judge(f, SETTINGS))
    assert len(seen) == 1
    only = seen.pop()
    assert only.verdict == "needed_escalation" and only.decision_id == "d-escalate-3"
    assert only.offered and only.closed_at == T0 + 50 and only.triggers == ("sentiment",)


def test_facts_round_trip_through_their_table_form() -> None:
    f = facts("escalate", outcome(resolved_by="human", handle_time_seconds=60.0, csat=4))
    again = JudgeFacts.from_record(f.to_record())
    assert again == f
    assert judge(again, SETTINGS) == judge(f, SETTINGS)


@pytest.mark.parametrize(
    ("recorded_action", "fields", "other_action", "verdict"),
    [
        # recorded escalated and needed: not escalating it is assumed missed
        (
            "escalate",
            {"resolved_by": "human", "handle_time_seconds": 900.0},
            "continue",
            "missed_escalation",
        ),
        # recorded escalated and easy: not escalating it is assumed fine
        (
            "escalate",
            {"resolved_by": "human", "handle_time_seconds": 40.0},
            "continue",
            "ok_without",
        ),
        # recorded not escalated, resolved by the AI: escalating it is a false escalation
        ("continue", {"resolved_by": "ai"}, "escalate", "false_escalation"),
        # recorded not escalated, reopened: escalating it is a needed escalation
        (
            "continue",
            {"resolved_by": "ai", "reopened_at": T0 + 5 * HOUR},
            "escalate",
            "needed_escalation",
        ),
        # same decision: the literal judgement stands
        (
            "continue",
            {"resolved_by": "human", "handle_time_seconds": 900.0},
            "offer_transfer",
            "ok_without",
        ),
    ],
)
def test_rejudge_keeps_the_recorded_need(
    recorded_action: str, fields: dict[str, Any], other_action: str, verdict: str
) -> None:
    out = outcome(**fields)
    recorded = judge(facts(recorded_action, out), SETTINGS)
    own = judge(facts(other_action, out), SETTINGS)
    again = rejudge(own, recorded)
    assert again.verdict == verdict
    assert again.assumed == (recorded.escalated != own.escalated)
