"""Personal data stays out of logs: a demo-style replay, every log line of the worker and the CLI.

The worker folds replayed airline conversations (real customer text, synthetic accounts with
email addresses) plus poison records carrying an email, a phone number and a card number; the
CLI replays, checks the lag and publishes a policy. Every line any of them wrote is then searched
for an email, a phone number, a card-like number and the text of every replayed message.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from stream.lag import LagProbe
from stream.replay import ReplayConfig, iter_events
from stream.serde import serde_for_topic
from stream.testing import message_record
from stream.topics import INPUT_TOPICS
from tests.commands import run_module
from tests.integration.kafka_helpers import (
    BOOTSTRAP,
    CORPUS,
    Isolated,
    cli_env,
    produce_raw,
    running_worker,
    wait_until_consuming,
)

pytestmark = pytest.mark.integration

SOURCE = CORPUS
CONVERSATIONS = 150

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A phone number as people write it: optional +country, groups of digits, 9 to 15 digits in all.
PHONE = re.compile(r"(?<![\w.:-])\+?\(?\d{1,4}\)?(?:[ .-]?\(?\d{2,4}\)?){2,4}(?![\w.:-])")
# Not after a "." nor before one: the fraction of a decimal number is no card number.
CARD = re.compile(r"(?<![\d.])(?:\d[ -]?){12,18}\d(?![\d.])")
POISON = "write to jane.doe@example.org or call +1 415 555 0199, card 4111 1111 1111 1111"


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def personal_data(line: str, texts: list[str]) -> list[str]:
    """What in this line is personal: emails, phones, card-like numbers, replayed message text."""
    found = [f"email {m}" for m in EMAIL.findall(line)]
    for match in PHONE.finditer(line):
        digits = re.sub(r"\D", "", match.group())
        # Dates, epoch milliseconds and offsets share the shape; a phone number has 9-15 digits,
        # is never an ISO date, and a run of 12 or more bare digits is a timestamp, not a phone.
        bare_long = match.group().isdigit() and len(digits) >= 12
        iso_date = re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", match.group())
        decimal = re.fullmatch(r"[+-]?\(?\d+\.\d+\)?", match.group())  # a drift, a ratio
        if 9 <= len(digits) <= 15 and not (bare_long or iso_date or decimal):
            found.append(f"phone {match.group()}")
    for match in CARD.finditer(line):
        digits = re.sub(r"\D", "", match.group())
        # Epoch milliseconds (13 digits) and offsets are numbers too; a card has 15-16 and
        # passes the Luhn check.
        if len(digits) in (15, 16) and luhn(digits):
            found.append(f"card {match.group()}")
    found.extend(f"message text {text[:40]!r}" for text in texts if text in line)
    return found


def test_the_detector_finds_each_kind_of_personal_data() -> None:
    texts = ["my flight was cancelled twice and nobody answers"]
    assert personal_data(POISON, []) == [
        "email jane.doe@example.org",
        "phone +1 415 555 0199",
        "card 4111 1111 1111 1111",
    ]
    assert personal_data(f"x {texts[0]} y", texts) == [f"message text {texts[0][:40]!r}"]
    clean = (
        '{"topic": "it-1.support.messages", "offset": 41, "occurred_at": 1767225600000, '
        '"timestamp": "2026-11-30T07:32:15.229620Z", "event": "dead_letter"}'
    )
    assert personal_data(clean, texts) == []
    for timer in (
        "Timer commit woke up too late, with a drift of +0.6357121119999647 runtime=5.9e-05",
        "Timer commit woke up too late, with a drift of +0.68506316300045 runtime=5.9e-05",
        "Timer Monitor.sampler woke up too late, runtime=2.58e-05 sleeptime=1.88780573799977",
        "Timer commit is overlapping (interval=1.0 runtime=7.55960711499938)",
    ):
        assert personal_data(timer, texts) == []


def cli(isolated: Isolated, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI on the isolated topics; all it printed is appended to `log`."""
    done = run_module("stream.cli", *args, env=cli_env(isolated), timeout=300)
    with log.open("a") as out:
        out.write(done.stdout + done.stderr)
    return done


