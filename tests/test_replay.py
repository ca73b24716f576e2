"""The replay generator on a slice of the real corpus: deterministic, valid, ordered, realistic."""

from __future__ import annotations

import bz2
import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from fastavro.schema import load_schema
from fastavro.validation import validate

from stream.core.events import event_from_dict
from stream.replay import (
    CORPUS_PATH,
    DAY_MS,
    SENTIMENT_MODEL,
    ReplayConfig,
    iter_events,
    lexicon_score,
    read_conversations,
    summarize,
    write_jsonl,
)
from stream.settings import Settings

REPO = Path(__file__).resolve().parents[1]
SLICE = 300
SCHEMA_NAMES = {
    "message": "Message",
    "sentiment": "Sentiment",
    "contact": "Contact",
    "account": "Account",
    "outcome": "Outcome",
}
Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def source() -> Path:
    path = Settings().datasets_dir / CORPUS_PATH
    if not path.exists():
        pytest.fail(f"the shared corpus is missing: {path} (see ../shared/data/README.md)")
    return path


@pytest.fixture(scope="module")
def events(source: Path) -> Events:
    return list(iter_events(source, ReplayConfig(seed=7, conversations=SLICE)))


def jsonl(source: Path, config: ReplayConfig) -> bytes:
    buffer = io.StringIO()
    write_jsonl(iter_events(source, config), buffer)
    return buffer.getvalue().encode("utf-8")


def test_same_seed_gives_identical_bytes_and_another_seed_does_not(source: Path) -> None:
    first = jsonl(source, ReplayConfig(seed=7, conversations=SLICE))
    again = jsonl(source, ReplayConfig(seed=7, conversations=SLICE))
    other = jsonl(source, ReplayConfig(seed=8, conversations=SLICE))
    assert first == again
    assert first != other


def test_every_record_is_a_valid_event_and_a_valid_avro_record(events: Events) -> None:
    schemas = {
        kind: load_schema(str(REPO / "schemas" / f"escalation.{name}.avsc"))
        for kind, name in SCHEMA_NAMES.items()
    }
    assert {kind for kind, _ in events} == set(SCHEMA_NAMES)
    for kind, record in events:
        event = event_from_dict(kind, record)
        assert event.type == kind
        validate(record, schemas[kind], raise_errors=True, strict=True)


def test_event_ids_are_unique(events: Events) -> None:
    ids = [record["event_id"] for _, record in events]
    assert len(ids) == len(set(ids))


def test_events_are_in_event_time_order(events: Events) -> None:
    times = [record["occurred_at"] for _, record in events]
    assert times == sorted(times)
    assert times[0] == ReplayConfig().start_ms


def test_one_opened_and_one_closed_contact_per_conversation(events: Events) -> None:
    opened = [r for k, r in events if k == "contact" and r["action"] == "opened"]
    closed = [r for k, r in events if k == "contact" and r["action"] == "closed"]
    assert len(opened) == len(closed) == SLICE
    assert {r["conversation_id"] for r in opened} == {r["conversation_id"] for r in closed}


def test_customer_text_is_the_real_text(source: Path, events: Events) -> None:
    # Read the rows independently of the generator's parser: the third turn of the first row
    # is the customer's second tweet.
    with bz2.open(source, "rt", encoding="utf-8", newline="") as handle:
        rows = [row for _, row in zip(range(20), csv.DictReader(handle), strict=False)]
    sampled = 0
    for row in rows:
        context = row["context"]
        if "<cust__" not in context:
            continue
        real = context.split("<cust__", 1)[1].split("__cust>", 1)[0].strip()
        conversation = f"tw{row['first_tweet_id']}"
        texts = [
            r["text"]
            for k, r in events
            if k == "message" and r["conversation_id"] == conversation and r["role"] == "customer"
        ]
        first = row["first_utterance"].split("<cust__", 1)[1].split("__cust>", 1)[0].strip()
        assert texts[0] == first
        assert real in texts[1:]
        sampled += 1
    assert sampled >= 3


def test_turns_keep_the_real_order_and_roles(source: Path, events: Events) -> None:
    conversations = read_conversations(source, SLICE)
    by_conversation: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for kind, record in events:
        if kind == "message":
            by_conversation[record["conversation_id"]].append((record["role"], record["text"]))
    for conversation in conversations:
        assert by_conversation[conversation.conversation_id] == list(conversation.turns)


def test_some_customer_contacts_three_times_on_one_issue_within_seven_days(events: Events) -> None:
    opened: dict[tuple[str, str], list[int]] = defaultdict(list)
    for kind, record in events:
        if kind == "contact" and record["action"] == "opened":
            opened[(record["customer_id"], record["issue_key"])].append(record["occurred_at"])
    triples = [
        times
        for times in opened.values()
        if any(times[i + 2] - times[i] < 7 * DAY_MS for i in range(len(times) - 2))
    ]
    assert triples
    assert summarize(events)["repeat_contacts"] >= len(triples)


def test_some_customers_come_back_and_most_do_not(events: Events) -> None:
    summary = summarize(events)
    assert summary["conversations"] == SLICE
    assert 0.6 * SLICE < summary["customers"] < 0.95 * SLICE


def test_refunds_above_and_below_the_limit(events: Events) -> None:
    amounts = [
        r["proposed_action"]["amount"]
        for k, r in events
        if k == "message" and r["proposed_action"] and r["proposed_action"]["type"] == "refund"
    ]
    assert any(amount > 100 for amount in amounts)
    assert any(amount <= 100 for amount in amounts)
    refund = next(
        r["proposed_action"]
        for k, r in events
        if k == "message" and r["proposed_action"] and r["proposed_action"]["type"] == "refund"
    )
    assert refund["consequence_class"] == "financial"
    assert refund["currency"] == "USD"


