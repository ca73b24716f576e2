"""The simulated world: deterministic from its seed, outcomes that follow from the policy that ran,
and an optimum it can state."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.calibration.loop import month_config
from stream.core.events import Event, OutcomeEvent
from stream.core.policy import default_policy
from stream.core.policy_values import with_values
from stream.errors import UsageError
from stream.replay.world import Curve, Truth, World, optimum_threshold, simulate
from stream.settings import Settings

SOURCE = Settings().datasets_dir / "twcs-airlines/airlines_raw.csv.bz2"
CONFIG = month_config("2026-01", 5, 600)


def run(threshold: float, truth: Truth | None = None) -> list[Event]:
    policy = with_values(
        default_policy(), {"confidence.thresholds.financial": threshold}, version=f"t{threshold}"
    )
    return list(simulate(SOURCE, CONFIG, policy, World(), truth))


@pytest.fixture(scope="module")
def strict() -> tuple[list[Event], Truth]:
    truth = Truth()
    return run(0.99, truth), truth


@pytest.fixture(scope="module")
def lax() -> tuple[list[Event], Truth]:
    truth = Truth()
    return run(0.60, truth), truth


def test_the_same_seed_and_policy_give_the_same_events(strict: tuple[list[Event], Truth]) -> None:
    assert run(0.99) == strict[0]


def test_the_latent_truth_does_not_depend_on_the_policy(
    strict: tuple[list[Event], Truth], lax: tuple[list[Event], Truth]
) -> None:
    assert strict[1].needed == lax[1].needed
    assert sum(strict[1].needed.values()) > 0
    inputs = [e for e in strict[0] if e.type != "outcome"]
    assert inputs == [e for e in lax[0] if e.type != "outcome"]


def test_outcomes_follow_the_decisions(
    strict: tuple[list[Event], Truth], lax: tuple[list[Event], Truth]
) -> None:
    # Given the same conversations under a strict and a lax financial bar
    def by_conversation(events: list[Event]) -> dict[str, list[OutcomeEvent]]:
        out: dict[str, list[OutcomeEvent]] = {}
        for e in events:
            if isinstance(e, OutcomeEvent):
                out.setdefault(e.conversation_id, []).append(e)
        return out

    a, b = by_conversation(strict[0]), by_conversation(lax[0])
    differ = [c for c in a if a[c] != b.get(c)]
    # Then some conversations end differently, and every escalated one was handled by a human
    assert differ
    for events in (strict[0], lax[0]):
        for e in events:
            if isinstance(e, OutcomeEvent) and e.decision_id is not None:
                assert e.resolved_by == "human" and e.handle_time_seconds is not None
    needed = strict[1].needed
    for conversation in differ:
        first = a[conversation][0]
        if first.resolved_by == "human" and first.decision_id is not None:
            # a needed case took real work, an unneeded one was settled fast
            assert (first.handle_time_seconds >= 150) == needed[conversation]  # type: ignore[operator]
    # And the strict bar escalates more cases that were not needed
    assert strict[1].false_escalations > lax[1].false_escalations
    assert strict[1].missed_escalations < lax[1].missed_escalations
    # A reopen is a second record of the same ticket
    reopened = [e for e in lax[0] if isinstance(e, OutcomeEvent) and e.reopened_at is not None]
    assert reopened and all(e.event_id.endswith("-reopened") for e in reopened)


def test_the_world_knows_its_optimum() -> None:
    best, costs = optimum_threshold(SOURCE, CONFIG, default_policy(), "financial")
    assert 0.70 <= best <= 0.85
    assert costs[best] == min(costs.values())
    assert costs[0.99] > costs[best] and costs[0.6] > costs[best]


def test_a_curve_falls_with_confidence_and_bad_settings_are_refused() -> None:
    curve = Curve(0.8, 0.035)
    assert curve(0.8) == 0.5 and curve(0.6) > 0.99 and curve(0.99) < 0.01
    with pytest.raises(UsageError, match="reopen_needed"):
        World(reopen_needed=1.5)
    with pytest.raises(UsageError, match="width"):
        World(curves={"financial": Curve(0.8, 0.0)})


def test_the_replay_command_writes_a_simulated_month(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from stream.cli import app

    out = tmp_path / "month.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "replay",
            "--conversations",
            "200",
            "--month",
            "2026-01",
            "--simulate",
            "policy/default.yaml",
            "--jsonl",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert '"type":"outcome"' in text and '"decision_id":"' in text