def wait_for_zero_lag(isolated: Isolated, timeout: float = 240) -> None:
    probe = LagProbe(
        {"bootstrap.servers": BOOTSTRAP},
        isolated.app_id,
        [isolated.topic(name) for name in INPUT_TOPICS],
    )
    try:
        deadline = time.monotonic() + timeout
        total = -1
        while time.monotonic() < deadline:
            total = probe.measure().total
            if total == 0:
                return
            time.sleep(2)
        raise AssertionError(f"the worker still lags by {total} records after {timeout}s")
    finally:
        probe.close()


def replayed_personal_data() -> tuple[list[str], list[str]]:
    """The message texts and account emails of the replay, as the worker received them."""
    texts: list[str] = []
    emails: list[str] = []
    for kind, record in iter_events(SOURCE, ReplayConfig(conversations=CONVERSATIONS)):
        if kind == "message" and len(record["text"].strip()) >= 20:
            texts.append(record["text"].strip())
        if kind == "account" and record.get("primary_email"):
            emails.append(record["primary_email"])
    return texts, emails


def test_no_log_line_of_the_worker_or_the_cli_carries_personal_data(
    isolated: Isolated, tmp_path: Path
) -> None:
    worker_log, cli_log = tmp_path / "worker.log", tmp_path / "cli.log"
    with running_worker(isolated, tmp_path / "state", worker_log):
        wait_until_consuming(isolated)
        # Given the replay of real conversations through the CLI, as the demo does
        replayed = cli(
            isolated,
            cli_log,
            "replay",
            "--conversations",
            str(CONVERSATIONS),
            "--source",
            str(SOURCE),
        )
        assert replayed.returncode == 0, cli_log.read_text()
        # And records that fail in the worker while carrying personal data
        produce_raw(isolated, "support.messages", b"c-poison", POISON.encode())
        message = serde_for_topic("support.messages")
        for key, customer in ((b"someone-else", "c-poison"), (b"c-poison", POISON)):
            # keyed by another customer, and a customer id that is personal text: both dead
            # letters, the second with the offending value in its reason
            produce_raw(
                isolated,
                "support.messages",
                key,
                message.encode(
                    message_record(
                        event_id=f"poison-{customer[:4]}",
                        customer_id=customer,
                        occurred_at=1_767_225_600_000,
                        conversation_id="v-poison",
                        message_id="m-poison",
                        text=POISON,
                    )
                ),
            )
        # And a policy published through the CLI, and the lag read through it
        published = cli(isolated, cli_log, "policy", "publish", "policy/default.yaml")
        assert published.returncode == 0, cli_log.read_text()
        wait_for_zero_lag(isolated)
        assert cli(isolated, cli_log, "lag").returncode == 0
    # (the worker is stopped: its last lines are flushed)

    # Then no line of either carries personal data
    texts, emails = replayed_personal_data()
    assert len(texts) > 100 and emails, "the replay carries personal data to look for"
    texts.append(POISON)
    lines = worker_log.read_text().splitlines() + cli_log.read_text().splitlines()
    structured = [json.loads(line) for line in lines if line.startswith("{")]
    dead = [entry for entry in structured if entry.get("event") == "dead_letter"]
    assert len(dead) == 3, "the poison records were logged as dead letters"
    assert any(entry.get("event") == "policy_adopted" for entry in structured)
    leaks: dict[str, list[str]] = {}
    for line in lines:
        values = [line]
        if line.startswith("{"):  # decoded too, so JSON escaping hides nothing
            values.append(json.dumps(json.loads(line), ensure_ascii=False))
        found = sorted({hit for value in values for hit in personal_data(value, texts)})
        found += [f"email {e}" for e in emails if e in line and f"email {e}" not in found]
        if found:
            leaks[line[:160]] = found
    assert not leaks, json.dumps(leaks, indent=1)[:4000]
    # And the one reason that echoed personal data was redacted, not dropped
    assert any("[email]" in entry["reason"] for entry in dead), dead
