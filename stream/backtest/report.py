"""The backtest comparison: rates, false and missed escalations, and what changed between policies.

Definitions (also written into every report, so a reader of the JSON needs nothing else):
- A conversation *counts* for a policy when that policy made at least one decision in it. Its
  *result* is the furthest it went: escalate, else offer_transfer, else continue. Its category is
  the latest category the input gave it, the same for both policies so their rates compare.
- *Escalation rate*: escalated conversations / conversations that count. By category: within the
  category. By trigger: conversations whose escalating decision carries a hit of that trigger, over
  all conversations that count (several triggers can share one escalation).
- Outcomes are joined to conversations by `conversation_id`; of several outcomes of one
  conversation the latest (event time) is used. An outcome's `decision_id`, when present, is matched
  against the policy's escalation decision and the matches are counted.
- Every conversation with an outcome is judged by the one judge of `stream.core.judge` (the live
  calibration agent uses it too): false, missed or needed escalation, ok without, or unknown.
  "Escalated and not false" is not "correct": an escalation the AI in fact resolved is false.
- Each policy is judged with its own calibration settings; the report warns when they differ.
- Outcomes record what happened under the baseline (the policy in force). A conversation the
  candidate decides differently keeps the need for a human its recorded outcome showed
  (`stream.core.judge.COUNTERFACTUAL_ASSUMPTION`, also written into the report).
- A *changed* conversation has a different result, or a different set of (trigger, rule) on the
  decision that decided it, under the two policies.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from stream.backtest.run import ConversationFacts, Inputs, RunResult, Verdict
from stream.core.decision import Decision
from stream.core.judge import (
    COUNTERFACTUAL_ASSUMPTION,
    JudgeFacts,
    Judgement,
    JudgeSettings,
    judge,
    note_close,
    note_decision,
    note_outcome,
    rejudge,
)
from stream.core.policy_values import diff as policy_diff
from stream.stats import rate as rate_with_interval

FORMAT_VERSION: Final[int] = 1
DEFAULT_MAX_CHANGED: Final[int] = 200
# Conversation ids listed per outcome class and policy; the counts are always complete.
MAX_LISTED_IDS: Final[int] = 100
UNCATEGORIZED: Final[str] = "(none)"

DEFINITIONS: Final[dict[str, str]] = {
    "conversation": "a conversation counts for a policy when that policy made at least one "
    "decision in it; its result is the furthest it went (escalate > offer_transfer > continue)",
    "category": "the latest category the input gave the conversation (same for both policies)",
    "escalation_rate": "escalated conversations / conversations that count",
    "by_trigger": "conversations whose deciding decision carries a hit of the trigger, over all "
    "conversations that count; one escalation can carry several triggers",
    "outcome_join": "by conversation_id, latest outcome by event time; decision_id matches counted",
    "false_escalation": "escalated, and resolved by a human in under "
    "calibration.false_escalation_max_seconds with no special expertise and no reopen, or "
    "resolved by the AI without human work",
    "needed_escalation": "escalated, and the human work was real: at least "
    "calibration.false_escalation_max_seconds, special expertise, or a reopen",
    "missed_escalation": "not escalated (an offered transfer is not an escalation), and "
    "reopened within calibration.missed_reopen_hours of the close (the earliest closed contact, "
    "else the first outcome)",
    "ok_without": "not escalated, resolved, not reopened within the window",
    "unknown": "no decision, or an outcome that says too little (unresolved and not reopened; a "
    "human resolution without a handle time)",
    "intervals": "rates carry Wilson 95% intervals: {k, n, rate, low, high}",
    "counterfactual": COUNTERFACTUAL_ASSUMPTION,
    "changed": "a different result, or a different set of (trigger, rule) on the deciding "
    "decision, under the two policies",
}

CHANGE_ORDER: Final[tuple[str, ...]] = (
    "newly_escalated",
    "no_longer_escalated",
    "triggers_changed",
    "offer_added",
    "offer_removed",
)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _hit_key(decision: Decision | None) -> tuple[tuple[str, str], ...]:
    if decision is None:
        return ()
    return tuple(sorted({(hit.trigger, hit.rule) for hit in decision.triggers}))


def facts_of(conversation_id: str, verdict: Verdict | None, inputs: Inputs) -> JudgeFacts:
    """The judge's facts of one conversation from a run: its deciding decision, close, outcome."""
    conversation = inputs.conversations.get(conversation_id)
    outcome = inputs.outcomes.get(conversation_id)
    customer = conversation.customer_id if conversation else outcome.customer_id if outcome else ""
    facts = JudgeFacts(conversation_id, customer)
    if verdict is not None and verdict.decisive is not None:
        note_decision(facts, verdict.decisive)
    elif verdict is not None:
        facts.action = "continue"
        facts.decisions = verdict.decisions
    note_ending(facts, inputs)
    return facts


