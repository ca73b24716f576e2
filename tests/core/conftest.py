"""Factory fixtures for decision-core tests: events with sensible defaults, policies by override."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.core.policy import Policy
from stream.testing import EventFactory, Run, make_policy


@pytest.fixture
def event_factory() -> Callable[..., EventFactory]:
    """`event_factory(customer_id="cust-1")` gives a fresh factory."""
    return EventFactory


@pytest.fixture
def events() -> EventFactory:
    return EventFactory()


@pytest.fixture
def policy_factory() -> Callable[..., Policy]:
    """`policy_factory({"confidence": {"thresholds": {...}}})`: the default policy, deep-merged."""
    return make_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return make_policy()


@pytest.fixture
def run(policy: Policy) -> Run:
    return Run(policy)
