"""The diagnostics of the article's calibration loop, from judged conversations of one period.

Per period (and per week), per category, per trigger and per rule: escalation and transfer-offer
rates, what happened after offers, human resolution on escalated tickets, CSAT of escalated vs
directly resolved conversations, false and missed escalations, handle time of escalated tickets
and the human workload; every rate with its sample size and Wilson 95% interval. Two flags, as
the article words them: a category whose escalation rate stands out from the others' (intervals
apart) is "knowledge gap or misaligned threshold"; a category where humans struggle too is
"policy or tooling problem, not a trigger problem".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from stream.core.judge import VERDICTS, Judgement
from stream.stats import mean, quantiles, rate

UNCATEGORIZED: Final[str] = "(none)"
FLAG_OUTLIER: Final[str] = "knowledge gap or misaligned threshold"
FLAG_HUMANS: Final[str] = "policy or tooling problem, not a trigger problem"
# A category is compared with the others only with this many conversations (or escalated
# tickets with an outcome, for the human-side flag); fewer cannot make an interval narrow enough.
MIN_CONVERSATIONS: Final[int] = 20
MIN_ESCALATED: Final[int] = 10
# Handle times this much longer than the other categories' median count as humans struggling.
HANDLE_TIME_RATIO: Final[float] = 1.5
WEEK_MS: Final[int] = 7 * 24 * 3_600_000

DEFINITIONS: Final[dict[str, str]] = {
    "escalation_rate": "escalated conversations / conversations with a decision (by trigger or "
    "rule: those whose escalation carries it, over all conversations)",
    "offer_rate": "conversations offered a transfer at any point / conversations",
    "false_escalation_rate": "false escalations / escalated conversations judged false or needed",
    "missed_escalation_rate": "missed escalations / not-escalated conversations judged missed or "
    "ok without",
    "human_resolution_rate": "escalated tickets resolved by a human / escalated with an outcome",
    "reopen_after_human_rate": "escalated tickets resolved by a human and reopened within the "
    "window / escalated tickets resolved by a human",
    "csat": "mean CSAT (1-5) with a normal 95% interval; directly resolved = not escalated and "
    "resolved by the AI",
    "human_minutes": "handle time of escalated tickets with an outcome, plus the mean handle time "
    "for each escalated ticket without one (estimated)",
    "intervals": "Wilson score 95% intervals; k of n",
}


def _reopened(j: Judgement) -> bool:
    return j.reopened


def measures(items: Sequence[Judgement], population: int | None = None) -> dict[str, Any]:
    """Every measure over one group of judged conversations (`population`: the rate's whole)."""
    n = len(items)
    whole = n if population is None else population
    escalated = [j for j in items if j.escalated]
    offered = [j for j in items if j.offered and not j.escalated]
    verdicts = Counter(j.verdict for j in items)
    with_outcome = [j for j in items if j.resolved_by is not None]
    esc_out = [j for j in escalated if j.resolved_by is not None]
    human = [j for j in esc_out if j.resolved_by == "human"]
    handle = [j.handle_time_seconds for j in human if j.handle_time_seconds is not None]
    handled = quantiles(handle)
    estimated = handled["total"] + (
        (len(escalated) - len(handle)) * handled["mean"] if handled["mean"] is not None else 0.0
    )
    offer_out = [j for j in offered if j.resolved_by is not None]
    return {
        "conversations": n,
        "with_outcome": len(with_outcome),
        "escalated": len(escalated),
        "escalation_rate": rate(len(escalated), whole),
        "offer_rate": rate(len(offered), whole),
        "verdicts": {v: verdicts[v] for v in VERDICTS},
        "false_escalation_rate": rate(
            verdicts["false_escalation"],
            verdicts["false_escalation"] + verdicts["needed_escalation"],
        ),
        "missed_escalation_rate": rate(
            verdicts["missed_escalation"], verdicts["missed_escalation"] + verdicts["ok_without"]
        ),
        "reopen_rate": rate(sum(1 for j in with_outcome if _reopened(j)), len(with_outcome)),
        "human_resolution_rate": rate(len(human), len(esc_out)),
        "reopen_after_human_rate": rate(sum(1 for j in human if _reopened(j)), len(human)),
        "csat_escalated": mean([float(j.csat) for j in escalated if j.csat is not None]),
        "csat_direct": mean(
            [
                float(j.csat)
                for j in items
                if not j.escalated and j.resolved_by == "ai" and j.csat is not None
            ]
        ),
        "handle_time_escalated": handled,
        "workload": {
            "escalations": len(escalated),
            "human_minutes": round(estimated / 60.0, 1),
            "estimated": len(escalated) > len(handle),
        },
        "after_offers": {
            "offered": len(offered),
            "with_outcome": len(offer_out),
            "resolved_by": dict(sorted(Counter(j.resolved_by or "?" for j in offer_out).items())),
            "reopened": sum(1 for j in offer_out if _reopened(j)),
            "csat": mean([float(j.csat) for j in offer_out if j.csat is not None]),
        },
    }


def _grouped(
    items: Sequence[Judgement], keys: Callable[[Judgement], Iterable[str]], whole: bool
) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[Judgement]] = {}
    for j in items:
        for key in keys(j):
            groups.setdefault(key, []).append(j)
    population = len(items) if whole else None
    return {key: measures(group, population) for key, group in sorted(groups.items())}


