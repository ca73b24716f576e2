"""Confidence threshold breach: a proposed action below its consequence class's bar is held."""

from __future__ import annotations

from stream.core.decision import Evidence, TriggerHit
from stream.core.events import MessageEvent
from stream.core.policy import Policy
from stream.core.triggers import NO_HITS, TriggerError, TriggerResult
from stream.core.vocabulary import CONFIDENCE as TRIGGER


def threshold_for(consequence_class: str, policy: Policy) -> float:
    """The bar for a class; an unlisted class gets the fallback (by default the strictest)."""
    compiled = policy.compiled
    return compiled.thresholds.get(consequence_class, compiled.fallback_threshold)


def _hit(rule: str, policy: Policy, reason: str, *evidence: Evidence) -> TriggerHit:
    return TriggerHit(
        trigger=TRIGGER,
        rule=rule,
        action=policy.confidence.action,
        reason=reason,
        evidence=evidence,
    )


def check(message: MessageEvent, policy: Policy) -> TriggerResult:
    """Hit when the intent confidence is strictly below the threshold; equal passes."""
    action = message.proposed_action
    if action is None:
        return NO_HITS
    klass = action.consequence_class
    threshold = threshold_for(klass, policy)
    confidence = message.intent_confidence
    rule = f"confidence.{klass}"
    applied = ((rule, threshold),)
    if confidence is None:
        error = TriggerError(
            TRIGGER, "missing_confidence", f"proposed {action.type} carries no confidence"
        )
        if policy.confidence.on_missing_confidence == "ignore":
            return TriggerResult(error=error, thresholds=applied)
        hit = _hit(
            rule,
            policy,
            f"The AI agent proposed {action.type} ({klass}) without an intent confidence; "
            "it is held for a person.",
            Evidence(
                kind="confidence",
                detail="no intent confidence on the proposed action",
                message_id=message.message_id,
                threshold=threshold,
            ),
        )
        return TriggerResult(hits=(hit,), error=error, thresholds=applied)
    if confidence >= threshold:
        return TriggerResult(thresholds=applied)
    hit = _hit(
        rule,
        policy,
        f"Intent confidence {confidence:.2f} for {action.type} is below the {klass} "
        f"threshold {threshold:.2f}; the action is held before it is taken.",
        Evidence(
            kind="confidence",
            detail=f"intent {message.intent or 'unknown'} classified at {confidence:.2f}",
            message_id=message.message_id,
            text=message.intent,
            value=confidence,
            threshold=threshold,
        ),
        Evidence(
            kind="threshold",
            detail=f"{klass} actions need at least {threshold:.2f}",
            value=threshold,
            ref=rule,
        ),
    )
    return TriggerResult(hits=(hit,), thresholds=applied)
