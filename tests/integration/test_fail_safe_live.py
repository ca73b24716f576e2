"""Fail safe outside the triggers, in the running worker on the real broker.

Two faults, each in a worker of its own: the text analysis raising, and the handoff builder
raising on the escalation of a refund over the limit (the held action).

The text analysis of a customer turn raises inside the worker (its turn model fails on a marked
turn: tests/integration/broken_model_worker.py). The published decision must escalate with the
`trigger_error.text_analysis` hit first, its handoff package must be published, and the error must
be in the worker's log and in `escalation_trigger_errors_total`; other turns decide as before.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream.core import handoff
from tests.integration.broken_handoff_worker import TRIGGER as HANDOFF_TRIGGER
from tests.integration.broken_handoff_worker import broken_build
from tests.integration.broken_model_worker import TRIGGER
from tests.integration.kafka_helpers import (
    Collector,
    Isolated,
    assert_backtest_parity,
    free_port,
    isolated_topics,
    journalled_worker,
    produce,
)
from tests.integration.test_worker import T0, account, contact, message, refund

pytestmark = pytest.mark.integration

# Topics and an app id per test: each test's decisions are compared with its own journal.
isolated = pytest.fixture(isolated_topics)


def trigger_errors(port: int, trigger: str) -> float:
    """The worker's `escalation_trigger_errors_total` for one trigger (0 when absent)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        body = response.read().decode()
    wanted = f'escalation_trigger_errors_total{{trigger="{trigger}"}} '
    for line in body.splitlines():
        if line.startswith(wanted):
            return float(line.removeprefix(wanted))
    return 0.0


def counted_once(port: int, trigger: str, timeout: float = 60.0) -> float:
    """The trigger's error count once it reaches 1, or what it is after `timeout` s."""
    deadline = time.monotonic() + timeout
    while trigger_errors(port, trigger) < 1 and time.monotonic() < deadline:
        time.sleep(1.0)
    return trigger_errors(port, trigger)


@dataclass
class FaultyRun:
    """What a worker with an injected fault published, logged and counted."""

    by_event: dict[str, dict[str, Any]]
    packages: list[dict[str, Any]]
    errors_counted: float
    logged_errors: list[dict[str, Any]]
    consumed: list[tuple[str, int, int]]
    decisions: list[dict[str, Any]]


def run_faulty_worker(
    isolated: Isolated,
    tmp_path: Path,
    module: str,
    events: list[tuple[str, dict[str, Any]]],
    decided: set[str],
    conversation: str,
    trigger: str,
) -> FaultyRun:
    """Runs the worker of `module` (a fault injected) over `events`, until every event id in
    `decided` has a decision, `conversation` a package, and `trigger`'s error count is 1 (each
    wait bounded)."""
    decisions = Collector(isolated, "escalation.decisions")
    handoffs = Collector(isolated, "escalation.handoffs")
    port = free_port()
    env = {"ESCALATION_WEB_PORT": str(port)}
    with journalled_worker(isolated, tmp_path, env, module=module) as worker:
        produce(isolated, events)
        out = decisions.wait_for(lambda rs: decided <= {r["event_id"] for r in rs}, 180)
        packages = handoffs.wait_for(
            lambda rs: any(r["conversation_id"] == conversation for r in rs)
        )
        counted = counted_once(port, trigger)
        consumed = worker.consumed(len(events))
        decisions.drain(quiet=3.0)
        worker.assert_running()
    decisions.close()
    handoffs.close()
    log = worker.log.read_text().splitlines()
    return FaultyRun(
        by_event={r["event_id"]: r for r in out},
        packages=packages,
        errors_counted=counted,
        logged_errors=[json.loads(x) for x in log if '"trigger_error"' in x],
        consumed=consumed,
        decisions=decisions.records,
    )


