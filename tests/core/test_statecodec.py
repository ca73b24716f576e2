"""The stored state: compact UTF-8, versioned (old JSON loads), and never over its byte budget."""

from __future__ import annotations

import json

import pytest

from stream.core import statecodec
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.testing import T0, EventFactory, Run, make_policy

BROKER_LIMIT = 1_048_588  # Kafka's default message.max.bytes


def worst_case_in_emoji(policy: Policy) -> CustomerState:
    """The most the policy lets one customer keep: every conversation full of maximal turns,
    in 4-byte characters."""
    events = EventFactory("c-emoji")
    limits = policy.state
    state: CustomerState | None = None
    text = "😡" * limits.max_text_chars
    for conv in range(limits.max_open_conversations):
        for turn in range(limits.max_turns_per_conversation):
            event = events.customer(text, conversation_id=f"v{conv}", at=T0 + conv * 1000 + turn)
            state = step(state, event, policy).state
    assert state is not None
    return state


def test_the_worst_case_the_policy_allows_in_emoji_fits_the_budget() -> None:
    policy = make_policy()
    state = worst_case_in_emoji(policy)
    # Before: escaped JSON of this state is far over the broker's limit
    escaped = json.dumps(state.to_record()).encode()
    assert len(escaped) > 9 * BROKER_LIMIT
    # After: encoded under the budget, the oldest turns trimmed and counted
    budget = policy.state.max_state_bytes
    data, cut = statecodec.encode(state, budget)
    assert len(data) <= budget < BROKER_LIMIT
    assert cut > 0
    assert sum(c.trimmed_turns for c in state.conversations.values()) == cut
    restored = statecodec.decode(data)
    assert restored == state
    # The newest turns are the ones kept
    newest = max(state.conversations.values(), key=lambda c: c.last_at)
    assert newest.turns and newest.turns[-1].at == T0 + 19 * 1000 + 19


def test_utf8_without_escapes_and_versioned() -> None:
    run = Run(make_policy())
    run.feed(EventFactory("c-1").customer("Grüße 😀"))
    assert run.state is not None
    data, cut = statecodec.encode(run.state, 262_144)
    assert cut == 0
    assert data[0] == statecodec.VERSION
    assert "Grüße 😀".encode() in data
    assert b"\\u" not in data and b", " not in data


def test_an_old_changelog_of_json_objects_still_loads() -> None:
    run = Run(make_policy())
    run.feed(EventFactory("c-1").customer("hello"), EventFactory("c-1").account())
    assert run.state is not None
    # Version 1: what the table stored before, JSON with ASCII escapes, as bytes or as an object
    v1 = json.dumps(run.state.to_record()).encode()
    assert statecodec.decode(v1) == run.state
    assert statecodec.decode(json.loads(v1)) == run.state
    with pytest.raises(statecodec.StateCodecError, match="first byte 0x07"):
        statecodec.decode(b"\x07junk")


def test_the_estimate_never_undercounts_so_fit_skips_only_what_fits(policy: Policy) -> None:
    state = worst_case_in_emoji(policy)
    assert statecodec.estimate(state) >= len(statecodec.encode(state, 10**9)[0])
    small = Run(policy)
    small.feed(EventFactory("c-2").customer("hi"))
    assert small.state is not None
    assert statecodec.estimate(small.state) >= len(statecodec.encode(small.state, 10**9)[0])
    assert statecodec.fit(small.state, 262_144) == 0


def test_an_oversized_issue_key_is_cut_not_fatal() -> None:
    # A single contact with a huge emoji issue key used to make a 1 MB state record
    policy = make_policy()
    events = EventFactory("c-key")
    state = step(None, events.contact("v1", issue_key="🔑" * 90_000), policy).state
    data, _ = statecodec.encode(state, policy.state.max_state_bytes)
    assert len(data) <= policy.state.max_state_bytes


def test_version_3_keeps_each_customer_turns_lexicon_score() -> None:
    events = EventFactory("c-1")
    run = Run(make_policy())
    run.feed(events.customer("this is useless"), events.ai("Sorry."), events.customer("no"))
    assert run.state is not None
    data, _ = statecodec.encode(run.state, 262_144)
    assert data[0] == statecodec.VERSION == 3
    restored = statecodec.decode(data)
    assert restored == run.state
    kept = [turn.lexicon for turn in restored.conversations["conv-1"].turns]
    assert kept[0] is not None and kept[1] is None and kept[2] is not None


def test_a_version_2_state_loads_without_kept_scores_and_scores_the_next_turn_the_same() -> None:
    # Version 2 is the same layout without `lexicon`: its turns read with no kept score, and the
    # next turn's context analyses the stored texts, which gives the same decision and score.
    events = EventFactory("c-1")
    policy = make_policy()
    run = Run(policy)
    run.feed(events.customer("where is my refund, this is useless"), events.ai("Did it arrive?"))
    assert run.state is not None
    record = json.loads(statecodec.encode(run.state, 262_144)[0][1:])
    for turn in record["conversations"]["conv-1"]["turns"]:
        del turn["lexicon"]
    version_2 = statecodec.decode(bytes([2]) + json.dumps(record).encode())
    assert [turn.lexicon for turn in version_2.conversations["conv-1"].turns] == [None, None]
    following = events.customer("no it did not, I asked twice")
    from_texts = Run(policy, version_2).step(following)
    from_state = Run(policy, run.state).step(following)
    assert from_texts.decisions == from_state.decisions
    assert from_texts.state.conversations["conv-1"].turns[-1].signal is not None
    assert (
        from_texts.state.conversations["conv-1"].turns[-1]
        == from_state.state.conversations["conv-1"].turns[-1]
    )


@pytest.mark.parametrize("first", [1, 4, 0x7A])
def test_a_version_byte_it_does_not_know_is_refused(first: int) -> None:
    with pytest.raises(statecodec.StateCodecError, match=f"first byte {first:#04x}"):
        statecodec.decode(bytes([first]) + b"{}")


def test_an_empty_record_is_refused_by_name() -> None:
    with pytest.raises(statecodec.StateCodecError, match="^empty state record$"):
        statecodec.decode(b"")
