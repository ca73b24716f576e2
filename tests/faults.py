"""Faults injected the way a bug would strike: a function of the decision path raises.

The fail-safe tests (core, backtest, worker) break one function and check that the decision
escalates and names the failure; one helper breaks it, so they all inject the same fault and read
the same message back.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream.core import step as step_module
from stream.core.decision import Decision
from stream.core.policy import Policy
from stream.core.step import StepResult
from stream.testing import EventFactory, Run


class InjectedFault(RuntimeError):
    """The injected fault; its name in a decision's reason shows the fail-safe path was taken."""


def inject_fault(monkeypatch: pytest.MonkeyPatch, owner: Any, name: str = "check") -> list[int]:
    """Make `owner.name` raise `InjectedFault("injected fault in NAME")`; the returned list gets
    one item per call, so a test can tell the broken function was reached."""
    calls: list[int] = []

    def broken(*_a: Any, **_kw: Any) -> Any:
        calls.append(1)
        raise InjectedFault(f"injected fault in {name}")

    monkeypatch.setattr(owner, name, broken)
    return calls


def ask_while_clarifying_breaks(
    monkeypatch: pytest.MonkeyPatch, policy: Policy, events: EventFactory, **ai_turn: Any
) -> tuple[Run, StepResult]:
    """A customer with an account asks for their balance; then the AI turn `events.ai(**ai_turn)`
    is folded while the check of whether it asks a clarifying question raises."""
    run = Run(policy)
    run.feed(events.account(), events.customer("What's my balance?"))
    inject_fault(monkeypatch, step_module, "_asks_to_clarify")
    return run, run.step(events.ai(**ai_turn))


def assert_fail_safe(decision: Decision | None, trigger: str, *, hold: bool) -> None:
    """`decision` escalates on the injected fault of `trigger`, holding the action if `hold`:
    one `trigger_error.<trigger>` hit, listed first, naming the fault, at high priority or more."""
    assert decision is not None
    assert decision.action == "escalate"
    assert decision.hold_action is hold
    failed = [hit for hit in decision.triggers if hit.trigger == "trigger_error"]
    assert [hit.rule for hit in failed] == [f"trigger_error.{trigger}"]
    # Listed first, so a reader sees at once that this decision is a fail-safe one.
    assert decision.triggers[0] is failed[0]
    assert "InjectedFault: injected fault" in failed[0].reason
    assert failed[0].evidence[0].ref == trigger
    assert decision.priority in ("high", "urgent")


def assert_failed_safe(result: StepResult, trigger: str, *, hold: bool) -> Decision:
    """The step's one decision fails safe on `trigger` (`assert_fail_safe`), and its only error
    names that trigger, for the caller to log and count. Returns the decision."""
    (decision,) = result.decisions
    assert_fail_safe(decision, trigger, hold=hold)
    assert [e.trigger for e in result.errors] == [trigger]
    return decision
