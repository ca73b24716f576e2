"""Readiness states: the first unmet condition names the state the probe reports."""

from __future__ import annotations

import pytest

from stream.worker.health import readiness


@pytest.mark.parametrize(
    ("recovered_once", "rebalancing", "in_recovery", "partitions", "policy", "state"),
    [
        (False, False, False, 0, False, "starting"),
        (False, True, True, 4, True, "starting"),
        (True, True, True, 4, True, "recovering"),
        (True, True, False, 4, True, "rebalancing"),
        (True, False, False, 0, True, "no_partitions"),
        (True, False, False, 4, False, "policy_loading"),
        (True, False, False, 4, True, "ready"),
    ],
)
def test_readiness_names_the_first_unmet_condition(
    recovered_once: bool,
    rebalancing: bool,
    in_recovery: bool,
    partitions: int,
    policy: bool,
    state: str,
) -> None:
    result = readiness(
        recovered_once=recovered_once,
        rebalancing=rebalancing,
        in_recovery=in_recovery,
        partitions=partitions,
        policy_loaded=policy,
        policy_version="v1",
    )
    assert result.state == state
    assert result.ready is (state == "ready")
    body = result.body()
    assert body["status"] == state and body["assigned_partitions"] == partitions
    assert body["policy_version"] == "v1"
