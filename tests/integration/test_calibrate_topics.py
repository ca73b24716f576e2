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
    start = (now // HOUR - 6) * HOUR
    month = dt.datetime.fromtimestamp(start / 1000, dt.UTC).strftime("%Y-%m")
    events = easy_refunds(30, start=start)
    assert max(e.occurred_at for e in events) < now
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
