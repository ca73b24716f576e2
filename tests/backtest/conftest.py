"""Fixtures of the backtest tests: an event factory and a policy factory (YAML text to Policy)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream.core.policy import Policy, parse_policy
from stream.testing import EventFactory


@pytest.fixture
def event_factory() -> EventFactory:
    return EventFactory()


@pytest.fixture
def policy_factory() -> Callable[[str], Policy]:
    return parse_policy
