"""A backlog folded by the worker gives exactly the backtest's decisions in event-time order.

The five input topics of a backlog reach the agent topic by topic; the worker's event-time merge
(stream/worker/ordering.py) must fold each customer's events in the order the backtest folds the
history, so a restart, a replay or a busy hour decides as the backtest says.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from stream.backtest.run import run_policy
from stream.core.events import event_from_dict
from stream.core.policy import default_policy
from stream.replay import ReplayConfig, iter_events
from stream.topics import INPUT_TOPICS
from tests.integration.kafka_helpers import (
    CORPUS,
    Collector,
    Isolated,
    committed_total,
    produce,
    running_worker,
)

pytestmark = pytest.mark.integration

CONVERSATIONS = 3000  # the demo's


def test_a_backlog_gives_exactly_the_backtest_decisions(isolated: Isolated, tmp_path: Path) -> None:
    # Given the demo's history, all of it on the input topics before the worker starts
    events: list[tuple[str, dict[str, Any]]] = list(
        iter_events(CORPUS, ReplayConfig(conversations=CONVERSATIONS))
    )
    total = produce(isolated, events)

    # And the backtest of that history in event-time order
    expected = run_policy((event_from_dict(k, r) for k, r in events), default_policy())
    want = {d.decision_id: d.to_record() for d in expected.decisions}
    assert len(want) == len(expected.decisions)
    assert sum(d.action == "escalate" for d in expected.decisions) > 100

    # When one worker drains the backlog
    decisions = Collector(isolated, "escalation.decisions")
    # A generous idle wait: on a loaded machine an input's fetched records can take seconds to
    # reach the agent, and this test is about the order the merge gives, not the default bound.
    generous = {"ESCALATION_ORDER_IDLE_MS": "15000"}
    with running_worker(isolated, tmp_path / "state", tmp_path / "worker.log", generous):
        committed_total(isolated, [isolated.topic(t) for t in INPUT_TOPICS], total, timeout=600)
        decisions.wait_for(lambda rs: len({r["decision_id"] for r in rs}) >= len(want), 120)
        decisions.drain(quiet=3.0)

    # Then it gave exactly the backtest's decisions, field by field; a record delivered twice
    # (at least once) repeats the same decision
    got: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in decisions.records:
        got[r["decision_id"]].append(r)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    assert not missing and not extra, (len(missing), len(extra), missing[:5], extra[:5])
    for decision_id, copies in got.items():
        assert all(copy == want[decision_id] for copy in copies), decision_id
    escalations = sum(r["action"] == "escalate" for r in want.values())
    assert sum(copies[0]["action"] == "escalate" for copies in got.values()) == escalations
    decisions.close()
