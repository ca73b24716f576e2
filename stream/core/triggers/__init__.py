"""Trigger functions: pure, each returning hits with evidence, the limits it applied, or an error.

A trigger does not catch its own bugs. `step` calls every trigger through one guard
(`stream.core.step`) that turns an exception into a `TriggerError` on the result, the way
open-feature's client turns a provider error into evaluation details with an error code; `step`
then holds the proposed action and escalates with a `trigger_error` hit (DESIGN section 8). A
handler inside each trigger would hide the error from the one place that acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from stream.core.decision import Evidence, TriggerHit
from stream.core.vocabulary import TRIGGER_ERROR

ErrorCode: TypeAlias = Literal["internal", "rule_failed", "missing_confidence"]
# Codes that mean the trigger could not judge: the decision fails safe (hold and escalate).
# `missing_confidence` is not among them: the confidence trigger applies the policy's
# `on_missing_confidence` choice itself, so the error is informational.
FAIL_SAFE_CODES: Final[frozenset[str]] = frozenset({"internal", "rule_failed"})


@dataclass(frozen=True, slots=True)
class TriggerError:
    """Why a trigger could not evaluate; `code` is stable for metrics, `detail` for people."""

    trigger: str
    code: ErrorCode
    detail: str

    @property
    def fail_safe(self) -> bool:
        return self.code in FAIL_SAFE_CODES

    def to_hit(self, message_id: str | None) -> TriggerHit:
        """The hit that makes a decision fail safe: escalate, naming the trigger and the error."""
        return TriggerHit(
            trigger=TRIGGER_ERROR,
            rule=f"{TRIGGER_ERROR}.{self.trigger}",
            action="escalate",
            reason=(
                f"The {self.trigger} check failed ({self.detail}); the proposed action is held "
                "and a person decides."
            ),
            evidence=(
                Evidence(
                    kind="error",
                    detail=f"{self.code}: {self.detail}",
                    message_id=message_id,
                    ref=self.trigger,
                ),
            ),
            priority="high",
        )


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """What a trigger found: hits (possibly none), the thresholds it applied, and any error.

    `thresholds` is the one source of the limits a decision records: a trigger reports the limit
    it compared against, so the decision cannot disagree with the evidence.
    """

    hits: tuple[TriggerHit, ...] = ()
    error: TriggerError | None = None
    thresholds: tuple[tuple[str, float], ...] = ()


NO_HITS: Final[TriggerResult] = TriggerResult()


def failed(trigger: str, exc: BaseException) -> TriggerResult:
    """The result of a trigger that raised: no hit, and the error as data for `step` to act on."""
    return TriggerResult(error=TriggerError(trigger, "internal", f"{type(exc).__name__}: {exc}"))
