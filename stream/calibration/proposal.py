"""Which policy values the judged period supports changing, to what, and with what evidence.

Every candidate value is scored the same way: the conversations whose escalation it flips
(against the policy that ran), each judged by the counterfactual rule of `stream.core.judge`, give
its gain, `w_false * (fewer false escalations) + w_missed * (fewer missed escalations)`. The best
candidate within `max_step` of the current value is proposed only when the flips that change a
verdict support it: at least `min_cases` of them, and the Wilson 95% lower bound of the share of
good flips above the break-even share the weights set. Otherwise the value stays, and the report
says what evidence would be needed.

A transfer offer is credited (`OfferCredit`): a needed case that the candidate would stop
escalating, but in which it would still offer a transfer, is a missed escalation only if the
customer declines the offer. The share who accept is measured from the month's recorded outcomes
of offered, not escalated conversations (resolved by a human = accepted), with its Wilson
interval; the gain uses the measured share, the evidence test the low end of its interval (the
end that makes stopping an escalation look worst), so the uncertainty of the credit is carried
into the decision and not assumed away.

Confidence thresholds and the refund limit are scored from one variant run each (the class's
threshold at 0, the refund limit off: who escalates anyway) and the per-conversation lowest
confidence or largest refund, so every value of a grid costs no extra run. Sentiment and
repeat-contact rules are scored from one run per listed variant.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from stream.core.judge import Judgement
from stream.stats import needed_for, rate, wilson

CONFIDENCE_GRID: Final[tuple[float, ...]] = tuple(round(0.30 + 0.01 * i, 2) for i in range(70))
REFUND_GRID: Final[tuple[float, ...]] = (25, 50, 75, 100, 125, 150, 200, 250, 300, 400, 500)
SENTIMENT_VARIANTS: Final[tuple[dict[str, Any], ...]] = (
    {"window_turns": 3, "min_markers": 1},
    {"window_turns": 3, "min_markers": 3},
    {"window_turns": 4, "min_markers": 2},
    {"window_turns": 2, "min_markers": 2},
)
REPEAT_VARIANTS: Final[tuple[dict[str, Any], ...]] = ({"contacts": 2}, {"contacts": 4})


@dataclass(frozen=True, slots=True)
class Settings:
    """How the review weighs errors and how much evidence a change needs."""

    false_weight: float = 1.0
    missed_weight: float = 1.0
    min_cases: int = 20
    # A confidence threshold moves at most this much per review: one unusual month cannot swing
    # the policy, and the next review sees the effect of the step before the next one.
    max_step: float = 0.10
    # Which policy values the review looks at (each costs variant runs over the month).
    review: tuple[str, ...] = ("confidence", "refund", "sentiment", "repeat_contact")


@dataclass(frozen=True, slots=True)
class OfferCredit:
    """The month's observed offer acceptance: of `offered` offered, not escalated conversations
    with an outcome, `accepted` were resolved by a human."""

    accepted: int = 0
    offered: int = 0

    @property
    def share(self) -> float:
        return self.accepted / self.offered if self.offered else 0.0

    @property
    def low(self) -> float:
        interval = wilson(self.accepted, self.offered)
        return interval[0] if interval else 0.0

    @property
    def high(self) -> float:
        interval = wilson(self.accepted, self.offered)
        return interval[1] if interval else 0.0

    def to_record(self) -> dict[str, Any]:
        return {**rate(self.accepted, self.offered), "assumption": OFFER_ASSUMPTION}


OFFER_ASSUMPTION: Final[str] = (
    "A needed case that a proposal stops escalating but still offers a transfer is counted as "
    "a missed escalation only when the customer would decline the offer: it counts as missed "
    "with weight 1 - a, where a is the share of offered, not escalated conversations of this "
    "month whose ticket a human resolved (taken as accepted). Assumed: customers of the "
    "conversations that change accept offers as often as the month's offered customers did, and "
    "an accepted offer of a needed case is not reopened. The gain and the predicted effect use a; "
    "the evidence test uses the low end of a's 95% interval. Without offered conversations with "
    "an outcome, a is 0 (no credit)."
)


@dataclass(slots=True)
class Scored:
    """One candidate value against the current one, over the judged conversations."""

    value: Any
    gain: float = 0.0
    good: int = 0
    bad: int = 0
    neutral: int = 0
    false_delta: int = 0
    missed_delta: float = 0.0
    escalated_delta: int = 0
    examples: list[str] = field(default_factory=list)
    # Bad flips in which the candidate still offers a transfer (credited with the acceptance).
    offered_bad: int = 0
    # The acceptance share the evidence test credits those with (the low end of its interval).
    test_acceptance: float = 0.0

    @property
    def bad_weight(self) -> float:
        """Bad flips as the evidence test counts them: an offered one weighs 1 - acceptance."""
        return self.bad - self.offered_bad * self.test_acceptance


@dataclass(slots=True)
class Proposal:
    """The outcome for one policy value: a change with its evidence, or why not."""

    path: str
    current: Any
    proposed: Any
    change: bool
    direction: str
    evidence: str
    needed: str | None
    scored: Scored | None
    good_share: dict[str, Any] | None = None
    break_even: float | None = None

    def to_record(self) -> dict[str, Any]:
        s = self.scored
        return {
            "path": self.path,
            "current": self.current,
            "proposed": self.proposed,
            "change": self.change,
            "direction": self.direction,
            "evidence": self.evidence,
            "needed": self.needed,
            "good_share": self.good_share,
            "break_even": self.break_even,
            "flips": None
            if s is None
            else {
                "good": s.good,
                "bad": s.bad,
                "neutral": s.neutral,
                "false_escalations": s.false_delta,
                "missed_escalations": round(s.missed_delta, 3),
                "escalated": s.escalated_delta,
                "offered_bad": s.offered_bad,
                "bad_weight": round(s.bad_weight, 3),
                "examples": s.examples,
            },
        }


def _verdict_after(recorded: Judgement, escalated: bool) -> str:
    """The recorded conversation's verdict if it had been escalated (or not): the judge's rule."""
    if escalated == recorded.escalated:
        return recorded.verdict
    if recorded.need == "needed":
        return "needed_escalation" if escalated else "missed_escalation"
    if recorded.need == "not_needed":
        return "false_escalation" if escalated else "ok_without"
    return "unknown"


def score(
    value: Any,
    recorded: Mapping[str, Judgement],
    escalated_under: Callable[[str], bool],
    settings: Settings,
    offered_under: Callable[[str], bool] | None = None,
    credit: OfferCredit | None = None,
) -> Scored:
    """The flips of one candidate (`escalated_under(conversation)`) against the recorded run;
    `offered_under(conversation)`: the candidate offers a transfer there (module docstring)."""
    credit = credit or OfferCredit()
    out = Scored(value, test_acceptance=credit.low)
    for conversation_id, judged in recorded.items():
        now = escalated_under(conversation_id)
        if now == judged.escalated or judged.verdict == "unknown":
            continue
        after = _verdict_after(judged, now)
        false_delta = (after == "false_escalation") - (judged.verdict == "false_escalation")
        missed_delta: float = (after == "missed_escalation") - (
            judged.verdict == "missed_escalation"
        )
        offered = (
            after == "missed_escalation"
            and missed_delta > 0
            and offered_under is not None
            and offered_under(conversation_id)
        )
        if offered:
            missed_delta *= 1.0 - credit.share
        gain = -(settings.false_weight * false_delta + settings.missed_weight * missed_delta)
        out.false_delta += false_delta
        out.missed_delta += missed_delta
        out.escalated_delta += 1 if now else -1
        out.gain += gain
        if gain > 0:
            out.good += 1
            if len(out.examples) < 5:
                out.examples.append(conversation_id)
        elif gain < 0 or offered:
            out.bad += 1
            out.offered_bad += offered
        else:
            out.neutral += 1
    return out


def _break_even(best: Scored, settings: Settings) -> float:
    """The share of good flips at which a change gains nothing: good flips save one kind of error
    and bad flips cost the other, depending on the direction of the change."""
    escalating = best.escalated_delta > 0
    good_w = settings.missed_weight if escalating else settings.false_weight
    bad_w = settings.false_weight if escalating else settings.missed_weight
    return bad_w / (good_w + bad_w)


def decide(
    path: str,
    current: Any,
    candidates: Sequence[Scored],
    settings: Settings,
    describe: Callable[[Any, Any, Scored], str],
) -> Proposal:
    """The best candidate if the evidence supports it; otherwise the current value, and why."""
    others = [item for item in candidates if item.value != current]
    # The largest gain; of equal gains, the value closest to the current one.
    best = max(
        others,
        key=lambda item: (round(item.gain, 9), -_distance(item.value, current)),
        default=None,
    )
    if best is None or best.gain <= 0:
        return Proposal(
            path,
            current,
            current,
            False,
            "keep",
            "no candidate value would have reduced false plus missed escalations on this period",
            None,
            best,
        )
    decisive = best.good + best.bad
    # The Wilson interval of the good share with offered bad flips weighted by 1 - acceptance
    # (its low end): a fractional trial count, which the score interval's closed form allows.
    weighted = best.good + best.bad_weight
    share = rate(best.good, decisive)
    if best.offered_bad:
        share = {**rate(best.good, weighted), "k": best.good, "n": round(weighted, 3)}
    even = _break_even(best, settings)
    text = describe(current, best.value, best)
    credited = (
        f"; {best.offered_bad} of the worse still get a transfer offer and weigh "
        f"{1.0 - best.test_acceptance:.2f} each (offer credit at the low end of the observed "
        "acceptance)"
        if best.offered_bad
        else ""
    )
    evidence = (
        f"{best.good} conversations would have been judged better and {best.bad} worse "
        f"({best.neutral} flipped without changing a verdict): false escalations "
        f"{best.false_delta:+d}, missed {round(best.missed_delta, 1):+g}{credited}"
    )
    needed: str | None = None
    low = share["low"]
    if decisive < settings.min_cases:
        needed = (
            f"only {decisive} judged conversations between the current and the better value; a "
            f"change needs at least {settings.min_cases}"
        )
    elif low is None or low <= even:
        p = share["rate"] or 0.0
        more = needed_for(p, abs(p - even)) if p != even else None
        needed = (
            f"the share of better-judged conversations, {p:.0%} (95% {share['low']:.0%}-"
            f"{share['high']:.0%}, n={share['n']:g}), is not clearly above the break-even "
            f"{even:.0%}"
            + (f"; about {more} such conversations would tell them apart" if more else "")
        )
    proposed = current if needed else best.value
    return Proposal(
        path, current, proposed, needed is None, text, evidence, needed, best, share, even
    )


def _distance(a: Any, b: Any) -> float:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b))
    return 0.0


def threshold_grid(current: float, settings: Settings) -> list[float]:
    """The grid values within `max_step` of the current threshold (and the current one)."""
    values = {round(current, 2)}
    for value in CONFIDENCE_GRID:
        if abs(value - current) <= settings.max_step + 1e-9:
            values.add(value)
    return sorted(values)


def describe_threshold(klass: str) -> Callable[[Any, Any, Scored], str]:
    def text(current: Any, proposed: Any, best: Scored) -> str:
        if proposed < current:
            return (
                f"Escalations held for a {klass} action turned out easy (false escalations): the "
                f"confidence a {klass} action needs is stricter than necessary. Lower it from "
                f"{current:.2f} to {proposed:.2f}."
            )
        return (
            f"{klass.capitalize()} actions taken at confidence between {current:.2f} and "
            f"{proposed:.2f} came back (missed escalations): the bar is too lax. Raise it from "
            f"{current:.2f} to {proposed:.2f}."
        )

    return text


def describe_refund(current: Any, proposed: Any, best: Scored) -> str:
    if proposed > current:
        return (
            f"Refunds between {current:g} and {proposed:g} were escalated and turned out easy: the "
            f"boundary is drawn tighter than needed. Raise the limit to {proposed:g}."
        )
    return (
        f"Refunds between {proposed:g} and {current:g} were left to the AI and came back (missed): "
        f"the boundary is drawn too wide. Lower the limit to {proposed:g}."
    )


def describe_variant(rule: str) -> Callable[[Any, Any, Scored], str]:
    def text(current: Any, proposed: Any, best: Scored) -> str:
        more = best.escalated_delta > 0
        kind = (
            "a sentiment gap: frustrated conversations were not offered a human"
            if rule == "sentiment"
            else "repeat contacts that needed a human were left to the AI"
        )
        if more:
            return (
                f"Missed escalations point to {kind}. Change {rule} from {current} to {proposed}."
            )
        return (
            f"Escalations by the {rule} rule turned out easy: it fires more than needed. Change "
            f"{rule} from {current} to {proposed}."
        )

    return text
