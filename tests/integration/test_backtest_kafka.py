"""Backtest and export over a time range of real topics agree with the JSON Lines path."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer

from stream.backtest.cli import backtest_command, export_command
from stream.backtest.sources import topics_with_prefix
from stream.core.events import Event, event_to_dict
from stream.testing import HOUR, EventFactory, write_events
from tests.backtest.backtest_history import CANDIDATE_YAML, scripted_history
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    Isolated,
    broker_available,
    isolated_topics,
    produce_events,
)

pytestmark = pytest.mark.integration

DAY = 24 * HOUR
# Event times a few hours back: inside the topics' 7-day retention, never in the future.
START = (int(time.time() * 1000) // HOUR - 6) * HOUR


# Each test gets topics of its own.
isolated = pytest.fixture(isolated_topics)


def _histories() -> tuple[list[Event], list[Event], list[Event], int, int]:
    """The scripted history in range, with copies before and after it that must be left out."""
    before = scripted_history(EventFactory(start=START - 2 * DAY))
    inside = scripted_history(EventFactory(start=START))
    first, last = inside[0].occurred_at, max(e.occurred_at for e in inside)
    after = scripted_history(EventFactory(start=last + HOUR))
    assert max(e.occurred_at for e in after) < int(time.time() * 1000)
    return before, inside, after, first, last + 1


def _run(
    tmp_path: Path,
    name: str,
    *,
    events: Path | None = None,
    range_: tuple[int, int] | None = None,
    isolated: Isolated | None = None,
    on_error: str = "stop",
) -> tuple[int, str, Path]:
    policy = tmp_path / "candidate.yaml"
    policy.write_text(CANDIDATE_YAML)
    out = tmp_path / name
    stderr = io.StringIO()
    code = backtest_command(
        policy,
        None,
        events,
        str(range_[0]) if range_ else None,
        str(range_[1]) if range_ else None,
        out,
        on_error,
        BOOTSTRAP,
        topics=topics_with_prefix(isolated.prefix) if isolated else None,
        progress=False,
        stdout=io.StringIO(),
        stderr=stderr,
    )
    return code, stderr.getvalue(), out


def _decisions(out: Path, policy: str) -> list[dict[str, Any]]:
    path = out / policy / "decisions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_time_range_of_topics_gives_the_decisions_of_the_same_events_from_a_file(
    tmp_path: Path, isolated: Isolated
) -> None:
    # Given the scripted history on the topics, between two other copies of it
    before, inside, after, start, end = _histories()
    produce_events(isolated, before + inside + after)
    # When the range of the middle copy is backtested from the topics, and the copy from a file
    code, stderr, from_topics = _run(tmp_path, "topics", range_=(start, end), isolated=isolated)
    assert code == 0, stderr
    file = write_events(tmp_path / "inside.jsonl", inside)
    code, stderr, from_file = _run(tmp_path, "file", events=file)
    assert code == 0, stderr
    # Then both give the same decisions, field by field and in order, ids included
    for policy in ("candidate", "baseline"):
        topic_decisions = _decisions(from_topics, policy)
        assert topic_decisions, policy
        assert topic_decisions == _decisions(from_file, policy)
    topics_report = json.loads((from_topics / "report.json").read_text())
    file_report = json.loads((from_file / "report.json").read_text())
    assert topics_report["input"]["events"] == len(inside)
    assert topics_report["input"]["out_of_order_events"] == 0
    assert topics_report["policies"] == file_report["policies"]
    assert topics_report["changed"] == file_report["changed"]
    assert topics_report["policies"]["baseline"]["outcomes"]["false_escalations"] == 2
    assert topics_report["policies"]["baseline"]["outcomes"]["missed_escalations"] == 1


def test_export_writes_the_range_as_a_file_that_backtests_the_same(
    tmp_path: Path, isolated: Isolated
) -> None:
    before, inside, after, start, end = _histories()
    produce_events(isolated, before + inside + after)
    exported = tmp_path / "frozen" / "edge-cases.jsonl"
    stdout, stderr = io.StringIO(), io.StringIO()
    code = export_command(
        str(start),
        str(end),
        exported,
        BOOTSTRAP,
        topics=topics_with_prefix(isolated.prefix),
        progress=False,
        stdout=stdout,
        stderr=stderr,
    )
    assert code == 0, stderr.getvalue()
    assert f"exported {len(inside)} events" in stdout.getvalue()
    # The file is the events of the range, in event-time order, as the schemas shape them
    lines = [json.loads(line) for line in exported.read_text().splitlines()]
    assert lines == [{"type": e.type, **event_to_dict(e)} for e in inside]
    # and backtesting it gives what backtesting the topics gives
    code, _, from_export = _run(tmp_path, "export", events=exported)
    assert code == 0
    code, _, from_topics = _run(tmp_path, "topics", range_=(start, end), isolated=isolated)
    assert code == 0
    for policy in ("candidate", "baseline"):
        assert _decisions(from_export, policy) == _decisions(from_topics, policy)


def test_an_undecodable_record_stops_the_run_or_is_skipped_and_listed(
    tmp_path: Path, isolated: Isolated
) -> None:
    _, inside, _, start, end = _histories()
    produce_events(isolated, inside)
    producer = Producer({"bootstrap.servers": BOOTSTRAP})
    topic = isolated.topic("support.messages")
    producer.produce(topic, key=b"cust-x", value=b"not avro", timestamp=start + 1, partition=0)
    assert producer.flush(30) == 0

    code, stderr, out = _run(tmp_path, "stop", range_=(start, end), isolated=isolated)
    assert code == 1
    assert f"{topic}[0]@" in stderr and "not Avro single-object encoded" in stderr
    assert not (out / "report.json").exists()

    code, stderr, out = _run(
        tmp_path, "skip", range_=(start, end), isolated=isolated, on_error="skip"
    )
    assert code == 0, stderr
    source = json.loads((out / "report.json").read_text())["input"]
    assert source["skipped_count"] == 1
    assert source["skipped"][0]["topic"] == topic and source["skipped"][0]["partition"] == 0
    assert source["events"] == len(inside)


def test_a_missing_topic_fails_the_run_naming_it(tmp_path: Path) -> None:
    if not broker_available():
        pytest.skip(f"no Kafka at {BOOTSTRAP}")
    missing = Isolated.__new__(Isolated)
    missing.prefix = f"it-missing-{time.time_ns()}."
    code, stderr, _ = _run(tmp_path, "missing", range_=(START, START + HOUR), isolated=missing)
    assert code == 1
    assert f"topic '{missing.prefix}support.messages'" in stderr and "does not exist" in stderr


def test_a_range_with_no_event_fails_the_run_and_writes_no_report(
    tmp_path: Path, isolated: Isolated
) -> None:
    # Given topics that exist but hold nothing in the range (a report of nothing is all n/a)
    code, stderr, out = _run(tmp_path, "empty", range_=(START, START + HOUR), isolated=isolated)
    # Then the run fails as a run (exit 1), saying why, and leaves nothing that looks finished
    assert code == 1
    assert f"the input topics hold no event appended between {START} and {START + HOUR}" in stderr
    assert not (out / "report.json").exists()
    assert not (out / "candidate" / "decisions.jsonl").exists()