def note_ending(facts: JudgeFacts, inputs: Inputs) -> None:
    """Folds the conversation's close and its outcome, as the run's inputs saw them, into its
    facts; the reopen window starts at the close or, without one, at the first outcome."""
    conversation_id = facts.conversation_id
    closed = inputs.closed_at.get(conversation_id)
    if closed is not None:
        note_close(facts, closed)
    outcome = inputs.outcomes.get(conversation_id)
    if outcome is not None:
        note_outcome(facts, outcome)
        facts.first_outcome_at = inputs.first_outcome_at[conversation_id]


def judge_against(
    facts: JudgeFacts, settings: JudgeSettings, recorded: Mapping[str, Judgement] | None
) -> Judgement:
    """The conversation judged; against the policy that ran (`recorded`) when given, so that a
    different decision is judged by the counterfactual rule of `stream.core.judge`."""
    own = judge(facts, settings)
    return own if recorded is None else rejudge(own, recorded.get(facts.conversation_id))


def judge_run(
    result: RunResult, recorded: dict[str, Judgement] | None = None
) -> dict[str, Judgement]:
    """Every conversation with an outcome, judged (against `recorded` when given)."""
    settings = JudgeSettings.from_policy(result.policy)
    inputs = result.inputs
    return {
        conversation_id: judge_against(
            facts_of(conversation_id, result.verdicts.get(conversation_id), inputs),
            settings,
            recorded,
        )
        for conversation_id in inputs.outcomes
    }


