"""Trigger functions: pure, each returning hits with evidence or a typed error, never raising."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from stream.core.decision import TriggerHit


@dataclass(frozen=True, slots=True)
class TriggerError:
    """Why a trigger could not evaluate; `code` is stable for metrics, `detail` for people."""

    trigger: str
    code: str
    detail: str


@dataclass(frozen=True, slots=True)
class TriggerResult:
    """What a trigger found: hits (possibly none) and, when it could not fully evaluate, why."""

    hits: tuple[TriggerHit, ...] = ()
    error: TriggerError | None = None


NO_HITS: Final[TriggerResult] = TriggerResult()


def failed(trigger: str, exc: Exception) -> TriggerResult:
    """The result of a trigger that hit an unexpected error: no hit, and the error as data."""
    return TriggerResult(error=TriggerError(trigger, "internal", f"{type(exc).__name__}: {exc}"))
