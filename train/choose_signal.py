"""Compare the turn signal's variants by grouped cross-validation on the training portion.

`make choose-signal` (slow: FOLDS fits per variant). For each variant it gives, from out-of-fold
scores on the `train` and `dev` parts (never `test`): ROC AUC per set, and F1 per set at the chat
operating point chosen on those same out-of-fold scores (pooled ReDial + CCPE) and at the tweets'
own point, and the dialogue level at that point: the share of low- and high-rated training-portion
dialogues where the sentiment rule fires, each dialogue judged by the fold model that did not train
on it, with 95 % Wilson intervals. For the shipped features it also replays every such dialogue
through `stream.core.step` at the default policy's threshold; `bench/signals.py` adds the held-back
dialogues to those counts. Writes bench/results/signal_cv.json."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from stream.core import turn_model  # noqa: E402
from stream.core.events import MessageEvent  # noqa: E402
from stream.core.markers import analyze_turn  # noqa: E402
from stream.core.policy import DEFAULT_POLICY_PATH, Policy, parse_policy  # noqa: E402
from stream.core.step import step  # noqa: E402
from train import signal_cv, signal_data, train_signal  # noqa: E402
from train.signal_data import Dialogue, LabelledTurn  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "signal_cv.json"
CHAT_SETS = signal_data.USS_SETS
T0 = 1_700_000_000_000

# name -> (use the AI turn before, training-only tweet column, C)
VARIANTS: dict[str, tuple[bool, bool, float]] = {
    "shipped turn-signal-1 features (text, markers, lexicon, length, caps)": (False, False, 4.0),
    "+ AI turn kind and answer opener + training-only tweet column": (True, True, 4.0),
    "+ training-only tweet column": (False, True, 4.0),
    "+ AI turn kind and answer opener, no tweet column": (True, False, 4.0),
}
SHIPPED = "shipped turn-signal-1 features (text, markers, lexicon, length, caps)"

# The AI turn before: the last sentence with a question mark decides its kind.
_YES_NO_OPENERS = frozenset(
    ("have", "has", "had", "did", "do", "does", "are", "is", "was", "were", "would", "could")
    + ("can", "will", "should", "shall", "may", "might", "ever", "any")
)
_OPEN_OPENERS = frozenset(("what", "which", "who", "whom", "whose", "why", "how", "where", "when"))


def ai_turn_kind(previous_ai: str) -> str:
    """ "yn" (yes/no question), "wh" (open question), "q" (other question), "st" (no question)."""
    cut = previous_ai[-turn_model.MAX_CHARS :].lower()
    mark = cut.rfind("?")
    if mark < 0:
        return "st"
    start = max(cut.rfind(".", 0, mark), cut.rfind("!", 0, mark), cut.rfind("?", 0, mark))
    words = turn_model._tokens(cut[start + 1 : mark])
    if not words:
        return "q"
    if words[0] in _YES_NO_OPENERS:
        return "yn"
    if words[0] in _OPEN_OPENERS:
        return "wh"
    return "q"


def context_features(text: str, previous_ai: str) -> set[str]:
    """The kind of the AI turn before, and that kind crossed with the answer's first word."""
    if not previous_ai:
        return set()
    kind = ai_turn_kind(previous_ai)
    words = turn_model._tokens(text[: turn_model.MAX_CHARS].lower())
    return {f"ai:{kind}", f"x:{kind}:{words[0] if words else '$'}"}


def features_of(turn: LabelledTurn, context: bool) -> set[str]:
    signal = analyze_turn(turn.text, turn.previous_customer[-train_signal.REPEAT_LOOKBACK :])
    features = turn_model.turn_features(turn.text, signal)
    if context:
        features |= context_features(turn.text, turn.previous_ai)
    return features


