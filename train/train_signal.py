"""Train the turn signal's weights from the labelled development sets (`make train-signal`).

Logistic regression (scikit-learn, lbfgs) over the features of `stream.core.turn_model`: the
turn's own (words, markers, lexicon, length, caps) and the context groups the core passes it
(CONTEXT below). It is fitted on the training portion (the `train` and `dev` parts of every set:
tweets, ReDial, CCPE), each set weighted alike and the classes balanced, so the 63 % negative
tweets do not set the prior for 4 % dissatisfied dialogue turns. Two choices of
`train/choose_signal.py` (grouped cross-validation, docs/signal.md):

- soft labels: a dialogue turn is fitted as dissatisfied with the share of its raters who gave it
  1 or 2, and as not with the rest, so one rater of three giving a 1 still teaches something;
- a training-only tweet column that takes the tweets' higher base rate, so no word weight has to
  tell a tweet from a dialogue turn. The scorer never has it; the social operating point, chosen
  on tweets scored without it, sits low on the scale instead.

- context dropout: each dialogue turn is also shown without the AI turn before it and with no
  context at all (DROPOUT of its weight), so a complaint that opens a conversation, or follows the
  customer's own turn, is carried by its own words (`dropped_contexts`).

The policy's operating points are chosen on the out-of-fold scores of the same grouped 5-fold
cross-validation (`train/signal_cv.py`) of the training portion: the best F1 over ReDial and CCPE
pooled (chat, the default), and for tweets (social) the best F1 among points whose false-positive
rate is no higher than the chat point's (`choose_thresholds` says why). The `test` part is never
read here.

The output is deterministic: features are sorted, the solver has no randomness (the seed is passed
anyway and recorded), weights are rounded to WEIGHT_DECIMALS and written as sorted JSON. Running it
twice on the same data and library versions gives the same bytes, which a test checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from stream.core import turn_model  # noqa: E402
from stream.core.markers import analyze_turn  # noqa: E402
from train import signal_cv, signal_data  # noqa: E402
from train.signal_data import LabelledTurn  # noqa: E402

VERSION = "turn-signal-2"
MODEL_DIR = REPO_ROOT / "stream" / "models"
SEED = 20240601
# Regularisation and feature cut, compared under grouped CV (docs/signal.md).
C = 4.0
MIN_COUNT = 3
WEIGHT_DECIMALS = 4
# Earlier customer turns the repeat check looks at, as in stream.core.step.
REPEAT_LOOKBACK = turn_model.REPEAT_LOOKBACK
# The context groups of stream.core.turn_model the model is trained with.
CONTEXT = ("ai", "previous", "repeat")
# Share of each dialogue turn's training weight shown with its context absent (context dropout,
# chosen by grouped CV in train/choose_signal.py; docs/signal.md).
DROPOUT = 0.4
DIALOGUE_SETS = signal_data.USS_SETS
# Domain copies (compared by `make choose-signal`, not shipped: docs/signal.md): each domain's
# training name prefix.
DOMAIN_PREFIX = {
    "tweet": signal_cv.DOMAIN_MARK + "t|",
    "dialogue": signal_cv.DOMAIN_MARK + "d|",
}


def domain_of(turn: LabelledTurn) -> str:
    """The domain of a turn: tweets, or dialogue turns."""
    return "tweet" if turn.dataset == "tweets" else "dialogue"


def with_domain_copies(features: set[str], domain: str) -> set[str]:
    """Each feature, and its copy for `domain` (Daume III, "Frustratingly easy domain
    adaptation", 2007): the shared copy learns what tweets and dialogues agree on, each domain's
    copy what is its own, and a scorer would add the two weights. Compared under grouped CV and
    not shipped: the chat channel is neither domain, and with the dialogue copy a plain support
    complaint no longer counts in a chat (docs/signal.md)."""
    mark = DOMAIN_PREFIX[domain]
    return features | {mark + name for name in features}


def features_of(turn: LabelledTurn, context: Sequence[str] = CONTEXT) -> set[str]:
    signal = analyze_turn(turn.text, turn.previous_customer[-REPEAT_LOOKBACK:])
    features = turn_model.turn_features(turn.text, signal)
    if context:
        features |= turn_model.context_features(
            turn.text, signal_data.context_of(turn), tuple(context)
        )
    return features


def dropped_contexts(
    turn: LabelledTurn, dropout: float = DROPOUT
) -> list[tuple[LabelledTurn, float]]:
    """The turn as training sees it: its own context, and with that context partly or wholly
    absent, with weights summing to 1 (context dropout, taken at its expected value so training
    stays deterministic).

    In the rated dialogues a turn with no context is almost always a greeting, so a model fitted
    on them alone learns that a missing context means calm, and a complaint that opens a
    conversation, or follows the customer's own turn with no AI reply between, scores under the
    point. Shown each turn also without the AI turn before it (`dropout` / 2) and with no context
    at all (`dropout` / 2), the model must carry a complaint on the turn's own words; a missing
    context adds no feature (stream.core.turn_model), so it is a neutral value."""
    if not dropout or (not turn.previous_ai and not turn.previous_customer):
        return [(turn, 1.0)]
    shown = [
        (turn, 1.0 - dropout),
        (replace(turn, previous_ai=""), dropout / 2),
        (replace(turn, previous_ai="", previous_customer=()), dropout / 2),
    ]
    merged: dict[tuple[str, tuple[str, ...]], tuple[LabelledTurn, float]] = {}
    for shown_turn, weight in shown:
        key = (shown_turn.previous_ai, shown_turn.previous_customer)
        merged[key] = (shown_turn, merged[key][1] + weight if key in merged else weight)
    return list(merged.values())


def training_rows(
    turns: Sequence[LabelledTurn],
    context: Sequence[str] = CONTEXT,
    dropout: float = DROPOUT,
    features_of: Callable[[LabelledTurn, Sequence[str]], set[str]] = features_of,
) -> tuple[list[int], list[set[str]], list[float], list[int]]:
    """For each row: the turn it shows (index into `turns`), its features and weight; and for
    each turn the index of its row with its own, full context (the one that is scored).
    `context` is what `features_of` adds to the turn's own features."""
    owners: list[int] = []
    features: list[set[str]] = []
    weights: list[float] = []
    own_row: list[int] = []
    for index, turn in enumerate(turns):
        own_row.append(len(owners))
        for shown, weight in dropped_contexts(turn, dropout):
            owners.append(index)
            features.append(features_of(shown, context))
            weights.append(weight)
    return owners, features, weights, own_row


def share_of(turn: LabelledTurn) -> float:
    """The soft label: the raters' share of 1-2 (dialogue turns); 0 or 1 for a tweet."""
    return float(turn.label) if turn.share is None else turn.share


def false_positive_rate(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    calm = [s for s, y in zip(scores, labels, strict=True) if not y]
    return sum(s >= threshold for s in calm) / len(calm) if calm else 0.0


def social_point(scores: Sequence[float], labels: Sequence[bool], chat_fpr: float) -> float:
    """The best F1 (the lowest point on a tie) among points whose false-positive rate is at most
    `chat_fpr`, the chat point's (see `choose_thresholds`)."""
    allowed = [
        t for t in signal_cv.THRESHOLDS if false_positive_rate(scores, labels, t) <= chat_fpr
    ]
    return max(
        allowed or [signal_cv.THRESHOLDS[-1]],
        key=lambda t: (signal_cv.f1_at(scores, labels, t), -t),
    )


def choose_thresholds(
    scores: Sequence[float], turns: Sequence[LabelledTurn]
) -> dict[str, dict[str, Any]]:
    """One operating point per kind of conversation, on out-of-fold scores.

    Chat dialogues (ReDial, CCPE) have 4-5 % dissatisfied turns, public complaints (tweets) 63 %
    negative ones: one threshold cannot serve both, so the policy has a default (chat) and a
    per-channel override for `social`.

    Chat: the best F1 on ReDial and CCPE pooled. Social: not the best F1 on single tweets, which
    with 63 % negative sits near "every tweet is negative" (0.05 for turn-signal-2 before this
    rule): the policy counts dissatisfied turns across a conversation, so what decides a wrong
    offer to a calm customer is how often a calm turn counts, the false-positive rate. The social
    point is the best tweet F1 among points whose false-positive rate on not-negative tweets is
    no higher than the chat point's on not-dissatisfied chat turns: a calm customer's turn counts
    as often on either channel.
    """

    def of(names: Sequence[str]) -> tuple[list[float], list[bool]]:
        picked = [i for i, t in enumerate(turns) if t.dataset in names]
        return [scores[i] for i in picked], [turns[i].label for i in picked]

    chat = signal_cv.best_threshold(*of(DIALOGUE_SETS))
    tweet_scores, tweet_labels = of(("tweets",))
    social = social_point(tweet_scores, tweet_labels, false_positive_rate(*of(DIALOGUE_SETS), chat))
    unconstrained = signal_cv.best_threshold(tweet_scores, tweet_labels)
    out: dict[str, dict[str, Any]] = {}
    for point, names, threshold in (
        ("default", DIALOGUE_SETS, chat),
        ("social", ("tweets",), social),
    ):
        out[point] = {
            "threshold": threshold,
            "chosen_on": [f"{name}/train+dev out of fold" for name in names],
            "false_positive_rate": round(false_positive_rate(*of(names), threshold), 4),
            "cv_f1": {
                name: round(signal_cv.f1_at(*of((name,)), threshold), 4)
                for name in ("tweets", *DIALOGUE_SETS)
            },
        }
    out["default"]["rule"] = "best F1 on ReDial and CCPE pooled"
    out["social"]["rule"] = (
        "best tweet F1 with a false-positive rate on not-negative tweets no higher than the chat "
        "point's on not-dissatisfied chat turns"
    )
    out["social"]["unconstrained_best_f1_threshold"] = unconstrained
    out["social"]["unconstrained_best_f1"] = round(
        signal_cv.f1_at(tweet_scores, tweet_labels, unconstrained), 4
    )
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(data_root: Path, out_dir: Path) -> dict[str, Any]:
    sets = signal_data.load_all(data_root)
    training = [turn for turns in sets.values() for turn in turns if turn.part != "test"]
    owners, features, row_weights, own_row = training_rows(training)
    labels = [training[i].label for i in owners]
    datasets = [training[i].dataset for i in owners]
    settings: dict[str, Any] = {
        "c": C,
        "min_count": MIN_COUNT,
        "seed": SEED,
        "tweet_column": True,
        "row_weights": row_weights,
    }
    shares = [share_of(training[i]) for i in owners]

    # A turn's rows share its dialogue's fold; each turn is scored once, with its own context.
    folds = [signal_cv.fold_of(training[i].dataset, training[i].group) for i in owners]
    row_scores, _ = signal_cv.out_of_fold(
        features, labels, datasets, folds, shares=shares, **settings
    )
    scores = [row_scores[row] for row in own_row]
    labels = [turn.label for turn in training]
    datasets = [turn.dataset for turn in training]
    thresholds = choose_thresholds(scores, training)
    cv_auc = {
        name: round(
            signal_cv.roc_auc(
                [s for s, d in zip(scores, datasets, strict=True) if d == name],
                [y for y, d in zip(labels, datasets, strict=True) if d == name],
            ),
            4,
        )
        for name in sets
    }

    fitted = signal_cv.fit(
        features,
        [training[i].label for i in owners],
        [training[i].dataset for i in owners],
        shares=shares,
        **settings,
    )
    weights = {
        name: round(w, WEIGHT_DECIMALS)
        for name, w in sorted(fitted.weights.items())
        if round(w, WEIGHT_DECIMALS) != 0.0
    }
    payload = {
        "format": turn_model.FORMAT,
        "version": VERSION,
        "bias": round(fitted.bias, WEIGHT_DECIMALS),
        "context": list(CONTEXT),
        "weights": weights,
    }
    turn_model.TurnModel.from_dict(payload)  # refuses a payload the scorer could not read

    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{VERSION}.json"
    weights_path.write_text(
        json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    source_files = [
        REPO_ROOT / "stream" / "core" / "turn_model.py",
        REPO_ROOT / "stream" / "core" / "markers.py",
        REPO_ROOT / "train" / "signal_cv.py",
        REPO_ROOT / "train" / "signal_data.py",
        REPO_ROOT / "train" / "train_signal.py",
    ]
    manifest = {
        "version": VERSION,
        "weights_file": weights_path.name,
        "weights_sha256": sha256(weights_path),
        "features_kept": len(weights),
        "thresholds_chosen_by_cv": thresholds,
        "cv_roc_auc": cv_auc,
        "tweet_column_weight": round(fitted.tweet_weight, WEIGHT_DECIMALS),
        "training": {
            "command": "make train-signal",
            "seed": SEED,
            "estimator": "sklearn.linear_model.LogisticRegression(lbfgs)",
            "C": C,
            "class_weight": "balanced (by soft-label mass)",
            "labels": "soft: each dialogue turn's share of raters who gave 1-2",
            "set_weighting": "each data set alike",
            "context": list(CONTEXT),
            "context_dropout": {
                "weight": DROPOUT,
                "shown": "own context; without the AI turn (half); with no context (half)",
            },
            "tweet_column": "training only",
            "fitted_on": "train and dev parts",
            "cv": {"folds": signal_cv.FOLDS, "salt": signal_cv.FOLD_SALT},
            "min_feature_count": MIN_COUNT,
            "weight_decimals": WEIGHT_DECIMALS,
            "split": {
                "salt": signal_data.SPLIT_SALT,
                "train_percent": signal_data.TRAIN_PERCENT,
                "dev_percent": signal_data.DEV_PERCENT,
                "test_percent": 100 - signal_data.TRAIN_PERCENT - signal_data.DEV_PERCENT,
            },
            "turns": {
                name: {
                    part: sum(1 for turn in turns if turn.part == part)
                    for part in ("train", "dev", "test")
                }
                for name, turns in sets.items()
            },
            "libraries": {
                name: metadata.version(name) for name in ("scikit-learn", "numpy", "scipy")
            },
        },
        "data_sha256": {
            str(path): sha256(data_root / path)
            for path in (
                signal_data.TWEETS,
                *(Path("uss-dev") / f"{name}.txt" for name in DIALOGUE_SETS),
            )
        },
        "source_sha256": {str(path.relative_to(REPO_ROOT)): sha256(path) for path in source_files},
    }
    (out_dir / f"{VERSION}.manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=signal_data.DATA_ROOT, help="shared data")
    parser.add_argument("--out", type=Path, default=MODEL_DIR, help="where weights are written")
    args = parser.parse_args(argv)
    try:
        manifest = train(args.data, args.out)
    except ModuleNotFoundError as exc:
        print(f"train-signal needs the training extras: pip install -e '.[train]' ({exc})")
        return 2
    print(
        f"wrote {args.out / manifest['weights_file']} ({manifest['features_kept']} weights, "
        f"sha256 {manifest['weights_sha256'][:12]}); thresholds "
        f"{json.dumps(manifest['thresholds_chosen_by_cv'])}; "
        f"out-of-fold AUC {manifest['cv_roc_auc']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
