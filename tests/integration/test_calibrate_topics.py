"""`escalation calibrate --from-topics`: the month read from the input topics gives the review a
file of the same events gives."""

from __future__ import annotations

import datetime as dt
import io
import json
import time
from pathlib import Path

import pytest

from stream.calibration.cli import calibrate_command
from stream.settings import Settings
from stream.testing import HOUR, write_events
from tests.calibration.test_cli import POLICY, easy_refunds
from tests.integration.kafka_helpers import BOOTSTRAP, Isolated, produce_events

pytestmark = pytest.mark.integration


def test_the_month_from_the_topics_is_reviewed_as_the_same_file(
    isolated: Isolated, tmp_path: Path
) -> None:
    # Given a month's events on the topics, record timestamp = event time, a few hours back
    now = int(time.time() * 1000)
    start = month_start_before(now)
    month = dt.datetime.fromtimestamp(start / 1000, dt.UTC).strftime("%Y-%m")
    events = easy_refunds(30, start=start)
    assert max(e.occurred_at for e in events) < now
    assert {_month(e.occurred_at) for e in events} == {month}
    produce_events(isolated, events)
    settings = Settings(bootstrap_servers=BOOTSTRAP, topic_prefix=isolated.prefix)

    # When the month is reviewed from the topics, and from a file of the same events
    outs = {}
    for name, source in (("topics", None), ("file", write_events(tmp_path / "e.jsonl", events))):
        out = tmp_path / name
        stderr = io.StringIO()
        code = calibrate_command(
            month,
            POLICY,
            out,
            source,
            source is None,
            settings=settings,
            progress=False,
            stdout=io.StringIO(),
            stderr=stderr,
        )
        assert code == 0, stderr.getvalue()
        outs[name] = json.loads((out / "report.json").read_text())

    # Then both judge and propose the same
    topics, file = outs["topics"], outs["file"]
    assert topics["input"]["events"] == len(events)
    assert topics["diagnostics"] == file["diagnostics"]
    assert topics["proposals"] == file["proposals"]
    assert topics["proposal"]["changes"] == file["proposal"]["changes"]
    assert (tmp_path / "topics" / "proposal.yaml").read_text() == (
        tmp_path / "file" / "proposal.yaml"
    ).read_text()


def _month(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m")


def month_start_before(now: int) -> int:
    """Six hours back, or, in a month's first six hours, the last six hours of the month before:
    the thirty conversations span five hours and must all fall in one month, which the review
    reads whole."""
    start = (now // HOUR - 6) * HOUR
    if _month(start) == _month(now):
        return start
    first = dt.datetime.fromtimestamp(now / 1000, dt.UTC).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return int(first.timestamp() * 1000) - 6 * HOUR


@pytest.mark.parametrize(
    "now",
    ["2026-12-01T03:10:00", "2026-12-01T06:00:00", "2026-11-30T23:59:00", "2026-03-01T00:00:01"],
)
def test_the_conversations_fall_in_one_month_at_any_hour(now: str) -> None:
    at = int(dt.datetime.fromisoformat(now).replace(tzinfo=dt.UTC).timestamp() * 1000)
    start = month_start_before(at)
    events = easy_refunds(30, start=start)
    assert max(e.occurred_at for e in events) < at
    assert len({_month(e.occurred_at) for e in events}) == 1
