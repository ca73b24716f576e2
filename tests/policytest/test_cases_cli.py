"""Case files: bad input is named by file, case and field (exit 2); a failing case exits 1 with
the decision actually made; JUnit XML for CI; relative times."""

from __future__ import annotations

import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stream.cli import app
from stream.core.policy import default_policy
from stream.policytest.build import START_MS, case_events, turn_times
from stream.policytest.load import CaseFormatError, load_cases
from stream.policytest.timing import format_duration, parse_relative

runner = CliRunner()

# One conversation: a refund of 250 above the shipped limit of 100.
REFUND_250 = """\
    category: billing
    account: {primary_email: kim@example.com}
    turns:
      - customer: Refund my 250 dollars please.
      - ai: I'll refund 250.00 USD.
        confidence: 0.97
        action: {type: refund, class: financial, amount: 250, currency: USD}
"""
GOOD = f"""\
cases:
  - name: refund above the limit
{REFUND_250}    expect: {{action: escalate, by_turn: 2, rules: [boundary.refund_limit]}}
"""
WRONG = f"""\
cases:
  - name: a refund that is fine
{REFUND_250}    expect: {{action: continue}}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(*paths: Path) -> list[str]:
    with pytest.raises(CaseFormatError) as caught:
        load_cases(paths)
    return [str(p) for p in caught.value.problems]


def test_a_typo_in_a_field_names_file_line_case_field_and_the_likely_intent(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, "typo.yaml", GOOD.replace("confidence: 0.97", "confidnce: 0.97"))
    assert problems_of(path) == [
        f"{path}:8: case 'refund above the limit' (cases[0]): turns[1] (turn 2).confidnce: "
        "unknown field (typo? did you mean 'confidence')"
    ]


def test_an_unknown_trigger_is_named_with_the_known_ones(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "trigger.yaml",
        GOOD.replace("rules: [boundary.refund_limit]", "triggers: [refund]"),
    )
    (problem,) = problems_of(path)
    assert problem.startswith(
        f"{path}:10: case 'refund above the limit' (cases[0]): expect.triggers[0]: "
        "unknown trigger 'refund'; triggers are confidence, sentiment,"
    )


def test_an_unknown_rule_family_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "rule.yaml", GOOD.replace("boundary.refund_limit", "refund_limit"))
    (problem,) = problems_of(path)
    assert "expect.rules[0]: unknown rule 'refund_limit'" in problem


def test_a_turn_index_out_of_range_says_how_many_turns_there_are(tmp_path: Path) -> None:
    path = write(tmp_path, "range.yaml", GOOD.replace("by_turn: 2", "by_turn: 5"))
    assert problems_of(path) == [
        f"{path}:10: case 'refund above the limit' (cases[0]): expect.by_turn: turn 5 is out of "
        "range: the case has 2 turn(s), numbered 1 to 2 (turn 0 needs a `contact`)"
    ]


def test_an_empty_file_and_a_folder_without_cases_are_named(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.yaml", "# nothing yet\n")
    folder = tmp_path / "no-cases"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a case file")
    none = write(tmp_path, "none.yaml", "cases: []\n")
    assert problems_of(empty, folder, none) == [
        f"{folder}: the folder holds no case files (*.yaml)",
        f"{empty}: cases: the file is empty: it holds no cases",
        f"{none}:1: cases: no cases: at least one is needed",
    ]


def test_every_problem_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD + (
        "  - name: second\n"
        "    turns:\n"
        "      - customer: hi\n"
        "        ai: hello\n"
        "      - customer: later\n"
        "        at: 2 days ago\n"
        "    expect: {action: continue, by_turn: 1}\n"
        "  - name: third\n"
        "    turns: [{customer: hi}]\n"
        "    expect: {action: escalate, not_before: 0}\n"
    )
    path = write(tmp_path, "many.yaml", text)
    problems = problems_of(path)
    assert problems == [
        f"{path}:14: case 'second' (cases[1]): turns[0] (turn 1).ai: a turn has exactly one of "
        "customer, ai, human, system (who speaks, and what they say); found 2",
        f"{path}:16: case 'second' (cases[1]): turns[1] (turn 2).at: a turn is after the start: "
        "'+20 s' (after the previous turn) or '2 min'",
        f"{path}:17: case 'second' (cases[1]): expect.by_turn: a conversation that continues has "
        "no decisive turn",
        f"{path}:20: case 'third' (cases[2]): expect.not_before: turn 0 is out of range: the case "
        "has 1 turn(s), numbered 1 to 1 (turn 0 needs a `contact`)",
    ]


def test_a_duplicate_case_name_and_a_duplicate_key_are_refused(tmp_path: Path) -> None:
    twice = write(tmp_path, "twice.yaml", GOOD + GOOD.removeprefix("cases:\n"))
    assert problems_of(twice) == [
        f"{twice}:11: case 'refund above the limit' (cases[1]): name: another case has this name"
    ]
    key = write(
        tmp_path,
        "key.yaml",
        GOOD.replace("    category: billing\n", "    category: billing\n    category: booking\n"),
    )
    (problem,) = problems_of(key)
    assert problem.startswith(f"{key}:4: not valid YAML: duplicate key 'category'")


def test_cli_exit_codes_zero_one_two(tmp_path: Path) -> None:
    good = write(tmp_path, "good.yaml", GOOD)
    wrong = write(tmp_path, "wrong.yaml", WRONG)
    typo = write(tmp_path, "typo.yaml", GOOD.replace("expect:", "expekt:"))

    passed = runner.invoke(app, ["policy", "test", str(good)])
    assert passed.exit_code == 0, passed.output
    assert "PASS" in passed.stdout and "1 case(s): 1 passed, 0 failed" in passed.stdout

    failed = runner.invoke(app, ["policy", "test", str(good), str(wrong)])
    assert failed.exit_code == 1, failed.output
    assert "FAIL a refund that is fine" in failed.stdout
    assert "expected continue, the policy decided escalate at turn 2" in failed.stdout
    assert "[boundary.refund_limit] A refund of 250.00 USD is above the AI agent's limit" in (
        failed.stdout
    )

    malformed = runner.invoke(app, ["policy", "test", str(good), str(typo)])
    assert malformed.exit_code == 2
    assert "expekt: unknown field (typo? did you mean 'expect')" in malformed.stderr
    assert "Traceback" not in malformed.output

    bad_policy = write(tmp_path, "policy.yaml", "version: x\nconfidence: {treshold: 1}\n")
    refused = runner.invoke(app, ["policy", "test", str(good), "--policy", str(bad_policy)])
    assert refused.exit_code == 2
    assert "confidence.treshold: unknown field" in refused.stderr


def test_junit_xml_names_files_cases_and_failures(tmp_path: Path) -> None:
    write(tmp_path, "good.yaml", GOOD)
    write(tmp_path, "wrong.yaml", WRONG)
    junit = tmp_path / "out" / "policy-tests.xml"
    junit.parent.mkdir()
    result = runner.invoke(app, ["policy", "test", str(tmp_path), "--junit", str(junit)])
    assert result.exit_code == 1
    root = ET.parse(junit).getroot()
    assert (root.tag, root.get("tests"), root.get("failures")) == ("testsuites", "2", "1")
    cases = {case.get("name"): case for case in root.iter("testcase")}
    assert set(cases) == {"refund above the limit", "a refund that is fine"}
    failure = cases["a refund that is fine"].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected continue, the policy decided escalate at turn 2"
    assert "boundary.refund_limit" in (failure.text or "")
    assert cases["refund above the limit"].find("failure") is None


def test_a_known_failure_is_reported_and_fails_the_suite_once_it_passes(tmp_path: Path) -> None:
    known = WRONG.replace(
        "    expect: {action: continue}",
        "    known_failure: refunds are odd\n    expect: {action: continue}",
    )
    path = write(tmp_path, "known.yaml", known)
    still = runner.invoke(app, ["policy", "test", str(path)])
    assert still.exit_code == 0
    assert "XFAIL" in still.stdout and "1 known failure(s)" in still.stdout

    fixed = write(tmp_path, "fixed.yaml", known.replace("{action: continue}", "{action: escalate}"))
    now = runner.invoke(app, ["policy", "test", str(fixed)])
    assert now.exit_code == 1
    assert "this known failure passes now: remove `known_failure`" in now.stdout


@pytest.mark.parametrize(
    ("text", "anchor", "ms"),
    [
        ("3 days ago", "ago", 3 * 86_400_000),
        ("+20 s", "after_previous", 20_000),
        ("2 min", "from_start", 120_000),
        ("7 days 1 min ago", "ago", 7 * 86_400_000 + 60_000),
        ("+0.25 s", "after_previous", 250),
        ("1 week ago", "ago", 7 * 86_400_000),
    ],
)
def test_relative_times(text: str, anchor: str, ms: int) -> None:
    parsed = parse_relative(text)
    assert (parsed.anchor, parsed.ms) == (anchor, ms)
    assert parse_relative(format_duration(ms)).ms == ms


@pytest.mark.parametrize("text", ["3", "3 dayz ago", "+3 days ago", "soon", "ago"])
def test_relative_times_that_are_not(text: str) -> None:
    with pytest.raises(ValueError):
        parse_relative(text)


def test_a_case_becomes_the_events_a_worker_reads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events.yaml",
        """\
        cases:
          - name: timeline
            account: {primary_email: a@example.com}
            contacts: [{at: 2 days ago, issue: "billing:1"}]
            contact: {issue: "billing:1"}
            turns:
              - customer: first
                sentiment: -0.2
              - ai: second
                at: +5 s
              - customer: third
                at: 10 min
            expect: {action: continue}
        """,
    )
    (loaded,) = load_cases([path])
    events = case_events(loaded.case)
    assert [(e.event.type, e.turn) for e in events] == [
        ("account", None),
        ("contact", None),
        ("contact", 0),
        ("message", 1),
        ("sentiment", 1),
        ("message", 2),
        ("message", 3),
    ]
    times = [e.event.occurred_at - START_MS for e in events]
    day = 86_400_000
    assert times == [-2 * day - 60_000, -2 * day, 0, 30_000, 30_000, 35_000, 600_000]
    assert turn_times(loaded.case) == [START_MS + 30_000, START_MS + 35_000, START_MS + 600_000]


def test_a_dry_run_without_a_broker_still_validates_and_tests(tmp_path: Path) -> None:
    env = {"ESCALATION_BOOTSTRAP_SERVERS": "127.0.0.1:1", "ESCALATION_BROKER_WAIT_SECONDS": "1"}
    wrong = write(tmp_path, "wrong.yaml", WRONG)
    result = runner.invoke(
        app,
        ["policy", "publish", "policy/default.yaml", "--dry-run", "--tests", str(wrong)],
        env=env,
    )
    assert result.exit_code == 1
    assert "cannot read the policy in force: no Kafka broker answered at 127.0.0.1:1" in (
        result.stderr
    )
    assert "FAIL a refund that is fine" in result.stdout
    assert "not published: 1 of 1 policy test case(s) fail" in result.stderr

    good = write(tmp_path, "good.yaml", GOOD)
    passed = runner.invoke(
        app,
        ["policy", "publish", "policy/default.yaml", "--dry-run", "--tests", str(good)],
        env=env,
    )
    assert passed.exit_code == 0, passed.output
    shipped = default_policy().version
    assert f"dry run: policy {shipped} not published" in passed.stdout


def test_without_case_arguments_the_configured_suite_runs(tmp_path: Path) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    write(suite, "good.yaml", GOOD)
    result = runner.invoke(
        app, ["policy", "test"], env={"ESCALATION_POLICY_TESTS_PATH": str(suite)}
    )
    assert result.exit_code == 0, result.output
    assert "good.yaml › refund above the limit" in result.stdout
    assert "1 case(s): 1 passed, 0 failed" in result.stdout
