"""Suite-wide rules: under `make test` an integration test may not skip for want of a broker."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest
from hypothesis import settings

# `make mutation` runs the core tests once per mutant: its profile keeps property tests short there,
# so the targeted unit tests, not thousands of random histories, decide what a mutant breaks.
settings.register_profile("mutation", max_examples=10, deadline=None)
settings.load_profile(os.environ.get("ESCALATION_HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if (
        report.skipped
        and os.environ.get("ESCALATION_REQUIRE_BROKER") == "1"
        and item.get_closest_marker("integration") is not None
    ):
        report.outcome = "failed"
        report.longrepr = f"integration test skipped while a broker is required: {report.longrepr}"
    return report
