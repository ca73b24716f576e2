"""Facts the triggers put in front of the person who reads a decision: which check failed and on
which message, the limit a check compared against, how many markers a turn carried, and that a
broken operator rule is reported even when nothing else fires.

Values, thresholds, ids and counts are pinned; the sentences around them are not.
"""

from __future__ import annotations

from typing import Any

import pytest

from stream.core.decision import AccountSnapshot, Evidence
from stream.core.events import MessageEvent, ProposedAction
from stream.core.state import Turn
from stream.core.triggers import TriggerError, boundary, confidence, sentiment
from stream.testing import EventFactory, make_policy, rule

T0 = 1_700_000_000_000
ACCOUNT = AccountSnapshot(tier="gold", currency="EUR", primary_email="a@example.com", known=True)


# --- a failed check ------------------------------------------------------------------------


def test_a_failed_check_names_its_code_and_message() -> None:
    hit = TriggerError("sentiment", "internal", "Boom: no model").to_hit("msg-7")
    assert (hit.trigger, hit.rule, hit.action, hit.priority) == (
        "trigger_error",
        "trigger_error.sentiment",
        "escalate",
        "high",
    )
    assert hit.evidence == (
        Evidence(
            kind="error", detail="internal: Boom: no model", message_id="msg-7", ref="sentiment"
        ),
    )


def test_a_failed_check_on_no_message_names_none() -> None:
    (evidence,) = TriggerError("repeat_contact", "rule_failed", "x").to_hit(None).evidence
    assert (evidence.kind, evidence.message_id, evidence.ref) == (
        "error",
        None,
        "repeat_contact",
    )


# --- confidence ----------------------------------------------------------------------------


def proposing(events: EventFactory, **kw: Any) -> MessageEvent:
    return events.ai(action="refund", klass="financial", amount=20.0, **kw)


def test_a_missing_confidence_is_an_error_of_the_confidence_check(events: EventFactory) -> None:
    result = confidence.check(proposing(events, confidence=None), make_policy())
    assert result.error == TriggerError(
        "confidence", "missing_confidence", "proposed refund carries no confidence"
    )
    assert result.thresholds == (("confidence.financial", 0.9),)
    (hit,) = result.hits
    assert (hit.rule, hit.action, hit.evidence[0].threshold) == (
        "confidence.financial",
        "escalate",
        0.9,
    )


def test_an_ignored_missing_confidence_still_records_its_threshold(events: EventFactory) -> None:
    policy = make_policy({"confidence": {"on_missing_confidence": "ignore"}})
    result = confidence.check(proposing(events, confidence=None), policy)
    assert result.hits == ()
    assert result.error is not None and result.error.code == "missing_confidence"
    assert result.thresholds == (("confidence.financial", 0.9),)


def test_a_low_confidence_names_the_intent(events: EventFactory) -> None:
    result = confidence.check(proposing(events, confidence=0.5, intent="refund_fee"), make_policy())
    (hit,) = result.hits
    first = hit.evidence[0]
    assert (first.text, first.value, first.threshold) == ("refund_fee", 0.5, 0.9)
    assert "refund_fee" in first.detail


# --- sentiment evidence: the signal, the score, the markers --------------------------------


def dissatisfied(n: int, markers: int = 0, signal: float = 0.9, score: float | None = None) -> Turn:
    found = tuple(("frustration", f"word{i}") for i in range(markers))
    return Turn(f"m{n}", "customer", f"text {n}", T0 + n, found, True, score, signal=signal)


def details(turns: list[Turn]) -> list[str]:
    (hit,) = sentiment.check(turns, make_policy()).hits
    return [e.detail for e in hit.evidence]


@pytest.mark.parametrize(("markers", "more"), [(0, None), (3, None), (4, None), (5, 1), (7, 3)])
def test_at_most_four_markers_are_quoted_and_the_rest_counted(
    markers: int, more: int | None
) -> None:
    first, _ = details([dissatisfied(1, markers), dissatisfied(2)])
    quoted = [f"word{i}" for i in range(markers) if f"'word{i}'" in first]
    assert quoted == [f"word{i}" for i in range(min(markers, 4))]
    assert "XX" not in first and "None" not in first
    if more is None:
        assert "more)" not in first
    else:
        assert f"(+{more} more)" in first


def test_the_evidence_cites_the_signal_at_the_threshold_and_not_below_it() -> None:
    # Dissatisfied by its signal exactly at the bar, and by its score alone with a low signal.
    at_bar = dissatisfied(1, signal=0.45)
    by_score = dissatisfied(2, signal=0.1, score=-0.6)
    first, second = details([at_bar, by_score])
    assert "0.45 >= 0.45" in first
    assert "0.10" not in second
    assert "-0.60 <= -0.60" in second


# --- boundaries: the limit a refund check compared against ---------------------------------


def refund_event(events: EventFactory, amount: float | None, currency: str | None) -> MessageEvent:
    return events.ai(action="refund", klass="financial", amount=amount, currency=currency)


