"""Readiness states: the first unmet condition names the state the probe reports."""

from __future__ import annotations

import pytest

from stream.worker.health import CrashLoop, readiness


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


def test_a_crash_loop_is_three_crashes_within_the_window() -> None:
    loop = CrashLoop(limit=3, window=120.0)
    loop.record("decide: PartitionsMismatch", now=0.0)
    loop.record("decide: PartitionsMismatch", now=5.0)
    assert not loop.looping(now=6.0)  # two crashes: Faust's in-place restart may cure it
    loop.record("decide: PartitionsMismatch", now=10.0)
    assert loop.looping(now=11.0)
    assert loop.last_reason == "decide: PartitionsMismatch"
    # Once the crashes stop for longer than the window, the worker is live again
    assert not loop.looping(now=121.0)


def test_crashes_spread_over_more_than_the_window_are_no_loop() -> None:
    loop = CrashLoop(limit=3, window=120.0)
    for at in (0.0, 100.0, 200.0):
        loop.record("decide: RuntimeError", now=at)
    assert not loop.looping(now=200.0)
