"""The learned turn signal: how likely a customer turn shows dissatisfaction, from shipped weights.

A linear model (logistic regression, trained by `make train-signal` with scikit-learn) over
features this module computes: word unigrams and bigrams, the text markers and lexicon score of
`stream.core.markers` (whose repeat_question marker compares the turn with the customer's earlier
turns), the turn's length and whether it is shouted. Training calls the same `turn_features`, so
the scorer and the trained weights cannot disagree on what a feature is.

Context such as the AI agent's previous turn or the turn's position was tried and left out: in the
development sets it mostly tells the data sets apart (a tweet never has an AI turn before it), and
with it plain frustration in the middle of a chat ("Still nothing. This is useless!!!") scored
low. docs/signal.md has the figures.

The scorer is pure: it is built once from the weights mapping (`TurnModel.from_dict`) and then only
reads it. `load_shipped` reads the packaged weights (`stream/models/`) and checks them against the
training manifest; `stream.core.step` calls it once, when it is imported (start-up), and takes
another model as an argument. Nothing here reads a file per turn. Every input is bounded before
any work: the text is cut to MAX_CHARS, so a 1 MB message costs what a 600-character one does, and
the score is a logistic of a clamped finite sum, always within 0..1.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import repeat
from typing import Any

from stream.core.markers import TextSignal

__all__ = [
    "FORMAT",
    "MAX_CHARS",
    "ModelFormatError",
    "SHIPPED_VERSION",
    "TurnModel",
    "load_shipped",
    "turn_features",
]

FORMAT = "escalation-stream/turn-model/1"
# The weights file under stream/models/ that the default policy's threshold was chosen for.
SHIPPED_VERSION = "turn-signal-1"
# Characters of the turn that are scored. Support turns are far shorter; a pasted log is not
# more dissatisfied for being long, and the cut bounds the cost of any input.
MAX_CHARS = 600
# A score never saturates to exactly 0 or 1: the margin is clamped before the logistic.
_MAX_MARGIN = 30.0

# Tokens: runs of letters, digits and apostrophes; "!" and "?" are tokens of their own (an
# emphatic "?!" is two), every other character separates. str.translate keeps this one C pass.
_TOKEN_TABLE = {
    code: " " for code in range(0x250) if not (chr(code).isalnum() or chr(code) in "'’")
} | {ord("!"): " ! ", ord("?"): " ? ", ord("’"): "'"}
_UNIGRAM = "w:"
_BIGRAM = "b:%s %s"
_MARKER = "m:"


class ModelFormatError(ValueError):
    """The weights mapping is not a turn model this scorer can read."""


def _bucket(value: int, edges: tuple[int, ...]) -> int:
    for index, edge in enumerate(edges):
        if value <= edge:
            return index
    return len(edges)


_LENGTH_EDGES = (1, 3, 6, 12, 25, 50)
_SCORE_EDGES = (-0.8, -0.6, -0.3, -0.05, 0.05, 0.3, 0.6)


def _score_bucket(score: float) -> int:
    for index, edge in enumerate(_SCORE_EDGES):
        if score <= edge:
            return index
    return len(_SCORE_EDGES)


def _tokens(lower: str) -> list[str]:
    return lower.translate(_TOKEN_TABLE).split()


def turn_features(text: str, signal: TextSignal) -> set[str]:
    """The names of the features of one customer turn (all features are binary).

    `signal` is the turn's markers and lexicon score from `stream.core.markers.analyze_turn`,
    which already compared the turn with the customer's earlier turns (repeat_question).
    """
    cut = text[:MAX_CHARS]
    words = _tokens(cut.lower())
    features = set(map(_UNIGRAM.__add__, words))
    if words:
        features.update(map(_BIGRAM.__mod__, zip(["^", *words], [*words, "$"], strict=True)))
    features.update([_MARKER + marker.kind for marker in signal.markers])
    features.add(f"s:{_score_bucket(signal.score)}")
    features.add(f"len:{_bucket(len(words), _LENGTH_EDGES)}")
    if len(cut) >= 8 and cut.isupper():
        features.add("caps:")
    return features


@dataclass(frozen=True, slots=True, eq=False)
class TurnModel:
    """Shipped weights of the turn signal; `score` is the probability the turn is dissatisfied.

    Compared and hashed by identity (eq=False): a model is loaded once, and its weights mapping
    is too large to hash per call.
    """

    version: str
    bias: float
    weights: Mapping[str, float]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TurnModel:
        if data.get("format") != FORMAT:
            raise ModelFormatError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
        version = data.get("version")
        bias = data.get("bias")
        weights = data.get("weights")
        if not isinstance(version, str) or not version:
            raise ModelFormatError("version must be a non-empty string")
        if not isinstance(bias, int | float) or not math.isfinite(bias):
            raise ModelFormatError("bias must be a finite number")
        if not isinstance(weights, dict):
            raise ModelFormatError("weights must be a mapping of feature name to number")
        for name, weight in weights.items():
            if not isinstance(weight, int | float) or not math.isfinite(weight):
                raise ModelFormatError(f"weight of {name!r} must be a finite number")
        return cls(version, float(bias), {str(k): float(v) for k, v in weights.items()})

    def probability(self, features: set[str]) -> float:
        """The logistic of bias + the features' weights summed and scaled by 1/sqrt(count)."""
        margin = self.bias
        if features:
            total = sum(map(self.weights.get, features, repeat(0.0)))
            margin += total / math.sqrt(len(features))
        margin = -_MAX_MARGIN if margin < -_MAX_MARGIN else min(margin, _MAX_MARGIN)
        return 1.0 / (1.0 + math.exp(-margin))

    def score(self, text: str, signal: TextSignal) -> float:
        """Probability (0..1) that a customer turn shows dissatisfaction."""
        return self.probability(turn_features(text, signal))


def load_shipped(version: str = SHIPPED_VERSION, folder: Traversable | None = None) -> TurnModel:
    """The packaged model, after checking its bytes against the sha256 of its training manifest."""
    folder = folder or resources.files("stream.models")
    raw = folder.joinpath(f"{version}.json").read_bytes()
    manifest = json.loads(folder.joinpath(f"{version}.manifest.json").read_text(encoding="utf-8"))
    digest = hashlib.sha256(raw).hexdigest()
    if digest != manifest.get("weights_sha256"):
        raise ModelFormatError(
            f"{version}.json has sha256 {digest}, its manifest records "
            f"{manifest.get('weights_sha256')}; rebuild with `make train-signal`"
        )
    return TurnModel.from_dict(json.loads(raw))
