"""Sentiment signal: repeated dissatisfied customer turns offer a transfer before it is asked.

A turn shows dissatisfaction when the learned turn signal scores it at or above the policy's
`turn_threshold`, or when the upstream sentiment topic scored it at or below `score_floor`. The
rule counts such turns, not markers: one hostile turn with three markers is still one turn, and
the rule is meant for a signal repeated across turns (DESIGN.md section 4). The markers found in
a turn are quoted in its evidence, for the person who reads the decision.

A bare "no" that answers the AI's yes/no question ("Would you like to add insurance?" - "No.") is
an answer, not dissatisfaction, whatever the turn signal or an upstream score make of it: read
alone, such a turn looks curt, and two of them would offer a transfer nobody needed.
"""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.decision import Evidence, TriggerHit
from stream.core.markers import asks_yes_no, is_short_no
from stream.core.policy import Policy
from stream.core.state import Turn
from stream.core.triggers import NO_HITS, TriggerResult
from stream.core.vocabulary import SENTIMENT as TRIGGER

TURNS_RULE = "sentiment.turns"
SCORE_RULE = "sentiment.score"
# Evidence quotes at most this many markers per turn: enough to check, short enough to read.
_MAX_QUOTED = 4


def _why(turn: Turn, threshold: float, floor: float) -> str:
    parts: list[str] = []
    if turn.signal is not None and turn.signal >= threshold:
        parts.append(f"turn signal {turn.signal:.2f} >= {threshold:.2f}")
    if turn.sentiment is not None and turn.sentiment <= floor:
        parts.append(f"sentiment {turn.sentiment:.2f} <= {floor:.2f}")
    if turn.markers:
        quoted = ", ".join(f"{kind}: {text!r}" for kind, text in turn.markers[:_MAX_QUOTED])
        more = len(turn.markers) - _MAX_QUOTED
        parts.append(f"markers {quoted}" + (f" (+{more} more)" if more > 0 else ""))
    return "; ".join(parts)


def _answers(turns: Sequence[Turn]) -> list[tuple[Turn, bool]]:
    """The customer turns, each with whether it is a bare "no" to the AI turn right before it."""
    out: list[tuple[Turn, bool]] = []
    before: Turn | None = None
    for turn in turns:
        if turn.role == "customer":
            answer = (
                before is not None
                and before.role == "ai_agent"
                and is_short_no(turn.text)
                and asks_yes_no(before.text)
            )
            out.append((turn, answer))
        before = turn
    return out


def check(turns: Sequence[Turn], policy: Policy, channel: str = "") -> TriggerResult:
    """Judge the latest customer turns of a conversation's turns (any role, oldest first, ending
    with the turn being decided on); the AI turns tell an answer from a complaint.

    `channel` is the conversation's; it picks the operating point on the turn signal.
    """
    customer_turns = _answers(turns)
    if not customer_turns:
        return NO_HITS
    rules = policy.sentiment
    threshold = rules.turn_threshold_by_channel.get(channel, rules.turn_threshold)
    floor = rules.score_floor
    hits: list[TriggerHit] = []

    window = customer_turns[-rules.window_turns :]
    dissatisfied = [
        turn
        for turn, answer in window
        if not answer
        and (
            (turn.signal is not None and turn.signal >= threshold)
            or (turn.sentiment is not None and turn.sentiment <= floor)
        )
    ]
    if len(dissatisfied) >= rules.min_turns:
        hits.append(
            TriggerHit(
                trigger=TRIGGER,
                rule=TURNS_RULE,
                action=rules.action,
                reason=(
                    f"{len(dissatisfied)} of the customer's last {len(window)} turns show "
                    f"dissatisfaction (turn signal at or above {threshold:.2f}, or sentiment "
                    f"at or below {floor:.2f})."
                ),
                evidence=tuple(
                    Evidence(
                        kind="dissatisfied_turn",
                        detail=_why(turn, threshold, floor),
                        message_id=turn.message_id,
                        text=turn.text,
                        value=turn.signal,
                        threshold=threshold,
                    )
                    for turn in dissatisfied
                ),
            )
        )

    needed = rules.consecutive_low_scores
    last = [turn for turn, answer in customer_turns[-needed:] if not answer]
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
