"""The review credits transfer offers: a needed case that a candidate stops escalating, but still
offers a transfer in, is missed only if the customer declines, at the month's observed rate."""

from __future__ import annotations

import dataclasses

import pytest

from stream.calibration import proposal as prop
from stream.calibration.review import offer_credit
from stream.core.judge import JudgeFacts, Judgement, JudgeSettings, judge
from stream.stats import wilson

TEMPLATE = judge(JudgeFacts("template", "c"), JudgeSettings())


def judged(cid: str, **fields: object) -> Judgement:
    return dataclasses.replace(TEMPLATE, conversation_id=cid, **fields)  # type: ignore[arg-type]


def escalated(cid: str, need: str) -> Judgement:
    verdict = "needed_escalation" if need == "needed" else "false_escalation"
    return judged(cid, verdict=verdict, need=need, escalated=True, action="escalate")


def offered(cid: str, resolved_by: str | None) -> Judgement:
    return judged(
        cid,
        verdict="ok_without",
        need="not_needed",
        escalated=False,
        action="offer_transfer",
        offered=True,
        resolved_by=resolved_by,
    )


def test_acceptance_is_measured_from_offered_conversations_with_an_outcome() -> None:
    month = [
        offered("o1", "human"),
        offered("o2", "human"),
        offered("o3", "ai"),
        offered("o4", None),  # no outcome yet: not counted
        escalated("e1", "needed"),  # escalated after an offer or not: not an offer outcome
        judged("c1", verdict="ok_without", action="continue", resolved_by="human"),
    ]
    credit = offer_credit(month)
    assert (credit.accepted, credit.offered) == (2, 3)
    assert credit.share == pytest.approx(2 / 3)
    assert (credit.low, credit.high) == pytest.approx(wilson(2, 3))
    assert offer_credit([]).share == 0.0 and offer_credit([]).low == 0.0


RECORDED = {
    "needed-offered": escalated("needed-offered", "needed"),
    "needed-plain": escalated("needed-plain", "needed"),
    "easy": escalated("easy", "not_needed"),
}


def test_a_needed_case_still_offered_counts_missed_only_if_the_offer_is_declined() -> None:
    settings = prop.Settings()
    plain = prop.score(0.5, RECORDED, lambda c: False, settings)
    assert (plain.good, plain.bad, plain.false_delta) == (1, 2, -1)
    assert plain.missed_delta == 2 and plain.gain == -1

    credit = prop.OfferCredit(accepted=6, offered=10)
    scored = prop.score(
        0.5, RECORDED, lambda c: False, settings, {"needed-offered"}.__contains__, credit
    )
    assert (scored.good, scored.bad, scored.offered_bad) == (1, 2, 1)
    # The gain credits the observed share 0.6 ...
    assert scored.missed_delta == pytest.approx(1.4)
    assert scored.gain == pytest.approx(-0.4)
    # ... the evidence test only the low end of its interval.
    assert scored.bad_weight == pytest.approx(2 - wilson(6, 10)[0])  # type: ignore[index]


def test_no_credit_without_observed_offers_or_when_the_candidate_escalates() -> None:
    settings = prop.Settings()
    none_seen = prop.score(
        0.5, RECORDED, lambda c: False, settings, {"needed-offered"}.__contains__, None
    )
    assert none_seen.missed_delta == 2 and none_seen.bad_weight == 2
    # A candidate that escalates as the recorded run did flips nothing: nothing to credit.
    same = prop.score(
        0.5,
        RECORDED,
        lambda c: True,
        settings,
        {"needed-offered"}.__contains__,
        prop.OfferCredit(9, 10),
    )
    assert (same.good, same.bad, same.gain) == (0, 0, 0.0)


def test_the_evidence_test_weighs_credited_flips() -> None:
    # 14 easy escalations dropped, 8 needed ones dropped of which 6 still get an offer that
    # customers accept 9 times in 10: without the credit 14 of 22 (64%) is not clearly better
    # than break-even; with it the weighted share clears it.
    recorded = {f"easy{i}": escalated(f"easy{i}", "not_needed") for i in range(14)}
    recorded |= {f"need{i}": escalated(f"need{i}", "needed") for i in range(8)}
    offers = {f"need{i}" for i in range(6)}.__contains__
    settings = prop.Settings(min_cases=20)

    def proposal(credit: prop.OfferCredit | None) -> prop.Proposal:
        candidates = [
            prop.score(0.9, recorded, lambda c: True, settings, offers, credit),
            prop.score(0.8, recorded, lambda c: False, settings, offers, credit),
        ]
        return prop.decide("t", 0.9, candidates, settings, prop.describe_threshold("financial"))

    without = proposal(None)
    assert not without.change and without.needed is not None
    assert "not clearly above the break-even 50%" in without.needed
    credited = proposal(prop.OfferCredit(accepted=90, offered=100))
    assert credited.change and credited.proposed == 0.8
    assert credited.good_share is not None and credited.good_share["n"] < 22
    assert "6 of the worse still get a transfer offer" in credited.evidence
