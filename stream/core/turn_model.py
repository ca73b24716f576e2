"""The learned turn signal: how likely a customer turn shows dissatisfaction, from shipped weights.

A linear model (logistic regression, trained by `make train-signal` with scikit-learn) over
features this module computes: word unigrams and bigrams, the text markers and lexicon score of
`stream.core.markers` (whose repeat_question marker compares the turn with the customer's earlier
turns), the turn's length and whether it is shouted. Training calls the same `turn_features`, so
the scorer and the trained weights cannot disagree on what a feature is.

A model may also use the conversation before the turn (`TurnContext`, which `stream.core.step`
builds from the state it already keeps): the kind of the AI agent's last turn, the turn's position
and length, the customer's previous turn and how much the turn repeats earlier ones. Its weights
file names the groups it was trained with (`context`); a model that names none scores the turn
alone, whatever context it is given. docs/signal.md says which groups were tried and why.

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
from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import repeat
from typing import Any

from stream.core.markers import TextSignal, analyze_turn

__all__ = [
    "CONTEXT_GROUPS",
    "CONTEXT_TURNS",
    "FORMAT",
    "MAX_CHARS",
    "NO_CONTEXT",
    "ModelFormatError",
    "SHIPPED_VERSION",
    "TurnContext",
    "TurnModel",
    "clear_caches",
    "context_features",
    "load_shipped",
    "PREVIOUS_MAX_CHARS",
    "REPEAT_LOOKBACK",
    "previous_summary",
    "turn_features",
]

FORMAT = "escalation-stream/turn-model/1"
# The weights file under stream/models/ that the default policy's threshold was chosen for.
SHIPPED_VERSION = "turn-signal-2"
# Earlier customer turns the repeat features look at (as the repeat_question marker does).
REPEAT_LOOKBACK = 5
# Earlier customer turns a context needs: the repeat lookback, and the previous turn's own.
CONTEXT_TURNS = REPEAT_LOOKBACK + 1
# Characters of an earlier customer turn whose markers are features: the policy's default cut of a
# stored turn (state.max_text_chars), longer than any turn of the development sets, so the cut
# bounds the cost of any input without changing a feature the model was trained on.
PREVIOUS_MAX_CHARS = 2000
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


@dataclass(frozen=True, slots=True)
class TurnContext:
    """What the core knows of the conversation before a customer turn.

    `previous_customer` holds the customer's earlier turns, oldest first (the last CONTEXT_TURNS
    are enough); `earlier_turns` counts all of them, however many the state still keeps.
    `previous_signal` is the marker kinds and lexicon score of the last of them as
    `stream.core.step` analysed it when it folded that turn (kept in the state), when it is known
    to be what `previous_customer` gives: the `previous` features then come from it instead of a
    second analysis of that turn. None (training, a state stored before it was kept): they come
    from `previous_customer`, through the same `previous_summary`.
    """

    previous_ai: str = ""
    previous_customer: tuple[str, ...] = ()
    earlier_turns: int = 0
    previous_signal: tuple[tuple[str, ...], float] | None = None


NO_CONTEXT = TurnContext()

# Context feature groups a model may use (its weights file lists them under "context").
CONTEXT_GROUPS = ("ai", "position", "previous", "repeat")

# The AI turn before: the last sentence with a question mark decides its kind.
_YES_NO_OPENERS = frozenset(
    ("have", "has", "had", "did", "do", "does", "are", "is", "was", "were", "would", "could")
    + ("can", "will", "should", "shall", "may", "might", "ever", "any")
)
_OPEN_OPENERS = frozenset(("what", "which", "who", "whom", "whose", "why", "how", "where", "when"))


@lru_cache(maxsize=4096)
def ai_turn_kind(previous_ai: str) -> str:
    """ "yn" (yes/no question), "wh" (open question), "q" (other question), "st" (no question)."""
    cut = previous_ai[-MAX_CHARS:].lower()
    mark = cut.rfind("?")
    if mark < 0:
        return "st"
    start = max(cut.rfind(".", 0, mark), cut.rfind("!", 0, mark), cut.rfind("?", 0, mark))
    words = _tokens(cut[start + 1 : mark])
    if not words:
        return "q"
    if words[0] in _YES_NO_OPENERS:
        return "yn"
    if words[0] in _OPEN_OPENERS:
        return "wh"
    return "q"


def _ai_features(words: list[str], context: TurnContext) -> set[str]:
    # The kind of the AI turn before, and that kind crossed with the answer's first word: "no"
    # after "Have you seen it?" is an answer, "no" after a statement is not.
    if not context.previous_ai:
        return set()
    kind = ai_turn_kind(context.previous_ai)
    return {f"ai:{kind}", f"x:{kind}:{words[0] if words else '$'}"}


def _position_features(words: list[str], context: TurnContext) -> set[str]:
    # How far into the exchange the turn comes, alone and crossed with its length: a short turn
    # late in a long exchange.
    earlier = context.earlier_turns
    where = 0 if earlier == 0 else 1 if earlier <= 2 else 2 if earlier <= 5 else 3
    size = 0 if len(words) <= 3 else 1 if len(words) <= 10 else 2
    return {f"pos:{where}", f"pos:{where}:len{size}"}


def _previous_features(words: list[str], context: TurnContext) -> frozenset[str]:
    # The markers and lexicon bucket of the customer's turn before this one.
    carried = context.previous_signal
    if carried is not None:
        return previous_summary(*carried)
    earlier = context.previous_customer
    if not earlier:
        return frozenset()
    return _previous_of(earlier[-1 - REPEAT_LOOKBACK :])


def previous_summary(kinds: Iterable[str], score: float) -> frozenset[str]:
    """The `previous` features the next customer turn takes from this one: its marker kinds and
    its lexicon score's bucket, as `analyze_turn` gave them (compared with the REPEAT_LOOKBACK
    customer turns before it, each cut to PREVIOUS_MAX_CHARS).

    The one definition of those features, whether the turn's signal comes from the state
    (`stream.core.step`) or from the texts (`_previous_of`: training, an older state)."""
    return frozenset({"pm:" + kind for kind in kinds} | {f"ps:{_score_bucket(score)}"})


@lru_cache(maxsize=4096)
def _previous_of(earlier: tuple[str, ...]) -> frozenset[str]:
    # Cached: a backtest folds each turn through every policy it compares.
    cut = [turn[:PREVIOUS_MAX_CHARS] for turn in earlier]
    signal = analyze_turn(cut[-1], cut[:-1])
    return previous_summary([marker.kind for marker in signal.markers], signal.score)


def _repeat_features(words: list[str], context: TurnContext) -> set[str]:
    # How much of the turn the customer already wrote: the best word Jaccard overlap with the
    # last REPEAT_LOOKBACK customer turns, in 5 buckets (finer than the repeat_question marker).
    # With no earlier customer turn there is nothing to compare: no feature, as for the other
    # groups, so a missing context is a neutral value and not evidence of a calm turn.
    if not context.previous_customer:
        return set()
    mine = set(words)
    best = 0.0
    for earlier in context.previous_customer[-REPEAT_LOOKBACK:]:
        seen = _word_set(earlier[:MAX_CHARS])
        if mine and seen:
            best = max(best, len(mine & seen) / len(mine | seen))
    return {f"rep:{min(4, int(best * 5))}"}


@lru_cache(maxsize=4096)
def _word_set(text: str) -> frozenset[str]:
    # Cached: each earlier turn is compared with the next few customer turns.
    return frozenset(_tokens(text.lower()))


def clear_caches() -> None:
    """Forget the cached context features (a benchmark times the scorer as a new turn sees it)."""
    ai_turn_kind.cache_clear()
    _previous_of.cache_clear()
    _word_set.cache_clear()


_CONTEXT_FEATURES: dict[str, Callable[[list[str], TurnContext], AbstractSet[str]]] = {
    "ai": _ai_features,
    "position": _position_features,
    "previous": _previous_features,
    "repeat": _repeat_features,
}


def context_features(
    text: str, context: TurnContext, groups: tuple[str, ...], words: list[str] | None = None
) -> set[str]:
    """The features of the conversation before the turn, for the named CONTEXT_GROUPS.

    `words` are the turn's tokens when the caller has them already (TurnModel.features)."""
    if words is None:
        words = _tokens(text[:MAX_CHARS].lower())
    out: set[str] = set()
    for group in groups:
        out |= _CONTEXT_FEATURES[group](words, context)
    return out


