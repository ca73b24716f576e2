"""Event-time bounds: what is refused, against what, and that refusing keeps state sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream.backtest.run import run_policy
from stream.backtest.sources import JsonlSource
from stream.core.events import Event
from stream.core.eventtime import DAY_MS, HOUR_MS, EventClock, TimeBounds, out_of_bounds
from stream.core.policy import Policy
from stream.testing import T0, EventFactory, write_events

YEAR_9999 = 253_402_214_400_000
BOUNDS = TimeBounds()


@pytest.mark.parametrize(
    ("occurred", "record", "watermark", "refused"),
    [
        # Ahead of the record timestamp: 1 h is allowed, a millisecond more is not
        (T0 + HOUR_MS, T0, None, None),
        (T0 + HOUR_MS + 1, T0, None, "ahead of the record timestamp"),
        (YEAR_9999, T0, None, "ahead of the record timestamp"),
        # Old event times in new records are normal (a replay, a backlog): no past bound there
        (T0 - 365 * DAY_MS, T0, None, None),
        # Against the stream's watermark, both ways, 7 days each
        (T0 + 7 * DAY_MS, None, T0, None),
        (T0 + 7 * DAY_MS + 1, None, T0, "ahead of the stream's watermark"),
        (T0 - 7 * DAY_MS, None, T0, None),
        (T0 - 7 * DAY_MS - 1, None, T0, "behind the stream's watermark"),
        (0, T0, T0, "behind the stream's watermark"),
        # No reference at all: nothing to compare with
        (YEAR_9999, None, None, None),
    ],
)
def test_bounds_table(
    occurred: int, record: int | None, watermark: int | None, refused: str | None
) -> None:
    why = out_of_bounds(occurred, record, watermark, BOUNDS)
    if refused is None:
        assert why is None
    else:
        assert why is not None and refused in why


def test_a_refused_event_does_not_move_the_watermark_and_streams_are_apart() -> None:
    clock = EventClock(TimeBounds(ahead_of_record_ms=0))
    assert clock.admit("contacts[0]", T0, T0) is None
    refused = clock.admit("contacts[0]", YEAR_9999, T0)
    assert refused is not None and refused.startswith("event time out of bounds:")
    assert "9999-12-31" in refused
    assert clock.marks == {"contacts[0]": T0}
    # Another partition has its own watermark
    assert clock.admit("contacts[1]", T0 - 30 * DAY_MS, T0) is None
    assert clock.refused == 1


def test_bounds_are_settings() -> None:
    from stream.settings import Settings

    bounds = Settings(
        max_event_ahead_seconds=60,
        max_event_ahead_of_stream_seconds=3600,
        max_event_behind_stream_seconds=86400,
    ).time_bounds()
    assert bounds == TimeBounds(60_000, 3_600_000, 86_400_000)
    with pytest.raises(ValueError, match="behind_stream_ms"):
        TimeBounds(behind_stream_ms=-1)


def history_with_a_year_9999_contact() -> list[Event]:
    # Two contacts on one issue, one dated in the year 9999, the third real one, one from 1970
    events = EventFactory("c-9999")
    return [
        events.account(),
        events.customer("my invoice is wrong", conversation_id="v1"),
        events.contact("v1", issue_key="billing:inv-7"),
        events.contact("v2", issue_key="billing:inv-7", at=T0 + DAY_MS),
        events.contact("v3", issue_key="billing:other", at=YEAR_9999),
        events.customer("still wrong", conversation_id="v4", at=T0 + 2 * DAY_MS),
        events.contact("v4", issue_key="billing:inv-7", at=T0 + 2 * DAY_MS + 1),
        events.contact("v5", issue_key="billing:inv-7", at=1000),
    ]


def test_a_year_9999_contact_in_a_file_is_refused_and_repeat_contact_still_works(
    tmp_path: Path, policy: Policy
) -> None:
    path = write_events(tmp_path / "events.jsonl", history_with_a_year_9999_contact())
    # When the backtest reads the file at a time after its history
    source = JsonlSource(path, warn=None, now_ms=T0 + 30 * DAY_MS)
    result = run_policy(source, policy)
    # Then the future contact is refused with its reason, and the third contact escalates
    assert source.refused_count == 1
    assert "9999-12-31T00:00:00Z is more than 1 h ahead of" in source.refused[0].reason
    assert source.refused[0].line == 5
    assert source.summary()["refused_event_time_count"] == 1
    escalated = [d for d in result.decisions if d.action == "escalate"]
    assert [d.conversation_id for d in escalated] == ["v4"]
    assert escalated[0].triggers[0].trigger == "repeat_contact"


def test_a_file_may_jump_back_and_forth_in_time(tmp_path: Path, policy: Policy) -> None:
    # A hand-written file need not be in time order: no past bound applies to a file
    events = EventFactory("c-jump")
    history = [
        events.customer("late", conversation_id="v1", at=T0 + 20 * DAY_MS),
        events.customer("early", conversation_id="v2", at=T0),
    ]
    path = write_events(tmp_path / "events.jsonl", history)
    source = JsonlSource(path, warn=None, now_ms=T0 + 30 * DAY_MS)
    assert len(run_policy(source, policy).decisions) == 2
    assert source.refused_count == 0


def test_without_the_gate_the_year_9999_contact_silences_repeat_contact(
    tmp_path: Path, policy: Policy
) -> None:
    # What the gate prevents: folded, the 9999 contact becomes the contact watermark
    path = write_events(tmp_path / "events.jsonl", history_with_a_year_9999_contact())
    result = run_policy(JsonlSource(path, warn=None), policy)
    assert not [d for d in result.decisions if d.action == "escalate"]