def summarize(
    result: RunResult,
    path: str | None = None,
    judgements: dict[str, Judgement] | None = None,
) -> dict[str, Any]:
    """Rates and outcome classes of one policy's run (`judgements`: from `judge_run`)."""
    policy = result.policy
    inputs = result.inputs
    false_max = float(policy.calibration.false_escalation_max_seconds)
    missed_hours = float(policy.calibration.missed_reopen_hours)
    counted = 0
    escalated = 0
    offered = 0
    categories: dict[str, Counter[str]] = {}
    triggers: dict[str, Counter[str]] = {}
    rules: dict[str, Counter[str]] = {}
    for conversation_id, verdict in result.verdicts.items():
        counted += 1
        conversation = inputs.conversations.get(conversation_id)
        category = (conversation.category if conversation else None) or UNCATEGORIZED
        tally = categories.setdefault(category, Counter())
        tally["conversations"] += 1
        if verdict.action == "continue":
            continue
        field = "escalated" if verdict.action == "escalate" else "offered"
        tally[field] += 1
        if verdict.action == "escalate":
            escalated += 1
        else:
            offered += 1
        assert verdict.decisive is not None
        for trigger in {hit.trigger for hit in verdict.decisive.triggers}:
            triggers.setdefault(trigger, Counter())[field] += 1
        for rule in {hit.rule for hit in verdict.decisive.triggers}:
            rules.setdefault(rule, Counter())[field] += 1

    classes: Counter[str] = Counter()
    listed: dict[str, list[str]] = {"false_escalation": [], "missed_escalation": []}
    false_by: dict[str, Counter[str]] = {"trigger": Counter(), "category": Counter()}
    missed_by_category: Counter[str] = Counter()
    matched_ids = 0
    unmatched = 0
    judged_all = judgements if judgements is not None else judge_run(result)
    for conversation_id, judged in judged_all.items():
        conversation = inputs.conversations.get(conversation_id)
        if conversation is None:
            unmatched += 1
            continue
        verdict_class = judged.verdict
        classes[verdict_class] += 1
        category = conversation.category or UNCATEGORIZED
        run_verdict = result.verdicts.get(conversation_id)
        decisive = run_verdict.decisive if run_verdict is not None else None
        outcome = inputs.outcomes[conversation_id]
        if outcome.decision_id is not None and decisive is not None:
            matched_ids += decisive.decision_id == outcome.decision_id
        if verdict_class in listed and len(listed[verdict_class]) < MAX_LISTED_IDS:
            listed[verdict_class].append(conversation_id)
        if verdict_class == "false_escalation":
            false_by["category"][category] += 1
            for trigger in judged.triggers:
                false_by["trigger"][trigger] += 1
        elif verdict_class == "missed_escalation":
            missed_by_category[category] += 1
    escalated_judged = classes["false_escalation"] + classes["needed_escalation"]
    others_judged = classes["missed_escalation"] + classes["ok_without"]

    def breakdown(table: Mapping[str, Counter[str]]) -> dict[str, Any]:
        return {
            name: {
                "escalated": tally["escalated"],
                "offered": tally["offered"],
                "escalation_rate": _rate(tally["escalated"], counted),
                "offer_rate": _rate(tally["offered"], counted),
            }
            for name, tally in sorted(table.items())
        }

    return {
        "policy_version": policy.version,
        "path": path,
        "decisions": result.decision_count,
        "decisions_by_action": {a: result.actions[a] for a in sorted(result.actions)},
        "handoffs": result.handoff_count,
        "trigger_errors": {
            "total": result.trigger_errors.total(),
            "by_trigger": dict(sorted(result.trigger_errors.items())),
        },
        "conflicting_duplicates": result.conflicting_duplicates,
        "conversations": counted,
        "escalated": escalated,
        "offered": offered,
        "escalation_rate": _rate(escalated, counted),
        "escalation_interval": rate_with_interval(escalated, counted),
        "offer_rate": _rate(offered, counted),
        "by_category": {
            name: {
                "conversations": tally["conversations"],
                "escalated": tally["escalated"],
                "offered": tally["offered"],
                "escalation_rate": _rate(tally["escalated"], tally["conversations"]),
                "escalation_interval": rate_with_interval(
                    tally["escalated"], tally["conversations"]
                ),
                "offer_rate": _rate(tally["offered"], tally["conversations"]),
            }
            for name, tally in sorted(categories.items())
        },
        "by_trigger": breakdown(triggers),
        "by_rule": breakdown(rules),
        "outcomes": {
            "thresholds": {
                "false_escalation_max_seconds": false_max,
                "missed_reopen_hours": missed_hours,
            },
            "outcomes": len(inputs.outcomes),
            "joined": sum(classes.values()),
            "without_conversation": unmatched,
            "decision_ids_matched": matched_ids,
            "escalated_with_outcome": escalated_judged,
            "false_escalations": classes["false_escalation"],
            "needed_escalations": classes["needed_escalation"],
            "false_escalation_rate": _rate(classes["false_escalation"], escalated_judged),
            "false_escalation_interval": rate_with_interval(
                classes["false_escalation"], escalated_judged
            ),
            "not_escalated_with_outcome": others_judged,
            "missed_escalations": classes["missed_escalation"],
            "ok_without": classes["ok_without"],
            "unknown": classes["unknown"],
            "missed_escalation_rate": _rate(classes["missed_escalation"], others_judged),
            "missed_escalation_interval": rate_with_interval(
                classes["missed_escalation"], others_judged
            ),
            "assumed": sum(1 for j in judged_all.values() if j.assumed),
            "false_by_trigger": dict(sorted(false_by["trigger"].items())),
            "false_by_category": dict(sorted(false_by["category"].items())),
            "missed_by_category": dict(sorted(missed_by_category.items())),
            "false_conversations": listed["false_escalation"],
            "missed_conversations": listed["missed_escalation"],
        },
    }


