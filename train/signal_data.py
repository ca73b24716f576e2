"""The labelled development sets as customer turns with context, and their fixed three-way split.

Every quality figure of the turn signal is computed on the `test` part, which neither training nor
model choice nor the threshold ever reads: `train` fits the weights, `dev` chooses the features,
the regularisation and the policy's operating point. The split is a hash of a stable key (the tweet
id; the dialogue's position in its file), not a random draw, so it is the same on every machine and
does not move when the training seed does.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stream.core.turn_model import CONTEXT_TURNS, TurnContext
from stream.settings import Settings

Part = Literal["train", "dev", "test"]
SPLIT_SALT = "escalation-stream/turn-signal/split-v1"
# Share of keys (percent) in train and dev; the rest is the held-back test part.
TRAIN_PERCENT = 60
DEV_PERCENT = 20

# The shared data sets (ESCALATION_DATASETS_DIR, by default ../shared/data beside the repository).
DATA_ROOT = Settings().datasets_dir
TWEETS = Path("airline-sentiment") / "tweets_dev.csv"
USS_SETS = ("ReDial", "CCPE")


def part_of(dataset: str, key: str) -> Part:
    digest = hashlib.sha256(f"{SPLIT_SALT}:{dataset}:{key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % 100
    if bucket < TRAIN_PERCENT:
        return "train"
    if bucket < TRAIN_PERCENT + DEV_PERCENT:
        return "dev"
    return "test"


@dataclass(frozen=True, slots=True)
class LabelledTurn:
    """One customer turn with the context the decision core has when it scores it."""

    dataset: str
    group: str  # the dialogue (or tweet) the turn belongs to; the split is by group
    part: Part
    text: str
    previous_customer: tuple[str, ...]  # the customer's earlier turns, oldest first
    label: bool  # dissatisfied (dialogues) / negative (tweets)
    previous_ai: str = ""  # the AI agent's last turn before this one ("" when there is none)
    # Share of raters who gave 1 or 2 (dialogues); the label itself for tweets.
    share: float | None = None
    # Tweets: the share of annotators who judged it negative, as far as the data tell it (the
    # confidence of the majority class; when that class is not negative, half of the rest).
    tweet_share: float | None = None


@dataclass(frozen=True, slots=True)
class Dialogue:
    """A rated task dialogue: its turns in order, and the rating of the whole dialogue."""

    dataset: str
    key: str
    part: Part
    turns: tuple[tuple[str, str], ...]  # (role "customer" | "ai_agent", text)
    turn_labels: tuple[bool | None, ...]  # per turn: dissatisfied (customer turns) or None
    overall: tuple[int, ...]  # the raters' scores of the whole dialogue
    # per turn: share of raters who gave 1 or 2 (rated customer turns) or None
    turn_shares: tuple[float | None, ...] = ()


def dissatisfied(ratings: Sequence[int]) -> bool:
    """Most raters (more than half) gave 1 or 2."""
    return sum(r <= 2 for r in ratings) * 2 > len(ratings)


def satisfied(ratings: Sequence[int]) -> bool:
    """Most raters (more than half) gave 4 or 5."""
    return sum(r >= 4 for r in ratings) * 2 > len(ratings)


def _negative_share(row: dict[str, str]) -> float | None:
    try:
        confidence = float(row["airline_sentiment_confidence"])
    except (KeyError, ValueError):
        return None
    if not 0.0 <= confidence <= 1.0:
        return None
    return confidence if row["airline_sentiment"] == "negative" else (1.0 - confidence) / 2


def load_tweets(root: Path = DATA_ROOT) -> list[LabelledTurn]:
    with (root / TWEETS).open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [
        LabelledTurn(
            dataset="tweets",
            group=row["tweet_id"],
            part=part_of("tweets", row["tweet_id"]),
            text=row["text"],
            previous_customer=(),
            label=row["airline_sentiment"] == "negative",
            tweet_share=_negative_share(row),
        )
        for row in rows
    ]


def _blocks(path: Path) -> Iterator[list[list[str]]]:
    block: list[list[str]] = []
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            line = line.rstrip("\n")
            if not line.strip():
                if block:
                    yield block
                block = []
                continue
            block.append(line.split("\t"))
    if block:
        yield block


def load_dialogues(name: str, root: Path = DATA_ROOT) -> list[Dialogue]:
    """ReDial or CCPE: `ROLE\\tTEXT\\tACTION\\tSAT1,SAT2,...`, a blank line between dialogues."""
    dialogues: list[Dialogue] = []
    for number, block in enumerate(_blocks(root / "uss-dev" / f"{name}.txt")):
        turns: list[tuple[str, str]] = []
        labels: list[bool | None] = []
        shares: list[float | None] = []
        overall: tuple[int, ...] = ()
        for fields in block:
            role, text = fields[0], fields[1]
            ratings = tuple(int(r) for r in fields[3].split(",")) if fields[3] else ()
            if role == "USER" and text == "OVERALL":
                overall = ratings
                continue
            if role == "USER":
                turns.append(("customer", text))
                labels.append(dissatisfied(ratings) if ratings else None)
                shares.append(sum(r <= 2 for r in ratings) / len(ratings) if ratings else None)
            else:
                turns.append(("ai_agent", text))
                labels.append(None)
                shares.append(None)
        key = str(number)
        dialogues.append(
            Dialogue(
                name, key, part_of(name, key), tuple(turns), tuple(labels), overall, tuple(shares)
            )
        )
    return dialogues


def dialogue_turns(dialogue: Dialogue) -> list[LabelledTurn]:
    """The rated customer turns of a dialogue, each with the context before it."""
    out: list[LabelledTurn] = []
    previous_customer: list[str] = []
    previous_ai = ""
    for (role, text), label, share in zip(
        dialogue.turns, dialogue.turn_labels, dialogue.turn_shares, strict=True
    ):
        if role == "ai_agent":
            previous_ai = text
            continue
        if label is not None:
            out.append(
                LabelledTurn(
                    dataset=dialogue.dataset,
                    group=dialogue.key,
                    part=dialogue.part,
                    text=text,
                    previous_customer=tuple(previous_customer),
                    label=label,
                    previous_ai=previous_ai,
                    share=share,
                )
            )
        previous_customer.append(text)
    return out


def context_of(turn: LabelledTurn) -> TurnContext:
    """The context `stream.core.step` passes the turn model, from a labelled turn."""
    return TurnContext(
        turn.previous_ai, turn.previous_customer[-CONTEXT_TURNS:], len(turn.previous_customer)
    )


def load_all(root: Path = DATA_ROOT) -> dict[str, list[LabelledTurn]]:
    """Every labelled turn, by data set: tweets, ReDial, CCPE."""
    sets: dict[str, list[LabelledTurn]] = {"tweets": load_tweets(root)}
    for name in USS_SETS:
        sets[name] = [t for d in load_dialogues(name, root) for t in dialogue_turns(d)]
    return sets
