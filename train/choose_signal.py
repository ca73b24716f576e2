"""Compare the turn signal's variants by grouped cross-validation on the training portion.

`make choose-signal` (slow: FOLDS fits per variant). For each variant it gives, from out-of-fold
scores on the `train` and `dev` parts (never `test`): ROC AUC per set, and F1 per set at the chat
operating point chosen on those same out-of-fold scores (pooled ReDial + CCPE) and at the tweets'
own point, and the dialogue level at that point: the share of low- and high-rated training-portion
dialogues where the sentiment rule fires, each dialogue judged by the fold model that did not train
on it, with 95 % Wilson intervals. For the shipped features it also replays every such dialogue
through `stream.core.step` at the default policy's threshold; `bench/signals.py` adds the held-back
dialogues to those counts. Writes bench/results/signal_cv.json.

Each variant is also set against the shipped features fold by fold (`against_shipped`): a gain in
out-of-fold ROC AUC no larger than the shipped features' fold-to-fold standard deviation is not a
reason to retrain, since a different cut of the same data moves the figure as much."""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from stream.core import turn_model  # noqa: E402
from stream.core.events import MessageEvent  # noqa: E402
from stream.core.markers import analyze_turn, asks_yes_no, is_short_no  # noqa: E402
from stream.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy  # noqa: E402
from stream.core.step import step  # noqa: E402
from train import signal_cv, signal_data, train_signal  # noqa: E402
from train.signal_data import Dialogue, LabelledTurn  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "signal_cv.json"
CHAT_SETS = signal_data.USS_SETS
T0 = 1_700_000_000_000


@dataclass(frozen=True, slots=True)
class Variant:
    """Features beyond turn-signal-1's (`EXTRAS` names them) and the fit's settings."""

    extras: tuple[str, ...] = ()
    tweet_column: bool = False
    c: float = 4.0
    tweet_weight: float = 1.0
    balanced: bool = True
    soft: bool = False
    # Context dropout (train/train_signal.py): the share of a turn's weight shown without context.
    dropout: float = 0.0


# The baseline every variant is set against (the bar): turn-signal-1's features and fit.
SHIPPED = "shipped turn-signal-1 features (text, markers, lexicon, length, caps)"
# The variant turn-signal-2 ships (train/train_signal.py): replayed through `step` at the policy's
# threshold for the dialogue level.
CHOSEN = (
    "soft labels + repetition + AI turn kind + previous turn + tweet column, context dropout 0.4"
)
VARIANTS: dict[str, Variant] = {
    SHIPPED: Variant(),
    "+ AI turn kind and answer opener + training-only tweet column": Variant(("ai",), True),
    "+ training-only tweet column": Variant((), True),
    "+ AI turn kind and answer opener, no tweet column": Variant(("ai",)),
    "+ repetition of the customer's own words": Variant(("repeat",)),
    "+ position in the exchange x length": Variant(("position",)),
    "+ the customer's previous turn's markers and lexicon bucket": Variant(("previous",)),
    "+ character 3-5-grams within words": Variant(("chars",)),
    "+ repetition + position": Variant(("repeat", "position")),
    "+ repetition + position + AI turn kind": Variant(("repeat", "position", "ai")),
    "+ repetition + position + AI turn kind + tweet column": Variant(
        ("repeat", "position", "ai"), True
    ),
    "+ repetition + position + AI turn kind + previous turn": Variant(
        ("repeat", "position", "ai", "previous")
    ),
    "+ repetition + position + AI turn kind + previous turn + tweet column": Variant(
        ("repeat", "position", "ai", "previous"), True
    ),
    "+ repetition + position + AI turn kind + previous turn + AI words + tweet column": Variant(
        ("repeat", "position", "ai", "previous", "aiwords"), True
    ),
    "+ repetition + position + AI turn kind + previous turn + AI words": Variant(
        ("repeat", "position", "ai", "previous", "aiwords")
    ),
    "soft labels (share of raters who gave 1-2)": Variant(soft=True),
    "soft labels + repetition + position + AI turn kind + previous turn": Variant(
        ("repeat", "position", "ai", "previous"), soft=True
    ),
    "soft labels + repetition + position + AI turn kind + previous turn + tweet column": Variant(
        ("repeat", "position", "ai", "previous"), True, soft=True
    ),
    "soft labels + repetition + AI turn kind + previous turn + tweet column": Variant(
        ("repeat", "ai", "previous"), True, soft=True
    ),
    "soft labels + repetition + AI turn kind + previous turn + tweet column, context dropout 0.2": (
        Variant(("repeat", "ai", "previous"), True, soft=True, dropout=0.2)
    ),
    "soft labels + repetition + AI turn kind + previous turn + tweet column, context dropout 0.4": (
        Variant(("repeat", "ai", "previous"), True, soft=True, dropout=0.4)
    ),
    "soft labels + repetition + AI turn kind + previous turn + tweet column, context dropout 0.6": (
        Variant(("repeat", "ai", "previous"), True, soft=True, dropout=0.6)
    ),
    "turn-signal-2 (context dropout 0.4) with C = 2": Variant(
        ("repeat", "ai", "previous"), True, c=2.0, soft=True, dropout=0.4
    ),
    "turn-signal-2 (context dropout 0.4) with C = 8": Variant(
        ("repeat", "ai", "previous"), True, c=8.0, soft=True, dropout=0.4
    ),
    "tweets weighted 0.5 (dialogue sets 1)": Variant(tweet_weight=0.5),
    "tweets weighted 0.3 (dialogue sets 1)": Variant(tweet_weight=0.3),
    "C = 1": Variant(c=1.0),
    "C = 16": Variant(c=16.0),
    "classes not balanced": Variant(balanced=False),
}