def summarise(
    scores: Sequence[float], labels: Sequence[bool], datasets: Sequence[str]
) -> dict[str, Any]:
    def of(names: Sequence[str]) -> tuple[list[float], list[bool]]:
        picked = [i for i, d in enumerate(datasets) if d in names]
        return [scores[i] for i in picked], [labels[i] for i in picked]

    chat = signal_cv.best_threshold(*of(CHAT_SETS))
    social = signal_cv.best_threshold(*of(("tweets",)))
    out: dict[str, Any] = {"chat_threshold": chat, "social_threshold": social}
    for name in ("tweets", *CHAT_SETS):
        s, y = of((name,))
        point = social if name == "tweets" else chat
        out[name] = {
            "roc_auc": round(signal_cv.roc_auc(s, y), 4),
            "f1_at_point": round(signal_cv.f1_at(s, y, point), 4),
            "point": point,
        }
    return out


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


def as_turn_model(fitted: signal_cv.Fitted, name: str) -> turn_model.TurnModel:
    return turn_model.TurnModel.from_dict(
        {
            "format": turn_model.FORMAT,
            "version": name,
            "bias": fitted.bias,
            "weights": fitted.weights,
        }
    )


def rule_fires(
    dialogue: Dialogue, model: signal_cv.Fitted, context: bool, threshold: float, policy: Policy
) -> bool:
    """The sentiment rule on the turn signal alone: `min_turns` of the last `window_turns`
    customer turns at or above the threshold (the dialogues carry no upstream sentiment)."""
    rules = policy.sentiment
    earlier: list[str] = []
    previous_ai = ""
    flags: list[bool] = []
    for role, text in dialogue.turns:
        if role != "customer":
            previous_ai = text
            continue
        signal = analyze_turn(text, earlier[-train_signal.REPEAT_LOOKBACK :])
        earlier.append(text)
        features = turn_model.turn_features(text, signal)
        if context:
            features |= context_features(text, previous_ai)
        flags.append(model.probability(features) >= threshold)
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
    context: bool,
    threshold: float,
    replay: bool,
    root: Path = signal_data.DATA_ROOT,
) -> dict[str, Any]:
    """Low- vs high-rated training-portion dialogues where the rule fires, each dialogue judged
    by the fold model that did not train on it. `replay` also runs `stream.core.step` (shipped
    features only: step gives the model no context) as a check of the direct rule."""
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
                if rule_fires(d, models[signal_cv.fold_of(name, d.key)], context, threshold, policy)
            ]
            for group, members in groups.items()
        }
        out[name] = rates_of(direct, sizes)
        if replay:
            fold_models = [as_turn_model(m, f"cv-fold-{i}") for i, m in enumerate(models)]
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
        "read": "train and dev parts only; the test part is not read",
        "folds": signal_cv.FOLDS,
        "fold_salt": signal_cv.FOLD_SALT,
        "min_feature_count": train_signal.MIN_COUNT,
        "variants": {},
    }
    if args.variants and args.output.exists():
        # Rerunning some variants keeps the others' figures.
        result["variants"] = json.loads(args.output.read_text(encoding="utf-8"))["variants"]
    for name, (context, tweet_column, c) in VARIANTS.items():
        if args.variants and name not in args.variants:
            continue
        features = [features_of(t, context) for t in turns]
        scores, models = signal_cv.out_of_fold(
            features,
            labels,
            datasets,
            folds,
            c=c,
            min_count=train_signal.MIN_COUNT,
            seed=train_signal.SEED,
            tweet_column=tweet_column,
        )
        summary = summarise(scores, labels, datasets)
        summary["settings"] = {"context": context, "tweet_column": tweet_column, "C": c}
        summary["dialogue_level_at_cv_threshold"] = dialogue_level(
            models, context, summary["chat_threshold"], replay=False, root=args.data
        )
        if name == SHIPPED:
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
                models, context, point, replay=True, root=args.data
            )
        result["variants"][name] = summary
        print(name, json.dumps(summary), flush=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
