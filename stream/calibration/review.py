"""The monthly review: one pass of a period's events through the policy that ran and its variants,
judged, diagnosed, and turned into a proposed policy with its predicted effect.

Which conversations belong to the period: those whose first input event falls in it (an outcome
of a conversation the input never showed counts by its own time). Events before the period still
fold into state (earlier contacts count for repeat contact), and outcomes after it still judge
its conversations: give the whole file, or for topics a range that starts a window earlier and
ends a judging horizon later (`period_read_range`).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from stream.backtest.run import Inputs, run_policies
from stream.calibration import proposal as prop
from stream.calibration.diagnostics import diagnose, measures
from stream.calibration.judged import FactsSink, conversation_facts, judge_all
from stream.calibration.policy_file import write_proposal
from stream.core.events import Event, MessageEvent
from stream.core.judge import COUNTERFACTUAL_ASSUMPTION, JudgeFacts, Judgement, JudgeSettings
from stream.core.policy import Policy, PolicyError
from stream.core.policy_values import diff, with_values
from stream.core.threshold_sweep import NO_ACTION, escalates_at, threshold_path
from stream.errors import UsageError

FORMAT_VERSION: Final[int] = 1
DAY_MS: Final[int] = 86_400_000
MAX_LISTED: Final[int] = 50


class ReviewError(UsageError):
    """The review cannot run as asked (a bad month, an empty period); the message says why."""


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    start_ms: int
    end_ms: int

    @classmethod
    def month(cls, text: str) -> Period:
        """`2026-10` as [2026-10-01T00:00Z, 2026-11-01T00:00Z)."""
        try:
            year_text, month_text = text.strip().split("-")
            year, month = int(year_text), int(month_text)
            if not 1 <= month <= 12 or year < 1970:
                raise ValueError
        except ValueError:
            raise ReviewError(f"month {text!r} is not YYYY-MM (e.g. 2026-10)") from None
        days = calendar.monthrange(year, month)[1]
        start = dt.datetime(year, month, 1, tzinfo=dt.UTC)
        end = start + dt.timedelta(days=days)
        return cls(
            f"{year:04d}-{month:02d}",
            int(start.timestamp() * 1000),
            int(end.timestamp() * 1000),
        )

    def contains(self, at: int) -> bool:
        return self.start_ms <= at < self.end_ms


def period_read_range(period: Period, policy: Policy) -> tuple[int, int]:
    """The event-time range to read for a period: the repeat-contact window (plus lateness)
    before it, and the judging horizon (reopen window plus lateness) after it."""
    lateness = policy.lateness_seconds * 1000
    before = int(policy.repeat_contact.window_days * DAY_MS) + lateness
    after = int(policy.calibration.missed_reopen_hours * 3_600_000) + lateness
    return period.start_ms - before, period.end_ms + after


@dataclass(slots=True)
class Features:
    """What the variants need of each conversation besides decisions: the lowest confidence per
    consequence class, and the largest refund."""

    refund_types: frozenset[str]
    lowest: dict[str, dict[str, float]] = field(default_factory=dict)
    largest_refund: dict[str, float] = field(default_factory=dict)

    def tap(self, events: Iterable[Event], keep: list[Event]) -> Iterator[Event]:
        for event in events:
            keep.append(event)
            if isinstance(event, MessageEvent) and event.proposed_action is not None:
                action = event.proposed_action
                conv = event.conversation_id
                if event.intent_confidence is not None:
                    lowest = self.lowest.setdefault(conv, {})
                    klass = action.consequence_class
                    if event.intent_confidence < lowest.get(klass, NO_ACTION):
                        lowest[klass] = event.intent_confidence
                amount = action.amount
                refunds = self.largest_refund
                if action.type in self.refund_types and amount is not None:
                    refunds[conv] = max(amount, refunds.get(conv, -1.0))
            yield event


def _variant(policy: Policy, changes: dict[str, Any], name: str) -> Policy | None:
    try:
        return with_values(policy, changes, version=f"{policy.version}~{name}")
    except (PolicyError, ValueError):
        return None


def _below(anyway: set[str], lowest: dict[str, float], t: float) -> Callable[[str], bool]:
    """Escalated at threshold `t`: by something else anyway, or a confidence below `t`."""
    return lambda conversation: escalates_at(
        conversation in anyway, lowest.get(conversation, NO_ACTION), t
    )


def _above(anyway: set[str], largest: dict[str, float], cap: float) -> Callable[[str], bool]:
    return lambda conversation: conversation in anyway or largest.get(conversation, -1.0) > cap


def _mismatches(recorded: dict[str, Judgement], model: Callable[[str], bool]) -> int:
    return sum(1 for cid, j in recorded.items() if model(cid) != j.escalated)


def _escalated(facts: dict[str, JudgeFacts]) -> set[str]:
    return {cid for cid, f in facts.items() if f.escalated}


def _offered(facts: dict[str, JudgeFacts]) -> set[str]:
    """Conversations a run offered a transfer in without escalating them."""
    return {cid for cid, f in facts.items() if f.action == "offer_transfer"}


def offer_credit(decided: Iterable[Judgement]) -> prop.OfferCredit:
    """The month's observed offer acceptance: offered, not escalated conversations with an
    outcome, and of those the ones a human resolved (the customer took the transfer)."""
    out = [j for j in decided if j.action == "offer_transfer" and j.resolved_by is not None]
    return prop.OfferCredit(sum(1 for j in out if j.resolved_by == "human"), len(out))


@dataclass(slots=True)
class ReviewResult:
    report: dict[str, Any]
    proposal_yaml: str | None
    proposal: Policy | None


def _listing(items: list[Judgement]) -> list[dict[str, Any]]:
    return [
        {
            "conversation_id": j.conversation_id,
            "customer_id": j.customer_id,
            "category": j.category,
            "verdict": j.verdict,
            "reason": j.reason,
            "triggers": list(j.triggers),
        }
        for j in items[:MAX_LISTED]
    ]


def run_review(
    events: Iterable[Event],
    current: Policy,
    period: Period,
    *,
    current_text: str,
    current_path: str | None = None,
    settings: prop.Settings | None = None,
    source: dict[str, Any] | None = None,
    progress: bool = False,
) -> ReviewResult:
    """Judge, diagnose and propose for one period (module docstring); never raises on empty or
    unjudgeable input: the report says what could not be judged."""
    settings = settings or prop.Settings()
    judge_settings = JudgeSettings.from_policy(current)
    policies: dict[str, Policy] = {"current": current}
    wanted = set(settings.review)
    classes = sorted(current.confidence.thresholds) if "confidence" in wanted else []
    for klass in classes:
        # The threshold at 0: who escalates anyway (stream.core.threshold_sweep).
        variant = _variant(current, {threshold_path(klass): 0.0}, f"no-{klass}")
        if variant is not None:
            policies[f"confidence:{klass}"] = variant
    refund_off = _variant(current, {"boundaries.refund.enabled": False}, "no-refund-limit")
    if refund_off is not None and current.boundaries.refund.enabled and "refund" in wanted:
        policies["refund:off"] = refund_off
    variants: dict[str, list[tuple[str, dict[str, Any]]]] = {"sentiment": [], "repeat_contact": []}
    for rule, listed in (
        ("sentiment", prop.SENTIMENT_VARIANTS),
        ("repeat_contact", prop.REPEAT_VARIANTS),
    ):
        if rule not in wanted:
            continue
        block = getattr(current, rule).model_dump(mode="json")
        for index, option in enumerate(listed):
            if all(block.get(k) == v for k, v in option.items()):
                continue
            edits = {f"{rule}.{k}": v for k, v in option.items()}
            variant = _variant(current, edits, f"{rule}-{index}")
            if variant is not None:
                name = f"{rule}:{index}"
                policies[name] = variant
                variants[rule].append((name, option))

    features = Features(frozenset(current.boundaries.refund.action_types))
    kept: list[Event] = []
    sinks = {name: FactsSink() for name in policies}
    results = run_policies(
        features.tap(events, kept), policies, progress, keep=False, sinks=dict(sinks)
    )
    inputs = results["current"].inputs
    facts = conversation_facts(sinks["current"], inputs)
    judged = judge_all(facts, judge_settings)
    in_period = _in_period(judged, inputs, period)
    decided = [judged[c] for c in in_period if facts[c].decisions > 0]
    recorded = {j.conversation_id: j for j in decided}

    unjudged = _unjudged(in_period, facts, judged, inputs)
    warnings: list[str] = []
    if inputs.events == 0:
        warnings.append("the input has no events at all")
    elif not in_period:
        warnings.append(
            f"no conversation of the input starts in {period.label}; the input spans "
            f"{_span(inputs)}"
        )
    elif not any(j.resolved_by is not None for j in decided):
        warnings.append("no conversation of the period has an outcome: nothing could be judged")

    proposals: list[prop.Proposal] = []
    model_check: dict[str, Any] = {}
    credit = offer_credit(decided)
    if recorded:
        for klass in classes:
            name = f"confidence:{klass}"
            if name not in policies:
                continue
            # The variant decides as every candidate does in a conversation that the candidate
            # does not escalate: whether it offers a transfer there.
            variant_facts = conversation_facts(sinks[name], inputs)
            anyway = _escalated(variant_facts)
            offers = _offered(variant_facts).__contains__
            lowest = {c: v[klass] for c, v in features.lowest.items() if klass in v}
            now = current.confidence.thresholds[klass]

            model_check[name] = _mismatches(recorded, _below(anyway, lowest, now))
            scored = [
                prop.score(t, recorded, _below(anyway, lowest, t), settings, offers, credit)
                for t in prop.threshold_grid(now, settings)
            ]
            proposals.append(
                prop.decide(
                    f"confidence.thresholds.{klass}",
                    now,
                    scored,
                    settings,
                    prop.describe_threshold(klass),
                )
            )
        if "refund:off" in policies:
            variant_facts = conversation_facts(sinks["refund:off"], inputs)
            anyway = _escalated(variant_facts)
            offers = _offered(variant_facts).__contains__
            largest = features.largest_refund
            limit = current.boundaries.refund.limit
            model_check["refund:off"] = _mismatches(recorded, _above(anyway, largest, limit))
            grid = sorted({float(limit), *map(float, prop.REFUND_GRID)})
            scored = [
                prop.score(cap, recorded, _above(anyway, largest, cap), settings, offers, credit)
                for cap in grid
            ]
            proposals.append(
                prop.decide(
                    "boundaries.refund.limit", float(limit), scored, settings, prop.describe_refund
                )
            )
        for rule, options in variants.items():
            if not options:
                continue
            current_block = {k: getattr(getattr(current, rule), k) for _, o in options for k in o}
            scored = []
            for variant_name, option in options:
                variant_facts = conversation_facts(sinks[variant_name], inputs)
                esc = _escalated(variant_facts)
                scored.append(
                    prop.score(
                        dict(current_block, **option),
                        recorded,
                        esc.__contains__,
                        settings,
                        _offered(variant_facts).__contains__,
                        credit,
                    )
                )
            proposals.append(
                prop.decide(rule, current_block, scored, settings, prop.describe_variant(rule))
            )

    changes: dict[str, Any] = {}
    notes: list[tuple[str, Any, str]] = []
    for p in proposals:
        if not p.change:
            continue
        if isinstance(p.proposed, dict):
            for key, value in p.proposed.items():
                if p.current.get(key) != value:
                    path = f"{p.path}.{key}"
                    changes[path] = value
                    notes.append((path, value, _note(period, p, p.current.get(key))))
        else:
            changes[p.path] = p.proposed
            notes.append((p.path, p.proposed, _note(period, p, p.current)))

    proposal: Policy | None = None
    proposal_yaml: str | None = None
    predicted: dict[str, Any] | None = None
    policy_diff: list[dict[str, Any]] = []
    if changes:
        version = f"{current.version}+review-{period.label}"
        proposal = with_values(current, changes, version=version)
        proposal_yaml = write_proposal(
            current_text,
            version,
            notes,
            [
                f"Proposed by `escalation calibrate --month {period.label}` from policy "
                f"{current.version}.",
                "Each changed value carries its reason; report.html shows the evidence and the",
                "predicted effect. Review it, then `escalation backtest` or "
                "`escalation policy publish` it.",
                "",
            ],
        )
        policy_diff = diff(current, proposal)
        sink = FactsSink()
        again = run_policies(
            kept, {"proposal": proposal}, False, keep=False, sinks={"proposal": sink}
        )
        proposed_facts = conversation_facts(sink, again["proposal"].inputs)
        proposed_judged = judge_all(proposed_facts, judge_settings, recorded)
        mine = [proposed_judged[c] for c in recorded if c in proposed_judged]
        predicted = _predicted(decided, mine, credit)

    report = {
        "report": "escalation calibration review",
        "format_version": FORMAT_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "period": {"month": period.label, "start_ms": period.start_ms, "end_ms": period.end_ms},
        "input": {
            **(source or {}),
            "events": inputs.events,
            "by_type": dict(sorted(inputs.by_type.items())),
            "conversations_in_input": len(inputs.conversations),
            "conversations_in_period": len(in_period),
            "decided_in_period": len(decided),
            "outcomes_in_input": len(inputs.outcomes),
        },
        "policy": {"version": current.version, "path": current_path},
        "judge": {
            "false_escalation_max_seconds": judge_settings.false_escalation_max_seconds,
            "missed_reopen_hours": judge_settings.missed_reopen_hours,
        },
        "diagnostics": diagnose(decided, period.start_ms),
        "unjudged": unjudged,
        "proposals": [p.to_record() for p in proposals],
        "settings": {
            "false_weight": settings.false_weight,
            "missed_weight": settings.missed_weight,
            "min_cases": settings.min_cases,
            "max_step": settings.max_step,
        },
        "variant_model_mismatches": model_check,
        "proposal": None
        if proposal is None
        else {"version": proposal.version, "changes": policy_diff, "predicted": predicted},
        "offer_acceptance": credit.to_record(),
        "assumptions": [COUNTERFACTUAL_ASSUMPTION, prop.OFFER_ASSUMPTION, _MODEL_ASSUMPTION],
        "warnings": warnings,
    }
    return ReviewResult(report, proposal_yaml, proposal)


_MODEL_ASSUMPTION: Final[str] = (
    "A confidence threshold's candidates are scored without a run each: a conversation counts "
    "as escalated at threshold t when the policy with that class's threshold at 0 escalated it "
    "anyway, "
    "or when its lowest confidence for that class is below t (likewise the refund limit with the "
    "largest refund). variant_model_mismatches counts the conversations where this model and the "
    "real run disagree at the current value; the predicted effect is a real backtest of the "
    "proposal."
)


def _note(period: Period, p: prop.Proposal, old: Any) -> str:
    share = p.good_share
    tail = ""
    if share is not None and share["rate"] is not None:
        tail = (
            f"; {share['k']} of {share['n']} changed verdicts better (95% {share['low']:.0%}-"
            f"{share['high']:.0%})"
        )
    return f"calibrate {period.label}: was {old}{tail}"


def _in_period(judged: dict[str, Judgement], inputs: Inputs, period: Period) -> list[str]:
    out = []
    for cid, j in judged.items():
        seen = inputs.conversations.get(cid)
        at = seen.first_at if seen is not None else j.judged_at
        if period.contains(at):
            out.append(cid)
    return out


def _unjudged(
    in_period: list[str],
    facts: dict[str, JudgeFacts],
    judged: dict[str, Judgement],
    inputs: Inputs,
) -> dict[str, Any]:
    groups: dict[str, list[Judgement]] = {
        "decisions_without_outcome": [],
        "outcome_without_decision": [],
        "outcome_for_unknown_conversation": [],
        "outcome_says_too_little": [],
    }
    for cid in in_period:
        j = judged[cid]
        if j.verdict != "unknown":
            continue
        if facts[cid].decisions == 0:
            key = (
                "outcome_without_decision"
                if cid in inputs.conversations
                else "outcome_for_unknown_conversation"
            )
        elif j.resolved_by is None:
            key = "decisions_without_outcome"
        else:
            key = "outcome_says_too_little"
        groups[key].append(j)
    return {
        "explained": {
            "decisions_without_outcome": "the policy decided, but no ticket outcome arrived",
            "outcome_without_decision": "an outcome for a conversation the input shows, in which "
            "no decision was made",
            "outcome_for_unknown_conversation": "an outcome whose conversation the input never "
            "showed (no message, contact or sentiment event)",
            "outcome_says_too_little": "unresolved and not reopened, or a human resolution "
            "without a handle time",
        },
        "counts": {k: len(v) for k, v in groups.items()},
        "examples": {k: _listing(v) for k, v in groups.items()},
    }


def _span(inputs: Inputs) -> str:
    times = [c.first_at for c in inputs.conversations.values()]
    if not times:
        return "no conversation"

    def day(ms: int) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d")

    return f"{day(min(times))} to {day(max(times))}"


def _predicted(
    current: list[Judgement], proposed: list[Judgement], credit: prop.OfferCredit
) -> dict[str, Any]:
    a, b = measures(current), measures(proposed)
    # Missed by assumption only: the proposal stops escalating a needed case, and still offers
    # a transfer in it; each is missed only if the offer is declined (prop.OFFER_ASSUMPTION).
    credited = sum(
        1
        for j in proposed
        if j.assumed and j.verdict == "missed_escalation" and j.action == "offer_transfer"
    )

    def pick(m: dict[str, Any]) -> dict[str, Any]:
        return {
            "escalated": m["escalated"],
            "escalation_rate": m["escalation_rate"],
            "false_escalations": m["verdicts"]["false_escalation"],
            "missed_escalations": m["verdicts"]["missed_escalation"],
            "needed_escalations": m["verdicts"]["needed_escalation"],
            "ok_without": m["verdicts"]["ok_without"],
            "false_plus_missed": m["verdicts"]["false_escalation"]
            + m["verdicts"]["missed_escalation"],
            "false_escalation_rate": m["false_escalation_rate"],
            "missed_escalation_rate": m["missed_escalation_rate"],
            "human_minutes": m["workload"]["human_minutes"],
        }

    mine = pick(b)
    if credited:
        missed, both = mine["missed_escalations"], mine["false_plus_missed"]
        mine["missed_escalations_without_offer_credit"] = missed
        mine["missed_escalations"] = round(missed - credited * credit.share, 1)
        mine["false_plus_missed"] = round(both - credited * credit.share, 1)
        # Over the 95% interval of the acceptance share.
        mine["false_plus_missed_range"] = [
            round(both - credited * credit.high, 1),
            round(both - credited * credit.low, 1),
        ]
    return {
        "current": pick(a),
        "proposal": mine,
        "offer_credited": credited,
        "offer_acceptance": credit.to_record(),
        "assumed": sum(1 for j in proposed if j.assumed),
        "not_predicted": "CSAT and handle times of conversations the proposal decides "
        "differently: the outcome recorded them under the other decision",
    }
