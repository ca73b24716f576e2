"""Per-field bounds of the stored state (stream/core/bounds.py) and the compact account record.

Before, only the whole-state byte budget bounded a customer: one 360 KB issue key or an account
with thousands of flags was kept whole, and the budget then cut the turns decisions need. Each
test sends one oversized field and checks what is stored: within the policy's limit, ending in
the trim marker, and (for issue keys) still telling distinct keys apart.
"""

from __future__ import annotations

import pytest

from stream.core import statecodec
from stream.core.bounds import MAX_ID_CHARS, TRIM_MARKER, clip, clip_all, clip_key
from stream.core.events import EventError, event_from_dict
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.testing import EventFactory, Run, message_record

EMOJI = "😡"


def state_of(run: Run) -> CustomerState:
    assert run.state is not None
    return run.state


def test_clip_keeps_short_values_and_marks_cut_ones() -> None:
    assert clip("abc", 3) == "abc"
    assert clip("abcd", 3) == "ab" + TRIM_MARKER
    assert len(clip(EMOJI * 100, 10)) == 10
    assert clip_all(("a", "b", "c"), 5, 2) == ("a", f"{TRIM_MARKER}2 more")
    key = clip_key("k" * 500, 40)
    assert len(key) == 40 and TRIM_MARKER in key
    assert clip_key("k" * 500, 40) != clip_key("k" * 499 + "x", 40)


def test_an_emoji_issue_key_is_bounded_and_still_distinct(
    policy: Policy, events: EventFactory
) -> None:
    # Given two 360 KB issue keys that differ only at their end
    limit = policy.state.max_key_chars
    first = EMOJI * 90_000 + "a"
    second = EMOJI * 90_000 + "b"
    run = Run(policy)
    run.feed(events.contact("conv-1", first), events.contact("conv-2", second))
    keys = [c.issue_key for c in state_of(run).contacts]
    # Then each is stored within the limit, marked, and the two stay two keys
    assert all(len(k) <= limit and TRIM_MARKER in k for k in keys)
    assert keys[0] != keys[1]
    # And counting keeps them apart: the second contact on the first key is not the third
    # contact on one issue (which merged keys would make it), the third one is
    assert run.one(events.contact("conv-3", first)) is None
    decision = run.one(events.contact("conv-4", first))
    assert decision is not None and decision.action == "escalate"
    (count,) = [e for e in decision.triggers[0].evidence if e.kind == "count"]
    assert count.value == 3.0
    stored = statecodec.encode(state_of(run), policy.state.max_state_bytes)[0]
    # Four 360 KB keys (and the escalation quoting one) would be over 1 MB unbounded
    assert len(stored) < 50_000


def test_account_fields_are_bounded(policy: Policy, events: EventFactory) -> None:
    limits = policy.state
    flags = tuple(f"flag-{n}" for n in range(1000)) + ("vip", "x" * 500)
    run = Run(policy)
    run.feed(
        events.account(
            primary_email="p" * 10_000 + "@example.com",
            tier=EMOJI * 5_000,
            plan="plan" * 1_000,
            contract_id="c" * 10_000,
            currency="U" * 1_000,
            flags=flags,
        )
    )
    account = state_of(run).account
    assert account is not None
    assert account.primary_email is not None
    assert len(account.primary_email) == limits.max_email_chars
    assert account.primary_email.endswith(TRIM_MARKER)
    for value in (account.tier, account.plan, account.currency):
        assert value is not None and len(value) == limits.max_label_chars
        assert value.endswith(TRIM_MARKER)
    assert account.contract_id is not None and len(account.contract_id) == limits.max_key_chars
    # At most max_flags flags, the ones the policy reads kept first, and a marker of the rest
    assert len(account.flags) == limits.max_flags
    assert "vip" in account.flags
    assert account.flags[-1] == f"{TRIM_MARKER}{len(flags) - limits.max_flags + 1} more"
    assert all(len(f) <= limits.max_label_chars for f in account.flags)


def test_ai_turn_fields_are_bounded(policy: Policy, events: EventFactory) -> None:
    limits = policy.state
    run = Run(policy)
    run.feed(
        events.customer("hi"),
        events.ai(
            action="t" * 1_000,
            klass="informational",
            target="x" * 10_000,
            intent="i" * 1_000,
            category="c" * 1_000,
        ),
    )
    conv = state_of(run).conversations["conv-1"]
    (attempt,) = conv.attempts
    assert len(attempt.type) == limits.max_label_chars and attempt.type.endswith(TRIM_MARKER)
    assert attempt.target is not None and len(attempt.target) == limits.max_key_chars
    assert attempt.intent is not None and len(attempt.intent) == limits.max_label_chars
    assert conv.intents == [attempt.intent]
    assert conv.category is not None and len(conv.category) == limits.max_label_chars


def test_the_account_is_stored_without_its_defaults_and_reads_back_equal(
    policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.feed(events.account(primary_email="pat@example.com", tier="standard", balance=0.0))
    state = state_of(run)
    stored, _ = statecodec.encode(state, policy.state.max_state_bytes)
    text = stored[1:].decode()
    # Only what differs from the defaults is written: the e-mail and `known`
    assert '"tier"' not in text and '"flags"' not in text and '"balance"' not in text
    assert '"contacts"' not in text and '"conversations"' not in text
    assert '"primary_email":"pat@example.com"' in text
    assert statecodec.decode(stored).to_record() == state.to_record()
    # A value equal to a default in another type is kept: 0 is not 0.0 once decoded
    state.account = state.account.__class__(balance=1.5, open_cases=0, known=True)
    assert statecodec.decode(statecodec.encode(state, 300_000)[0]).account == state.account


def test_an_identifier_over_its_bound_is_refused_naming_the_field() -> None:
    """Identifiers are not cut (a decision names things by them): a 360 KB conversation id is
    refused with the field, its length and the bound, and the worker dead-letters it."""
    record = message_record(conversation_id="c" * 360_000)
    with pytest.raises(EventError) as refused:
        event_from_dict("message", record)
    assert str(refused.value) == (
        f"message.conversation_id: 360000 characters, more than the {MAX_ID_CHARS} "
        "an identifier may have"
    )
    # At the bound it is accepted
    event = event_from_dict("message", message_record(conversation_id="c" * MAX_ID_CHARS))
    assert event.conversation_id == "c" * MAX_ID_CHARS