def _apart_above(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return a["low"] is not None and b["high"] is not None and a["low"] > b["high"]


def flags(items: Sequence[Judgement]) -> list[dict[str, Any]]:
    """The two category flags of the article, each with the evidence that raised it."""
    out: list[dict[str, Any]] = []
    categories = sorted({j.category or UNCATEGORIZED for j in items})
    for category in categories:
        inside = [j for j in items if (j.category or UNCATEGORIZED) == category]
        rest = [j for j in items if (j.category or UNCATEGORIZED) != category]
        if len(inside) < MIN_CONVERSATIONS or len(rest) < MIN_CONVERSATIONS:
            continue
        mine, theirs = measures(inside), measures(rest)
        if _apart_above(mine["escalation_rate"], theirs["escalation_rate"]):
            out.append(
                {
                    "category": category,
                    "flag": FLAG_OUTLIER,
                    "evidence": "escalation rate {:.1%} (95% {:.1%}-{:.1%}, n={}) above the other "
                    "categories' {:.1%} (95% {:.1%}-{:.1%}, n={})".format(
                        mine["escalation_rate"]["rate"],
                        mine["escalation_rate"]["low"],
                        mine["escalation_rate"]["high"],
                        len(inside),
                        theirs["escalation_rate"]["rate"],
                        theirs["escalation_rate"]["low"],
                        theirs["escalation_rate"]["high"],
                        len(rest),
                    ),
                }
            )
        if mine["human_resolution_rate"]["n"] < MIN_ESCALATED:
            continue
        reasons = []
        if _apart_above(theirs["human_resolution_rate"], mine["human_resolution_rate"]):
            reasons.append(
                "humans resolve {:.0%} of its escalated tickets (n={}) against {:.0%} elsewhere"
                "".format(
                    mine["human_resolution_rate"]["rate"],
                    mine["human_resolution_rate"]["n"],
                    theirs["human_resolution_rate"]["rate"],
                )
            )
        if _apart_above(mine["reopen_after_human_rate"], theirs["reopen_after_human_rate"]):
            reasons.append(
                "{:.0%} reopen after human handling (n={}) against {:.0%} elsewhere".format(
                    mine["reopen_after_human_rate"]["rate"],
                    mine["reopen_after_human_rate"]["n"],
                    theirs["reopen_after_human_rate"]["rate"],
                )
            )
        a, b = mine["handle_time_escalated"], theirs["handle_time_escalated"]
        if (
            a["n"] >= MIN_ESCALATED
            and b["n"] >= MIN_ESCALATED
            and a["median"] > HANDLE_TIME_RATIO * b["median"]
        ):
            reasons.append(
                f"median handle time {a['median']:.0f} s (n={a['n']}) against {b['median']:.0f} s "
                "elsewhere"
            )
        if reasons:
            out.append({"category": category, "flag": FLAG_HUMANS, "evidence": "; ".join(reasons)})
    return out


def diagnose(items: Sequence[Judgement], start_ms: int) -> dict[str, Any]:
    """All diagnostics of one period's judged conversations (`start_ms`: the period's start)."""

    def week(j: Judgement) -> list[str]:
        at = j.decided_at if j.decided_at is not None else j.judged_at
        return [f"week {max(0, (at - start_ms) // WEEK_MS) + 1}"]

    return {
        "definitions": DEFINITIONS,
        "overall": measures(items),
        "by_week": _grouped(items, week, whole=False),
        "by_category": _grouped(items, lambda j: [j.category or UNCATEGORIZED], whole=False),
        "by_trigger": _grouped(items, lambda j: j.triggers if j.action != "continue" else (), True),
        "by_rule": _grouped(items, lambda j: j.rules if j.action != "continue" else (), True),
        "flags": flags(items),
    }
