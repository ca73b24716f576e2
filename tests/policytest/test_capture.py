"""Capture: a replayed real conversation becomes a case that passes, and fails once the policy
decides it differently; redaction masks the text and keeps the decision."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from stream.backtest.run import run_policy
from stream.backtest.sources import JsonlSource
from stream.cli import app
from stream.core.policy import default_policy
from stream.policytest.capture import capture
from stream.replay import CORPUS_PATH
from stream.settings import Settings
from stream.testing import make_policy

runner = CliRunner()


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = Settings().datasets_dir / CORPUS_PATH
    if not source.exists():
        pytest.fail(f"the shared corpus is missing: {source} (see ../shared/data/README.md)")
    out = tmp_path_factory.mktemp("replay") / "events.jsonl"
    result = runner.invoke(app, ["replay", "--conversations", "200", "--jsonl", str(out)])
    assert result.exit_code == 0, result.output
    return out


def escalated_by(events: Path, rule: str) -> str:
    """A conversation of the replay whose escalation the default policy makes for `rule`."""
    run = run_policy(JsonlSource(events), default_policy())
    for conversation, verdict in sorted(run.verdicts.items()):
        decisive = verdict.decisive
        rules = {hit.rule for hit in decisive.triggers} if decisive is not None else set()
        if verdict.action == "escalate" and rules == {rule}:
            return conversation
    pytest.fail(f"no conversation of the replay escalates for {rule} alone")


def write_policy(tmp_path: Path, overrides: dict[str, object]) -> Path:
    path = tmp_path / "policy.yaml"
    policy = make_policy(overrides)
    path.write_text(yaml.safe_dump(policy.model_dump(mode="json", by_alias=True)))
    return path


def test_a_captured_repeat_contact_passes_and_fails_when_the_policy_changes_it(
    replayed: Path, tmp_path: Path
) -> None:
    conversation = escalated_by(replayed, "repeat_contact.same_issue")
    case_file = tmp_path / "captured.yaml"

    # Given a real conversation the default policy escalates for a repeat contact, captured
    captured = runner.invoke(
        app,
        [
            "policy", "capture", "--events", str(replayed),
            "--conversation", conversation, "--out", str(case_file),
        ],
    )  # fmt: skip
    assert captured.exit_code == 0, captured.output
    assert "note:" not in captured.stderr, captured.stderr  # the case decides as the file did
    case = yaml.safe_load(case_file.read_text())["cases"][0]
    assert case["conversation"] == conversation
    assert len(case["contacts"]) >= 2
    assert case["expect"]["action"] == "escalate"
    assert case["expect"]["rules"] == ["repeat_contact.same_issue"]
    assert all(turn.get("at", "").startswith("+") for turn in case["turns"])

    # When it runs against the policy it was captured with, it passes
    same = runner.invoke(app, ["policy", "test", str(case_file)])
    assert same.exit_code == 0, same.stdout

    # And when the policy needs ten contacts before it escalates, it fails, saying what changed
    looser = write_policy(tmp_path, {"version": "ten-contacts", "repeat_contact": {"contacts": 10}})
    changed = runner.invoke(app, ["policy", "test", str(case_file), "--policy", str(looser)])
    assert changed.exit_code == 1
    assert f"FAIL captured {conversation}" in changed.stdout
    assert "expected escalate, the policy decided continue" in changed.stdout


def test_a_missed_escalation_is_captured_with_the_expectation_the_reviewer_gives(
    replayed: Path, tmp_path: Path
) -> None:
    run = run_policy(JsonlSource(replayed), default_policy())
    conversation = next(
        c for c, v in sorted(run.verdicts.items()) if v.action == "continue" and v.decisions >= 2
    )
    captured = runner.invoke(
        app,
        [
            "policy", "capture", "--events", str(replayed), "--conversation", conversation,
            "--expect", "escalate", "--name", "missed in the monthly review",
        ],
    )  # fmt: skip
    assert captured.exit_code == 0, captured.output
    assert "the expectation (escalate) differs from what policy" in captured.stderr
    case = yaml.safe_load(captured.stdout)["cases"][0]
    assert case["name"] == "missed in the monthly review"
    assert case["expect"] == {"action": "escalate"}
    (tmp_path / "missed.yaml").write_text(captured.stdout)
    result = runner.invoke(app, ["policy", "test", str(tmp_path / "missed.yaml")])
    assert result.exit_code == 1


def event_line(kind: str, **fields: object) -> str:
    return json.dumps({"type": kind, "customer_id": "cust-9", "schema_version": 1, **fields})


def email_change(
    event_id: str, at: int, message_id: str, text: str, intent: str, target: str
) -> str:
    """An AI turn of conversation c-9 or c-10 (by its message id) changing an email address."""
    return event_line(
        "message",
        event_id=event_id,
        occurred_at=at,
        conversation_id=message_id.rsplit("-", 1)[0],
        message_id=message_id,
        role="ai_agent",
        channel="chat",
        category="account",
        text=text,
        intent=intent,
        intent_confidence=0.95,
        proposed_action={
            "type": "account_email_change",
            "consequence_class": "account_change",
            "target": target,
        },
    )


def test_redaction_masks_the_text_and_keeps_equal_emails_equal(tmp_path: Path) -> None:
    # Given a conversation where the customer gives their email and phone number, and the AI agent
    # changes the receipt address to the account's primary email (within its authority)
    t0 = 1_700_000_000_000
    lines = [
        event_line(
            "account", event_id="a1", occurred_at=t0, primary_email="Pat.Lee@example.com",
            tier="standard",
        ),
        event_line(
            "message", event_id="m1", occurred_at=t0 + 1000, conversation_id="c-9",
            message_id="c-9-1", role="customer", channel="chat", category="account",
            text="Send receipts to pat.lee@example.com please, or call +1 415 555 0199.",
        ),
        email_change(
            "m2", t0 + 5000, "c-9-2", "Done: receipts now go to pat.lee@example.com.",
            "receipt_email", "pat.lee@example.com",
        ),
        email_change(
            "m3", t0 + 9000, "c-10-1", "I'll change your login to pat.other@example.org.",
            "login_email", "pat.other@example.org",
        ),
    ]  # fmt: skip
    events = tmp_path / "events.jsonl"
    events.write_text("\n".join(lines) + "\n")

    # When it is captured with --redact
    result = runner.invoke(
        app, ["policy", "capture", "--events", str(events), "--conversation", "c-9", "--redact"]
    )

    # Then no address or number is left, the two equal addresses stay equal, and the case still
    # decides what the recorded conversation decided
    assert result.exit_code == 0, result.output
    assert "pat.lee" not in result.stdout.lower() and "555" not in result.stdout
    case = yaml.safe_load(result.stdout)["cases"][0]
    assert case["turns"][0]["customer"] == "Send receipts to [email] please, or call [phone]."
    assert case["account"]["primary_email"] == case["turns"][1]["action"]["target"]
    assert case["expect"] == {"action": "continue", "escalations": 0}
    assert "note:" not in result.stderr

    # And different addresses stay different: a change to another address still escalates
    other = runner.invoke(
        app, ["policy", "capture", "--events", str(events), "--conversation", "c-10", "--redact"]
    )
    assert other.exit_code == 0, other.output
    case = yaml.safe_load(other.stdout)["cases"][0]
    assert case["account"]["primary_email"] != case["turns"][0]["action"]["target"]
    assert case["expect"]["rules"] == ["boundary.non_primary_email"]
    assert "pat.other" not in other.stdout


def test_capture_refuses_an_unknown_conversation_and_a_broken_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text(event_line("account", event_id="a1", occurred_at=1) + "\n{oops\n")
    missing = runner.invoke(
        app, ["policy", "capture", "--events", str(events), "--conversation", "nope"]
    )
    assert missing.exit_code == 2
    assert f"{events}:2: not valid JSON" in missing.stderr
    events.write_text(event_line("account", event_id="a1", occurred_at=1) + "\n")
    unknown = runner.invoke(
        app, ["policy", "capture", "--events", str(events), "--conversation", "nope"]
    )
    assert unknown.exit_code == 2
    assert "no event of conversation 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.output


def test_every_escalated_or_offered_conversation_of_the_replay_is_captured_faithfully(
    replayed: Path,
) -> None:
    # Given every conversation of the replayed slice that the default policy does not just continue
    policy = default_policy()
    run = run_policy(JsonlSource(replayed), policy)
    decided = {c: v for c, v in run.verdicts.items() if v.action != "continue"}
    assert len(decided) >= 20

    # When each is captured, its case decides exactly as the recorded events did
    for conversation, verdict in sorted(decided.items()):
        captured = capture(replayed, conversation, policy)
        assert verdict.decisive is not None
        rules = sorted({hit.rule for hit in verdict.decisive.triggers})
        decisive = captured.result.decisive
        assert decisive is not None, conversation
        assert (decisive.decision.action, captured.case.case.expect.rules) == (
            verdict.action,
            tuple(rules),
        ), conversation
        assert captured.result.passed and not captured.notes, (conversation, captured.notes)
