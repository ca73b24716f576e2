"""Relative time in policy test cases ("3 days ago", "+20 s", "2 min"), so a case reads like the
conversation it describes instead of a list of epoch milliseconds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

Anchor: TypeAlias = Literal["ago", "after_previous", "from_start"]

UNITS: Final[dict[str, int]] = {
    "ms": 1,
    "s": 1_000,
    "sec": 1_000,
    "secs": 1_000,
    "second": 1_000,
    "seconds": 1_000,
    "m": 60_000,
    "min": 60_000,
    "mins": 60_000,
    "minute": 60_000,
    "minutes": 60_000,
    "h": 3_600_000,
    "hour": 3_600_000,
    "hours": 3_600_000,
    "d": 86_400_000,
    "day": 86_400_000,
    "days": 86_400_000,
    "w": 604_800_000,
    "week": 604_800_000,
    "weeks": 604_800_000,
}
_RELATIVE = re.compile(r"^\s*(?P<plus>\+)?(?P<amounts>.*?)(?P<ago>\bago)?\s*$")
_AMOUNT = re.compile(r"\s*(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>[a-z]+)\s*")
_FORMAT_UNITS: Final[tuple[tuple[str, int], ...]] = (
    ("days", 86_400_000),
    ("h", 3_600_000),
    ("min", 60_000),
    ("s", 1_000),
)


class TimeFormatError(ValueError):
    """A time that is not one of the relative forms; the message shows the forms."""


@dataclass(frozen=True, slots=True)
class RelativeTime:
    """A parsed time: `ms` milliseconds before the start, after the previous event, or from the
    start of the conversation."""

    anchor: Anchor
    ms: int
    text: str


def parse_relative(text: str) -> RelativeTime:
    """'3 days ago' (before the conversation starts), '+20 s' (after the previous turn) or
    '90 s' (after the conversation starts)."""
    match = _RELATIVE.match(text.lower())
    amounts = match["amounts"] if match is not None else ""
    if match is None or not amounts.strip() or _AMOUNT.sub("", amounts):
        raise TimeFormatError(
            f"{text!r} is not a relative time; write '3 days ago', '+20 s' or '2 min'"
        )
    total = 0.0
    for amount in _AMOUNT.finditer(amounts):
        scale = UNITS.get(amount["unit"])
        if scale is None:
            raise TimeFormatError(
                f"{text!r}: unknown unit {amount['unit']!r}; use ms, s, min, h, days or weeks"
            )
        total += float(amount["number"]) * scale
    if match["plus"] and match["ago"]:
        raise TimeFormatError(f"{text!r}: either '+' (after the previous turn) or 'ago', not both")
    ms = round(total)
    anchor: Anchor = "ago" if match["ago"] else "after_previous" if match["plus"] else "from_start"
    return RelativeTime(anchor, ms, text)


def format_duration(ms: int) -> str:
    """Days, hours, minutes and seconds, exact to the millisecond: '3 days 7 h 2.435 s'."""
    parts: list[str] = []
    rest = ms
    for name, scale in _FORMAT_UNITS[:-1]:
        if rest >= scale:
            count = rest // scale
            parts.append(f"{count} {'day' if name == 'days' and count == 1 else name}")
            rest %= scale
    if rest or not parts:
        seconds = f"{rest / 1_000:.3f}".rstrip("0").rstrip(".")
        parts.append(f"{seconds} s")
    return " ".join(parts)


def format_ago(ms: int) -> str:
    return f"{format_duration(ms)} ago"


def format_after(ms: int) -> str:
    return f"+{format_duration(ms)}"