def _side(verdict: Verdict | None) -> dict[str, Any]:
    if verdict is None:
        return {"action": "continue", "decisions": 0, "triggers": []}
    side: dict[str, Any] = {"action": verdict.action, "decisions": verdict.decisions}
    decision = verdict.decisive
    if decision is None:
        side["triggers"] = []
        return side
    side.update(
        decision_id=decision.decision_id,
        event_id=decision.event_id,
        occurred_at=decision.occurred_at,
        priority=decision.priority,
        hold_action=decision.hold_action,
        customer_message=decision.customer_message,
        triggers=[hit.to_record() for hit in decision.triggers],
    )
    return side


def _customer_of(conversation: ConversationFacts | None, *verdicts: Verdict | None) -> str | None:
    if conversation is not None:
        return conversation.customer_id
    for verdict in verdicts:
        if verdict is not None and verdict.decisive is not None:
            return verdict.decisive.customer_id
    return None


def _change(base: Verdict | None, cand: Verdict | None) -> str | None:
    base_action = base.action if base else "continue"
    cand_action = cand.action if cand else "continue"
    if cand_action == "escalate" and base_action != "escalate":
        return "newly_escalated"
    if base_action == "escalate" and cand_action != "escalate":
        return "no_longer_escalated"
    if base_action == cand_action:
        if _hit_key(base.decisive if base else None) != _hit_key(cand.decisive if cand else None):
            return "triggers_changed"
        return None
    return "offer_added" if cand_action == "offer_transfer" else "offer_removed"


def _verdict_of(judged: Mapping[str, Judgement], conversation_id: str) -> str | None:
    item = judged.get(conversation_id)
    return item.verdict if item is not None else None


def changed_conversations(
    candidate: RunResult,
    baseline: RunResult,
    max_listed: int = DEFAULT_MAX_CHANGED,
    judged: tuple[Mapping[str, Judgement], Mapping[str, Judgement]] | None = None,
) -> dict[str, Any]:
    """Conversations whose result or deciding triggers differ, with both sides' evidence and
    the customer's words; `judged`: the candidate's and the baseline's judgements."""
    if judged is None:
        recorded = judge_run(baseline)
        judged = (judge_run(candidate, recorded), recorded)
    inputs = candidate.inputs
    found: list[tuple[int, int, str, str]] = []
    for conversation_id in candidate.verdicts.keys() | baseline.verdicts.keys():
        kind = _change(
            baseline.verdicts.get(conversation_id), candidate.verdicts.get(conversation_id)
        )
        if kind is None:
            continue
        conversation = inputs.conversations.get(conversation_id)
        first_at = conversation.first_at if conversation else 0
        found.append((CHANGE_ORDER.index(kind), first_at, conversation_id, kind))
    found.sort()
    by_change = Counter(kind for *_, kind in found)
    listed = []
    for _, _, conversation_id, kind in found[:max_listed]:
        conversation = inputs.conversations.get(conversation_id)
        outcome = inputs.outcomes.get(conversation_id)
        cand = candidate.verdicts.get(conversation_id)
        base = baseline.verdicts.get(conversation_id)
        entry: dict[str, Any] = {
            "conversation_id": conversation_id,
            "customer_id": _customer_of(conversation, cand, base),
            "category": conversation.category if conversation else None,
            "change": kind,
            "first_at": conversation.first_at if conversation else None,
            "last_at": conversation.last_at if conversation else None,
            "customer_words": list(conversation.words) if conversation else [],
            "candidate": _side(cand),
            "baseline": _side(base),
            "outcome": None,
        }
        if outcome is not None:
            entry["outcome"] = {
                "ticket_id": outcome.ticket_id,
                "resolved_by": outcome.resolved_by,
                "handle_time_seconds": outcome.handle_time_seconds,
                "special_expertise": outcome.special_expertise,
                "reopened_at": outcome.reopened_at,
                "csat": outcome.csat,
                "candidate": _verdict_of(judged[0], conversation_id),
                "baseline": _verdict_of(judged[1], conversation_id),
                "assumed": bool(
                    conversation_id in judged[0] and judged[0][conversation_id].assumed
                ),
            }
        listed.append(entry)
    return {
        "count": len(found),
        "by_change": {kind: by_change[kind] for kind in CHANGE_ORDER if by_change[kind]},
        "listed": len(listed),
        "max_listed": max_listed,
        "conversations": listed,
    }


