"""Edges of the per-customer state the other core tests do not reach: the flag cap exactly at its
bound, contacts pruned by age and by cap in one event, a policy that tightens its bounds over a
state built under the old one, a conversation closed twice across the judging horizon, a close at
time 0, and the first instant of the prior-contact window."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import yaml

from stream.core import handoff
from stream.core.expiry import horizon_ms
from stream.core.policy import DuplicateKeyError, Policy, UniqueKeyLoader
from stream.core.state import CustomerState
from stream.core.step import step
from stream.testing import T0, EventFactory, Run

DAY = 86_400_000


def state_of(run: Run) -> CustomerState:
    assert run.state is not None
    return run.state


# --- account flags -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_flags", "flags", "kept"),
    [
        # Exactly at the cap: all kept
        (4, ("a", "b", "c", "d"), ("a", "b", "c", "d")),
        # More wanted flags than room: max_flags - 1 places for flags, the last for the marker;
        # the first wanted ones fill them
        (
            3,
            ("other", "disputed_charge", "churn_risk", "vip"),
            ("disputed_charge", "churn_risk", "…2 more"),
        ),
    ],
    ids=["at-the-cap", "more-wanted-than-room"],
)
def test_flags_under_a_cap(
    policy_factory: Callable[..., Policy],
    events: EventFactory,
    max_flags: int,
    flags: tuple[str, ...],
    kept: tuple[str, ...],
) -> None:
    run = Run(policy_factory({"state": {"max_flags": max_flags}}))
    run.feed(events.account(flags=flags))
    account = state_of(run).account
    assert account is not None and account.flags == kept


def test_over_the_cap_every_flag_the_policy_reads_is_kept_first(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    # relevant flags (handoff) and raise flags (priorities) are both read by the policy
    policy = policy_factory(
        {"priorities": {"raise_for_flags": ["gold"]}, "state": {"max_flags": 4}}
    )
    compiled = policy.compiled
    assert "disputed_charge" in compiled.relevant_flags - compiled.raise_flags
    assert "gold" in compiled.raise_flags - compiled.relevant_flags
    run = Run(policy)
    run.feed(events.account(flags=("x1", "x2", "x3", "x4", "disputed_charge", "x5", "gold")))
    account = state_of(run).account
    assert account is not None
    assert account.flags == ("x1", "disputed_charge", "gold", "…4 more")


# --- contacts ----------------------------------------------------------------------------------


def test_a_late_old_contact_on_a_full_cap_drops_only_itself(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    policy = policy_factory({"state": {"max_contacts": 3}})
    window = policy.compiled.repeat_window_ms + policy.compiled.lateness_ms
    run = Run(policy)
    start = T0 + window + DAY
    run.feed(*(events.contact(f"conv-{k}", f"k:{k}", at=start + k) for k in range(3)))
    # A contact older than the window arrives late: it is dropped, the three kept contacts stay
    run.feed(events.contact("conv-old", "k:old", at=T0, contact_id="ct-old"))
    kept = [c.conversation_id for c in state_of(run).contacts]
    assert kept == ["conv-0", "conv-1", "conv-2"]


def test_a_tighter_policy_prunes_old_and_excess_contacts_at_the_next_contact(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    loose = policy_factory({"state": {"max_contacts": 6}})
    run = Run(loose)
    run.feed(*(events.contact(f"conv-{k}", f"k:{k}", at=T0 + k * DAY) for k in range(6)))
    state = state_of(run)
    assert len(state.contacts) == 6
    # The policy in force changes to a smaller cap and a shorter window; a contact that does not
    # move the watermark (so no expiry runs) must still leave the state within the new bounds
    tight = policy_factory(
        {"state": {"max_contacts": 2}, "repeat_contact": {"contacts": 2, "window_days": 2}}
    )
    horizon = T0 + 5 * DAY - tight.compiled.repeat_window_ms - tight.compiled.lateness_ms
    # three contacts older than the new window, then one too many for the new cap
    assert T0 + 2 * DAY < horizon <= T0 + 3 * DAY
    step(state, events.contact("conv-late", "k:late", at=T0 + 5 * DAY - 1), tight)
    assert [c.conversation_id for c in state.contacts] == ["conv-late", "conv-5"]


def test_a_tighter_cap_alone_prunes_to_the_cap(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    loose = policy_factory({"state": {"max_contacts": 6}})
    run = Run(loose)
    run.feed(*(events.contact(f"conv-{k}", f"k:{k}", at=T0 + DAY + k) for k in range(6)))
    state = state_of(run)
    tight = policy_factory({"state": {"max_contacts": 3}, "repeat_contact": {"contacts": 3}})
    # One late contact older than the window (dropped by age) and three too many (by the cap)
    step(state, events.contact("conv-old", "k:old", at=T0 - 30 * DAY), tight)
    assert [c.conversation_id for c in state.contacts] == ["conv-3", "conv-4", "conv-5"]


# --- closes ------------------------------------------------------------------------------------


def test_a_second_close_after_the_horizon_is_a_new_conversations_close(
    policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.feed(events.customer("hello", "conv-a", at=T0))
    run.feed(events.contact("conv-a", action="closed", at=T0 + 1))
    # The id is used again after the judging horizon; its close is read before its messages
    second = T0 + 1 + horizon_ms(policy) + 1
    run.feed(events.contact("conv-a", action="closed", at=second))
    assert state_of(run).closed["conv-a"] == second
    # A message of the new conversation from before its close counts (not a straggler)
    decision = run.one(events.customer("I want to talk to a real person", "conv-a", at=second - 1))
    assert decision is not None and decision.action == "escalate"


def test_an_escalated_conversation_closed_at_time_zero_keeps_its_close_when_evicted(
    policy_factory: Callable[..., Policy],
) -> None:
    events = EventFactory(start=0)
    policy = policy_factory({"state": {"max_open_conversations": 1}})
    run = Run(policy)
    (first,) = run.feed(events.customer("I want to talk to a real person", "conv-1", at=0))[0]
    assert first.action == "escalate"
    run.feed(events.contact("conv-1", action="closed", at=0))
    run.feed(events.customer("hello", "conv-2", at=1))
    state = state_of(run)
    assert "conv-1" not in state.conversations
    # Closed at 0 (a time), not closed to every later event (-1): after the horizon the id is a
    # new conversation's and may escalate again
    assert state.closed["conv-1"] == 0
    later = horizon_ms(policy) + 2
    decision = run.one(events.customer("I want to talk to a real person", "conv-1", at=later))
    assert decision is not None and decision.action == "escalate"


# --- prior contacts ----------------------------------------------------------------------------


def test_prior_contacts_count_a_contact_at_the_first_instant_of_the_window(
    policy: Policy, events: EventFactory
) -> None:
    run = Run(policy)
    run.feed(
        events.contact("conv-0", "billing:inv-1", at=T0 + 5, contact_id="ct-0"),
        events.contact("conv-1", "billing:inv-1", at=T0 + 10, contact_id="ct-1"),
    )
    window = policy.compiled.repeat_window_ms
    # A decision in conv-0 exactly one window after its contact: that contact still names the
    # issue, and the other conversation's contact on it, inside the window, is a prior contact
    prior = handoff.prior_contacts_for(state_of(run), "conv-0", T0 + 5 + window, window)
    assert [p.contact_id for p in prior] == ["ct-1"]


# --- duplicate keys ----------------------------------------------------------------------------


def test_a_duplicate_key_is_a_marked_yaml_error_with_problem_and_line() -> None:
    """The policy-test loader reads `problem` and `problem_mark` of any MarkedYAMLError."""
    text = "cases: []\nname: a\nname: b\n"
    with pytest.raises(yaml.MarkedYAMLError) as caught:
        yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    exc = caught.value
    assert isinstance(exc, DuplicateKeyError)
    assert (exc.key, exc.line) == ("name", 3)
    assert exc.problem == "duplicate key 'name'"
    assert exc.problem_mark is not None and exc.problem_mark.line == 2
    assert exc.context is None and exc.context_mark is None
    assert "duplicate key 'name'" in str(exc) and "line 3" in str(exc)