def _words(text: str) -> list[str]:
    return turn_model._tokens(text[: turn_model.MAX_CHARS].lower())


def _context_group(group: str) -> Callable[[LabelledTurn], set[str]]:
    # The scorer's own context features (stream.core.turn_model), so a variant chosen here is
    # what the shipped model computes.
    return lambda turn: turn_model.context_features(
        turn.text, signal_data.context_of(turn), (group,)
    )


def ai_word_features(turn: LabelledTurn) -> set[str]:
    """The words of the AI agent's turn before: in the rated dialogues a customer's rating
    judges the agent's last answer as much as the customer's own words."""
    return {"a:" + word for word in _words(turn.previous_ai)}


def char_features(turn: LabelledTurn) -> set[str]:
    """Character 3- to 5-grams of each word, with its boundaries marked."""
    out: set[str] = set()
    for word in _words(turn.text):
        marked = f"<{word}>"
        for n in (3, 4, 5):
            out.update(f"c:{marked[i : i + n]}" for i in range(max(1, len(marked) - n + 1)))
    return out


EXTRAS: dict[str, Callable[[LabelledTurn], set[str]]] = {
    **{group: _context_group(group) for group in turn_model.CONTEXT_GROUPS},
    "chars": char_features,
    "aiwords": ai_word_features,
}


def features_of(turn: LabelledTurn, extras: Sequence[str] = ()) -> set[str]:
    signal = analyze_turn(turn.text, turn.previous_customer[-train_signal.REPEAT_LOOKBACK :])
    features = turn_model.turn_features(turn.text, signal)
    for extra in extras:
        features |= EXTRAS[extra](turn)
    return features


def summarise(
    scores: Sequence[float], labels: Sequence[bool], datasets: Sequence[str]
) -> dict[str, Any]:
    def of(names: Sequence[str]) -> tuple[list[float], list[bool]]:
        picked = [i for i, d in enumerate(datasets) if d in names]
        return [scores[i] for i in picked], [labels[i] for i in picked]

    chat = signal_cv.best_threshold(*of(CHAT_SETS))
    # The social point as training chooses it: the best tweet F1 at a false-positive rate no
    # higher than the chat point's (train_signal.choose_thresholds says why).
    chat_fpr = train_signal.false_positive_rate(*of(CHAT_SETS), chat)
    social = train_signal.social_point(*of(("tweets",)), chat_fpr)
    out: dict[str, Any] = {
        "chat_threshold": chat,
        "chat_false_positive_rate": round(chat_fpr, 4),
        "social_threshold": social,
        "social_threshold_best_f1": signal_cv.best_threshold(*of(("tweets",))),
    }
    for name in ("tweets", *CHAT_SETS):
        s, y = of((name,))
        point = social if name == "tweets" else chat
        out[name] = {
            "roc_auc": round(signal_cv.roc_auc(s, y), 4),
            "f1_at_point": round(signal_cv.f1_at(s, y, point), 4),
            "point": point,
        }
    return out


def fold_aucs(
    scores: Sequence[float], labels: Sequence[bool], datasets: Sequence[str], folds: Sequence[int]
) -> dict[str, list[float]]:
    """Each set's ROC AUC within each fold: the fold-to-fold spread a difference must beat."""
    out: dict[str, list[float]] = {}
    for name in ("tweets", *CHAT_SETS):
        out[name] = []
        for fold in range(signal_cv.FOLDS):
            picked = [i for i, d in enumerate(datasets) if d == name and folds[i] == fold]
            out[name].append(
                round(
                    signal_cv.roc_auc([scores[i] for i in picked], [labels[i] for i in picked]), 4
                )
            )
    return out


