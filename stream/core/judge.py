"""The one judge of decisions against outcomes, used live (worker) and in batch (backtest, review).

A conversation's facts are folded from three inputs in any order: its decisions (as the customer
agent emitted them), its close (a `closed` contact) and its ticket outcomes. Every fold is
order-independent for facts that arrive on different topics (the earliest close, the furthest
action with its first decision, the latest outcome by event time), so a worker that reads the
topics side by side and a backtest that reads a file end with the same facts, and the same
judgement.

Classes (DESIGN.md section 6), with `calibration.*` settings of the policy:
- `needed_escalation`: escalated, and the human work was real: handle time at or above
  `false_escalation_max_seconds`, special expertise, or a reopen within `missed_reopen_hours`.
- `false_escalation`: escalated, and resolved by a human in under `false_escalation_max_seconds`
  with no special expertise and no reopen; also an escalated conversation whose ticket says the AI
  resolved it without human work and was not reopened (no human minutes at all are under two).
- `missed_escalation`: not escalated (an offered transfer is not an escalation), and reopened
  within `missed_reopen_hours` of the close.
- `ok_without`: not escalated, resolved (by the AI or a human), not reopened within the window.
- `unknown`: no outcome yet, no decision was made in the conversation, or the outcome says too
  little (unresolved and not reopened; a human resolution without a handle time).

The reopen window is measured from the close: the earliest `closed` contact of the conversation,
or, when the ticketing system reports no close, the earliest outcome's event time.

Besides the class, each judgement says whether the case *needed* a human (`needed`,
`not_needed`, `unknown`), a property of the conversation that the outcome reveals whatever was
decided. `rejudge` uses it to judge a different decision on the same recorded outcome (a backtest
of another policy): the need is assumed to stay what the recorded outcome showed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TypeAlias

from stream.core.decision import Decision
from stream.core.events import OutcomeEvent
from stream.core.records import NOT_IN_RECORD, Record
from stream.core.vocabulary import ACTION_RANK

Verdict: TypeAlias = Literal[
    "false_escalation", "missed_escalation", "needed_escalation", "ok_without", "unknown"
]
Need: TypeAlias = Literal["needed", "not_needed", "unknown"]
VERDICTS: Final[tuple[Verdict, ...]] = (
    "false_escalation",
    "missed_escalation",
    "needed_escalation",
    "ok_without",
    "unknown",
)
NEEDS: Final[tuple[Need, ...]] = ("needed", "not_needed", "unknown")
HOUR_MS: Final[int] = 3_600_000
# The conversation reached nothing: no decision was seen for it.
NO_DECISION: Final[str] = "none"


@dataclass(frozen=True, slots=True)
class JudgeSettings:
    """The two thresholds of DESIGN section 6; from the policy's `calibration` block."""

    false_escalation_max_seconds: float = 120.0
    missed_reopen_hours: float = 48.0

    @classmethod
    def from_policy(cls, policy: Any) -> JudgeSettings:
        calibration = policy.calibration
        return cls(
            float(calibration.false_escalation_max_seconds),
            float(calibration.missed_reopen_hours),
        )


@dataclass(slots=True)
class JudgeFacts(Record):
    """What the judge needs of one conversation; mutable, folded by the `note_*` functions."""

    conversation_id: str
    customer_id: str
    # The furthest action of its decisions (escalate > offer_transfer > continue); "none" before
    # the first decision.
    action: str = NO_DECISION
    decisions: int = 0
    # The first decision that reached `action`: its triggers explain the conversation's result.
    decision_id: str | None = None
    decided_at: int | None = None
    triggers: tuple[str, ...] = ()
    rules: tuple[str, ...] = ()
    policy_version: str | None = None
    # The first offer of a transfer, kept when the conversation later escalates too.
    offered_at: int | None = None
    category: str | None = None
    category_at: int = -1
    first_at: int | None = None
    closed_at: int | None = None
    outcome: OutcomeEvent | None = None
    first_outcome_at: int | None = None
    outcomes: int = 0

    @property
    def escalated(self) -> bool:
        return self.action == "escalate"

    @property
    def last_at(self) -> int:
        """The latest event time of any fact, for bounded memories to expire on."""
        times = [
            t
            for t in (self.first_at, self.decided_at, self.closed_at, self.category_at)
            if t is not None
        ]
        if self.outcome is not None:
            times.append(self.outcome.occurred_at)
            if self.outcome.reopened_at is not None:
                times.append(self.outcome.reopened_at)
        return max(times) if times else -1


