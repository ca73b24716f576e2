"""The comparison report: exact false / missed counts, rates, changed conversations, HTML, CLI."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stream.backtest.cli import backtest_command, parse_time
from stream.backtest.html import render
from stream.backtest.report import build_report
from stream.backtest.run import run_policies
from stream.core.decision import decision_id_for
from stream.core.events import Event
from stream.core.policy import Policy, default_policy
from stream.serde import serde_for_topic
from stream.testing import EventFactory, jsonl_line, write_events
from tests.backtest.backtest_history import (
    CANDIDATE_YAML,
    CORRECT_EXPERT,
    CORRECT_SLOW,
    FALSE_UNDER_BASELINE,
    MISSED_UNDER_BASELINE,
    NOT_MISSED_LATE_REOPEN,
    scripted_history,
)
from tests.faults import inject_fault


def _backtest(
    tmp_path: Path,
    candidate_yaml: str = CANDIDATE_YAML,
    *,
    events: Path | None = None,
    on_error: str = "stop",
    **kwargs: Any,
) -> tuple[int, str, str, Path]:
    policy = tmp_path / "candidate.yaml"
    policy.write_text(candidate_yaml)
    if events is None:
        events = write_events(tmp_path / "history.jsonl", scripted_history())
    out = tmp_path / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    code = backtest_command(
        policy,
        None,
        events,
        None,
        None,
        out,
        on_error,
        None,
        progress=False,
        stdout=stdout,
        stderr=stderr,
        **kwargs,
    )
    return code, stdout.getvalue(), stderr.getvalue(), out


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def test_the_scripted_history_gives_the_known_false_and_missed_counts(tmp_path: Path) -> None:
    # Given the scripted history, the shipped policy as baseline and a candidate with a higher
    # refund limit and a higher informational confidence bar
    code, stdout, stderr, out = _backtest(tmp_path)
    # Then the run succeeds and writes every artifact
    assert code == 0, stderr
    for name in (
        "candidate/decisions.jsonl",
        "baseline/decisions.jsonl",
        "report.json",
        "report.html",
    ):
        assert (out / name).is_file(), name
    report = _report(out)
    base = report["policies"]["baseline"]["outcomes"]
    cand = report["policies"]["candidate"]["outcomes"]
    # Baseline: two refunds a human closed in 60 s are false; the slow and the expert case are
    # correct; the low-confidence lookup reopened after 24 h is missed; the 72 h reopen is not.
    assert base["thresholds"] == {
        "false_escalation_max_seconds": 120.0,
        "missed_reopen_hours": 48.0,
    }
    assert (base["false_escalations"], base["needed_escalations"]) == (2, 2)
    assert base["missed_escalations"] == 1
    assert sorted(base["false_conversations"]) == sorted(FALSE_UNDER_BASELINE)
    assert base["missed_conversations"] == [MISSED_UNDER_BASELINE]
    assert (base["escalated_with_outcome"], base["not_escalated_with_outcome"]) == (4, 3)
    assert base["false_escalation_rate"] == 0.5
    assert base["false_by_trigger"] == {"policy_boundary": 2}
    # Candidate: the refunds are no longer escalated and the lookup is, so nothing false or missed
    # (the refunds are judged by the recorded outcome: a human settled them fast, so leaving them
    # to the AI is assumed fine; the lookup that was reopened is assumed to need its escalation)
    assert (cand["false_escalations"], cand["needed_escalations"]) == (0, 3)
    assert (cand["ok_without"], cand["assumed"]) == (4, 3)
    assert cand["missed_escalations"] == 0
    assert report["delta"]["false_escalations"] == -2
    assert report["delta"]["missed_escalations"] == -1
    assert "false escalations" in stdout and "report.html" in stdout
    assert report["input"]["out_of_order_events"] == 0
    assert report["warnings"] == []


@pytest.mark.parametrize(
    ("false_max_seconds", "missed_hours", "false", "missed"),
    [
        (120, 48, 2, 1),
        (30, 48, 0, 1),  # 60 s is not under 30 s
        (900, 48, 3, 1),  # the 600 s case becomes false; the expert case never is
        (120, 80, 2, 2),  # the 72 h reopen is now within the window
        (120, 12, 2, 0),  # the 24 h reopen is not
    ],
)
def test_both_thresholds_are_settings_of_the_policy(
    tmp_path: Path, false_max_seconds: int, missed_hours: int, false: int, missed: int
) -> None:
    candidate = (
        'version: "test-calibration"\n'
        f"calibration: {{false_escalation_max_seconds: {false_max_seconds}, "
        f"missed_reopen_hours: {missed_hours}}}\n"
    )
    code, _, stderr, out = _backtest(tmp_path, candidate)
    assert code == 0, stderr
    report = _report(out)
    outcomes = report["policies"]["candidate"]["outcomes"]
    assert (outcomes["false_escalations"], outcomes["missed_escalations"]) == (false, missed)
    assert outcomes["thresholds"] == {
        "false_escalation_max_seconds": float(false_max_seconds),
        "missed_reopen_hours": float(missed_hours),
    }
    if (false_max_seconds, missed_hours) != (120, 48):
        assert any("different calibration thresholds" in w for w in report["warnings"])
    # The same decisions: only the judgement moved
    assert report["changed"]["count"] == 0


def test_conversations_the_candidate_changes_are_listed_with_their_evidence(
    tmp_path: Path,
) -> None:
    code, _, stderr, out = _backtest(tmp_path)
    assert code == 0, stderr
    changed = _report(out)["changed"]
    assert changed["count"] == 3
    assert changed["by_change"] == {"newly_escalated": 1, "no_longer_escalated": 2}
    rows = {row["conversation_id"]: row for row in changed["conversations"]}
    assert set(rows) == {MISSED_UNDER_BASELINE, *FALSE_UNDER_BASELINE}

    newly = rows[MISSED_UNDER_BASELINE]
    assert newly["change"] == "newly_escalated"
    assert newly["baseline"]["action"] == "continue" and newly["baseline"]["triggers"] == []
    hit = newly["candidate"]["triggers"][0]
    assert (hit["trigger"], hit["rule"]) == ("confidence", "confidence.informational")
    confidence = next(e for e in hit["evidence"] if e["kind"] == "confidence")
    assert (confidence["value"], confidence["threshold"]) == (0.7, 0.8)
    assert newly["outcome"]["baseline"] == "missed_escalation"
    assert newly["outcome"]["candidate"] == "needed_escalation"
    assert newly["outcome"]["assumed"] is True
    assert newly["customer_words"] == ["When is my next invoice due?"]

    for conversation in FALSE_UNDER_BASELINE:
        row = rows[conversation]
        assert row["change"] == "no_longer_escalated"
        assert row["candidate"]["action"] == "continue"
        hit = row["baseline"]["triggers"][0]
        assert (hit["trigger"], hit["rule"]) == ("policy_boundary", "boundary.refund_limit")
        assert any(e["kind"] == "amount" and e["value"] == 240.0 for e in hit["evidence"])
        assert row["outcome"]["baseline"] == "false_escalation"
        assert row["outcome"]["candidate"] == "ok_without"
    # Unchanged conversations are not listed
    assert CORRECT_SLOW not in rows and NOT_MISSED_LATE_REOPEN not in rows


def test_the_changed_list_is_capped_and_the_count_stays_complete(tmp_path: Path) -> None:
    code, _, _, out = _backtest(tmp_path, max_changed=1)
    assert code == 0
    changed = _report(out)["changed"]
    assert (changed["count"], changed["listed"], len(changed["conversations"])) == (3, 1, 1)
    assert changed["conversations"][0]["change"] == "newly_escalated"  # most telling first


def test_rates_overall_by_category_and_by_trigger(tmp_path: Path) -> None:
    code, _, _, out = _backtest(tmp_path)
    assert code == 0
    report = _report(out)
    base, cand = report["policies"]["baseline"], report["policies"]["candidate"]
    assert (base["conversations"], base["escalated"]) == (7, 4)
    assert base["escalation_rate"] == 4 / 7
    assert cand["escalation_rate"] == 3 / 7
    assert base["by_category"]["billing"] == {
        "conversations": 7,
        "escalated": 4,
        "offered": 0,
        "escalation_rate": 4 / 7,
        "escalation_interval": {
            "k": 4,
            "n": 7,
            "rate": 4 / 7,
            "low": pytest.approx(0.2505, abs=1e-4),
            "high": pytest.approx(0.8418, abs=1e-4),
        },
        "offer_rate": 0.0,
    }
    assert {k: v["escalated"] for k, v in base["by_trigger"].items()} == {
        "explicit_request": 2,
        "policy_boundary": 2,
    }
    assert {k: v["escalated"] for k, v in cand["by_trigger"].items()} == {
        "confidence": 1,
        "explicit_request": 2,
    }
    assert cand["by_trigger"]["confidence"]["escalation_rate"] == 1 / 7
    assert "boundary.refund_limit" in base["by_rule"]
    assert report["delta"]["escalation_rate"] == 3 / 7 - 4 / 7


def test_decision_files_hold_decision_topic_records(tmp_path: Path) -> None:
    code, _, _, out = _backtest(tmp_path)
    assert code == 0
    report = _report(out)
    serde = serde_for_topic("escalation.decisions")
    for name in ("candidate", "baseline"):
        lines = (out / name / "decisions.jsonl").read_text().splitlines()
        assert len(lines) == report["policies"][name]["decisions"]
        for line in lines:
            record = json.loads(line)
            assert serde.decode(serde.encode(record)) == record  # exactly the topic's fields
            assert record["policy_version"] == report["policies"][name]["policy_version"]
    assert not list(out.rglob("*.partial"))


def test_outcomes_naming_a_decision_id_are_matched(
    tmp_path: Path, event_factory: EventFactory, policy_factory: Callable[[str], Policy]
) -> None:
    f = event_factory
    ask = f.of("c1").customer("I want to talk to a human agent.", "conv-1")
    baseline = default_policy()
    escalation_id = decision_id_for("c1", "conv-1", ask.event_id, baseline.version)
    events: list[Event] = [
        ask,
        f.of("c1").outcome(
            "conv-1",
            resolved_by="human",
            handle_time_seconds=300,
            decision_id=escalation_id,
            ticket_id="ticket-conv-1",
        ),
    ]
    results = run_policies(
        events, {"candidate": policy_factory(CANDIDATE_YAML), "baseline": baseline}
    )
    report = build_report(results["candidate"], results["baseline"])
    assert report["policies"]["baseline"]["outcomes"]["decision_ids_matched"] == 1
    assert report["policies"]["candidate"]["outcomes"]["decision_ids_matched"] == 0


def test_an_outcome_without_its_conversation_is_counted_not_judged(
    event_factory: EventFactory,
) -> None:
    events: list[Event] = [
        event_factory.of("c1").customer("hello", "conv-1"),
        event_factory.of("c2").outcome(
            "conv-elsewhere",
            resolved_by="ai",
            reopened_at=event_factory.clock + 1,
            ticket_id="ticket-conv-elsewhere",
        ),
    ]
    results = run_policies(events, {"candidate": default_policy(), "baseline": default_policy()})
    report = build_report(results["candidate"], results["baseline"])
    outcomes = report["policies"]["baseline"]["outcomes"]
    assert (outcomes["without_conversation"], outcomes["joined"]) == (1, 0)
    assert outcomes["missed_escalations"] == 0
    assert any("same version" in w for w in report["warnings"])
    assert any("no outcome matches" in w for w in report["warnings"])


# --- bad input through the command -----------------------------------------------------------


def _history_with_bad_lines(tmp_path: Path, bad: dict[int, str]) -> Path:
    lines = [jsonl_line(e) for e in scripted_history()]
    for number, text in bad.items():
        lines.insert(number - 1, text)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_malformed_line_stops_the_backtest_by_default(tmp_path: Path) -> None:
    events = _history_with_bad_lines(tmp_path, {5: '{"type": "message", "event_id": '})
    code, stdout, stderr, out = _backtest(tmp_path, events=events)
    assert code == 2  # a malformed input file is the caller's to fix (stream/errors.py)
    assert f"{events}:5: not valid JSON" in stderr
    assert "--on-error skip" in stderr
    assert not (out / "report.json").exists()
    assert not list(out.rglob("decisions.jsonl*"))  # nothing that looks like a finished run


def test_with_skip_the_report_lists_the_skipped_lines(tmp_path: Path) -> None:
    events = _history_with_bad_lines(
        tmp_path, {3: "not json at all", 9: '{"type": "chat_log", "event_id": "x"}'}
    )
    code, stdout, stderr, out = _backtest(tmp_path, events=events, on_error="skip")
    assert code == 0, stderr
    source = _report(out)["input"]
    assert source["skipped_count"] == 2
    assert [(s["line"], s["where"]) for s in source["skipped"]] == [
        (3, f"{events}:3"),
        (9, f"{events}:9"),
    ]
    assert "unknown event type 'chat_log'" in source["skipped"][1]["reason"]
    assert f"skipped {events}:3: not valid JSON" in stderr
    assert "(2 skipped)" in stdout
    # and the numbers are those of the clean history
    assert _report(out)["policies"]["baseline"]["outcomes"]["false_escalations"] == 2
    assert "skipped" in (out / "report.html").read_text()


def test_an_unknown_event_type_stops_the_backtest_naming_it(tmp_path: Path) -> None:
    events = _history_with_bad_lines(tmp_path, {1: '{"type": "chat_log", "event_id": "x"}'})
    code, _, stderr, _ = _backtest(tmp_path, events=events)
    assert code == 2
    assert f"{events}:1: unknown event type 'chat_log'" in stderr


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": None}, "give either --events FILE or --from and --to"),
        ({"on_error": "ignore"}, "on_error must be one of stop, skip"),
    ],
)
def test_wrong_arguments_exit_2(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(CANDIDATE_YAML)
    stderr = io.StringIO()
    args: dict[str, Any] = {
        "events": write_events(tmp_path / "e.jsonl", scripted_history()),
        "on_error": "stop",
        **kwargs,
    }
    code = backtest_command(
        policy,
        None,
        args["events"],
        None,
        None,
        tmp_path / "out",
        args["on_error"],
        None,
        stderr=stderr,
    )
    assert code == 2
    assert message in stderr.getvalue()


def test_the_summary_keeps_long_policy_versions_apart(tmp_path: Path) -> None:
    # Given a candidate whose version is longer than the summary's usual column
    long_version = "2026.11-default-turn-signal-2-candidate"
    candidate = CANDIDATE_YAML.replace('version: "test-candidate"', f'version: "{long_version}"')
    code, stdout, stderr, _ = _backtest(tmp_path, candidate)
    assert code == 0, stderr
    # Then both versions are on the line, each its own whitespace-separated column
    line = next(row for row in stdout.splitlines() if row.startswith("policy version"))
    assert line.split() == ["policy", "version", long_version, default_policy().version]


def test_an_invalid_candidate_policy_exits_2_naming_the_field(tmp_path: Path) -> None:
    code, _, stderr, _ = _backtest(
        tmp_path, 'version: "x"\nconfidence: {thresholds: {financial: 2}}\n'
    )
    assert code == 2
    assert "candidate policy" in stderr and "confidence.thresholds" in stderr


def test_times_are_iso_8601_or_epoch_milliseconds() -> None:
    assert parse_time("1767225600000") == 1_767_225_600_000
    assert parse_time("2026-01-01T00:00:00Z") == 1_767_225_600_000
    assert parse_time("2026-01-01") == 1_767_225_600_000  # no zone: UTC
    assert parse_time("2026-01-01T01:00:00+01:00") == 1_767_225_600_000
    with pytest.raises(ValueError, match="neither epoch milliseconds nor ISO-8601"):
        parse_time("yesterday")


# --- the page ----------------------------------------------------------------------------------


def test_the_html_page_is_self_contained_and_shows_the_comparison(tmp_path: Path) -> None:
    code, _, _, out = _backtest(tmp_path)
    assert code == 0
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # Nothing fetched: one inline script (sort and filter), no external script, style, image or
    # font
    assert page.lower().count("<script") == 1 and "<script>" in page
    assert not re.search(r"""(src|href)\s*=""", page)
    assert "@import" not in page and "url(" not in page
    assert page.count("<svg") >= 3
    # Both versions, the changed conversations and their evidence are on the page
    assert "test-candidate" in page and default_policy().version in page
    for conversation in (MISSED_UNDER_BASELINE, *FALSE_UNDER_BASELINE):
        assert conversation in page
    assert "refund of 240.00 USD" in page
    assert "boundary.refund_limit" in page
    assert CORRECT_EXPERT not in page  # unchanged conversations stay in report.json only
    # The customer's words are on the page without expanding anything
    assert '<p class="words">My booking was cancelled, please refund it.</p>' in page
    # The policy diff, value by value
    assert (
        '<td class="mono">boundaries.refund.limit</td><td>100.0</td><td><b>500.0</b></td>' in page
    )
    assert "confidence.thresholds.informational" in page
    # A filter and sortable columns on the changed list
    assert 'id="changed-filter"' in page and 'data-sort="change"' in page
    assert 'data-change="newly_escalated"' in page


def test_a_rise_in_escalation_rate_is_not_coloured_as_good(tmp_path: Path) -> None:
    code, _, _, out = _backtest(tmp_path)
    assert code == 0
    page = (out / "report.html").read_text()
    card = page[page.index("Escalation rate</div>") :]
    card = card[: card.index("</div></div>")]
    assert 'class="neutral"' in card and "good-up" not in card
    assert "95%" in card and "3/7" in card  # the rate with its interval and sample size
    assert 'class="good-up' not in page  # no volume is shown as a goal


def test_the_page_escapes_what_came_from_the_input(
    event_factory: EventFactory, policy_factory: Callable[[str], Policy]
) -> None:
    f = event_factory
    events = [
        f.of("c1").customer(
            "I want to talk to a human <script>alert(1)</script>",
            "<b>conv</b>",
            category="<i>cat</i>",
        ),
    ]
    results = run_policies(
        events,
        {
            "candidate": default_policy(),
            "baseline": policy_factory('version: "b"\nexplicit_request: {enabled: false}'),
        },
    )
    page = render(build_report(results["candidate"], results["baseline"]))
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>conv</b>" not in page and "&lt;b&gt;conv&lt;/b&gt;" in page


def test_trigger_errors_are_counted_in_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broken sentiment check, the backtest's decisions fail safe and the report counts it
    from stream.core.triggers import sentiment

    inject_fault(monkeypatch, sentiment)
    code, _, _, out = _backtest(tmp_path)
    assert code == 0
    report = _report(out)
    for side in ("candidate", "baseline"):
        errors = report["policies"][side]["trigger_errors"]
        assert errors["total"] > 0
        assert set(errors["by_trigger"]) == {"sentiment"}
    assert any("trigger errors" in warning for warning in report["warnings"])