def _delta(candidate: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any]:
    def minus(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else a - b

    co, bo = candidate["outcomes"], baseline["outcomes"]
    return {
        "escalation_rate": minus(candidate["escalation_rate"], baseline["escalation_rate"]),
        "offer_rate": minus(candidate["offer_rate"], baseline["offer_rate"]),
        "escalated": candidate["escalated"] - baseline["escalated"],
        "offered": candidate["offered"] - baseline["offered"],
        "false_escalations": co["false_escalations"] - bo["false_escalations"],
        "missed_escalations": co["missed_escalations"] - bo["missed_escalations"],
    }


def build_report(
    candidate: RunResult,
    baseline: RunResult,
    *,
    source: Mapping[str, Any] | None = None,
    candidate_path: str | None = None,
    baseline_path: str | None = None,
    max_changed: int = DEFAULT_MAX_CHANGED,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The whole comparison as a JSON-ready dict (what report.json holds and report.html shows)."""
    if candidate.inputs is not baseline.inputs:
        raise ValueError("candidate and baseline must come from one run over the same events")
    recorded = judge_run(baseline)
    judged = judge_run(candidate, recorded)
    cand = summarize(candidate, candidate_path, judged)
    base = summarize(baseline, baseline_path, recorded)
    warnings: list[str] = []
    if cand["outcomes"]["thresholds"] != base["outcomes"]["thresholds"]:
        warnings.append(
            "the policies set different calibration thresholds; each is judged by its own: "
            f"candidate {cand['outcomes']['thresholds']}, baseline {base['outcomes']['thresholds']}"
        )
    if candidate.policy.version == baseline.policy.version:
        warnings.append(
            f"candidate and baseline have the same version {candidate.policy.version!r}; "
            "their decision ids cannot be told apart"
        )
    inputs = candidate.inputs
    if inputs.outcomes and cand["outcomes"]["joined"] == 0:
        warnings.append("no outcome matches a conversation of the input: nothing could be judged")
    elif not inputs.outcomes:
        warnings.append("the input has no outcome events: false and missed escalations are unknown")
    source_summary = dict(source) if source is not None else {"events": inputs.events}
    if source_summary.get("skipped_count"):
        warnings.append(
            f"{source_summary['skipped_count']} input records were skipped (listed under input)"
        )
    if source_summary.get("refused_event_time_count"):
        warnings.append(
            f"{source_summary['refused_event_time_count']} events were refused for an event time "
            "out of bounds, as the worker dead-letters them (listed under input)"
        )
    if source_summary.get("out_of_order_events"):
        warnings.append(
            f"{source_summary['out_of_order_events']} events came after a later event of the same "
            "customer; decisions follow the input order"
        )
    for side, run in (("candidate", candidate), ("baseline", baseline)):
        if run.trigger_errors:
            warnings.append(
                f"{run.trigger_errors.total()} trigger errors under the {side} policy "
                f"({', '.join(sorted(run.trigger_errors))}): those decisions held the action and "
                "escalated"
            )
    elapsed = candidate.seconds if seconds is None else seconds
    return {
        "report": "escalation backtest",
        "format_version": FORMAT_VERSION,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "input": {
            **source_summary,
            "events": inputs.events,
            "by_type": dict(sorted(inputs.by_type.items())),
            "conversations": len(inputs.conversations),
            "outcomes": len(inputs.outcomes),
        },
        "definitions": DEFINITIONS,
        "policies": {"candidate": cand, "baseline": base},
        "delta": _delta(cand, base),
        "changed": changed_conversations(candidate, baseline, max_changed, (judged, recorded)),
        "policy_diff": policy_diff(baseline.policy, candidate.policy),
        "warnings": warnings,
        "performance": {
            "events": inputs.events,
            "seconds": round(elapsed, 3),
            "events_per_second": round(inputs.events / elapsed) if elapsed > 0 else None,
            "policies": 2,
        },
    }
