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
- *False escalation*: escalated by the policy, and the outcome says resolved by a human with
  `handle_time_seconds` < `calibration.false_escalation_max_seconds` and no special expertise.
- *Missed escalation*: not escalated by the policy (an offered transfer is not an escalation), and
  the outcome has `reopened_at` - (the conversation's last input event time, outcomes excluded)
  <= `calibration.missed_reopen_hours`.
- Each policy is judged with its own calibration settings; the report warns when they differ.
- Outcomes record what happened under the policy that ran at the time: a policy that would have
  escalated a conversation that was reopened is credited with it, not second-guessed.
- A *changed* conversation has a different result, or a different set of (trigger, rule) on the
  decision that decided it, under the two policies.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final

from stream.backtest.run import ConversationFacts, RunResult, Verdict
from stream.core.decision import Decision
from stream.core.events import OutcomeEvent

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
    "calibration.false_escalation_max_seconds with no special expertise",
    "missed_escalation": "not escalated (an offered transfer is not an escalation), and "
    "reopened_at minus the conversation's last input event time (outcomes excluded) is at most "
    "calibration.missed_reopen_hours",
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


def classify(
    verdict: Verdict | None,
    conversation: ConversationFacts | None,
    outcome: OutcomeEvent | None,
    false_max_seconds: float,
    missed_hours: float,
) -> str | None:
    """`false`, `missed`, `correct` (escalated, not false), `ok` (not escalated, not missed), or
    None when there is no outcome to judge by."""
    if outcome is None:
        return None
    escalated = verdict is not None and verdict.action == "escalate"
    if escalated:
        if (
            outcome.resolved_by == "human"
            and outcome.handle_time_seconds is not None
            and outcome.handle_time_seconds < false_max_seconds
            and not outcome.special_expertise
        ):
            return "false"
        return "correct"
    if (
        conversation is not None
        and outcome.reopened_at is not None
        and outcome.reopened_at - conversation.last_at <= missed_hours * 3_600_000
    ):
        return "missed"
    return "ok"


def summarize(result: RunResult, path: str | None = None) -> dict[str, Any]:
    """Rates and outcome classes of one policy's run."""
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
    listed: dict[str, list[str]] = {"false": [], "missed": []}
    false_by: dict[str, Counter[str]] = {"trigger": Counter(), "category": Counter()}
    missed_by_category: Counter[str] = Counter()
    matched_ids = 0
    unmatched = 0
    for conversation_id, outcome in inputs.outcomes.items():
        conversation = inputs.conversations.get(conversation_id)
        if conversation is None:
            unmatched += 1
            continue
        judged = result.verdicts.get(conversation_id)
        verdict_class = classify(judged, conversation, outcome, false_max, missed_hours)
        assert verdict_class is not None
        classes[verdict_class] += 1
        category = conversation.category or UNCATEGORIZED
        decisive = judged.decisive if judged is not None else None
        if outcome.decision_id is not None and decisive is not None:
            matched_ids += decisive.decision_id == outcome.decision_id
        if verdict_class in listed and len(listed[verdict_class]) < MAX_LISTED_IDS:
            listed[verdict_class].append(conversation_id)
        if verdict_class == "false":
            assert decisive is not None
            false_by["category"][category] += 1
            for trigger in {hit.trigger for hit in decisive.triggers}:
                false_by["trigger"][trigger] += 1
        elif verdict_class == "missed":
            missed_by_category[category] += 1
    escalated_judged = classes["false"] + classes["correct"]
    others_judged = classes["missed"] + classes["ok"]

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
        "conversations": counted,
        "escalated": escalated,
        "offered": offered,
        "escalation_rate": _rate(escalated, counted),
        "offer_rate": _rate(offered, counted),
        "by_category": {
            name: {
                "conversations": tally["conversations"],
                "escalated": tally["escalated"],
                "offered": tally["offered"],
                "escalation_rate": _rate(tally["escalated"], tally["conversations"]),
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
            "false_escalations": classes["false"],
            "correct_escalations": classes["correct"],
            "false_escalation_rate": _rate(classes["false"], escalated_judged),
            "not_escalated_with_outcome": others_judged,
            "missed_escalations": classes["missed"],
            "missed_escalation_rate": _rate(classes["missed"], others_judged),
            "false_by_trigger": dict(sorted(false_by["trigger"].items())),
            "false_by_category": dict(sorted(false_by["category"].items())),
            "missed_by_category": dict(sorted(missed_by_category.items())),
            "false_conversations": listed["false"],
            "missed_conversations": listed["missed"],
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


def changed_conversations(
    candidate: RunResult, baseline: RunResult, max_listed: int = DEFAULT_MAX_CHANGED
) -> dict[str, Any]:
    """Conversations whose result or deciding triggers differ, with both sides' evidence."""
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
    cal = (candidate.policy.calibration, baseline.policy.calibration)
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
                "candidate": classify(
                    cand,
                    conversation,
                    outcome,
                    cal[0].false_escalation_max_seconds,
                    cal[0].missed_reopen_hours,
                ),
                "baseline": classify(
                    base,
                    conversation,
                    outcome,
                    cal[1].false_escalation_max_seconds,
                    cal[1].missed_reopen_hours,
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
    cand = summarize(candidate, candidate_path)
    base = summarize(baseline, baseline_path)
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
    if source_summary.get("out_of_order_events"):
        warnings.append(
            f"{source_summary['out_of_order_events']} events came after a later event of the same "
            "customer; decisions follow the input order"
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
        "changed": changed_conversations(candidate, baseline, max_changed),
        "warnings": warnings,
        "performance": {
            "events": inputs.events,
            "seconds": round(elapsed, 3),
            "events_per_second": round(inputs.events / elapsed) if elapsed > 0 else None,
            "policies": 2,
        },
    }
