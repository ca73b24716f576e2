"""Idle expiry (stream/core/expiry.py): it shrinks a customer's state and never changes a decision.

The property runs the same generated history through `step` twice, once as shipped and once with
expiry switched off, and asks for the same decisions and packages. The histories cover what
expiry touches: conversations closed and reopened before and after the judging horizon, repeat
contacts across the window, escalations (explicit requests, refunds over the limit), gaps from
seconds to weeks, and events out of order within the lateness bound (the events that can still
fire a window; stream/core/expiry.py says what happens to later ones).
"""

from __future__ import annotations

from typing import Any
from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from stream.core import statecodec
from stream.core.events import AccountEvent, Event
from stream.core.expiry import Expired, expire, horizon_ms
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.testing import DAY, HOUR, T0, EventFactory, Run, emitted, history_event, make_policy
from tests.properties import searching

POLICY = make_policy()
LATENESS = POLICY.compiled.lateness_ms
MINUTE = 60_000
GAPS = [0, 1_000, MINUTE, HOUR, 20 * HOUR, 30 * HOUR, 50 * HOUR, 3 * DAY, 8 * DAY]
TEXTS = [
    "hello",
    "Where is my refund?",
    "I want to talk to a real person",
    "This is useless, the third time I ask!!!",
    "ok thanks",
]
KINDS = ["customer", "ai", "ai_refund", "opened", "reopened", "closed", "outcome", "sentiment"]

step_spec = st.tuples(
    st.sampled_from(GAPS),
    st.integers(min_value=0, max_value=LATENESS // 2),  # disorder, within the lateness bound
    st.sampled_from(KINDS),
    st.sampled_from(["k0", "k1", "k2"]),
    st.sampled_from(["billing:a", "billing:b"]),
    st.sampled_from(TEXTS),
)


def history(specs: list[tuple[int, int, str, str, str, str]]) -> list[Event]:
    events: list[Event] = [
        AccountEvent("acct", "c", T0, tier="standard", primary_email="pat@example.com")
    ]
    clock = T0
    mark = T0
    last_message: dict[str, str] = {}
    for n, (gap, back, kind, conv, issue, text) in enumerate(specs):
        clock += gap
        at = max(clock - back, mark - LATENESS)
        mark = max(mark, at)
        event = history_event(n, kind, at, conv, issue, text, scored=last_message.get(conv))
        if event is not None:
            events.append(event)
        if kind == "customer":
            last_message[conv] = f"m{n}"
    return events


def run(events: list[Event], policy: Policy) -> tuple[list[Any], CustomerState]:
    state: CustomerState | None = None
    out: list[Any] = []
    for event in events:
        state, emitted_now = emitted(state, event, policy)
        out += emitted_now
    assert state is not None
    return out, state


def no_expiry(state: CustomerState, policy: Policy) -> Expired:
    return Expired()


@searching(200)
@given(st.lists(step_spec, min_size=1, max_size=40))
# Found by a random search: an escalated conversation closed three days after its last turn was
# forgotten as idle (closed to all) when another conversation opened, while expiry had dropped it
# and let its next event, after the horizon, escalate again. Forgetting now keeps the close time.
@example(
    [
        (50 * HOUR, 0, "ai_refund", "k0", "billing:a", "hello"),
        (3 * DAY, 0, "closed", "k2", "billing:a", "hello"),
        (1_000, 0, "closed", "k0", "billing:b", "hello"),
        (1_000, 0, "ai_refund", "k0", "billing:a", "hello"),
        (3 * DAY, 0, "reopened", "k1", "billing:b", "hello"),
        (8 * DAY, 0, "ai_refund", "k0", "billing:a", "hello"),
    ]
)
def test_expiring_never_changes_a_decision(specs: list[Any]) -> None:
    events = history(specs)
    expired_out, expired_state = run(events, POLICY)
    with mock.patch("stream.core.step.expire", no_expiry):
        kept_out, kept_state = run(events, POLICY)
    assert expired_out == kept_out
    # And it only ever removes: what expiry keeps is a part of what was kept without it
    assert set(expired_state.closed) <= set(kept_state.closed)
    assert set(expired_state.conversations) <= set(kept_state.conversations)
    assert len(expired_state.contacts) <= len(kept_state.contacts)


def test_an_idle_customer_shrinks_at_its_next_event(events: EventFactory) -> None:
    # Given a customer with an escalated, closed conversation and repeat contacts
    run_ = Run(POLICY)
    run_.feed(
        events.account(),
        events.contact("conv-1"),
        events.customer("I want to talk to a real person"),
        events.contact("conv-1", action="closed"),
        events.outcome("conv-1"),
    )
    state = run_.state
    assert state is not None and state.conversations and state.contacts and state.closed
    kept = len(statecodec.encode(state, POLICY.state.max_state_bytes)[0])
    # When its next event (an account update) comes after the horizon and the repeat window
    later = state.watermark + max(horizon_ms(POLICY), POLICY.compiled.repeat_window_ms)
    run_.feed(events.account(at=later + 2 * LATENESS + 1))
    # Then the conversation, its close and the contacts are gone, and the state is small
    assert (state.conversations, state.closed, state.contacts) == ({}, {}, [])
    stored = len(statecodec.encode(state, POLICY.state.max_state_bytes)[0])
    assert stored <= 512 < kept


def test_nothing_a_window_needs_goes(events: EventFactory) -> None:
    """At the edges: a close exactly the horizon plus the lateness old stays, one ms more goes;
    the same for a contact and the repeat window."""
    state = CustomerState.new("c")
    run_ = Run(POLICY, state)
    run_.feed(events.contact("conv-1", at=T0), events.contact("conv-1", action="closed", at=T0))
    state.watermark = T0 + horizon_ms(POLICY) + LATENESS
    assert expire(state, POLICY) == (0, 0)
    state.watermark += 1
    assert expire(state, POLICY) == (0, 1) and state.closed == {}
    window = POLICY.compiled.repeat_window_ms
    state.watermark = T0 + window + LATENESS
    assert expire(state, POLICY) == (0, 0)
    state.watermark += 1
    assert expire(state, POLICY) == (1, 0) and state.contacts == []


def test_a_reopen_after_the_horizon_is_a_new_conversation(events: EventFactory) -> None:
    """The rule that makes expiry exact, with the state kept: an escalated conversation reopened
    after the judging horizon starts over instead of staying escalated."""
    run_ = Run(POLICY)
    run_.feed(
        events.customer("I want to talk to a real person"),
        events.contact("conv-1", action="closed"),
    )
    assert [d.action for d in run_.decisions] == ["escalate"]
    reopen_at = events.clock + horizon_ms(POLICY) + 1
    run_.feed(events.contact("conv-1", action="reopened", at=reopen_at))
    decision = run_.one(events.customer("I want to talk to a real person"))
    assert decision is not None and decision.action == "escalate"


def test_a_message_within_the_horizon_after_the_close_is_still_a_straggler(
    events: EventFactory,
) -> None:
    run_ = Run(POLICY)
    run_.feed(events.customer("hello"), events.contact("conv-1", action="closed"))
    at = events.clock + horizon_ms(POLICY)
    assert run_.one(events.customer("I want to talk to a real person", at=at)) is None
