"""`make choose-signal` and `make signals` run end to end, on a small made-up data folder.

The real development sets are not read here: the held-back part is read only by a deliberate
`make signals`, and training on them is slow. The made-up folder has the same formats, so the
reports' code paths (cross-validation, dialogue replay through `step`, Wilson intervals, the
merge of both) are exercised and their counts checked.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from train import choose_signal, signal_cv

pytest.importorskip(
    "sklearn", reason="the training extras are not installed: pip install -e '.[train]'"
)

ANGRY = ["This is useless!!!", "No, I hated it.", "Still wrong. Terrible.", "I told you already"]
CALM = ["Thanks, that worked!", "Sounds great", "Yes please", "I loved that one", "Ok cool"]


def made_up_data(root: Path, seed: int = 3) -> None:
    rng = random.Random(seed)
    (root / "airline-sentiment").mkdir(parents=True)
    with (root / "airline-sentiment" / "tweets_dev.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["tweet_id", "text", "airline_sentiment"])
        writer.writeheader()
        for i in range(120):
            angry = rng.random() < 0.6
            text = rng.choice(ANGRY if angry else CALM) + f" #{i % 7}"
            writer.writerow(
                {
                    "tweet_id": str(i),
                    "text": text,
                    "airline_sentiment": "negative" if angry else "neutral",
                }
            )
    (root / "uss-dev").mkdir()
    for name in ("ReDial", "CCPE"):
        blocks = []
        for _ in range(60):
            low = rng.random() < 0.3
            lines = []
            for _ in range(4):
                lines.append("SYSTEM\tHave you seen it?\t\t")
                angry = rng.random() < (0.6 if low else 0.05)
                rating = "1,2,2" if angry else "4,4,3"
                lines.append(f"USER\t{rng.choice(ANGRY if angry else CALM)}\t\t{rating}")
            lines.append(f"USER\tOVERALL\t\t{'1,2,2' if low else '4,5,4'}")
            blocks.append("\n".join(lines))
        (root / "uss-dev" / f"{name}.txt").write_text("\n\n".join(blocks) + "\n")


def test_wilson_interval_brackets_the_share() -> None:
    low, high = signal_cv.wilson(4, 49)
    assert 0.03 < low < 4 / 49 < high < 0.2
    assert signal_cv.wilson(0, 10)[0] == 0.0 and signal_cv.wilson(0, 0) == (0.0, 0.0)


def test_folds_keep_a_dialogue_together_and_use_every_fold() -> None:
    assert signal_cv.fold_of("ReDial", "7") == signal_cv.fold_of("ReDial", "7")
    assert {signal_cv.fold_of("CCPE", str(k)) for k in range(100)} == set(range(signal_cv.FOLDS))


def test_choose_and_measure_run_end_to_end(tmp_path: Path) -> None:
    from bench import signals

    data = tmp_path / "data"
    made_up_data(data)
    cv_out = tmp_path / "signal_cv.json"
    chosen = choose_signal.CHOSEN
    assert (
        choose_signal.main(["--data", str(data), "--output", str(cv_out), "--variants", chosen])
        == 0
    )
    cv = json.loads(cv_out.read_text())
    assert cv["read"].startswith("train and dev parts only")
    variant = cv["variants"][chosen]
    # The made-up angry turns are easy: the out-of-fold AUC is far above chance.
    assert variant["CCPE"]["roc_auc"] > 0.8
    at_policy = variant["dialogue_level_at_policy_threshold"]
    for name in ("ReDial", "CCPE"):
        direct, replayed = at_policy[name], at_policy[name]["replayed_through_step"]
        assert direct["low"]["dialogues"] == replayed["low"]["dialogues"] > 0
        assert direct["low"]["fired"] == len(direct["low"]["fired_keys"])
        low, high = direct["low"]["wilson95"]
        assert low <= direct["low"]["rate"] <= high

    out = tmp_path / "signals.json"
    assert signals.main(["--data", str(data), "--cv", str(cv_out), "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    for name in ("ReDial", "CCPE"):
        merged = result["all_parts_dialogues"][name]["turn_signal_rule"]
        replayed = at_policy[name]["replayed_through_step"]
        for group in ("low", "high"):
            test_part = merged[group]["of_which_test_part"]
            assert (
                merged[group]["dialogues"] == replayed[group]["dialogues"] + test_part["dialogues"]
            )
            assert merged[group]["fired"] == replayed[group]["fired"] + test_part["fired"]


def test_a_variant_must_gain_more_than_the_fold_to_fold_spread() -> None:
    shipped = {
        "fold_roc_auc": {n: [0.70, 0.75, 0.80, 0.75, 0.75] for n in ("tweets", "ReDial", "CCPE")},
        **{n: {"roc_auc": 0.75} for n in ("tweets", "ReDial", "CCPE")},
    }
    small = {
        "fold_roc_auc": {n: [0.71, 0.76, 0.81, 0.76, 0.76] for n in ("tweets", "ReDial", "CCPE")},
        **{n: {"roc_auc": 0.76} for n in ("tweets", "ReDial", "CCPE")},
    }
    large = {
        "fold_roc_auc": {n: [0.80, 0.80, 0.85, 0.80, 0.80] for n in ("tweets", "ReDial", "CCPE")},
        **{n: {"roc_auc": 0.81} for n in ("tweets", "ReDial", "CCPE")},
    }
    spread = choose_signal.against_shipped(small, shipped)["ReDial"]
    # The folds' spread is 0.0354: a gain of 0.01 in every fold is consistent, but not beyond it.
    assert spread["shipped_fold_sd"] == 0.0354
    assert spread["paired_fold_gains"] == [0.01] * 5 and spread["paired_sd"] == 0.0
    assert spread["roc_auc_gain"] == 0.01 and not spread["beyond_spread"]
    assert choose_signal.against_shipped(large, shipped)["CCPE"]["beyond_spread"]
    # A fold without both classes (NaN) is left out, not allowed to poison the spread.
    shipped["fold_roc_auc"]["CCPE"][0] = float("nan")
    assert choose_signal.against_shipped(small, shipped)["CCPE"]["paired_fold_gains"] == [0.01] * 4


def test_the_direct_rule_count_skips_a_bare_no_to_a_yes_no_question_as_step_does() -> None:
    from train.signal_data import Dialogue

    def dialogue(answer: str) -> Dialogue:
        turns = (("ai_agent", "Have you seen Split?"), ("customer", answer)) * 3
        return Dialogue("CCPE", "1", "train", turns, (None, True) * 3, (1, 1, 2))

    everything_high = signal_cv.Fitted({}, 10.0, 0.0)
    policy = choose_signal.policy_at(0.5)
    as_model = choose_signal.as_turn_model(everything_high, "all-high", ())
    for answer, fires in (("No.", False), ("nope", False), ("No, that one was awful.", True)):
        assert choose_signal.rule_fires(dialogue(answer), everything_high, (), 0.5, policy) is fires
        assert choose_signal.offered(dialogue(answer), policy, as_model) is fires


def test_a_successor_is_set_against_turn_signal_2_on_auc_and_f1_fold_by_fold() -> None:
    names = ("tweets", "ReDial", "CCPE")
    base = {
        "fold_roc_auc": {n: [0.80, 0.82, 0.84, 0.82, 0.82] for n in names},
        "fold_f1": {n: [0.20, 0.30, 0.25, 0.25, 0.25] for n in names},
        **{n: {"roc_auc": 0.82, "f1_at_point": 0.25} for n in names},
    }
    variant = {
        "fold_roc_auc": {n: [0.81, 0.83, 0.85, 0.83, 0.81] for n in names},
        "fold_f1": {n: [0.30, 0.35, 0.30, 0.30, 0.24] for n in names},
        **{n: {"roc_auc": 0.826, "f1_at_point": 0.298} for n in names},
    }
    against = choose_signal.against_turn_signal_2(variant, base)
    auc, f1 = against["roc_auc"]["CCPE"], against["f1_at_point"]["CCPE"]
    # AUC: +0.006 against a spread of 0.0141, four folds of five gaining: not beyond it.
    assert (auc["gain"], auc["turn_signal_2_fold_sd"], auc["folds_gaining"]) == (0.006, 0.0141, 4)
    assert not auc["beyond_spread"]
    # F1: +0.048 against a spread of 0.0354: beyond it.
    assert (f1["gain"], f1["turn_signal_2_fold_sd"], f1["beyond_spread"]) == (0.048, 0.0354, True)
    assert f1["paired_fold_gains"] == [0.1, 0.05, 0.05, 0.05, -0.01]


def test_a_domain_copy_adds_its_weight_without_counting_as_another_feature() -> None:
    from train import train_signal
    from train.signal_data import LabelledTurn

    tweet = LabelledTurn("tweets", "1", "train", "late again", (), True)
    chat = LabelledTurn("ReDial", "2", "train", "late again", ("hi",), True, "Have you seen it?")
    extras = ("ai", "domains")
    tweet_features = choose_signal.features_of(tweet, extras)
    chat_features = choose_signal.features_of(chat, extras)
    own = choose_signal.features_of(tweet, ())
    assert tweet_features == own | {"@t|" + name for name in own}
    # The context groups stay shared: only dialogues have a context, and it has no copy.
    assert {"ai:yn", "x:yn:late"} <= chat_features
    assert not any(name.startswith("@d|ai:") or name.startswith("@d|x:") for name in chat_features)
    assert {"w:late", "@d|w:late"} <= chat_features and "@t|w:late" not in chat_features
    # The scale is 1/sqrt(the turn's own count): a copy is the same feature seen again.
    fitted = signal_cv.Fitted({"w:late": 1.0, "@t|w:late": 2.0}, 0.0, 0.0)
    assert fitted.margin({"w:late", "@t|w:late"}) == 3.0
    assert signal_cv.norm_count(tweet_features) == len(own)
    assert train_signal.domain_of(tweet) == "tweet" and train_signal.domain_of(chat) == "dialogue"


def test_product_checks_count_the_fold_models_on_the_expected_side() -> None:
    checks = [
        {"text": "useless", "context": "first turn", "counts": True, "scores": [0.5, 0.3, 0.6]},
        {"text": "thanks", "context": "first turn", "counts": False, "scores": [0.1, 0.1, 0.45]},
    ]
    summary = choose_signal.summarise_checks(checks, 0.45)
    assert [c["fold_models_right"] for c in summary["checks"]] == [2, 2]
    # Fold 0 is right on both; fold 1 misses the complaint, fold 2 counts the thanks.
    assert summary["fold_models_right_on_every_check"] == 1


def test_a_tweet_s_soft_label_is_its_annotators_share_of_negative() -> None:
    from train.signal_data import _negative_share

    row = {"airline_sentiment": "negative", "airline_sentiment_confidence": "0.7"}
    assert _negative_share(row) == 0.7
    assert _negative_share({**row, "airline_sentiment": "neutral"}) == pytest.approx(0.15)
    assert _negative_share({**row, "airline_sentiment_confidence": ""}) is None
    assert _negative_share({"airline_sentiment": "negative"}) is None
    assert _negative_share({**row, "airline_sentiment_confidence": "1.5"}) is None
