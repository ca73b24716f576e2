"""The policy test suite shipped under policy/tests/ holds on policy/default.yaml, covers every
trigger, and catches a deliberately broken policy by case name with a readable explanation."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.core.policy import DEFAULT_POLICY_PATH, Policy, default_policy
from stream.core.vocabulary import TRIGGER_NAMES as TRIGGERS
from stream.policytest.load import LoadedCase, load_cases
from stream.policytest.report import table
from stream.policytest.run import run_case, run_cases
from stream.testing import make_policy

SUITE = DEFAULT_POLICY_PATH.parent / "tests"
CASES = load_cases([SUITE])


@pytest.fixture(scope="module")
def policy() -> Policy:
    return default_policy()


@pytest.mark.parametrize("loaded", CASES, ids=[c.id.removeprefix(str(SUITE) + "/") for c in CASES])
def test_every_case_of_the_suite_holds_on_the_default_policy(
    loaded: LoadedCase, policy: Policy
) -> None:
    result = run_case(loaded, policy)
    assert result.passed, table([result])


def test_the_suite_is_large_and_covers_every_trigger_both_ways() -> None:
    assert len(CASES) >= 40
    escalating = {name for c in CASES for name in (*c.case.expect.triggers, *c.case.expect.rules)}
    named = {name.split(".")[0] for name in escalating}
    for trigger in TRIGGERS:
        family = "boundary" if trigger == "policy_boundary" else trigger
        assert trigger in named or family in named, f"no case expects {trigger} to fire"
    silent = {name for c in CASES for name in c.case.expect.not_triggers}
    assert silent == set(TRIGGERS), "every trigger has a case where it must not fire"
    actions = {c.case.expect.action for c in CASES}
    assert actions == {"continue", "offer_transfer", "escalate"}


def test_a_refund_limit_of_10000_fails_the_refund_cases_by_name_with_the_limit_shown(
    policy: Policy,
) -> None:
    # Given the default policy with its refund limit raised from 100 to 10,000
    broken = make_policy({"version": "broken-refund", "boundaries": {"refund": {"limit": 10000}}})

    # When the shipped suite runs against both
    baseline = {r.loaded.name for r in run_cases(CASES, policy) if r.status == "FAIL"}
    results = run_cases(CASES, broken)

    # Then exactly the cases about refunds above the limit fail, and say why
    failed = {r.loaded.name: r for r in results if r.status == "FAIL"}
    assert baseline == set()
    assert set(failed) == {
        "refund just above the limit escalates with the boundary message",
        "a large refund at low confidence names both the boundary and the confidence",
        "an offered transfer becomes an escalation when a boundary is hit",
    }
    report = table(results)
    above = failed["refund just above the limit escalates with the boundary message"]
    assert "expected escalate, the policy decided continue" in above.failures
    assert "turn 2: continue under confidence.financial 0.9, boundary.refund_limit 10000" in report
    both = failed["a large refund at low confidence names both the boundary and the confidence"]
    assert any(
        "expected rule(s) boundary.refund_limit on the escalate at turn 2" in f
        for f in both.failures
    )
    assert "[confidence.financial] Intent confidence 0.62" in report
    assert "policy broken-refund" in report


def test_the_shipped_cases_are_in_the_folder_the_settings_point_to() -> None:
    from stream.settings import Settings

    assert Settings().policy_tests_path.resolve() == Path(SUITE).resolve()


def test_a_policy_without_the_operator_rule_fails_its_cases_saying_the_rule_is_gone() -> None:
    # Given a candidate that drops the operator rule the article's example depends on
    candidate = make_policy({"version": "no-operator-rules", "rules": []})

    # When the suite runs, the disputed-charge case fails and says which rule is missing
    results = {r.loaded.name: r for r in run_cases(CASES, candidate)}
    disputed = results["disputed charge after a negative review escalates on a routine question"]
    assert disputed.status == "FAIL"
    assert (
        "rule rules.disputed_billing is not in policy no-operator-rules: it has no operator rule "
        "'disputed_billing'"
    ) in disputed.failures
    assert "expected escalate, the policy decided continue" in disputed.failures
    # And the cases that say the rule must not fire still pass: it cannot fire
    assert results["first invoice question from a new customer stays with the AI agent"].passed