def test_a_text_analysis_failure_in_the_running_worker_escalates_logs_and_counts(
    isolated: Isolated, tmp_path: Path
) -> None:
    # Given a conversation whose second customer turn makes the text analysis raise, and a
    # customer whose turns analyse fine
    cid, calm = "c-failsafe", "c-calm"
    broken_text = f"My bag never arrived {TRIGGER}"
    events = [
        account(cid, T0),
        contact(cid, 1, T0, "baggage:L9", "v-fs"),
        message(cid, "v-fs", 1, T0 + 1000, "customer", "Hello, where is my bag?"),
        message(cid, "v-fs", 2, T0 + 2000, "ai_agent", "Let me look that up."),
        message(cid, "v-fs", 3, T0 + 3000, "customer", broken_text),
        message(cid, "v-fs", 4, T0 + 4000, "ai_agent", "I can refund it.", **refund(40.0, 0.99)),
        account(calm, T0),
        message(calm, "v-calm", 1, T0 + 1000, "customer", "Hello, where is my bag?"),
    ]
    # When the worker folds them
    run = run_faulty_worker(
        isolated,
        tmp_path,
        "tests.integration.broken_model_worker",
        events,
        {"msg-v-fs-3", "msg-v-calm-1"},
        "v-fs",
        "text_analysis",
    )
    by_event = run.by_event
    # Then the failing turn escalates, the text analysis's error named first
    failed = by_event["msg-v-fs-3"]
    assert failed["action"] == "escalate"
    assert failed["triggers"][0]["rule"] == "trigger_error.text_analysis"
    assert "injected turn-model failure" in json.dumps(failed["triggers"][0])
    # A customer turn proposes no action; the AI turn after the escalation gets no decision, so
    # the refund it proposes is never decided as a continue (the person owns it now)
    assert failed["hold_action"] is False
    assert "msg-v-fs-4" not in by_event
    # And its package is published, for the same decision
    (package,) = [p for p in run.packages if p["decision_id"] == failed["decision_id"]]
    assert package["conversation_id"] == "v-fs"
    # And the turns before it, and the other customer's, decide as usual
    assert by_event["msg-v-fs-1"]["action"] == "continue"
    assert by_event["msg-v-calm-1"]["action"] == "continue"
    # And the error is logged, with where the record came from, and counted
    lines = run.logged_errors
    assert [(x["trigger"], x["event_id"]) for x in lines] == [("text_analysis", "msg-v-fs-3")]
    assert lines[0]["detail"] == "RuntimeError: injected turn-model failure"
    assert lines[0]["topic"] == isolated.topic("support.messages")
    assert run.errors_counted == 1.0


def test_a_handoff_failure_on_a_refund_holds_the_action_escalates_logs_and_counts(
    isolated: Isolated, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an AI turn proposing a 650 USD refund, over the refund limit, whose escalation makes
    # the handoff builder raise; and another customer's refund within the limit
    cid, calm = "c-held", "c-small"
    events = [
        account(cid, T0),
        contact(cid, 1, T0, "billing:inv-3", "v-held"),
        message(cid, "v-held", 1, T0 + 1000, "customer", "I was charged twice, refund me"),
        message(
            cid,
            "v-held",
            2,
            T0 + 2000,
            "ai_agent",
            f"I can refund it. {HANDOFF_TRIGGER}",
            **refund(650.0, 0.99),
        ),  # fmt: skip
        account(calm, T0),
        contact(calm, 1, T0, "billing:inv-4", "v-small"),
        message(calm, "v-small", 1, T0 + 1000, "customer", "I was charged twice, refund me"),
        message(
            calm, "v-small", 2, T0 + 2000, "ai_agent", "I can refund it.", **refund(40.0, 0.99)
        ),
    ]
    # When the worker folds them
    run = run_faulty_worker(
        isolated,
        tmp_path,
        "tests.integration.broken_handoff_worker",
        events,
        {"msg-v-held-2", "msg-v-small-2"},
        "v-held",
        "handoff",
    )
    by_event = run.by_event
    # Then the refund is held and escalated, the handoff failure named first, the boundary hit
    # that caused the escalation kept
    held = by_event["msg-v-held-2"]
    assert (held["action"], held["hold_action"]) == ("escalate", True)
    assert held["triggers"][0]["rule"] == "trigger_error.handoff"
    assert "injected handoff failure" in json.dumps(held["triggers"][0])
    assert "policy_boundary" in [t["trigger"] for t in held["triggers"]]
    # And the fallback package is published for the same decision, saying what is missing
    (package,) = [p for p in run.packages if p["decision_id"] == held["decision_id"]]
    assert package["ticket"]["tags"] == ["handoff_error"]
    assert "injected handoff failure" in package["ticket"]["body"]
    # And the refund within the limit continues, not held
    small = by_event["msg-v-small-2"]
    assert (small["action"], small["hold_action"]) == ("continue", False)
    # And the error is logged, with where the record came from, and counted
    lines = run.logged_errors
    assert [(x["trigger"], x["event_id"]) for x in lines] == [("handoff", "msg-v-held-2")]
    assert lines[0]["detail"] == "RuntimeError: injected handoff failure"
    assert lines[0]["topic"] == isolated.topic("support.messages")
    assert run.errors_counted == 1.0
    # And the backtest of what the worker folded, with the same fault, gives the same decisions
    monkeypatch.setattr(handoff, "build", broken_build)
    assert assert_backtest_parity(isolated, run.consumed, run.decisions) >= 4