def _earliest(current: int | None, at: int) -> int:
    return at if current is None or at < current else current


def note_decision(facts: JudgeFacts, decision: Decision) -> None:
    """Fold one decision of the conversation (redeliveries with the same id change nothing)."""
    facts.decisions += 1
    facts.first_at = _earliest(facts.first_at, decision.occurred_at)
    # The category is refined as a conversation goes on: the latest decision's (event time) wins.
    if decision.category is not None and decision.occurred_at >= facts.category_at:
        facts.category = decision.category
        facts.category_at = decision.occurred_at
    if decision.action == "offer_transfer":
        facts.offered_at = _earliest(facts.offered_at, decision.occurred_at)
    rank = ACTION_RANK.get(decision.action, 0)
    current = -1 if facts.action == NO_DECISION else ACTION_RANK.get(facts.action, 0)
    earlier_same = (
        rank == current and facts.decided_at is not None and decision.occurred_at < facts.decided_at
    )
    if rank > current or earlier_same:
        facts.action = decision.action
        facts.decision_id = decision.decision_id
        facts.decided_at = decision.occurred_at
        facts.policy_version = decision.policy_version
        facts.triggers = tuple(dict.fromkeys(hit.trigger for hit in decision.triggers))
        facts.rules = tuple(dict.fromkeys(hit.rule for hit in decision.triggers))


def note_close(facts: JudgeFacts, at: int) -> None:
    """A `closed` contact of the conversation: the reopen window starts at the earliest close."""
    facts.closed_at = _earliest(facts.closed_at, at)


def note_outcome(facts: JudgeFacts, outcome: OutcomeEvent) -> None:
    """The latest outcome (event time; a tie goes to the later one read) is the one judged: the
    ticketing system reports a reopen with a later record for the same ticket."""
    facts.outcomes += 1
    facts.first_outcome_at = _earliest(facts.first_outcome_at, outcome.occurred_at)
    if facts.outcome is None or outcome.occurred_at >= facts.outcome.occurred_at:
        facts.outcome = outcome


@dataclass(frozen=True, slots=True)
class Judgement(Record):
    """One conversation judged: the record published on `escalation.calibration`."""

    conversation_id: str
    customer_id: str
    verdict: Verdict
    need: Need
    reason: str
    action: str
    escalated: bool
    offered: bool
    decision_id: str | None
    triggers: tuple[str, ...]
    rules: tuple[str, ...]
    category: str | None
    policy_version: str | None
    decided_at: int | None
    closed_at: int | None
    ticket_id: str | None
    outcome_event_id: str | None
    outcome_decision_id: str | None
    resolved_by: str | None
    handle_time_seconds: float | None
    special_expertise: bool
    reopened_at: int | None
    # Reopened within `missed_reopen_hours` of the close.
    reopened: bool
    reopen_window_ends_at: int | None
    csat: int | None
    judged_at: int
    false_escalation_max_seconds: float
    missed_reopen_hours: float
    schema_version: int = 1
    # Judged by the counterfactual rule (a backtest of another policy); never published.
    assumed: bool = field(default=False, metadata=NOT_IN_RECORD)


def _hours(ms: int) -> str:
    return f"{ms / HOUR_MS:.1f} h"


def _need(
    outcome: OutcomeEvent, reopened: bool, gap_ms: int | None, settings: JudgeSettings
) -> tuple[Need, str]:
    if reopened:
        assert gap_ms is not None
        return "needed", f"reopened {_hours(gap_ms)} after the close"
    late = f"; reopened only after {_hours(gap_ms)}" if gap_ms is not None else ""
    if outcome.resolved_by == "human":
        if outcome.special_expertise:
            return "needed", f"resolved by a human with special expertise{late}"
        seconds = outcome.handle_time_seconds
        if seconds is None:
            return "unknown", f"resolved by a human, but the outcome has no handle time{late}"
        limit = settings.false_escalation_max_seconds
        if seconds >= limit:
            return "needed", f"a human worked {seconds:g} s on it (at least {limit:g} s){late}"
        return (
            "not_needed",
            f"resolved by a human in {seconds:g} s (under {limit:g} s) without special "
            f"expertise, not reopened{late}",
        )
    if outcome.resolved_by == "ai":
        return "not_needed", f"resolved by the AI without human work, not reopened{late}"
    return "unknown", f"unresolved and not reopened: the outcome says too little{late}"