def turn_features(text: str, signal: TextSignal) -> set[str]:
    """The names of the features of one customer turn (all features are binary).

    `signal` is the turn's markers and lexicon score from `stream.core.markers.analyze_turn`,
    which already compared the turn with the customer's earlier turns (repeat_question).
    """
    cut = text[:MAX_CHARS]
    return _turn_features(cut, _tokens(cut.lower()), signal)


def _turn_features(cut: str, words: list[str], signal: TextSignal) -> set[str]:
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
    context: tuple[str, ...] = ()  # the CONTEXT_GROUPS the model was trained with

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
        context = data.get("context", [])
        if not isinstance(context, list) or any(g not in CONTEXT_GROUPS for g in context):
            raise ModelFormatError(f"context must be a list of groups of {CONTEXT_GROUPS}")
        return cls(
            version,
            float(bias),
            {str(k): float(v) for k, v in weights.items()},
            tuple(sorted(set(context))),
        )

    def features(
        self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT
    ) -> set[str]:
        """The turn's features, with the context groups this model was trained with."""
        cut = text[:MAX_CHARS]
        words = _tokens(cut.lower())
        features = _turn_features(cut, words, signal)
        if self.context:
            features |= context_features(cut, context, self.context, words)
        return features

    def probability(self, features: set[str]) -> float:
        """The logistic of bias + the features' weights summed and scaled by 1/sqrt(count)."""
        margin = self.bias
        if features:
            total = sum(map(self.weights.get, features, repeat(0.0)))
            margin += total / math.sqrt(len(features))
        margin = -_MAX_MARGIN if margin < -_MAX_MARGIN else min(margin, _MAX_MARGIN)
        return 1.0 / (1.0 + math.exp(-margin))

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        """Probability (0..1) that a customer turn shows dissatisfaction."""
        return self.probability(self.features(text, signal, context))


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
