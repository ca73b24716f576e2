"""What a replay synthesises around the real text, its time units, and its seeded randomness."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Final

from stream.errors import UsageError

SECOND_MS: Final[int] = 1_000
MINUTE_MS: Final[int] = 60 * SECOND_MS
HOUR_MS: Final[int] = 60 * MINUTE_MS
DAY_MS: Final[int] = 24 * HOUR_MS

# Where the airline conversations live under the shared data directory (Settings.datasets_dir).
CORPUS_PATH: Final[str] = "twcs-airlines/airlines_raw.csv.bz2"


def check_shares(owner: object, *names: str) -> None:
    """Refuses at once a share or chance outside 0..1, naming the class and the field."""
    for name in names:
        value = getattr(owner, name)
        if not 0.0 <= value <= 1.0:
            raise UsageError(f"{type(owner).__name__}.{name}: {value} is outside 0..1")


@dataclass(frozen=True, slots=True)
class ReplayConfig:
    """Every default is documented in docs/replay.md; out-of-range values are refused at once."""

    seed: int = 7
    conversations: int | None = None  # the first N usable conversations of the file; None: all
    start_ms: int = 1_700_000_000_000  # event time of the first conversation
    days: float = 30.0  # the conversations start spread over this many days
    customers_ratio: float = 0.75  # distinct customers per conversation (1 - chance of a return)
    same_issue_share: float = 0.7  # of the returns, those on the same issue as the last contact
    within_window_share: float = 0.85  # of the same-issue returns, those within 7 days of the first
    sentiment_share: float = 0.5  # customer turns that get a sentiment event
    outcome_share: float = 0.7  # conversations whose ticket outcome is reported
    channel: str = "social"  # the corpus is Twitter

    def __post_init__(self) -> None:
        check_shares(
            self,
            "customers_ratio",
            "same_issue_share",
            "within_window_share",
            "sentiment_share",
            "outcome_share",
        )
        if self.customers_ratio == 0.0:
            raise UsageError("ReplayConfig.customers_ratio: must be above 0")
        if self.conversations is not None and self.conversations < 0:
            raise UsageError(f"ReplayConfig.conversations: {self.conversations} is negative")
        if self.days <= 0:
            raise UsageError(f"ReplayConfig.days: {self.days} must be positive")
        if self.start_ms < 0:
            raise UsageError(f"ReplayConfig.start_ms: {self.start_ms} is negative")


def seeded_random(seed: int, *parts: object) -> random.Random:
    """A generator of its own for one customer or conversation, the same in every process.

    hashlib, not hash(): str hashes are salted per process and would break determinism.
    """
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))
