"""Train the turn signal's weights from the labelled development sets (`make train-signal`).

Logistic regression (scikit-learn, lbfgs) over the binary features of `stream.core.turn_model`,
fitted on the `train` part of every set (tweets, ReDial, CCPE), each set weighted alike and the
classes balanced, so the 63 % negative tweets do not set the prior for 4 % dissatisfied dialogue
turns. The `dev` part chooses the policy's default threshold; the `test` part is never read here.

The output is deterministic: features are sorted, the solver has no randomness (the seed is passed
anyway and recorded), weights are rounded to WEIGHT_DECIMALS and written as sorted JSON. Running it
twice on the same data and library versions gives the same bytes, which a test checks.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from stream.core import turn_model  # noqa: E402
from stream.core.markers import analyze_turn  # noqa: E402
from train import signal_data  # noqa: E402
from train.signal_data import LabelledTurn  # noqa: E402

VERSION = "turn-signal-1"
MODEL_DIR = REPO_ROOT / "stream" / "models"
SEED = 20240601
# Regularisation and feature cut, chosen on the dev part (bench/SIGNALS.md lists what was tried).
C = 4.0
MIN_COUNT = 3
WEIGHT_DECIMALS = 4
# Earlier customer turns the repeat check looks at, as in stream.core.step.
REPEAT_LOOKBACK = 5
# Candidate thresholds for the policy's operating points, in steps of 0.01.
THRESHOLDS = tuple(round(0.05 + 0.01 * i, 2) for i in range(91))
DIALOGUE_SETS = signal_data.USS_SETS


def features_of(turn: LabelledTurn) -> set[str]:
    signal = analyze_turn(turn.text, turn.previous_customer[-REPEAT_LOOKBACK:])
    return turn_model.turn_features(turn.text, signal)


def f1_at(scores: Sequence[float], labels: Sequence[bool], threshold: float) -> float:
    tp = sum(s >= threshold and y for s, y in zip(scores, labels, strict=True))
    predicted = sum(s >= threshold for s in scores)
    positive = sum(labels)
    if not tp:
        return 0.0
    return 2 * tp / (predicted + positive)


def best_threshold(dev: dict[str, tuple[list[float], list[bool]]], names: Sequence[str]) -> float:
    """The threshold with the best mean F1 over the dev parts of the named sets."""
    best = (-1.0, 0.5)
    for threshold in THRESHOLDS:
        mean = sum(f1_at(*dev[name], threshold) for name in names) / len(names)
        if mean > best[0] + 1e-12:
            best = (mean, threshold)
    return best[1]


def choose_thresholds(
    dev: dict[str, tuple[list[float], list[bool]]],
) -> dict[str, dict[str, Any]]:
    """One operating point per kind of conversation, each chosen on its own dev parts.

    Chat dialogues (ReDial, CCPE) have 4-5 % dissatisfied turns, public complaints (tweets) 63 %
    negative ones: one threshold cannot serve both, so the policy has a default (chat) and a
    per-channel override for `social`.
    """
    out: dict[str, dict[str, Any]] = {}
    for point, names in (("default", DIALOGUE_SETS), ("social", ("tweets",))):
        threshold = best_threshold(dev, names)
        out[point] = {
            "threshold": threshold,
            "chosen_on": [f"{name}/dev" for name in names],
            "dev_f1": {name: round(f1_at(*dev[name], threshold), 4) for name in dev},
        }
    return out


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train(data_root: Path, out_dir: Path) -> dict[str, Any]:
    import numpy as np
    from scipy.sparse import csr_matrix
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    sets = signal_data.load_all(data_root)
    rows = [(name, turn, features_of(turn)) for name, turns in sets.items() for turn in turns]
    training = [row for row in rows if row[1].part == "train"]

    counts: Counter[str] = Counter()
    for _, _, features in training:
        counts.update(features)
    vocabulary = sorted(name for name, count in counts.items() if count >= MIN_COUNT)
    column = {name: index for index, name in enumerate(vocabulary)}

    # Each turn is scaled by 1/sqrt(all its features), kept or not, as the scorer does.
    data: list[float] = []
    indices: list[int] = []
    indptr = [0]
    for _, _, features in training:
        value = 1.0 / len(features) ** 0.5
        kept = sorted(column[f] for f in features if f in column)
        indices.extend(kept)
        data.extend([value] * len(kept))
        indptr.append(len(indices))
    matrix = csr_matrix((data, indices, indptr), shape=(len(training), len(vocabulary)))
    labels = np.array([turn.label for _, turn, _ in training], dtype=int)
    per_set = Counter(name for name, _, _ in training)
    sample_weight = np.array(
        [len(training) / (len(per_set) * per_set[name]) for name, _, _ in training]
    )

    model = LogisticRegression(
        C=C, class_weight="balanced", max_iter=5000, tol=1e-8, random_state=SEED
    )
    model.fit(matrix, labels, sample_weight=sample_weight)

    weights = {
        name: round(float(w), WEIGHT_DECIMALS)
        for name, w in zip(vocabulary, model.coef_[0], strict=True)
        if round(float(w), WEIGHT_DECIMALS) != 0.0
    }
    payload = {
        "format": turn_model.FORMAT,
        "version": VERSION,
        "bias": round(float(model.intercept_[0]), WEIGHT_DECIMALS),
        "weights": weights,
    }
    shipped = turn_model.TurnModel.from_dict(payload)

    dev: dict[str, tuple[list[float], list[bool]]] = {}
    for name in sets:
        part = [(turn, features) for n, turn, features in rows if n == name and turn.part == "dev"]
        dev[name] = (
            [shipped.probability(features) for _, features in part],
            [turn.label for turn, _ in part],
        )
    thresholds = choose_thresholds(dev)
    dev_auc = {
        name: round(float(roc_auc_score(labels, scores)), 4)
        for name, (scores, labels) in dev.items()
    }

    out_dir.mkdir(parents=True, exist_ok=True)
    weights_path = out_dir / f"{VERSION}.json"
    weights_path.write_text(
        json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8"
    )
    source_files = [
        REPO_ROOT / "stream" / "core" / "turn_model.py",
        REPO_ROOT / "stream" / "core" / "markers.py",
        REPO_ROOT / "train" / "signal_data.py",
        REPO_ROOT / "train" / "train_signal.py",
    ]
    manifest = {
        "version": VERSION,
        "weights_file": weights_path.name,
        "weights_sha256": sha256(weights_path),
        "features_kept": len(weights),
        "thresholds_chosen_on_dev": thresholds,
        "dev_roc_auc": dev_auc,
        "training": {
            "command": "make train-signal",
            "seed": SEED,
            "estimator": "sklearn.linear_model.LogisticRegression(lbfgs)",
            "C": C,
            "class_weight": "balanced",
            "set_weighting": "each data set alike",
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
        f"{json.dumps(manifest['thresholds_chosen_on_dev'])}; dev AUC {manifest['dev_roc_auc']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