@pytest.mark.parametrize(
    ("overrides", "currency", "limit"),
    [
        # No amount: the limit of the account's tier is the one recorded.
        ({"boundaries": {"refund": {"by_tier": {"gold": 250}}}}, None, 250.0),
        # No amount, in a currency with its own limit.
        ({"boundaries": {"refund": {"by_currency": {"JPY": 15000}}}}, "JPY", 15000.0),
        # No amount, in a currency that cannot be compared: the policy's limit is shown.
        ({}, "JPY", 100.0),
        ({}, None, 100.0),
    ],
)
def test_a_refund_of_unknown_amount_records_the_limit_it_would_apply(
    events: EventFactory, overrides: dict[str, Any], currency: str | None, limit: float
) -> None:
    policy = make_policy(overrides)
    result = boundary.check(refund_event(events, None, currency), None, ACCOUNT, policy)
    assert [h.rule for h in result.hits] == ["boundary.refund_limit"]
    assert result.thresholds == (("boundary.refund_limit", limit),)


def test_a_refund_in_another_currency_records_the_policy_limit(events: EventFactory) -> None:
    result = boundary.check(refund_event(events, 50.0, "JPY"), None, ACCOUNT, make_policy())
    (hit,) = result.hits
    assert hit.rule == "boundary.refund_currency"
    assert result.thresholds == (("boundary.refund_limit", 100.0),)
    assert [(e.kind, e.value, e.threshold) for e in hit.evidence] == [
        ("amount", 50.0, None),
        ("limit", None, 100.0),
    ]


def test_an_enterprise_cancellation_names_the_contract(events: EventFactory) -> None:
    account = AccountSnapshot(enterprise_contract=True, contract_id="ENT-9", known=True)
    event = events.ai(action="cancel_contract", klass="account_change")
    (hit,) = boundary.check(event, None, account, make_policy()).hits
    assert hit.rule == "boundary.enterprise_cancellation"
    assert hit.evidence[0].ref == "ENT-9"
    assert "ENT-9" in hit.reason


# --- operator rules ------------------------------------------------------------------------


def test_a_broken_rule_alone_is_reported(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory
) -> None:
    # The only rule cannot evaluate and nothing else fires: the result still carries the error,
    # for `step` to fail safe on.
    policy = make_policy({"rules": [rule("odd", "account.tier", "eq", "gold")]})

    def evaluate(condition: Any, facts: Any) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(boundary, "evaluate", evaluate)
    result = boundary.check(events.customer("hello"), None, ACCOUNT, policy)
    assert result.hits == ()
    assert result.error == TriggerError(
        "policy_boundary", "rule_failed", "rules.odd: RuntimeError: boom"
    )


def test_rules_judge_the_account_without_a_message() -> None:
    policy = make_policy(
        {
            "rules": [
                {
                    "name": "gold",
                    "action": "offer_transfer",
                    "when": {"field": "account.tier", "op": "eq", "value": "gold"},
                }
            ]
        }
    )
    (hit,) = boundary.check(None, None, ACCOUNT, policy).hits
    assert (hit.rule, hit.action) == ("rules.gold", "offer_transfer")
    assert [(e.kind, e.message_id, e.ref) for e in hit.evidence] == [("rule", None, "rules.gold")]


def test_an_unknown_field_path_names_itself() -> None:
    view = boundary.Facts(None, None, ACCOUNT)
    assert view["account.tier"] == "gold"
    with pytest.raises(KeyError) as caught:
        view["account.nickname"]
    assert caught.value.args == ("account.nickname",)


def test_the_proposed_action_is_read_from_the_message(events: EventFactory) -> None:
    event = events.ai(action="refund", klass="financial", amount=500.0)
    assert isinstance(event.proposed_action, ProposedAction)
    result = boundary.check(event, None, ACCOUNT, make_policy())
    assert [(h.rule, h.evidence[0].message_id) for h in result.hits] == [
        ("boundary.refund_limit", event.message_id)
    ]


# --- what a person reads names the values, and leaks no placeholder ------------------------


def test_a_condition_that_is_not_a_mapping_names_the_type_it_got() -> None:
    from stream.core.conditions import ConditionError, compile_condition

    with pytest.raises(ConditionError) as caught:
        compile_condition({"all": [["account.tier"]]})
    assert caught.value.path == "all[0]"
    assert caught.value.problem.endswith("got list")


def test_an_over_limit_refund_names_the_currency_and_the_tier(events: EventFactory) -> None:
    policy = make_policy({"boundaries": {"refund": {"by_tier": {"gold": 250}}}})
    event = events.ai(action="refund", klass="financial", amount=650.0, currency="EUR")
    (hit,) = boundary.check(event, None, ACCOUNT, policy).hits
    limit = hit.evidence[1]
    assert (limit.kind, limit.threshold) == ("limit", 250.0)
    assert "EUR" in limit.detail and "gold" in limit.detail
    assert "650.00 EUR" in hit.reason


def test_an_over_limit_refund_without_a_snapshot_leaks_no_placeholder(
    events: EventFactory,
) -> None:
    event = events.ai(action="refund", klass="financial", amount=650.0)
    (hit,) = boundary.check(event, None, None, make_policy()).hits
    for text in [hit.reason] + [e.detail for e in hit.evidence]:
        assert "None" not in text and "XX" not in text, text


def test_the_summary_says_no_action_was_proposed_only_when_none_was(events: EventFactory) -> None:
    from stream.core.handoff import attempts_of
    from stream.testing import Run

    run = Run(make_policy())
    run.feed(events.ai("Hello.", intent="greet"))
    conv = run.state.conversations["conv-1"]
    assert "No action was proposed." in attempts_of(conv).summary
    run.feed(events.ai(action="lookup", klass="informational", confidence=0.99))
    assert "No action was proposed." not in attempts_of(conv).summary
