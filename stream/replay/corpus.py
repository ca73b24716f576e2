"""The real airline conversations (the twcs corpus): reading them, and their ticket category."""

from __future__ import annotations

import bz2
import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from stream.command_io import input_file
from stream.errors import BadInputError

CATEGORIES: Final[tuple[str, ...]] = ("billing", "baggage", "account", "delay", "booking", "other")
_COLUMNS: Final[tuple[str, ...]] = ("first_tweet_id", "first_utterance", "context")

# Tags of the annotated subset that name one of our categories; the other tags (in-flight
# entertainment, terminal operations, ...) fall through to the keyword rules.
_TAG_CATEGORY: Final[dict[str, str]] = {
    "DELAY": "delay",
    "BAGGAGE": "baggage",
    "BOOKFLT": "booking",
    "CHGFLT": "booking",
    "CHECKIN": "booking",
    "REWARDS": "account",
}

# Matched on the lowercased first turn; the first category that matches wins, so a refund for a
# delayed flight is billing, not delay.
_KEYWORDS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (category, re.compile(r"\b(?:" + pattern + r")"))
    for category, pattern in (
        (
            "billing",
            r"refund|reimburs|charged?\b|charges|overcharg|fees?\b|money back|compensat|voucher"
            r"|credit card|billing|paid\b|double.?charg",
        ),
        ("baggage", r"bags?\b|baggage|luggage|suitcase|carry.?on|stroller|lost and found"),
        (
            "account",
            r"account|miles\b|mileage|points\b|skymiles|aadvantage|password|log.?in\b|e-?mail"
            r"|profile|frequent flyer|membership|rewards?\b|medallion|status match",
        ),
        (
            "delay",
            r"delay|late\b|cancell?ed|cancell?ation|missed (?:my )?connect|diverted|stuck"
            r"|on the tarmac|gate change|still waiting",
        ),
        (
            "booking",
            r"book|reservation|change (?:my )?flight|seats?\b|upgrade|ticket|itinerary"
            r"|confirmation|check.?in|boarding pass|standby|rebook",
        ),
    )
)

_TURN = re.compile(r"<(cust|rep)__(.*?)__\1>", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CorpusConversation:
    """One real conversation of the corpus: turns as `("customer" | "ai_agent", text)`."""

    conversation_id: str
    tag: str
    turns: tuple[tuple[str, str], ...]


def read_conversations(source: Path, limit: int | None = None) -> list[CorpusConversation]:
    """The usable conversations of `airlines_raw.csv.bz2` (or an uncompressed copy), file order.

    Rows without a customer turn are skipped, and so are exact duplicate rows (the corpus lists
    some conversations twice); rows sharing a tweet id but not their text get a suffix. A file
    that is missing, unreadable or not this corpus is refused with a sentence naming it, instead
    of replaying nothing.
    """
    input_file(source, "corpus file")
    opener = bz2.open if source.suffix == ".bz2" else open
    out: list[CorpusConversation] = []
    seen: dict[str, list[tuple[str, str, str]]] = {}
    try:
        with opener(source, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            missing = [name for name in _COLUMNS if name not in (reader.fieldnames or ())]
            if missing:
                raise BadInputError(
                    f"{source} is not the twcs airline corpus: no column {', '.join(missing)}"
                )
            for row in reader:
                if limit is not None and len(out) >= limit:
                    break
                _add_row(row, seen, out)
    except (OSError, UnicodeDecodeError, csv.Error, EOFError) as exc:
        raise BadInputError(f"{source} cannot be read as the twcs airline corpus: {exc}") from exc
    return out


def _add_row(
    row: dict[str, str], seen: dict[str, list[tuple[str, str, str]]], out: list[CorpusConversation]
) -> None:
    tweet_id = (row.get("first_tweet_id") or "").strip()
    body = (row.get("first_utterance") or "", row.get("context") or "")
    turns = tuple(
        ("customer" if who == "cust" else "ai_agent", text.strip())
        for who, text in _TURN.findall(body[0] + " " + body[1])
        if text.strip()
    )
    if not tweet_id or not turns or turns[0][0] != "customer":
        return
    key = (row.get("tag") or "UNK", *body)
    earlier = seen.setdefault(tweet_id, [])
    if key in earlier:
        return
    earlier.append(key)
    suffix = f"-{len(earlier)}" if len(earlier) > 1 else ""
    out.append(CorpusConversation(f"tw{tweet_id}{suffix}", key[0], turns))


def classify(conversation: CorpusConversation) -> str:
    """The ticket category: the annotated tag where it names one, else keyword rules."""
    tagged = _TAG_CATEGORY.get(conversation.tag)
    if tagged is not None:
        return tagged
    first = conversation.turns[0][1].lower()
    for category, pattern in _KEYWORDS:
        if pattern.search(first):
            return category
    return "other"
