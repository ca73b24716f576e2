"""The frustration signal measured on every labelled development set, against its baselines.

For tweets_dev.csv (negative vs not) and the uss-dev dialogues ReDial and CCPE (dissatisfied user
turn: most raters gave 1-2), on the held-back `test` part of the fixed split of
`train/signal_data.py`, which no training, model choice or threshold read:

- turn level: precision, recall, F1 and ROC AUC of the learned turn signal at the default
  policy's threshold for the set's channel (tweets: `social`; dialogues: chat), the former rule
  verdict (markers + lexicon, `markers.analyze`), VADER at its
  standard cut (compound <= -0.05) and at its best cut (chosen on the train+dev parts), and the
  trivial all-positive and base-rate baselines;
- dialogue level: how often the sentiment rule offers a transfer in dialogues rated low overall
  (most raters 1-2) vs high overall (most 4-5), replayed through `stream.core.step` with the
  default policy, beside the former marker-count rule and "any negative turn".

The same figures on the `dev` part are kept too, marked as the part the choices were made on.
The dialogue level over every dialogue judges each one with a model that did not train on it: the
held-back ones with the shipped model, the others with the grouped cross-validation fold model
that left them out (`make choose-signal`, bench/results/signal_cv.json).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import platform
import shlex
import sys
import timeit
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # noqa: E402

from stream.core import markers, turn_model  # noqa: E402
from stream.core.events import MessageEvent  # noqa: E402
from stream.core.policy import Policy, default_policy  # noqa: E402
from stream.core.step import SHIPPED_MODEL, step  # noqa: E402
from train import choose_signal, signal_cv, signal_data  # noqa: E402
from train.signal_data import Dialogue, LabelledTurn  # noqa: E402

DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "signals.json"
CV_RESULTS = REPO_ROOT / "bench" / "results" / "signal_cv.json"
COST_OUTPUT = REPO_ROOT / "bench" / "results" / "signal_cost.json"
# The standard VADER cut for "negative".
VADER_NEGATIVE_AT = -0.05
# The former sentiment rule: 2+ markers of these kinds in the customer's last 3 turns.
FORMER_KINDS = frozenset({"frustration", "clarification", "hostile_short", "repeat_question"})
FORMER_MIN_MARKERS = 2
REPEAT_LOOKBACK = 5
TIMING_TURNS = 2000
TIMING_REPEATS = 5
T0 = 1_700_000_000_000


# --- measures ----------------------------------------------------------------------------------


def prf(predicted: Sequence[bool], gold: Sequence[bool]) -> dict[str, float | int]:
    tp = sum(p and g for p, g in zip(predicted, gold, strict=True))
    fp = sum(p and not g for p, g in zip(predicted, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predicted, gold, strict=True))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def roc_auc(scores: Sequence[float], gold: Sequence[bool]) -> float:
    """ROC AUC rounded for the report (signal_cv.roc_auc: ties count half)."""
    return round(signal_cv.roc_auc(scores, gold), 4)


def best_cut(scores: Sequence[float], gold: Sequence[bool]) -> float:
    """The cut `score >= cut` with the best F1 (scores oriented so that high = positive)."""
    cuts = sorted(set(scores))
    pairs = sorted(zip(scores, gold, strict=True), reverse=True)
    positives = sum(gold)
    best = (-1.0, cuts[-1])
    tp = predicted = 0
    index = 0
    for cut in reversed(cuts):
        while index < len(pairs) and pairs[index][0] >= cut:
            predicted += 1
            tp += pairs[index][1]
            index += 1
        f1 = 2 * tp / (predicted + positives) if tp else 0.0
        if f1 > best[0]:
            best = (f1, cut)
    return best[1]


def trivial(gold: Sequence[bool]) -> dict[str, Any]:
    rate = sum(gold) / len(gold)
    return {
        "all_positive": {
            "precision": round(rate, 4),
            "recall": 1.0,
            "f1": round(2 * rate / (1 + rate), 4),
            "roc_auc": 0.5,
        },
        # Flags a random share of turns equal to the base rate: expected values.
        "base_rate_random": {
            "precision": round(rate, 4),
            "recall": round(rate, 4),
            "f1": round(rate, 4),
            "roc_auc": 0.5,
        },
    }


# --- turn level --------------------------------------------------------------------------------


class Scored:
    """Every detector's score of one set's turns (high = more negative / dissatisfied)."""

    def __init__(self, turns: Sequence[LabelledTurn], vader: SentimentIntensityAnalyzer) -> None:
        self.gold = [t.label for t in turns]
        self.parts = [t.part for t in turns]
        signals = [
            markers.analyze_turn(t.text, t.previous_customer[-REPEAT_LOOKBACK:]) for t in turns
        ]
        self.model = [
            round(SHIPPED_MODEL.score(t.text, s, signal_data.context_of(t)), 4)
            for t, s in zip(turns, signals, strict=True)
        ]
        self.former_verdict = [s.negative for s in signals]
        self.former_score = [-s.score for s in signals]
        self.vader = [-vader.polarity_scores(t.text)["compound"] for t in turns]

    def take(self, values: Sequence[Any], parts: frozenset[str]) -> list[Any]:
        return [v for v, p in zip(values, self.parts, strict=True) if p in parts]


def turn_report(scored: Scored, part: str, threshold: float) -> dict[str, Any]:
    only = frozenset({part})
    gold = scored.take(scored.gold, only)
    model = scored.take(scored.model, only)
    vader = scored.take(scored.vader, only)
    former = scored.take(scored.former_score, only)
    # VADER's best cut is chosen where the model's choices were made, never on the reported part.
    fitted = frozenset({"train", "dev"})
    cut = best_cut(scored.take(scored.vader, fitted), scored.take(scored.gold, fitted))
    return {
        "n": len(gold),
        "positives": sum(gold),
        "base_rate": round(sum(gold) / len(gold), 4),
        "turn_signal_at_policy_threshold": {
            "threshold": threshold,
            **prf([s >= threshold for s in model], gold),
            "roc_auc": roc_auc(model, gold),
        },
        "former_rule_verdict": {
            **prf(scored.take(scored.former_verdict, only), gold),
            "roc_auc": roc_auc(former, gold),
        },
        "vader_standard_cut": {
            "cut": f"compound <= {VADER_NEGATIVE_AT}",
            **prf([v >= -VADER_NEGATIVE_AT for v in vader], gold),
            "roc_auc": roc_auc(vader, gold),
        },
        "vader_best_cut": {
            "cut": f"compound <= {-cut:.4f} (best F1 on train+dev)",
            **prf([v >= cut for v in vader], gold),
            "roc_auc": roc_auc(vader, gold),
        },
        **trivial(gold),
    }


# --- dialogue level ----------------------------------------------------------------------------


def offered_by_policy(dialogue: Dialogue, policy: Policy) -> bool:
    """Whether the sentiment rule fires anywhere in the dialogue, replayed through `step`."""
    customer = f"{dialogue.dataset}-{dialogue.key}"
    state = None
    for index, (role, text) in enumerate(dialogue.turns):
        event = MessageEvent(
            f"{customer}-{index}", customer, T0 + index * 1000, customer, f"m{index}", role, text
        )
        result = step(state, event, policy)
        state = result.state
        if any(hit.trigger == "sentiment" for d in result.decisions for hit in d.triggers):
            return True
    return False


def former_rule_and_any_negative(dialogue: Dialogue) -> tuple[bool, bool]:
    """The former marker-count rule, and "any negative turn" by the former verdict."""
    earlier: list[str] = []
    window: list[int] = []
    fired = negative = False
    for role, text in dialogue.turns:
        if role != "customer":
            continue
        signal = markers.analyze_turn(text, earlier[-REPEAT_LOOKBACK:])
        earlier.append(text)
        negative = negative or signal.negative
        window = [*window[-2:], sum(m.kind in FORMER_KINDS for m in signal.markers)]
        fired = fired or sum(window) >= FORMER_MIN_MARKERS
    return fired, negative


def dialogue_report(dialogues: Sequence[Dialogue], part: str, policy: Policy) -> dict[str, Any]:
    """Firing rates in low vs high rated dialogues of one part ("all": every part)."""
    chosen = [d for d in dialogues if part in ("all", d.part)]
    groups = {
        "low": [d for d in chosen if signal_data.dissatisfied(d.overall)],
        "high": [d for d in chosen if signal_data.satisfied(d.overall)],
    }
    out: dict[str, Any] = {}
    for name, detector in (
        ("turn_signal_rule", lambda d: offered_by_policy(d, policy)),
        ("former_marker_rule", lambda d: former_rule_and_any_negative(d)[0]),
        ("any_negative_turn", lambda d: former_rule_and_any_negative(d)[1]),
    ):
        rates: dict[str, Any] = {}
        for group, members in groups.items():
            fired = sum(detector(d) for d in members)
            rates[group] = {
                "dialogues": len(members),
                "fired": fired,
                "rate": round(fired / len(members), 4) if members else None,
            }
        low, high = rates["low"]["rate"], rates["high"]["rate"]
        rates["low_over_high"] = round(low / high, 2) if low is not None and high else None
        out[name] = rates
    return out


def unseen_dialogue_report(
    dialogues: Sequence[Dialogue], policy: Policy, cv: dict[str, Any]
) -> dict[str, Any]:
    """Every dialogue, each judged with a model that did not train on it.

    The held-back (`test`) dialogues are replayed here with the shipped model; the training
    portion's come from `train/choose_signal.py`, which replayed each through `step` with the
    cross-validation fold model that left it out, at the policy's threshold
    (bench/results/signal_cv.json).
    """
    name = dialogues[0].dataset
    folded = cv["variants"][choose_signal.CHOSEN]["dialogue_level_at_policy_threshold"]
    if folded["threshold"] != policy.sentiment.turn_threshold:
        raise SystemExit(
            f"signal_cv.json was made at threshold {folded['threshold']}, the policy has "
            f"{policy.sentiment.turn_threshold}: rerun `make choose-signal`"
        )
    replayed = folded[name]["replayed_through_step"]
    out: dict[str, Any] = {}
    for group, member in (("low", signal_data.dissatisfied), ("high", signal_data.satisfied)):
        members = [d for d in dialogues if member(d.overall)]
        held_back = [d for d in members if d.part == "test"]
        if replayed[group]["dialogues"] + len(held_back) != len(members):
            raise SystemExit(f"signal_cv.json does not cover the {name} dialogues: rerun it")
        fired_test = sum(offered_by_policy(d, policy) for d in held_back)
        fired = fired_test + replayed[group]["fired"]
        low, high = signal_cv.wilson(fired, len(members))
        out[group] = {
            "dialogues": len(members),
            "fired": fired,
            "rate": round(fired / len(members), 4) if members else None,
            "wilson95": [round(low, 4), round(high, 4)],
            "of_which_test_part": {"dialogues": len(held_back), "fired": fired_test},
        }
    low_rate, high_rate = out["low"]["rate"], out["high"]["rate"]
    out["low_over_high"] = (
        round(low_rate / high_rate, 2) if low_rate is not None and high_rate else None
    )
    return out


# --- cost --------------------------------------------------------------------------------------


def us_per_call(function: Callable[[], object], count: int) -> float:
    function()  # warm caches and lazy imports before timing
    best = min(timeit.repeat(function, number=1, repeat=TIMING_REPEATS))
    return round(best / count * 1e6, 2)


def kept_context(turn: LabelledTurn) -> turn_model.TurnContext:
    """The context `step` builds from the state for this turn: the texts before it, and the
    previous customer turn's marker kinds and lexicon score as `step` analysed and kept them
    when it folded that turn (stream/core/step.py, `_kept_lexicon`, `_carried`)."""
    context = signal_data.context_of(turn)
    earlier = turn.previous_customer
    if not earlier:
        return context
    before = earlier[-1 - REPEAT_LOOKBACK : -1]
    limit = turn_model.PREVIOUS_MAX_CHARS
    if any(len(text) > limit for text in (earlier[-1], *before)):
        return context  # step keeps no score then: the scorer analyses the texts
    signal = markers.analyze_turn(earlier[-1], before)
    kinds = tuple(marker.kind for marker in signal.markers)
    return dataclasses.replace(context, previous_signal=(kinds, signal.score))


def timing(turns: Sequence[LabelledTurn], vader: SentimentIntensityAnalyzer) -> dict[str, Any]:
    sample = list(turns[:TIMING_TURNS])
    signals = [markers.analyze(t.text) for t in sample]
    from_texts = [signal_data.context_of(t) for t in sample]
    from_state = [kept_context(t) for t in sample]

    def scorer(contexts: Sequence[turn_model.TurnContext], analysed: bool) -> Callable[[], None]:
        def run() -> None:
            # Every turn comes with a new context, so the scorer's caches are cold as in `step`;
            # `analysed` leaves the earlier turns' markers in analyze_turn's cache (where `step`
            # left them when it analysed those turns, if nothing evicted them since).
            turn_model.clear_caches()
            if not analysed:
                markers._analyze_turn.cache_clear()
            for t, s, c in zip(sample, signals, contexts, strict=True):
                SHIPPED_MODEL.score(t.text, s, c)

        return run

    def rules() -> None:
        for t in sample:
            markers.analyze(t.text)

    def plain_vader() -> None:
        for t in sample:
            vader.polarity_scores(t.text)

    huge = "why " * 250_000
    huge_signal = markers.analyze(huge[: turn_model.MAX_CHARS])
    load_before = os.getloadavg()
    figures = {
        "turns": len(sample),
        "with_context": sum(c != turn_model.NO_CONTEXT for c in from_texts),
        "mean_chars": round(sum(len(t.text) for t in sample) / len(sample), 1),
        "repeats_best_of": TIMING_REPEATS,
        "with_kept_previous_signal": sum(c.previous_signal is not None for c in from_state),
        # What `step` pays: the previous turn's signal from the state.
        "turn_signal_model_us_per_turn": us_per_call(scorer(from_state, True), len(sample)),
        # The same with every cache cleared (a busy worker between two turns of one customer,
        # a restart): what a worker sees at worst.
        "turn_signal_model_us_per_turn_previous_turn_uncached": us_per_call(
            scorer(from_state, False), len(sample)
        ),
        # The context from texts (training; a state stored by codec version 2, once): the
        # previous turn analysed again, from analyze_turn's cache or not.
        "turn_signal_model_us_per_turn_context_from_texts": us_per_call(
            scorer(from_texts, True), len(sample)
        ),
        "turn_signal_model_us_per_turn_context_from_texts_uncached": us_per_call(
            scorer(from_texts, False), len(sample)
        ),
        "markers_analyze_us_per_turn": us_per_call(rules, len(sample)),
        "vader_polarity_scores_us_per_turn": us_per_call(plain_vader, len(sample)),
        "turn_signal_model_us_for_1MB_text": us_per_call(
            lambda: SHIPPED_MODEL.score(huge, huge_signal), 1
        ),
    }
    figures["load_average_1min_before_after"] = [
        round(load_before[0], 2),
        round(os.getloadavg()[0], 2),
    ]
    figures["cpu_count"] = os.cpu_count()
    return figures


# --- report ------------------------------------------------------------------------------------


def evaluate(root: Path, cv_results: Path = CV_RESULTS) -> dict[str, Any]:
    policy = default_policy()
    rules = policy.sentiment
    # The operating point each set is judged at: tweets are the `social` channel, dialogues chat.
    channels = {"tweets": "social", "ReDial": "chat", "CCPE": "chat"}
    thresholds = {
        name: rules.turn_threshold_by_channel.get(channel, rules.turn_threshold)
        for name, channel in channels.items()
    }
    vader = SentimentIntensityAnalyzer()
    sets = signal_data.load_all(root)
    scored = {name: Scored(turns, vader) for name, turns in sets.items()}
    dialogues = {name: signal_data.load_dialogues(name, root) for name in signal_data.USS_SETS}
    result: dict[str, Any] = {"model": SHIPPED_MODEL.version, "policy": policy.version}
    for part in ("test", "dev"):
        result[part] = {
            "turns": {name: turn_report(scored[name], part, thresholds[name]) for name in sets},
            "dialogues": {
                name: dialogue_report(dialogues[name], part, policy) for name in dialogues
            },
        }
    # Every dialogue, for counts less tiny than the test part's: the former rules over all parts,
    # and the turn signal rule with each dialogue judged by a model that did not train on it.
    result["all_parts_dialogues"] = {
        name: dialogue_report(dialogues[name], "all", policy) for name in dialogues
    }
    cv = json.loads(cv_results.read_text(encoding="utf-8"))
    for name in dialogues:
        result["all_parts_dialogues"][name]["turn_signal_rule"] = unseen_dialogue_report(
            dialogues[name], policy, cv
        )
    result["test"]["note"] = "held back: read by nothing but this report"
    result["dev"]["note"] = (
        "part of the training portion turn-signal-2 was fitted on (train + dev): in-sample"
    )
    result["timing"] = timing([t for turns in sets.values() for t in turns[:700]], vader)
    return result


def print_dialogues(title: str, report: dict[str, Any]) -> None:
    print(f"\n{title}: share of low / high rated dialogues where the rule fires")
    for rule, rates in report.items():
        low, high = rates["low"], rates["high"]
        print(
            f"  {rule:22} low {low['fired']}/{low['dialogues']} = {low['rate']}  "
            f"high {high['fired']}/{high['dialogues']} = {high['rate']}  "
            f"low/high {rates['low_over_high']}"
            + (
                f"  (Wilson 95 %: low {low['wilson95']}, high {high['wilson95']})"
                if "wilson95" in low
                else ""
            )
        )


def print_tables(result: dict[str, Any]) -> None:
    test = result["test"]
    rows = (
        ("turn signal @ policy threshold", "turn_signal_at_policy_threshold"),
        ("former rule verdict", "former_rule_verdict"),
        ("VADER compound <= -0.05", "vader_standard_cut"),
        ("VADER best cut (train+dev)", "vader_best_cut"),
        ("all positive", "all_positive"),
        ("base-rate random", "base_rate_random"),
    )
    for name, report in test["turns"].items():
        print(f"\n{name} (test part: n={report['n']}, positives={report['positives']})")
        print(f"  {'detector':34} {'P':>6} {'R':>6} {'F1':>6} {'AUC':>6}")
        for label, key in rows:
            r = report[key]
            print(
                f"  {label:34} {r['precision']:6.3f} {r['recall']:6.3f} {r['f1']:6.3f} "
                f"{r['roc_auc']:6.3f}"
            )
    for title, reports in (
        ("test part", test["dialogues"]),
        (
            "all parts; turn signal rule: each dialogue by a model that did not train on it",
            result["all_parts_dialogues"],
        ),
    ):
        for name, report in reports.items():
            print_dialogues(f"{name} dialogues ({title})", report)
    t = result["timing"]
    print(
        f"\nµs per turn: turn signal {t['turn_signal_model_us_per_turn']} + markers "
        f"{t['markers_analyze_us_per_turn']} | VADER {t['vader_polarity_scores_us_per_turn']} | "
        f"1 MB text {t['turn_signal_model_us_for_1MB_text']}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=signal_data.DATA_ROOT, help="the shared data folder"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="results JSON")
    parser.add_argument(
        "--cv", type=Path, default=CV_RESULTS, help="`make choose-signal`'s results"
    )
    parser.add_argument(
        "--cost-only",
        action="store_true",
        help="only time the scorer, on training-portion turns (reads no held-back label)",
    )
    args = parser.parse_args(argv)

    if args.cost_only:
        # As the full report times them: 700 turns of each set, here of its training portion.
        turns = [
            t
            for ts in signal_data.load_all(args.data).values()
            for t in [u for u in ts if u.part != "test"][:700]
        ]
        figures = timing(turns, SentimentIntensityAnalyzer())
        figures["model"] = SHIPPED_MODEL.version
        figures["command"] = "python bench/signals.py --cost-only"
        figures["date_utc"] = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        COST_OUTPUT.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(figures, indent=2))
        return 0

    result = evaluate(args.data, args.cv)
    executable = Path(sys.executable)
    shown = (
        os.path.relpath(executable, Path.cwd())
        if executable.is_relative_to(REPO_ROOT)
        else "python"
    )
    weights = Path(turn_model.__file__).parent.parent / "models" / f"{SHIPPED_MODEL.version}.json"
    result["run"] = {
        "command": shlex.join([shown, *sys.argv]) if argv is None else None,
        "cwd": os.path.relpath(Path.cwd(), REPO_ROOT),
        "data": str(args.data),
        "date_utc": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "python": platform.python_version(),
        "vaderSentiment": metadata.version("vaderSentiment"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "weights_sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "markers_py_sha256": hashlib.sha256(Path(markers.__file__).read_bytes()).hexdigest(),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_tables(result)
    print(f"\nwrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
