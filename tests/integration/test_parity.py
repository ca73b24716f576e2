"""Parity: the backtest of what the live worker consumed gives its decisions, field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stream.backtest.run import run_policy
from stream.core.events import event_from_dict
from stream.core.policy import default_policy
from stream.replay import ReplayConfig, iter_events
from tests.integration.kafka_helpers import (
    CORPUS,
    Collector,
    Isolated,
    isolated_topics,
    journalled_worker,
    produce,
    read_back,
)

pytestmark = pytest.mark.integration

SOURCE = CORPUS
# Events trickle in as live traffic does, rather than as one backlog.
PACE_S = 0.005


# Each test gets topics of its own.
isolated = pytest.fixture(isolated_topics)


def test_backtest_of_the_consumed_events_equals_the_live_decisions(
    isolated: Isolated, tmp_path: Path
) -> None:
    # Given real replayed conversations, with every trigger class among them
    events: list[tuple[str, dict[str, Any]]] = list(
        iter_events(SOURCE, ReplayConfig(seed=11, conversations=60, days=3))
    )
    assert len(events) > 300

    # When the live worker consumes them, journalling the order it folds them in
    decisions = Collector(isolated, "escalation.decisions")
    handoffs = Collector(isolated, "escalation.handoffs")
    with journalled_worker(isolated, tmp_path) as worker:
        produce(isolated, events, pace=PACE_S)
        consumed = worker.consumed(len(events) + 1)

        # And the backtest replays exactly those records, in that order
        expected = run_policy(
            (event_from_dict(kind, record) for kind, record in read_back(isolated, consumed)),
            default_policy(),
        )
        assert {d.action for d in expected.decisions} >= {"continue", "escalate"}
        # (a loaded machine can publish the worker's outputs seconds after it journals the
        # input: wait, bounded, for as many as the backtest made, then for any extra ones)
        decisions.wait_for(lambda rs: len(rs) >= len(expected.decisions), timeout=120)
        handoffs.wait_for(lambda rs: len(rs) >= len(expected.handoffs), timeout=60)
        decisions.drain(quiet=3.0)
        handoffs.drain(quiet=1.0)

    # Then the backtest gave exactly the worker's decisions and handoffs, ids included
    live = sorted(decisions.records, key=lambda r: r["decision_id"])
    replayed = sorted((d.to_record() for d in expected.decisions), key=lambda r: r["decision_id"])
    assert len(live) == len(replayed)
    for got, want in zip(live, replayed, strict=True):
        assert got == want
    key = lambda r: (r["handoff_id"], r["revision"])  # noqa: E731
    assert sorted(handoffs.records, key=key) == sorted(
        (h.to_record() for h in expected.handoffs), key=key
    )
    decisions.close()
    handoffs.close()
