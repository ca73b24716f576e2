"""Scoring every value of one class's confidence threshold from a single run.

The review (scoring candidate thresholds on a judged month) and the simulated world (finding its
optimum threshold) both need to know, for many thresholds, which conversations would escalate.
Instead of a run per value, one run with the class's threshold at 0 says which conversations
escalate anyway (for any other reason); a conversation then escalates at threshold `t` when it
escalates anyway or one of its actions of the class has a confidence strictly below `t` (the
confidence trigger's rule). The model ignores what an escalation changes later in the same
conversation; the review counts where it disagrees with the real run at the current value.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from stream.core.policy import Policy
from stream.core.policy_values import with_values

# Above every confidence: a conversation without an action of the class is never below `t`.
NO_ACTION: Final[float] = 2.0


def threshold_path(klass: str) -> str:
    return f"confidence.thresholds.{klass}"


def without_threshold(policy: Policy, klass: str, version: str) -> Policy:
    """`policy` with `klass`'s threshold at 0: the run that says who escalates anyway."""
    return with_values(policy, {threshold_path(klass): 0.0}, version=version)


def lowest_confidence(actions: Iterable[tuple[str, float]], klass: str) -> float:
    """The lowest confidence among `(class, confidence)` actions of `klass`; NO_ACTION if none."""
    return min((x for k, x in actions if k == klass), default=NO_ACTION)


def escalates_at(anyway: bool, lowest: float, threshold: float) -> bool:
    """Whether a conversation escalates at `threshold` (module docstring)."""
    return anyway or lowest < threshold
