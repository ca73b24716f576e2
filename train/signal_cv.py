"""Grouped cross-validation on the training portion: how the turn signal's choices are made.

The training portion is the `train` and `dev` parts of `train/signal_data.py`; the `test` part is
held back for `bench/signals.py` and never read here. Each dialogue (or tweet) goes whole to one of
FOLDS folds by a salted sha256 of its set and key, so no turn is scored by a model that saw another
turn of its own dialogue, and the folds do not move with anything but the salt.

Every turn of the training portion gets an out-of-fold score (from the model fitted on the other
folds). Those scores choose the feature set, the regularisation and the policy's operating points,
and give the dialogue-level firing rates of `train/choose_signal.py`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FOLDS = 5
FOLD_SALT = "escalation-stream/turn-signal/cv-v1"
# The training-only column that absorbs "this is a tweet" (see stream.core.turn_model).
TWEET_COLUMN = "set:tweets"
# A feature's copy for one domain (tweets or dialogues) starts with this mark ("@t|", "@d|").
DOMAIN_MARK = "@"
# Candidate operating points, in steps of 0.01.
THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(1, 100))


def norm_count(features: set[str]) -> int:
    """The count a turn's features are scaled by: a domain copy (DOMAIN_MARK) of a feature is the
    same feature seen again, not one more (the scorer adds both weights and counts it once)."""
    return sum(1 for name in features if not name.startswith(DOMAIN_MARK))


def fold_of(dataset: str, group: str) -> int:
    digest = hashlib.sha256(f"{FOLD_SALT}:{dataset}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % FOLDS


@dataclass(frozen=True, slots=True)
class Fitted:
    """A fitted logistic model: feature weights, bias, and the training-only tweet column."""

    weights: dict[str, float]
    bias: float
    tweet_weight: float

    def margin(self, features: set[str]) -> float:
        total = sum(self.weights.get(f, 0.0) for f in features)
        count = norm_count(features)
        return self.bias + (total / math.sqrt(count) if count else 0.0)

    def probability(self, features: set[str]) -> float:
        margin = max(-30.0, min(30.0, self.margin(features)))
        return 1.0 / (1.0 + math.exp(-margin))


def fit(
    features: Sequence[set[str]],
    labels: Sequence[bool],
    datasets: Sequence[str],
    *,
    c: float,
    min_count: int,
    seed: int,
    tweet_column: bool = True,
    tweet_weight: float = 1.0,
    balanced: bool = True,
    shares: Sequence[float] | None = None,
    row_weights: Sequence[float] | None = None,
) -> Fitted:
    """Logistic regression (lbfgs), classes balanced, each data set weighted alike.

    Each turn's features are scaled by 1/sqrt(the number of its features, kept or not), as the
    scorer does. The tweet column (value 1, not counted in that number) is present only in
    training: it takes the tweets' far higher base rate, so the other weights need not.
    `tweet_weight` scales the tweets' share against the dialogue sets' (1: each set alike);
    `balanced` False leaves the classes at their base rates. `shares` (soft labels), when given,
    is each turn's share of raters who judged it dissatisfied: the turn is fitted once as
    dissatisfied with that share of its weight and once as not with the rest, so a turn one rater
    of three gave a 1 teaches more than one nobody did. Classes are then balanced by mass.
    `row_weights`, when given, scales each row (context dropout gives a turn several rows, one
    per context it is shown with, whose weights sum to 1); a set's share is then its rows' mass.
    """
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression

    if row_weights is None:
        counts: Counter[str] = Counter()
        for turn in features:
            counts.update(turn)
        vocabulary = sorted(name for name, count in counts.items() if count >= min_count)
    else:
        # A turn's rows together count once: a feature is kept when it has min_count turns' mass.
        seen: dict[str, float] = {}
        for turn, weight in zip(features, row_weights, strict=True):
            for name in turn:
                seen[name] = seen.get(name, 0.0) + weight
        vocabulary = sorted(name for name, got in seen.items() if got >= min_count - 1e-9)
    column = {name: index for index, name in enumerate(vocabulary)}
    width = len(vocabulary) + (1 if tweet_column else 0)
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for turn, dataset in zip(features, datasets, strict=True):
        count = norm_count(turn)
        value = 1.0 / math.sqrt(count) if count else 0.0
        kept = sorted(column[f] for f in turn if f in column)
        indices.extend(kept)
        data.extend([value] * len(kept))
        if tweet_column and dataset == "tweets":
            indices.append(len(vocabulary))
            data.append(1.0)
        indptr.append(len(indices))
    matrix = csr_matrix((data, indices, indptr), shape=(len(features), width))
    rows_weight = [1.0] * len(features) if row_weights is None else list(row_weights)
    per_set: dict[str, float] = {}
    for dataset, weight in zip(datasets, rows_weight, strict=True):
        per_set[dataset] = per_set.get(dataset, 0.0) + weight
    total_mass = sum(rows_weight)
    sample_weight = np.array(
        [
            total_mass / (len(per_set) * per_set[d]) * (tweet_weight if d == "tweets" else 1.0) * w
            for d, w in zip(datasets, rows_weight, strict=True)
        ]
    )
    y = np.array(labels, dtype=int)
    class_weight: str | None = "balanced" if balanced else None
    if shares is not None:
        share = np.array(shares, dtype=float)
        rows = np.concatenate([np.arange(len(features)), np.arange(len(features))])
        y = np.concatenate([np.ones(len(features), int), np.zeros(len(features), int)])
        mass = np.concatenate([share, 1.0 - share])
        if balanced:
            # Each class's mass, counting a turn's rows by their weights (together once).
            counted = np.array(rows_weight)
            total = (mass * np.concatenate([counted, counted])).sum()
            positive = (share * counted).sum()
            negative = ((1.0 - share) * counted).sum()
            mass = np.where(y == 1, mass * total / (2 * positive), mass)
            mass = np.where(y == 0, mass * total / (2 * negative), mass)
        keep = mass > 0
        matrix = matrix[rows[keep]]
        y = y[keep]
        sample_weight = np.concatenate([sample_weight, sample_weight])[keep] * mass[keep]
        class_weight = None
    model = LogisticRegression(
        C=c,
        class_weight=class_weight,
        max_iter=5000,
        tol=1e-6,
        random_state=seed,
    )
    model.fit(matrix, y, sample_weight=sample_weight)
    coef = [float(w) for w in model.coef_[0]]
    return Fitted(
        dict(zip(vocabulary, coef[: len(vocabulary)], strict=True)),
        float(model.intercept_[0]),
        coef[-1] if tweet_column else 0.0,
    )


def out_of_fold(
    features: Sequence[set[str]],
    labels: Sequence[bool],
    datasets: Sequence[str],
    folds: Sequence[int],
    **settings: Any,
) -> tuple[list[float], list[Fitted]]:
    """Each turn's score by the model fitted on the other folds, and the FOLDS models."""
    scores = [0.0] * len(features)
    models: list[Fitted] = []
    shares = settings.pop("shares", None)
    row_weights = settings.pop("row_weights", None)
    for held in range(FOLDS):
        train = [i for i, f in enumerate(folds) if f != held]
        model = fit(
            [features[i] for i in train],
            [labels[i] for i in train],
            [datasets[i] for i in train],
            shares=None if shares is None else [shares[i] for i in train],
            row_weights=None if row_weights is None else [row_weights[i] for i in train],
            **settings,
        )
        models.append(model)
        for i, f in enumerate(folds):
            if f == held:
                scores[i] = model.probability(features[i])
    return scores, models


def f1_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    tp = sum(s >= threshold and y for s, y in zip(scores, labels, strict=True))
    if not tp:
        return 0.0
    return 2 * tp / (sum(s >= threshold for s in scores) + sum(labels))


def best_threshold(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The threshold of THRESHOLDS with the best F1 (the lowest on a tie)."""
    best = (-1.0, THRESHOLDS[0])
    for threshold in THRESHOLDS:
        f1 = f1_at(scores, labels, threshold)
        if f1 > best[0] + 1e-12:
            best = (f1, threshold)
    return best[1]


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    order = sorted(range(len(scores)), key=scores.__getitem__)
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for index in order[start : end + 1]:
            ranks[index] = (start + end) / 2 + 1
        start = end + 1
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        return float("nan")
    rank_sum = sum(rank for rank, y in zip(ranks, labels, strict=True) if y)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (0, 0 for no trials)."""
    if not trials:
        return (0.0, 0.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = (
        z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    )
    return (max(0.0, centre - half), min(1.0, centre + half))
