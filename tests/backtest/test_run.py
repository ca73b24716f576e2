"""The backtest run: the worker's `step` folded per customer, one pass for several policies."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from stream.backtest import run as run_module
from stream.backtest.run import StepError, run_policies, run_policy
from stream.core.decision import Decision
from stream.core.events import Event
from stream.core.policy import Policy, default_policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.testing import HOUR, EventFactory
from tests.backtest.backtest_history import CANDIDATE_YAML, FALSE_UNDER_BASELINE, scripted_history


def _fold_by_hand(events: list[Event], policy: Policy) -> list[Decision]:
    """What a worker does per record: load the customer's state, step, store it."""
    states: dict[str, CustomerState] = {}
    decisions: list[Decision] = []
    for event in events:
        result = step(states.get(event.customer_id), event, policy)
        states[event.customer_id] = result.state
        decisions.extend(result.decisions)
    return decisions


def test_run_policy_gives_the_decisions_of_folding_step_per_customer() -> None:
    events = scripted_history()
    policy = default_policy()
    result = run_policy(events, policy)
    expected = _fold_by_hand(events, policy)
    assert [d.to_record() for d in result.decisions] == [d.to_record() for d in expected]
    assert result.decision_count == len(expected) > 0
    assert set(result.states) == {e.customer_id for e in events}
    assert all(isinstance(s, CustomerState) for s in result.states.values())


def test_runs_are_deterministic_to_the_decision_id() -> None:
    first = run_policy(scripted_history(), default_policy())
    second = run_policy(scripted_history(), default_policy())
    assert [d.decision_id for d in first.decisions] == [d.decision_id for d in second.decisions]
    assert [h.to_record() for h in first.handoffs] == [h.to_record() for h in second.handoffs]


def test_one_pass_for_two_policies_equals_two_separate_runs(
    policy_factory: Callable[[str], Policy],
) -> None:
    events = scripted_history()
    candidate, baseline = policy_factory(CANDIDATE_YAML), default_policy()
    together = run_policies(iter(events), {"candidate": candidate, "baseline": baseline})
    for name, policy in (("candidate", candidate), ("baseline", baseline)):
        alone = run_policy(events, policy)
        assert [d.to_record() for d in together[name].decisions] == [
            d.to_record() for d in alone.decisions
        ]
        assert together[name].handoff_count == alone.handoff_count
    assert together["candidate"].inputs is together["baseline"].inputs


def test_without_keeping_decisions_they_go_to_the_sink_and_are_counted() -> None:
    events = scripted_history()
    seen: list[Decision] = []
    result = run_policy(events, default_policy(), keep=False, sink=seen.append)
    assert result.decisions == [] and result.handoffs == []
    assert len(seen) == result.decision_count == sum(result.actions.values())
    assert result.handoff_count == result.actions["escalate"]
    assert [d.to_record() for d in seen] == [
        d.to_record() for d in run_policy(events, default_policy()).decisions
    ]


def test_verdicts_keep_the_furthest_action_and_the_decision_that_reached_it() -> None:
    result = run_policy(scripted_history(), default_policy())
    verdict = result.verdicts[FALSE_UNDER_BASELINE[0]]
    assert verdict.action == "escalate"
    assert verdict.decisive is not None
    assert [(h.trigger, h.rule) for h in verdict.decisive.triggers] == [
        ("policy_boundary", "boundary.refund_limit")
    ]
    assert result.verdicts["conv-routine"].action == "continue"
    assert result.verdicts["conv-routine"].decisive is None


def test_inputs_know_each_conversation_and_its_latest_outcome(event_factory: EventFactory) -> None:
    f = event_factory
    events: list[Event] = [
        f.of("c1").customer("hi", "conv-1", category="billing"),
        f.of("c1").ai(
            "hello",
            "conv-1",
            action="answer",
            category="refunds",
        ),
    ]
    last = f.clock
    events += [
        f.of("c1").outcome("conv-1", resolved_by="ai", at=last + HOUR, ticket_id="ticket-conv-1"),
        f.of("c1").outcome(
            "conv-1",
            resolved_by="human",
            handle_time_seconds=30,
            at=last + 2 * HOUR,
            ticket_id="ticket-conv-1",
        ),
    ]
    inputs = run_policy(events, default_policy()).inputs
    conversation = inputs.conversations["conv-1"]
    assert (conversation.first_at, conversation.last_at) == (events[0].occurred_at, last)
    assert conversation.category == "refunds"  # the latest classification
    assert inputs.outcomes["conv-1"].resolved_by == "human"
    assert inputs.by_type == {"message": 2, "outcome": 2}


def test_a_failing_step_stops_the_run_naming_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(state: Any, event: Event, policy: Policy) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(run_module, "step", broken)
    events = scripted_history()
    with pytest.raises(StepError, match=f"event '{events[0].event_id}' of customer"):
        run_policy(events, default_policy())


def test_a_progress_bar_goes_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    events = scripted_history()
    run_policy(events, default_policy(), progress=True, total=len(events))
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "100%" in captured.err and "ev/s" in captured.err


def test_run_and_report_import_neither_faust_nor_the_kafka_client() -> None:
    code = (
        "import sys, stream.backtest.run, stream.backtest.report, stream.backtest.html; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('faust', 'confluent_kafka', "
        "'aiokafka')]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="no policy"):
        run_policies([], {})