def test_email_changes_to_primary_and_non_primary_addresses(events: Events) -> None:
    primary = {r["customer_id"]: r["primary_email"] for k, r in events if k == "account"}
    targets = [
        (r["customer_id"], r["proposed_action"]["target"])
        for k, r in events
        if k == "message"
        and r["proposed_action"]
        and r["proposed_action"]["type"] == "account_email_change"
    ]
    assert any(target != primary[customer] for customer, target in targets)
    assert any(target == primary[customer] for customer, target in targets)


def test_agent_turns_carry_intent_and_confidence(events: Events) -> None:
    agent = [r for k, r in events if k == "message" and r["role"] == "ai_agent"]
    customer = [r for k, r in events if k == "message" and r["role"] == "customer"]
    assert all(r["intent"] and 0.0 <= r["intent_confidence"] <= 1.0 for r in agent)
    assert any(r["intent_confidence"] < 0.5 for r in agent)
    assert all(r["intent"] is None and r["proposed_action"] is None for r in customer)


def test_account_precedes_every_other_event_of_its_customer(events: Events) -> None:
    first_kind: dict[str, str] = {}
    accounts: defaultdict[str, int] = defaultdict(int)
    for kind, record in events:
        first_kind.setdefault(record["customer_id"], kind)
        if kind == "account":
            accounts[record["customer_id"]] += 1
    assert set(first_kind.values()) == {"account"}
    assert set(accounts.values()) == {1}


def test_account_flags_tiers_and_enterprise_contracts(source: Path) -> None:
    accounts = [
        r
        for k, r in iter_events(source, ReplayConfig(seed=7, conversations=3000))
        if k == "account"
    ]
    tiers = {r["tier"] for r in accounts}
    assert tiers == {"standard", "plus", "premium", "enterprise"}
    for record in accounts:
        assert record["enterprise_contract"] == (record["tier"] == "enterprise")
        assert (record["contract_id"] is not None) == record["enterprise_contract"]
    assert any({"disputed_charge", "recent_negative_review"} <= set(r["flags"]) for r in accounts)


def test_sentiment_scores_about_half_of_the_customer_turns(events: Events) -> None:
    customer_turns = {
        r["message_id"]: r for k, r in events if k == "message" and r["role"] == "customer"
    }
    scores = [r for k, r in events if k == "sentiment"]
    assert 0.35 < len(scores) / len(customer_turns) < 0.65
    for record in scores:
        turn = customer_turns[record["message_id"]]
        assert record["conversation_id"] == turn["conversation_id"]
        assert record["occurred_at"] > turn["occurred_at"]
        assert record["model"] == SENTIMENT_MODEL


def test_lexicon_score_reads_polarity() -> None:
    assert lexicon_score("Thank you, great help!")[0] > 0.5
    bad, labels = lexicon_score("Delayed again, lost my bag, terrible and ridiculous")
    assert bad < -0.6
    assert "frustration" in labels


def test_outcomes_for_a_subset_with_reopens_at_a_later_contact(source: Path) -> None:
    events = list(iter_events(source, ReplayConfig(seed=7, conversations=2000)))
    outcomes = [r for k, r in events if k == "outcome"]
    assert 0.55 * 2000 < len(outcomes) < 0.85 * 2000
    assert {r["resolved_by"] for r in outcomes} == {"human", "ai", "unresolved"}
    opened = {
        (r["customer_id"], r["occurred_at"])
        for k, r in events
        if k == "contact" and r["action"] == "opened"
    }
    closed_at = {
        r["conversation_id"]: r["occurred_at"]
        for k, r in events
        if k == "contact" and r["action"] == "closed"
    }
    reopened = [r for r in outcomes if r["reopened_at"] is not None]
    assert reopened
    for record in reopened:
        # A reopen is the customer's next contact on the same issue, within two days.
        assert (record["customer_id"], record["reopened_at"]) in opened
        assert 0 < record["reopened_at"] - closed_at[record["conversation_id"]] < 3 * DAY_MS
    human = [r for r in outcomes if r["resolved_by"] == "human"]
    assert all(r["handle_time_seconds"] > 0 for r in human)
    assert any(r["handle_time_seconds"] < 120 and not r["special_expertise"] for r in human)


def test_write_jsonl_writes_the_event_file_format(events: Events) -> None:
    buffer = io.StringIO()
    assert write_jsonl(events[:50], buffer) == 50
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 50
    for line, (kind, record) in zip(lines, events[:50], strict=True):
        assert ": " not in line.split('"text"')[0]  # compact separators
        decoded = json.loads(line)
        assert decoded.pop("type") == kind
        assert decoded == record
    text = next(r["text"] for k, r in events if k == "message" and not r["text"].isascii())
    buffer = io.StringIO()
    write_jsonl([("message", {"text": text})], buffer)
    # ensure_ascii=False keeps the real characters instead of \\u escapes
    assert all(ch in buffer.getvalue() for ch in text if not ch.isascii())
    assert "\\u" not in buffer.getvalue()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="customers_ratio"):
        ReplayConfig(customers_ratio=1.5)
    with pytest.raises(ValueError, match="days"):
        ReplayConfig(days=0)


def test_a_smaller_slice_is_the_first_conversations(source: Path) -> None:
    small = list(iter_events(source, ReplayConfig(conversations=10)))
    conversations = read_conversations(source, 10)
    assert {r["conversation_id"] for k, r in small if k == "message"} == {
        c.conversation_id for c in conversations
    }
