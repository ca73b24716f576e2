"""Properties of `step` over random well-typed event sequences: total, bounded, deterministic."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.events import (
    ROLES,
    AccountEvent,
    ContactEvent,
    Event,
    MessageEvent,
    OutcomeEvent,
    ProposedAction,
    SentimentEvent,
)
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.core.step import StepResult, step
from stream.core.triggers import boundary, confidence, explicit_request, repeat_contact, sentiment
from stream.testing import DAY, T0, avro_valid, make_policy
from tests.properties import searching

CUSTOMER = "cust-1"
TIGHT = make_policy(
    {
        "lateness_seconds": 600,
        "sentiment": {"window_turns": 3, "consecutive_low_scores": 2},
        "handoff": {"transcript_turns": 4, "max_revisions": 2},
        "state": {
            "max_open_conversations": 3,
            "max_turns_per_conversation": 5,
            "max_contacts": 4,
            "max_attempts_per_conversation": 3,
            "max_closed_remembered": 2,
            "max_text_chars": 40,
        },
    }
)
DEFAULT = make_policy()

TEXTS = [
    "hi",
    "Where is my order?",
    "This is ridiculous!!!",
    "what do you mean?",
    "I already told you my order number",
    "I want to speak to a real person",
    "ok thanks",
    "no",
    "Could you confirm the invoice number?",
    "",
]
conversations = st.sampled_from(["cv1", "cv2", "cv3", "cv4", "cv5"])
message_ids = st.sampled_from([f"m{n}" for n in range(30)])
times = st.integers(min_value=0, max_value=12 * DAY).map(lambda offset: T0 + offset)
texts = st.one_of(st.sampled_from(TEXTS), st.sampled_from(TEXTS), st.text(max_size=60))
floats01 = st.floats(min_value=0.0, max_value=1.0)
amounts = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False))
actions = st.builds(
    ProposedAction,
    type=st.sampled_from(
        ["refund", "account_email_change", "account_disclosure", "cancel_contract", "answer", "x"]
    ),
    consequence_class=st.sampled_from(["financial", "account_change", "informational", "legal"]),
    amount=amounts,
    currency=st.one_of(st.none(), st.sampled_from(["USD", "EUR", "JPY"])),
    target=st.one_of(st.none(), st.sampled_from(["pat@example.com", "x@example.com", "inv-1"])),
)


def event_ids() -> st.SearchStrategy[str]:
    return st.sampled_from([f"e{n}" for n in range(40)])


E = TypeVar("E")


def event_of(cls: type[E], **fields: st.SearchStrategy[Any]) -> st.SearchStrategy[E]:
    """Events of one customer, with ids and times drawn from small pools so that they collide."""
    return st.builds(
        cls, event_id=event_ids(), customer_id=st.just(CUSTOMER), occurred_at=times, **fields
    )


messages = event_of(
    MessageEvent,
    conversation_id=conversations,
    message_id=message_ids,
    role=st.sampled_from(sorted(ROLES)),
    text=texts,
    channel=st.sampled_from(["chat", "email"]),
    category=st.one_of(st.none(), st.sampled_from(["billing", "shipping"])),
    intent=st.one_of(st.none(), st.sampled_from(["refund", "clarify", "answer"])),
    intent_confidence=st.one_of(st.none(), floats01),
    proposed_action=st.one_of(st.none(), actions),
    action_attempted=st.booleans(),
    action_failed=st.booleans(),
)
sentiments = event_of(
    SentimentEvent,
    conversation_id=conversations,
    message_id=message_ids,
    score=st.floats(min_value=-1.0, max_value=1.0),
    labels=st.lists(st.sampled_from(["frustration", "hostility"]), max_size=2).map(tuple),
)
contacts = event_of(
    ContactEvent,
    contact_id=st.sampled_from(["k1", "k2", "k3", "k4", "k5", "k6"]),
    conversation_id=conversations,
    action=st.sampled_from(["opened", "opened", "reopened", "closed"]),
    issue_key=st.sampled_from(["billing:1", "billing:2"]),
    category=st.one_of(st.none(), st.sampled_from(["billing", "shipping"])),
)
accounts = event_of(
    AccountEvent,
    tier=st.sampled_from(["standard", "enterprise", "premium"]),
    enterprise_contract=st.booleans(),
    primary_email=st.one_of(st.none(), st.just("pat@example.com")),
    balance=st.floats(min_value=-1e4, max_value=1e4),
    currency=st.sampled_from(["USD", "EUR"]),
    flags=st.lists(
        st.sampled_from(["disputed_charge", "recent_negative_review", "vip"]), max_size=3
    ).map(tuple),
)
outcomes = event_of(
    OutcomeEvent,
    ticket_id=st.just("t1"),
    conversation_id=conversations,
    resolved_by=st.sampled_from(["human", "ai", "unresolved"]),
)
any_event = st.one_of(messages, messages, messages, sentiments, contacts, accounts, outcomes)
histories = st.lists(any_event, min_size=5, max_size=60)
# Out-of-order is the interesting case: keep random order, but also nearly sorted sequences.
nearly_sorted = histories.map(lambda evs: sorted(evs, key=lambda e: e.occurred_at // 3_600_000))

SETTINGS = searching(150)


def check_bounds(state: CustomerState, policy: Policy) -> None:
    limits = policy.state
    assert len(state.conversations) <= limits.max_open_conversations
    assert len(state.contacts) <= limits.max_contacts
    assert len(state.closed) <= limits.max_closed_remembered
    assert [c.at for c in state.contacts] == sorted(c.at for c in state.contacts)
    for conv in state.conversations.values():
        assert len(conv.turns) <= limits.max_turns_per_conversation
        assert len(conv.attempts) <= limits.max_attempts_per_conversation
        assert len(conv.pending_scores) <= limits.max_turns_per_conversation
        assert len(conv.intents) <= 20
        assert all(len(t.text) <= limits.max_text_chars for t in conv.turns)
        if conv.escalation is not None:
            package = conv.escalation.package
            assert package.revision <= policy.handoff.max_revisions
            assert len(package.transcript) <= policy.handoff.transcript_turns
            assert len(package.reasons) <= 20


def check_fail_safe(event: Event, result: StepResult, seen: set[str]) -> None:
    """Never silently continue on error: a new decision made while a trigger failed escalates,
    holds the proposed action and names the failure. A message already folded is a redelivery:
    it re-sends the decision its turn had, and is not judged again."""
    turn = f"{getattr(event, 'conversation_id', '')}/{getattr(event, 'message_id', '')}"
    redelivered = isinstance(event, MessageEvent) and turn in seen
    if isinstance(event, MessageEvent):
        seen.add(turn)
    for decision in result.decisions:
        if result.errors and not redelivered and decision.decision_id not in seen:
            assert decision.action == "escalate"
            assert decision.triggers[0].trigger == "trigger_error"
            proposed = isinstance(event, MessageEvent) and event.proposed_action is not None
            assert decision.hold_action is proposed
        seen.add(decision.decision_id)


def replay(events: list[Event], policy: Policy) -> tuple[CustomerState, list[Any], list[Any]]:
    state: CustomerState | None = None
    decisions: list[Any] = []
    handoffs: list[Any] = []
    seen: set[str] = set()
    for event in events:
        result = step(state, event, policy)
        state = result.state
        check_fail_safe(event, result, seen)
        for decision in result.decisions:
            if decision.action == "escalate":
                matching = [h for h in result.handoffs if h.handoff_id == decision.decision_id]
                assert len(matching) == 1
        decisions += [d.to_record() for d in result.decisions]
        handoffs += [h.to_record() for h in result.handoffs]
        check_bounds(state, policy)
    return state or CustomerState.new(CUSTOMER), decisions, handoffs


@SETTINGS
@given(histories, st.sampled_from([TIGHT, DEFAULT]))
def test_step_is_total_and_state_stays_bounded(events: list[Event], policy: Policy) -> None:
    # `replay` also checks that no decision made on a trigger error is a continue.
    replay(events, policy)


TRIGGER_MODULES: dict[str, Any] = {
    "confidence": confidence,
    "sentiment": sentiment,
    "explicit_request": explicit_request,
    "policy_boundary": boundary,
    "repeat_contact": repeat_contact,
}


@SETTINGS
@given(
    histories,
    st.sets(st.sampled_from(sorted(TRIGGER_MODULES)), min_size=1),
    st.sampled_from([TIGHT, DEFAULT]),
)
def test_a_broken_trigger_is_reported_every_time_and_never_continues(
    events: list[Event], broken: set[str], policy: Policy
) -> None:
    # Given some triggers failing on every call, as a bug would make them
    calls: Counter[str] = Counter()

    def failing(name: str) -> Any:
        def check(*_a: Any, **_kw: Any) -> Any:
            calls[name] += 1
            raise ZeroDivisionError(f"{name} is broken")

        return check

    with pytest.MonkeyPatch.context() as patch:
        for name in broken:
            patch.setattr(TRIGGER_MODULES[name], "check", failing(name))
        state: CustomerState | None = None
        seen: set[str] = set()
        for event in events:
            before = calls.total()
            # When any event is folded: step does not raise
            result = step(state, event, policy)
            state = result.state
            # Then every failure is on the result, none is swallowed
            assert len(result.errors) == calls.total() - before
            assert {error.trigger for error in result.errors} <= broken
            assert all("is broken" in error.detail for error in result.errors)
            # And no new decision made on a failure lets the conversation continue
            check_fail_safe(event, result, seen)
            check_bounds(state, policy)


@SETTINGS
@given(nearly_sorted)
def test_state_round_trips_through_json_at_every_step(events: list[Event]) -> None:
    state: CustomerState | None = None
    for event in events:
        state = step(state, event, TIGHT).state
        restored = CustomerState.from_record(json.loads(json.dumps(state.to_record())))
        assert restored == state


@SETTINGS
@given(histories, st.sampled_from([TIGHT, DEFAULT]))
def test_same_input_gives_the_same_decisions(events: list[Event], policy: Policy) -> None:
    first = replay(events, policy)
    second = replay(events, policy)
    assert first[1] == second[1]
    assert first[2] == second[2]
    assert first[0].to_record() == second[0].to_record()


@SETTINGS
@given(nearly_sorted)
def test_restored_state_decides_like_the_live_one(events: list[Event]) -> None:
    # The worker restores state from its changelog: a restart mid-stream must change nothing.
    half = len(events) // 2
    live, _, _ = replay(events[:half], TIGHT)
    restored = CustomerState.from_record(json.loads(json.dumps(live.to_record())))
    for event in events[half:]:
        a = step(live, event, TIGHT)
        b = step(restored, event, TIGHT)
        assert [d.to_record() for d in a.decisions] == [d.to_record() for d in b.decisions]
        assert [h.to_record() for h in a.handoffs] == [h.to_record() for h in b.handoffs]


without_closing = st.lists(
    st.one_of(
        messages, messages, sentiments, accounts, contacts.filter(lambda c: c.action == "opened")
    ),
    max_size=60,
)


@SETTINGS
@given(without_closing)
def test_a_conversation_escalates_once(events: list[Event]) -> None:
    _, decisions, handoffs = replay(events, DEFAULT)
    escalations = Counter(
        (d["conversation_id"], d["decision_id"]) for d in decisions if d["action"] == "escalate"
    )
    per_conversation = Counter(conv for conv, _ in escalations)
    assert all(count == 1 for count in per_conversation.values())
    offers = Counter(
        (d["conversation_id"], d["decision_id"])
        for d in decisions
        if d["action"] == "offer_transfer"
    )
    assert all(count == 1 for count in Counter(conv for conv, _ in offers).values())
    revisions: dict[str, list[int]] = {}
    for package in handoffs:
        revisions.setdefault(package["handoff_id"], []).append(package["revision"])
    for seen in revisions.values():
        # Revisions count up from 0 (a redelivered event may re-emit the latest one).
        assert seen[0] == 0
        assert all(b in (a, a + 1) for a, b in zip(seen, seen[1:], strict=False))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories)
def test_every_record_is_valid_avro(events: list[Event]) -> None:
    _, decisions, handoffs = replay(events, TIGHT)
    for record in decisions:
        assert avro_valid(record, "Decision")
    for record in handoffs:
        assert avro_valid(record, "HandoffPackage")
