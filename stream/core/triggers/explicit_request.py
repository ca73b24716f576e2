"""Explicit request for a human: escalates at once, whatever else the conversation looks like."""

from __future__ import annotations

from collections.abc import Sequence

from stream.core.decision import Evidence, TriggerHit
from stream.core.markers import analyze
from stream.core.policy import Policy
from stream.core.triggers import NO_HITS, TriggerResult
from stream.core.vocabulary import EXPLICIT_REQUEST as TRIGGER

RULE = "explicit_request.human"


def check(
    message_id: str, text: str, markers: Sequence[tuple[str, str]], policy: Policy
) -> TriggerResult:
    """Hit when the turn's markers include a request for a person."""
    if not policy.explicit_request.enabled:
        return NO_HITS
    asked = [matched for kind, matched in markers if kind == "human_request"]
    # A human_request marker may be someone else's words ("my colleague said 'talk to a real
    # person'"); only the customer's own ask counts, which the text analysis tells apart.
    if not asked or not analyze(text).human_request:
        return NO_HITS
    hit = TriggerHit(
        trigger=TRIGGER,
        rule=RULE,
        action=policy.explicit_request.action,
        reason="The customer asked to speak with a person.",
        evidence=(
            Evidence(
                kind="marker",
                detail=f"request for a human: {asked[0]!r}",
                message_id=message_id,
                text=text,
            ),
        ),
    )
    return TriggerResult(hits=(hit,))
