"""`escalation calibrate` end to end on files: a supported proposal, and every kind of bad input
answered with a clear message and a report that says what could not be judged."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream.calibration.cli import calibrate_command
from stream.cli import app
from stream.core.events import Event
from stream.core.policy import default_policy, load_policy, parse_policy
from stream.testing import MINUTE, EventFactory, write_events
from tests.calibration.history import MONTH, T_JAN, month_history

POLICY = Path(__file__).resolve().parents[2] / "policy" / "default.yaml"


def run(tmp_path: Path, events: list[Event] | None, *, policy: Path = POLICY, month: str = MONTH):
    out = tmp_path / "review"
    path = None
    if events is not None:
        path = write_events(tmp_path / "events.jsonl", events)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = calibrate_command(
        month, policy, out, path, False, progress=False, stdout=stdout, stderr=stderr
    )
    report = None
    if (out / "report.json").exists():
        report = json.loads((out / "report.json").read_text())
    return code, stdout.getvalue(), stderr.getvalue(), report, out


def easy_refunds(n: int = 30, start: int = T_JAN + 3_600_000) -> list[Event]:
    """`n` refunds of 150 that escalate at the shipped limit of 100 and that a human settles in
    30 s: the data asks for a higher limit."""
    f = EventFactory(start=start)
    events: list[Event] = []
    for i in range(n):
        customer, conv = f"c{i}", f"conv-{i}"
        c = f.of(customer)
        events.append(c.account(primary_email=f"{customer}@x.com"))
        events.append(c.contact(conv, f"billing:{i}", category="billing"))
        events.append(c.customer("Refund my booking please.", conv, category="billing"))
        events.append(
            c.ai(
                "I can refund 150 USD.",
                conv,
                action="refund",
                klass="financial",
                confidence=0.99,
                amount=150.0,
                category="billing",
            )
        )
        events.append(c.contact(conv, f"billing:{i}", action="closed"))
        events.append(
            c.outcome(
                conv, ticket_id=f"t-{i}", resolved_by="human", handle_time_seconds=30.0, csat=4
            )
        )
        f.clock += 10 * MINUTE
    return events


def test_a_supported_change_becomes_a_valid_policy_file_with_its_changelog(tmp_path: Path) -> None:
    code, stdout, stderr, report, out = run(tmp_path, easy_refunds())
    assert code == 0, stderr
    text = (out / "proposal.yaml").read_text()
    proposal = parse_policy(text)
    in_force = default_policy().version
    assert proposal.version == f"{in_force}+review-2026-01"
    assert proposal.boundaries.refund.limit == 150
    line = next(x for x in text.splitlines() if x.strip().startswith("limit:"))
    assert line.strip().startswith("limit: 150.0  # calibrate 2026-01: was 100.0; 30 of 30")
    assert text.startswith("# Proposed by `escalation calibrate --month 2026-01`")
    # Everything else is the policy in force, value for value.
    assert report["proposal"]["changes"] == [
        {"path": "version", "old": in_force, "new": proposal.version},
        {"path": "boundaries.refund.limit", "old": 100.0, "new": 150.0},
    ]
    predicted = report["proposal"]["predicted"]
    assert predicted["current"]["false_escalations"] == 30
    assert predicted["proposal"]["false_escalations"] == 0
    assert predicted["proposal"]["ok_without"] == 30 and predicted["assumed"] == 30
    assert "propose boundaries.refund.limit: 100.0 -> 150.0" in stdout
    assert "predicted false + missed: 30 -> 0" in stdout
    html = (out / "report.html").read_text()
    assert "Policy diff" in html and "boundaries.refund.limit" in html
    assert "drawn tighter than needed" in html


def test_the_hand_written_month_reports_what_it_could_not_judge(tmp_path: Path) -> None:
    code, stdout, _, report, out = run(tmp_path, month_history())
    assert code == 0
    assert not (out / "proposal.yaml").exists()
    assert "no change proposed" in stdout
    html = (out / "report.html").read_text()
    for text in ("decisions without outcome", "outcome for unknown conversation", "conv-ghost"):
        assert text in html


def test_a_month_with_no_events_says_so(tmp_path: Path) -> None:
    code, stdout, stderr, report, _ = run(tmp_path, month_history(), month="2026-03")
    assert code == 1
    assert report["warnings"] == [
        "no conversation of the input starts in 2026-03; the input spans 2025-12-01 to 2026-01-01"
    ]
    assert "warning: no conversation of the input starts in 2026-03" in stdout
    assert report["diagnostics"]["overall"]["conversations"] == 0
    assert "Traceback" not in stderr


def test_an_empty_file_is_refused_as_backtest_refuses_it(tmp_path: Path) -> None:
    code, stdout, stderr, report, out = run(tmp_path, [])
    assert code == 2 and stdout == "" and report is None and not out.exists()
    assert stderr == f"error: event file {tmp_path / 'events.jsonl'} has no events\n"


def test_a_file_whose_every_line_is_skipped_is_refused(tmp_path: Path) -> None:
    events = tmp_path / "garbage.jsonl"
    events.write_text('garbage\n{"x": 1}\n')
    stdout, stderr = io.StringIO(), io.StringIO()
    out = tmp_path / "review"
    code = calibrate_command(
        MONTH, POLICY, out, events, False, on_error="skip", progress=False,
        stdout=stdout, stderr=stderr,
    )  # fmt: skip
    assert code == 2 and stdout.getvalue() == "" and not out.exists()
    assert stderr.getvalue().endswith(
        f"error: event file {events} has no usable event (every line was skipped or refused)\n"
    )


def test_outcomes_without_decisions(tmp_path: Path) -> None:
    f = EventFactory("c1", start=T_JAN + 1000)
    events: list[Event] = [
        f.contact("conv-1", "billing:1"),  # a contact alone decides nothing
        f.outcome("conv-1", resolved_by="ai"),
        f.of("c2").outcome("conv-2", resolved_by="human", handle_time_seconds=50.0),
    ]
    code, _, _, report, _ = run(tmp_path, events)
    assert code == 1
    assert report["unjudged"]["counts"]["outcome_without_decision"] == 1
    assert report["unjudged"]["counts"]["outcome_for_unknown_conversation"] == 1
    assert report["warnings"] == [
        "no conversation of the period has an outcome: nothing could be judged"
    ]


def test_decisions_without_outcomes(tmp_path: Path) -> None:
    events = [e for e in month_history() if e.type != "outcome"]
    code, _, _, report, _ = run(tmp_path, events)
    assert code == 1
    assert report["unjudged"]["counts"]["decisions_without_outcome"] == 8
    assert report["diagnostics"]["overall"]["verdicts"]["unknown"] == 8


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: x\nconfidence: {thresholds: {financial: 1.5}}\n", "confidence.thresholds"),
        ("version: [unclosed\n", "not valid YAML"),
        ("- a list\n", "must be a YAML mapping"),
    ],
)
def test_a_malformed_policy_is_refused_naming_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code, _, stderr, report, _ = run(tmp_path, month_history(), policy=bad)
    assert code == 2 and report is None
    assert stderr.startswith(f"error: {bad}: invalid policy: ") and message in stderr


@pytest.mark.parametrize(
    ("month", "message"), [("2026-13", "is not YYYY-MM"), ("October", "is not YYYY-MM")]
)
def test_a_bad_month(tmp_path: Path, month: str, message: str) -> None:
    code, _, stderr, _, _ = run(tmp_path, month_history(), month=month)
    assert code == 2 and message in stderr


def test_a_malformed_line_names_it(tmp_path: Path) -> None:
    path = write_events(tmp_path / "events.jsonl", month_history())
    with path.open("a") as fh:
        fh.write('{"type": "outcome", "event_id": 3}\n')
    stderr = io.StringIO()
    code = calibrate_command(
        MONTH,
        POLICY,
        tmp_path / "o",
        path,
        False,
        progress=False,
        stdout=io.StringIO(),
        stderr=stderr,
    )
    assert code == 2
    lines = len(month_history()) + 1
    assert f"events.jsonl:{lines}: outcome.customer_id: required field is missing" in (
        stderr.getvalue()
    )
    assert "--on-error skip" in stderr.getvalue()


def test_the_command_line(tmp_path: Path) -> None:
    path = write_events(tmp_path / "events.jsonl", easy_refunds())
    out = tmp_path / "review"
    result = CliRunner().invoke(
        app,
        [
            "calibrate",
            "--month",
            MONTH,
            "--events",
            str(path),
            "--policy",
            str(POLICY),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_policy(out / "proposal.yaml").boundaries.refund.limit == 150
    neither = CliRunner().invoke(
        app, ["calibrate", "--month", MONTH, "--policy", str(POLICY), "--out", str(out)]
    )
    assert neither.exit_code == 2
    assert "give either --events FILE or --from-topics" in neither.output
