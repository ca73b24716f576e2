"""Sentiment signal: repeated negative markers or low scores offer a transfer before it is asked."""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.decision import Evidence, TriggerHit
from stream.core.policy import Policy
from stream.core.state import Turn
from stream.core.triggers import NO_HITS, TriggerResult, failed
from stream.core.vocabulary import SENTIMENT as TRIGGER

MARKERS_RULE = "sentiment.markers"
SCORE_RULE = "sentiment.score"
# Evidence quotes at most this many markers: enough to check, short enough to read.
_MAX_QUOTED = 6


def check(customer_turns: Sequence[Turn], policy: Policy) -> TriggerResult:
    """Judge the latest customer turns (oldest first, ending with the turn being decided on)."""
    try:
        if not customer_turns:
            return NO_HITS
        rules = policy.sentiment
        kinds = policy.compiled.sentiment_kinds
        hits: list[TriggerHit] = []

        window = customer_turns[-rules.window_turns :]
        found = [
            (turn, kind, text) for turn in window for kind, text in turn.markers if kind in kinds
        ]
        if len(found) >= rules.min_markers:
            hits.append(
                TriggerHit(
                    trigger=TRIGGER,
                    rule=MARKERS_RULE,
                    action=rules.action,
                    reason=(
                        f"{len(found)} negative markers in the customer's last {len(window)} "
                        f"turns ({', '.join(sorted({kind for _, kind, _ in found}))})."
                    ),
                    evidence=tuple(
                        Evidence(
                            kind="marker",
                            detail=f"{kind}: {text!r}",
                            message_id=turn.message_id,
                            text=turn.text,
                            value=float(len(found)),
                            threshold=float(rules.min_markers),
                        )
                        for turn, kind, text in found[-_MAX_QUOTED:]
                    ),
                )
            )

        needed = rules.consecutive_low_scores
        last = customer_turns[-needed:]
        floor = rules.score_floor
        if len(last) == needed and all(
            turn.sentiment is not None and turn.sentiment <= floor for turn in last
        ):
            hits.append(
                TriggerHit(
                    trigger=TRIGGER,
                    rule=SCORE_RULE,
                    action=rules.action,
                    reason=(
                        f"Sentiment at or below {floor:.2f} on {needed} consecutive customer turns."
                    ),
                    evidence=tuple(
                        Evidence(
                            kind="sentiment_score",
                            detail=f"sentiment {turn.sentiment:.2f}",
                            message_id=turn.message_id,
                            text=turn.text or None,
                            value=turn.sentiment,
                            threshold=floor,
                        )
                        for turn in last
                    ),
                )
            )
        return TriggerResult(hits=tuple(hits)) if hits else NO_HITS
    except Exception as exc:  # a trigger reports, it never takes the partition down
        return failed(TRIGGER, exc)
