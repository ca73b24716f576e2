"""Event-time bounds: an event dated far ahead of or behind its stream is refused, with a reason.

One contact dated in the year 9999 would otherwise become the customer's watermark: every later
contact would look late, and repeat-contact detection would stop for that customer for good. The
worker dead-letters a refused event and the backtest counts it the same way, both through
`EventClock`, so live and replayed decisions stay equal.

Which references are used, and why:
- ahead of the record timestamp (`ahead_of_record_ms`, 1 h by default): the broker's timestamp is
  when the record was produced, so an event cannot have happened much after it. This is the bound
  that catches a bad clock at once, even on the first event of a partition.
- ahead of the stream's watermark (`ahead_of_stream_ms`, 7 days), only for a record without a
  timestamp: the newest event time admitted on the same topic partition. Loose on purpose: a
  quiet partition can go hours without an event.
- behind the stream's watermark (`behind_stream_ms`, 7 days): the past bound. Not against the
  record timestamp, because a replay or a backlog legitimately carries old event times in new
  records. It must be at least the policy's `lateness_seconds`, which keeps late events that are
  still useful.
- before the partition's floor (`floor`), when the worker has one: the earliest event time an
  idle sweep of the partition may have assumed no later event would have (stream/core/sweep.py).
  The watermarks live in memory and start empty after a restart or a takeover; the floor is kept
  in the worker's floor table, with the partition, so the gate still refuses what a sweep may have
  expired the windows of. Any event the floor refuses, an uninterrupted gate refuses too: a floor
  is at most the past bound behind every input stream's watermark when it was taken.
A refused event does not move the watermark.

A JSON Lines file has neither record timestamps nor a consumption order it must follow (a
hand-written file of edge cases can jump back and forth in time), so the backtest bounds a file's
events by the time the backtest runs only (`ahead_of_record_ms` past it): nothing in a history can
have happened in the future. A file exported from the topics went through this gate already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

HOUR_MS: Final[int] = 3_600_000
DAY_MS: Final[int] = 24 * HOUR_MS


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """How far an event's `occurred_at` may be from its references, in milliseconds."""

    ahead_of_record_ms: int = HOUR_MS
    ahead_of_stream_ms: int = 7 * DAY_MS
    behind_stream_ms: int = 7 * DAY_MS

    def __post_init__(self) -> None:
        for name in ("ahead_of_record_ms", "ahead_of_stream_ms", "behind_stream_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be 0 or more")


DEFAULT_BOUNDS: Final[TimeBounds] = TimeBounds()


def _iso(ms: int) -> str:
    """UTC date and time of epoch milliseconds; by arithmetic, as the core reads no clock or tz."""
    seconds, _ = divmod(ms, 1000)
    days, rest = divmod(seconds, 86_400)
    # Civil date from days since 1970-01-01 (H. Hinnant's algorithm), valid for any year >= 0.
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (month <= 2)
    hour, rest = divmod(rest, 3600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


def _span(ms: int) -> str:
    if ms % DAY_MS == 0:
        return f"{ms // DAY_MS} d"
    if ms % HOUR_MS == 0:
        return f"{ms // HOUR_MS} h"
    return f"{ms / 1000:g} s"


def out_of_bounds(
    occurred_at: int,
    record_ms: int | None,
    watermark: int | None,
    bounds: TimeBounds,
    floor: int | None = None,
) -> str | None:
    """Why `occurred_at` is refused, or None; `watermark` is the stream's newest admitted time,
    `floor` the partition's floor (module doc).

    With a record timestamp the future is bounded by it alone: the stream's watermark could have
    been set by an event from the distant past, and must not then refuse every real one after it.
    """
    if record_ms is not None and record_ms > 0:
        if occurred_at > record_ms + bounds.ahead_of_record_ms:
            return (
                f"event time {_iso(occurred_at)} is more than {_span(bounds.ahead_of_record_ms)} "
                f"ahead of the record timestamp {_iso(record_ms)}"
            )
    elif watermark is not None and occurred_at > watermark + bounds.ahead_of_stream_ms:
        return (
            f"event time {_iso(occurred_at)} is more than {_span(bounds.ahead_of_stream_ms)} "
            f"ahead of the stream's watermark {_iso(watermark)}"
        )
    if watermark is not None and occurred_at < watermark - bounds.behind_stream_ms:
        return (
            f"event time {_iso(occurred_at)} is more than {_span(bounds.behind_stream_ms)} "
            f"behind the stream's watermark {_iso(watermark)}"
        )
    if floor is not None and occurred_at < floor:
        return (
            f"event time {_iso(occurred_at)} is before the partition's floor {_iso(floor)}, "
            "the time up to which its idle customers may have been swept"
        )
    return None


class EventClock:
    """The watermark of each input stream, and the gate every event passes before `step`."""

    __slots__ = ("bounds", "marks", "refused")

    def __init__(self, bounds: TimeBounds = DEFAULT_BOUNDS) -> None:
        self.bounds = bounds
        self.marks: dict[str, int] = {}
        self.refused = 0

    def admit(
        self,
        stream: str | None,
        occurred_at: int,
        record_ms: int | None = None,
        floor: int | None = None,
    ) -> str | None:
        """None when the event may be folded (its time then advances the stream's watermark);
        otherwise the reason it is refused, prefixed `event time out of bounds:`. A `stream` of
        None has no watermark: only the bounds against `record_ms` and `floor` apply."""
        mark = self.marks.get(stream) if stream is not None else None
        why = out_of_bounds(occurred_at, record_ms, mark, self.bounds, floor)
        if why is not None:
            self.refused += 1
            return f"event time out of bounds: {why}"
        if stream is not None and (mark is None or occurred_at > mark):
            self.marks[stream] = occurred_at
        return None