def against_shipped(variant: dict[str, Any], shipped: dict[str, Any]) -> dict[str, Any]:
    """Per set: the gain in out-of-fold ROC AUC over the shipped features, the shipped features'
    fold-to-fold standard deviation, the per-fold (paired) gains, and whether the gain is larger
    than that spread: the bar a variant must clear before it is worth shipping."""
    out: dict[str, Any] = {}
    for name in ("tweets", *CHAT_SETS):
        pairs = zip(variant["fold_roc_auc"][name], shipped["fold_roc_auc"][name], strict=True)
        # A fold without both classes of a set has no AUC (NaN): it is left out of the spread.
        paired = [v - b for v, b in pairs if math.isfinite(v - b)]
        spread = _sd([b for b in shipped["fold_roc_auc"][name] if math.isfinite(b)])
        gain = variant[name]["roc_auc"] - shipped[name]["roc_auc"]
        out[name] = {
            "roc_auc_gain": round(gain, 4),
            "shipped_fold_sd": round(spread, 4),
            "paired_fold_gains": [round(g, 4) for g in paired],
            "paired_mean": round(statistics.mean(paired), 4) if paired else None,
            "paired_sd": round(_sd(paired), 4),
            "beyond_spread": gain > spread,
        }
    return out


def _sd(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def policy_at(threshold: float) -> Policy:
    data = yaml.safe_load(Path(DEFAULT_POLICY_PATH).read_text(encoding="utf-8"))
    data["sentiment"]["turn_threshold"] = threshold
    return parse_policy(yaml.safe_dump(data))


def offered(dialogue: Dialogue, policy: Policy, model: turn_model.TurnModel) -> bool:
    customer = f"{dialogue.dataset}-{dialogue.key}"
    state = None
    for index, (role, text) in enumerate(dialogue.turns):
        event = MessageEvent(
            f"{customer}-{index}", customer, T0 + index * 1000, customer, f"m{index}", role, text
        )
        result = step(state, event, policy, model)
        state = result.state
        if any(hit.trigger == "sentiment" for d in result.decisions for hit in d.triggers):
            return True
    return False


def as_turn_model(
    fitted: signal_cv.Fitted, name: str, extras: Sequence[str]
) -> turn_model.TurnModel:
    return turn_model.TurnModel.from_dict(
        {
            "format": turn_model.FORMAT,
            "version": name,
            "bias": fitted.bias,
            "context": [e for e in extras if e in turn_model.CONTEXT_GROUPS],
            "weights": fitted.weights,
        }
    )


def rule_fires(
    dialogue: Dialogue,
    model: signal_cv.Fitted,
    extras: Sequence[str],
    threshold: float,
    policy: Policy,
) -> bool:
    """The sentiment rule on the turn signal alone: `min_turns` of the last `window_turns`
    customer turns at or above the threshold (the dialogues carry no upstream sentiment). As in
    `stream.core.triggers.sentiment`, a bare "no" right after an AI yes/no question never counts."""
    rules = policy.sentiment
    earlier: list[str] = []
    previous_ai = ""
    before = ("", "")
    flags: list[bool] = []
    for role, text in dialogue.turns:
        answer = before[0] == "ai_agent" and is_short_no(text) and asks_yes_no(before[1])
        before = (role, text)
        if role != "customer":
            previous_ai = text
            continue
        turn = LabelledTurn(
            dialogue.dataset, dialogue.key, dialogue.part, text, tuple(earlier), False, previous_ai
        )
        earlier.append(text)
        flags.append(not answer and model.probability(features_of(turn, extras)) >= threshold)
        if sum(flags[-rules.window_turns :]) >= rules.min_turns:
            return True
    return False


def rates_of(fired: dict[str, list[str]], sizes: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for group in ("low", "high"):
        trials, hits = sizes[group], len(fired[group])
        low, high = signal_cv.wilson(hits, trials)
        out[group] = {
            "dialogues": trials,
            "fired": hits,
            "rate": round(hits / trials, 4) if trials else None,
            "wilson95": [round(low, 4), round(high, 4)],
            "fired_keys": fired[group],
        }
    low_rate, high_rate = out["low"]["rate"], out["high"]["rate"]
    out["low_over_high"] = round(low_rate / high_rate, 2) if high_rate else None
    return out


def dialogue_level(
    models: Sequence[signal_cv.Fitted],
    extras: Sequence[str],
    threshold: float,
    replay: bool,
    root: Path = signal_data.DATA_ROOT,
) -> dict[str, Any]:
    """Low- vs high-rated training-portion dialogues where the rule fires, each dialogue judged
    by the fold model that did not train on it. `replay` also runs `stream.core.step` with the
    fold models (given the context groups among `extras`, as step passes them) as a check of the
    direct rule."""
    policy = policy_at(threshold)
    out: dict[str, Any] = {"threshold": threshold}
    for name in CHAT_SETS:
        dialogues = [d for d in signal_data.load_dialogues(name, root) if d.part != "test"]
        groups = {
            "low": [d for d in dialogues if signal_data.dissatisfied(d.overall)],
            "high": [d for d in dialogues if signal_data.satisfied(d.overall)],
        }
        sizes = {group: len(members) for group, members in groups.items()}
        direct = {
            group: [
                d.key
                for d in members
                if rule_fires(d, models[signal_cv.fold_of(name, d.key)], extras, threshold, policy)
            ]
            for group, members in groups.items()
        }
        out[name] = rates_of(direct, sizes)
        if replay:
            fold_models = [as_turn_model(m, f"cv-fold-{i}", extras) for i, m in enumerate(models)]
            replayed = {
                group: [
                    d.key
                    for d in members
                    if offered(d, policy, fold_models[signal_cv.fold_of(name, d.key)])
                ]
                for group, members in groups.items()
            }
            out[name]["replayed_through_step"] = rates_of(replayed, sizes)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--data", type=Path, default=signal_data.DATA_ROOT, help="shared data")
    parser.add_argument("--variants", nargs="*", help="only these variants (default: all)")
    args = parser.parse_args(argv)

    turns = [t for ts in signal_data.load_all(args.data).values() for t in ts if t.part != "test"]
    labels = [t.label for t in turns]
    datasets = [t.dataset for t in turns]
    folds = [signal_cv.fold_of(t.dataset, t.group) for t in turns]
    default = parse_policy(Path(DEFAULT_POLICY_PATH).read_text(encoding="utf-8"))
    result: dict[str, Any] = {
        "command": "make choose-signal",
        "shipped": SHIPPED,
        "chosen": CHOSEN,
        "read": "train and dev parts only; the test part is not read",
        "folds": signal_cv.FOLDS,
        "fold_salt": signal_cv.FOLD_SALT,
        "min_feature_count": train_signal.MIN_COUNT,
        "variants": {},
    }
    if args.variants and args.output.exists():
        # Rerunning some variants keeps the others' figures.
        result["variants"] = json.loads(args.output.read_text(encoding="utf-8"))["variants"]
    for name, variant in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        owners, features, row_weights, own_row = train_signal.training_rows(
            turns, variant.extras, variant.dropout, features_of
        )
        row_scores, models = signal_cv.out_of_fold(
            features,
            [labels[i] for i in owners],
            [datasets[i] for i in owners],
            [folds[i] for i in owners],
            c=variant.c,
            min_count=train_signal.MIN_COUNT,
            seed=train_signal.SEED,
            tweet_column=variant.tweet_column,
            tweet_weight=variant.tweet_weight,
            balanced=variant.balanced,
            shares=[train_signal.share_of(turns[i]) for i in owners] if variant.soft else None,
            row_weights=row_weights if variant.dropout else None,
        )
        scores = [row_scores[row] for row in own_row]
        summary = summarise(scores, labels, datasets)
        summary["settings"] = {
            "extras": list(variant.extras),
            "tweet_column": variant.tweet_column,
            "C": variant.c,
            "tweet_weight": variant.tweet_weight,
            "balanced": variant.balanced,
            "soft_labels": variant.soft,
            "context_dropout": variant.dropout,
        }
        summary["fold_roc_auc"] = fold_aucs(scores, labels, datasets, folds)
        shipped = result["variants"].get(SHIPPED, summary if name == SHIPPED else None)
        if shipped is not None and "fold_roc_auc" in shipped:
            summary["against_shipped"] = against_shipped(summary, shipped)
        summary["dialogue_level_at_cv_threshold"] = dialogue_level(
            models, variant.extras, summary["chat_threshold"], replay=False, root=args.data
        )
        if name == CHOSEN:
            point = default.sentiment.turn_threshold
            summary["f1_at_policy_threshold"] = {
                n: round(
                    signal_cv.f1_at(
                        [s for s, d in zip(scores, datasets, strict=True) if d == n],
                        [y for y, d in zip(labels, datasets, strict=True) if d == n],
                        point,
                    ),
                    4,
                )
                for n in CHAT_SETS
            }
            summary["dialogue_level_at_policy_threshold"] = dialogue_level(
                models, variant.extras, point, replay=True, root=args.data
            )
        result["variants"][name] = summary
        print(name, json.dumps(summary), flush=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
