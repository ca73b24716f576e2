"""The committed dashboard, rules and scrape configs are exactly what the generator writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.grafana import generate


@pytest.mark.parametrize("path", list(generate.rendered()), ids=lambda p: p.name)
def test_the_committed_file_is_the_generated_one(path: Path) -> None:
    assert path.read_text() == generate.rendered()[path], f"{path} is stale: run `make dashboards`"


def test_the_dashboard_has_every_panel_the_issue_lists_with_its_queries() -> None:
    board = json.loads(generate.DASHBOARD_PATH.read_text())
    panels = {p["title"]: [t["expr"] for t in p["targets"]] for p in board["panels"]}
    assert list(panels) == [spec.title for spec in generate.PANELS]
    expressions = " ".join(e for exprs in panels.values() for e in exprs)
    for metric in (
        "escalation_consumergroup_lag_messages",
        "escalation_consumergroup_lag_seconds",
        "escalation_events_in_total",
        "escalation_decisions_total",
        "escalation_trigger_hits_total",
        "escalation_decision_latency_seconds_bucket",
        "escalation_dead_letters_total",
    ):
        assert metric in expressions, metric
    assert "histogram_quantile(0.99" in expressions and "histogram_quantile(0.5" in expressions


def test_the_alerts_cover_lag_progress_dead_letters_and_latency() -> None:
    names = {a.name for a in generate.ALERTS}
    assert {
        "EscalationLagGrowing",
        "EscalationNoProgress",
        "EscalationDeadLetterRate",
        "EscalationDecisionLatencyP99",
    } <= names
    for alert in generate.ALERTS:
        assert alert.expr.startswith(alert.signal) and alert.condition