_ESCALATED_VERDICT: Final[dict[Need, Verdict]] = {
    "needed": "needed_escalation",
    "not_needed": "false_escalation",
    "unknown": "unknown",
}


def judge(facts: JudgeFacts, settings: JudgeSettings) -> Judgement:
    """Classify one conversation's decision against its outcome (module docstring)."""
    outcome = facts.outcome
    reopened = False
    gap: int | None = None
    window_ends: int | None = None
    start = facts.closed_at if facts.closed_at is not None else facts.first_outcome_at
    window_ms = int(round(settings.missed_reopen_hours * HOUR_MS))
    if start is not None:
        window_ends = start + window_ms
    if outcome is None:
        need: Need = "unknown"
        why = "no outcome yet"
    else:
        if outcome.reopened_at is not None and start is not None:
            gap = outcome.reopened_at - start
            reopened = gap <= window_ms
        need, why = _need(outcome, reopened, gap, settings)

    verdict: Verdict
    if outcome is None:
        verdict = "unknown"
    elif facts.action == NO_DECISION:
        verdict = "unknown"
        why = f"no decision was made in this conversation (outcome: {why})"
    elif facts.escalated:
        verdict = _ESCALATED_VERDICT[need]
        why = f"escalated; {why}"
    elif reopened:
        verdict = "missed_escalation"
        why = f"not escalated; {why}"
    elif need == "unknown":
        verdict = "unknown"
        why = f"not escalated; {why}"
    else:
        verdict = "ok_without"
        why = f"not escalated; {why}"
    return Judgement(
        conversation_id=facts.conversation_id,
        customer_id=facts.customer_id,
        verdict=verdict,
        need=need,
        reason=why,
        action=facts.action,
        escalated=facts.escalated,
        offered=facts.offered_at is not None,
        decision_id=facts.decision_id,
        triggers=facts.triggers,
        rules=facts.rules,
        category=facts.category,
        policy_version=facts.policy_version,
        decided_at=facts.decided_at,
        closed_at=facts.closed_at,
        ticket_id=outcome.ticket_id if outcome else None,
        outcome_event_id=outcome.event_id if outcome else None,
        outcome_decision_id=outcome.decision_id if outcome else None,
        resolved_by=outcome.resolved_by if outcome else None,
        handle_time_seconds=outcome.handle_time_seconds if outcome else None,
        special_expertise=outcome.special_expertise if outcome else False,
        reopened_at=outcome.reopened_at if outcome else None,
        reopened=reopened,
        reopen_window_ends_at=window_ends,
        csat=outcome.csat if outcome else None,
        judged_at=facts.last_at,
        false_escalation_max_seconds=settings.false_escalation_max_seconds,
        missed_reopen_hours=settings.missed_reopen_hours,
    )


COUNTERFACTUAL_ASSUMPTION: Final[str] = (
    "Outcomes were recorded under the policy that ran. A conversation another policy decides "
    "differently (escalated instead of not, or the reverse) keeps the need for a human that its "
    "recorded outcome showed: needed (a reopen within the window, special expertise, or human work "
    "at or above the false-escalation time) or not needed (resolved by the AI, or by a human in "
    "under that time without expertise, and not reopened). Escalating a needed case is then a "
    "needed escalation and not escalating it a missed one (the reopen is assumed to follow); "
    "escalating a case that was not needed is a false escalation and not escalating it is ok "
    "without. A case whose need is unknown stays unknown."
)


def rejudge(own: Judgement, recorded: Judgement | None) -> Judgement:
    """`own` (a policy's decision judged literally on the recorded outcome) corrected by
    COUNTERFACTUAL_ASSUMPTION when that policy decided differently from the one that ran
    (`recorded`); `own` unchanged when both escalated or both did not."""
    if recorded is None or own.escalated == recorded.escalated or own.verdict == "unknown":
        return own
    if recorded.verdict == "unknown" and recorded.need == "unknown":
        return own
    verdict: Verdict
    if recorded.need == "needed":
        verdict = "needed_escalation" if own.escalated else "missed_escalation"
    elif recorded.need == "not_needed":
        verdict = "false_escalation" if own.escalated else "ok_without"
    else:
        verdict = "unknown"
    side = "escalated" if own.escalated else "not escalated"
    return replace(
        own,
        verdict=verdict,
        need=recorded.need,
        assumed=True,
        reason=f"{side} here, but {recorded.action} when the outcome was recorded; assumed "
        f"from that outcome: {recorded.reason}",
    )
