"""Every path through `step` that folds state without deciding, pinned by what it must keep."""

from __future__ import annotations

from collections.abc import Callable

from stream.core.decision import AccountSnapshot
from stream.core.events import account_facts
from stream.core.policy import Policy
from stream.core.state import CustomerState
from stream.testing import DAY, FULL_ACCOUNT, HOUR, SECOND, T0, EventFactory, Run

CALM = ("ok", "fine", "thanks", "sure")
# A policy that keeps three turns a conversation, and hands over all three.
THREE_TURNS = {"state": {"max_turns_per_conversation": 3}, "handoff": {"transcript_turns": 3}}


def state_of(run: Run) -> CustomerState:
    assert run.state is not None
    return run.state


# --- sentiment events --------------------------------------------------------------------------


def test_a_score_that_fires_nothing_is_kept_for_the_next(run: Run, events: EventFactory) -> None:
    first = events.customer(CALM[0])
    run.feed(first)
    assert run.feed(events.sentiment(first.message_id, -0.7)) == ([], [])
    second = events.customer(CALM[1])
    run.feed(second)
    (decision,) = run.feed(events.sentiment(second.message_id, -0.8))[0]
    assert decision.action == "offer_transfer"
    assert decision.event_type == "sentiment"
    assert decision.thresholds == run.policy.compiled.customer_thresholds
    assert {hit.rule for hit in decision.triggers} >= {"sentiment.score"}


def test_scores_of_ai_turns_never_offer(run: Run, events: EventFactory) -> None:
    one, two = events.ai("Let me check."), events.ai("Still checking.")
    run.feed(one, two)
    assert run.feed(events.sentiment(one.message_id, -0.9)) == ([], [])
    assert run.feed(events.sentiment(two.message_id, -0.9)) == ([], [])


def test_scores_after_a_human_took_over_never_offer(run: Run, events: EventFactory) -> None:
    one, two = events.customer(CALM[0]), events.customer(CALM[1])
    run.feed(one, events.human(), two)
    assert run.feed(events.sentiment(one.message_id, -0.9)) == ([], [])
    assert run.feed(events.sentiment(two.message_id, -0.9)) == ([], [])


def test_too_late_scores_never_offer(run: Run, events: EventFactory) -> None:
    one, two = events.customer(CALM[0], at=T0), events.customer(CALM[1], at=T0 + SECOND)
    run.feed(one, two, events.sentiment(one.message_id, -0.9, at=T0 + 3 * HOUR))
    # Two hours older than the sentiment watermark: beyond the one-hour lateness bound
    late = events.sentiment(two.message_id, -0.9, at=T0 + HOUR - SECOND)
    assert run.feed(late) == ([], [])
    # The score is still folded into the turn
    turn = state_of(run).conversations["conv-1"].turns[1]
    assert (turn.message_id, turn.sentiment) == (two.message_id, -0.9)


def test_scores_before_their_message_are_kept_oldest_dropped_first(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory(THREE_TURNS))
    run.feed(events.customer(CALM[0]))
    for n in (1, 2, 3, 4):
        assert run.feed(events.sentiment(f"later-{n}", -n / 10)) == ([], [])
    pending = state_of(run).conversations["conv-1"].pending_scores
    assert pending == {"later-2": -0.2, "later-3": -0.3, "later-4": -0.4}
    run.feed(events.customer(CALM[1], message_id="later-3"))
    assert state_of(run).conversations["conv-1"].turns[-1].sentiment == -0.3
    assert state_of(run).conversations["conv-1"].pending_scores == {
        "later-2": -0.2,
        "later-4": -0.4,
    }


def test_scores_on_an_escalated_conversation_revise_its_package(
    run: Run, events: EventFactory
) -> None:
    one = events.customer("Let me talk to a human")
    (escalation,), (package,) = run.feed(one)
    two = events.customer(CALM[1])
    run.feed(two, events.sentiment(one.message_id, -0.9))
    decisions, handoffs = run.feed(events.sentiment(two.message_id, -0.9))
    assert decisions == []
    revision = handoffs[-1]
    assert revision.handoff_id == package.handoff_id == escalation.decision_id
    assert "sentiment" in {hit.trigger for hit in revision.reasons}
    assert revision.revision > package.revision


def test_an_offer_redelivered_is_sent_again_whole(run: Run, events: EventFactory) -> None:
    one, two = events.customer(CALM[0]), events.customer(CALM[1])
    run.feed(one, events.sentiment(one.message_id, -0.9), two)
    scored = events.sentiment(two.message_id, -0.9)
    (offer,) = run.feed(scored)[0]
    assert offer.action == "offer_transfer"
    again, handoffs = run.feed(scored)
    assert again == [offer] and handoffs == []
    # The state survived the redelivery: a later explicit ask still escalates, once
    (escalation,) = run.feed(events.customer("Get me a human now"))[0]
    assert escalation.action == "escalate"


# --- contacts ----------------------------------------------------------------------------------


def test_a_redelivered_contact_changes_nothing_and_resends_its_escalation(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-a", at=T0), events.contact("conv-b", at=T0 + DAY))
    third = events.contact("conv-c", at=T0 + 2 * DAY)
    (decision,), (package,) = run.feed(third)
    contacts = list(state_of(run).contacts)
    again, handoffs = run.feed(third)
    assert again == [decision]
    assert [h.handoff_id for h in handoffs] == [package.handoff_id]
    assert state_of(run).contacts == contacts


def test_a_contact_with_the_same_id_but_a_new_action_or_time_is_not_a_redelivery(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-a", at=T0, contact_id="ct-a"))
    run.feed(events.contact("conv-a", at=T0 + HOUR, contact_id="ct-a", action="reopened"))
    run.feed(events.contact("conv-a", at=T0 + 2 * HOUR, contact_id="ct-a", action="reopened"))
    assert [(c.action, c.at) for c in state_of(run).contacts] == [
        ("opened", T0),
        ("reopened", T0 + HOUR),
        ("reopened", T0 + 2 * HOUR),
    ]


def test_a_redelivered_contact_of_an_unknown_conversation_gives_nothing(
    run: Run, events: EventFactory
) -> None:
    contact = events.contact("conv-a", at=T0)
    run.feed(contact)
    del state_of(run).conversations["conv-a"]
    assert run.feed(contact) == ([], [])
    assert len(state_of(run).contacts) == 1


def test_contact_sets_category_and_channel_of_its_conversation(
    run: Run, events: EventFactory
) -> None:
    contact = events.contact("conv-1", category="shipping")
    run.feed(contact)
    conv = state_of(run).conversations["conv-1"]
    assert (conv.category, conv.channel) == ("shipping", contact.channel)
    decision = run.one(events.customer("Where is my parcel?"))
    assert decision is not None and decision.category == "shipping"


def test_a_late_contact_makes_the_newest_contact_on_its_issue_the_third(
    run: Run, events: EventFactory
) -> None:
    run.feed(
        events.contact("conv-a", "billing:1", at=T0),
        events.contact("conv-c", "billing:1", at=T0 + 2 * DAY),
        events.contact("conv-x", "shipping:9", at=T0 + 2 * DAY + 30 * 60 * SECOND),
    )
    # A contact between the two on billing:1 arrives last, within the lateness bound
    (decision,) = run.feed(
        events.contact("conv-b", "billing:1", at=T0 + 2 * DAY - 10 * 60 * SECOND)
    )[0]
    assert decision.conversation_id == "conv-c"
    assert decision.action == "escalate"


def test_repeat_contact_on_a_conversation_a_human_owns_gives_nothing(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-a", at=T0), events.contact("conv-b", at=T0 + DAY))
    run.feed(events.customer("hi", "conv-c", at=T0 + DAY + HOUR))
    run.feed(events.human("Sam here", "conv-c", at=T0 + DAY + 2 * HOUR))
    assert run.feed(events.contact("conv-c", at=T0 + 2 * DAY)) == ([], [])


def test_old_contacts_are_pruned_at_the_window_and_lateness(run: Run, events: EventFactory) -> None:
    horizon = 7 * DAY + HOUR  # window plus lateness
    run.feed(
        events.contact("a", "k:1", at=T0),
        events.contact("b", "k:2", at=T0 + 1),
        events.contact("c", "k:3", at=T0 + horizon + 1),
    )
    # The contact at exactly the horizon stays, the one before it goes
    assert [c.conversation_id for c in state_of(run).contacts] == ["b", "c"]


def test_contacts_are_capped_keeping_the_newest(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_contacts": 3}}))
    run.feed(*(events.contact(f"conv-{n}", f"k:{n}") for n in range(3)))
    assert [c.conversation_id for c in state_of(run).contacts] == ["conv-0", "conv-1", "conv-2"]
    run.feed(events.contact("conv-3", "k:3"))
    assert [c.conversation_id for c in state_of(run).contacts] == ["conv-1", "conv-2", "conv-3"]


def test_reopening_a_closed_conversation_lets_it_decide_again(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.customer("hello", "conv-a", at=T0))
    run.feed(events.contact("conv-a", action="closed", at=T0 + SECOND))
    run.feed(events.customer("other", "conv-b", at=T0 + 3 * HOUR))
    assert run.one(events.customer("back again", "conv-a", at=T0 + 3 * HOUR + 1)) is None
    run.feed(events.contact("conv-a", action="reopened", at=T0 + 4 * HOUR))
    decision = run.one(events.customer("still broken", "conv-a", at=T0 + 4 * HOUR + 1))
    assert decision is not None and decision.conversation_id == "conv-a"


# --- conversations -----------------------------------------------------------------------------


def test_an_evicted_escalated_conversation_never_escalates_again(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_open_conversations": 1}}))
    (first,) = run.feed(events.customer("I want a human", "conv-1"))[0]
    assert first.action == "escalate"
    run.feed(events.customer("hello", "conv-2"))
    assert "conv-1" not in state_of(run).conversations
    assert run.feed(events.customer("A human, please!", "conv-1")) == ([], [])


def test_an_evicted_conversation_that_was_not_escalated_may_come_back(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_open_conversations": 1}}))
    run.feed(events.customer("hello", "conv-1"), events.customer("hello", "conv-2"))
    decision = run.one(events.customer("I want a human", "conv-1"))
    assert decision is not None and decision.action == "escalate"


def test_idle_conversations_are_dropped_when_a_new_one_opens(
    run: Run, events: EventFactory
) -> None:
    idle = 72 * HOUR
    run.feed(events.customer("a", "conv-1", at=T0), events.customer("b", "conv-2", at=T0 + 1))
    run.feed(events.customer("c", "conv-3", at=T0 + 1 + idle))
    assert sorted(state_of(run).conversations) == ["conv-2", "conv-3"]


def test_only_the_closed_conversations_the_policy_remembers_are_kept(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_closed_remembered": 2}}))
    for n in range(3):
        run.feed(events.customer("hi", f"conv-{n}"))
        run.feed(events.outcome(f"conv-{n}"))
    assert sorted(state_of(run).closed) == ["conv-1", "conv-2"]
    assert "conv-0" not in state_of(run).conversations


def test_a_close_far_behind_the_message_stream_drops_the_turns_at_once(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.customer("a", "conv-1", at=T0), events.customer("b", "conv-2", at=T0 + DAY))
    run.feed(events.outcome("conv-1", at=T0 + SECOND))
    assert "conv-1" not in state_of(run).conversations
    run.feed(events.outcome("conv-2", at=T0 + DAY + SECOND))
    assert "conv-2" in state_of(run).conversations


def test_a_message_at_the_close_time_still_counts_one_after_does_not(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.customer("hi", at=T0), events.outcome(at=T0 + 10 * SECOND))
    assert run.one(events.customer("at the close", at=T0 + 10 * SECOND)) is not None
    assert run.one(events.customer("after the close", at=T0 + 10 * SECOND + 1)) is None


def test_closed_turns_go_once_the_message_stream_passes_close_plus_lateness(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.customer("hi", "conv-1", at=T0), events.outcome("conv-1", at=T0 + SECOND))
    run.feed(events.customer("x", "conv-2", at=T0 + SECOND + HOUR))
    assert "conv-1" in state_of(run).conversations
    run.feed(events.customer("y", "conv-2", at=T0 + SECOND + HOUR + 1))
    assert "conv-1" not in state_of(run).conversations


# --- turns -------------------------------------------------------------------------------------


def test_text_is_cut_to_the_policy_limit(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_text_chars": 16}}))
    run.feed(events.customer("x" * 16), events.customer("y" * 17))
    # A cut text ends in the trim marker, within the limit.
    texts = [t.text for t in state_of(run).conversations["conv-1"].turns]
    assert texts == ["x" * 16, "y" * 15 + "…"]


def test_turns_are_capped_to_the_newest(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory(THREE_TURNS))
    run.feed(*(events.customer(f"t{n}") for n in range(3)))
    assert [t.text for t in state_of(run).conversations["conv-1"].turns] == ["t0", "t1", "t2"]
    run.feed(events.customer("t3"))
    assert [t.text for t in state_of(run).conversations["conv-1"].turns] == ["t1", "t2", "t3"]


def test_a_repeated_question_is_compared_with_customer_turns_only(
    run: Run, events: EventFactory
) -> None:
    question = "Where is my refund for order 1234?"
    run.feed(events.ai(question), events.customer(question))
    first = state_of(run).conversations["conv-1"].turns[-1]
    assert "repeat_question" not in {kind for kind, _ in first.markers}
    run.feed(events.ai("Checking."), events.customer(question))
    second = state_of(run).conversations["conv-1"].turns[-1]
    assert "repeat_question" in {kind for kind, _ in second.markers}


def test_dissatisfied_turns_are_counted_across_ai_turns(run: Run, events: EventFactory) -> None:
    one = events.customer(CALM[0])
    run.feed(one, events.sentiment(one.message_id, -0.9), events.ai("Sorry about that."))
    two = events.customer(CALM[1])
    run.feed(two, events.ai("Let me see."))
    (decision,) = run.feed(events.sentiment(two.message_id, -0.9))[0]
    assert decision.action == "offer_transfer"


def test_the_ai_agents_attempts_reach_the_handoff(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_attempts_per_conversation": 2}}))
    run.feed(events.account())
    run.feed(
        events.ai("What is the order number?", intent="clarify"),
        events.ai("Could you tell me which card?", intent="lookup"),
        events.ai(action="lookup", intent="lookup"),
        events.ai(action="refund", klass="financial", amount=20.0, target="o-1", intent="refund"),
        events.ai(
            action="refund",
            klass="financial",
            amount=30.0,
            target="o-2",
            intent="refund",
            action_attempted=True,
            action_failed=True,
        ),
    )
    (_, (package,)) = run.feed(events.customer("I want a human"))
    attempts = package.attempts
    assert attempts.intents == ("clarify", "lookup", "refund")
    assert attempts.clarifications_asked == 2
    assert attempts.ai_turns == 5
    assert [(a.intent, a.amount, a.target, a.attempted, a.failed) for a in attempts.actions] == [
        ("refund", 20.0, "o-1", False, False),
        ("refund", 30.0, "o-2", True, True),
    ]


def test_intents_are_listed_once_each(run: Run, events: EventFactory) -> None:
    run.feed(*(events.ai("ok", intent=name) for name in ("a", "b", "a", "c", "b")))
    assert state_of(run).conversations["conv-1"].intents == ["a", "b", "c"]


# --- account snapshots -------------------------------------------------------------------------


def test_the_snapshot_is_copied_whole_and_a_same_time_one_replaces_it(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.account(at=T0))
    run.feed(events.account(at=T0, **account_facts(FULL_ACCOUNT)))
    assert state_of(run).account == AccountSnapshot(**account_facts(FULL_ACCOUNT), known=True)
    run.feed(events.account(at=T0 - 1, tier="free"))
    assert state_of(run).account == AccountSnapshot(**account_facts(FULL_ACCOUNT), known=True)


# --- redelivered turns ---------------------------------------------------------------------------


def test_a_redelivered_ai_turn_resends_the_same_continue(run: Run, events: EventFactory) -> None:
    run.feed(events.account(tier="gold"))
    turn = events.ai(action="refund", klass="financial", amount=20.0, currency="USD")
    first = run.one(turn)
    assert first is not None and first.action == "continue"
    assert run.one(turn) == first


def test_a_redelivered_turn_that_decided_nothing_keeps_the_state(
    run: Run, events: EventFactory
) -> None:
    # A person owns the conversation: the customer turn decided nothing, and read again it still
    # decides nothing, with the customer's state handed back unchanged.
    run.feed(events.human("Sam here"))
    turn = events.customer("thanks Sam")
    assert run.feed(turn) == ([], [])
    before = run.state
    assert before is not None
    stored = before.to_record()
    result = run.step(turn)
    assert result.decisions == [] and result.handoffs == []
    assert result.state is before and before.to_record() == stored


def test_a_package_is_revised_when_the_ai_agent_speaks_again_and_not_otherwise(
    run: Run, events: EventFactory
) -> None:
    (_, (package,)) = run.feed(events.customer("I need a human"))
    assert run.feed(events.ai("A colleague will join.")) == ([], [])
    assert package.revision == 0
    (decisions, handoffs) = run.feed(events.ai(action="refund", klass="financial", amount=500.0))
    assert decisions == []
    (revision,) = handoffs
    assert revision.revision == 1
    assert {hit.trigger for hit in revision.reasons} == {"explicit_request", "policy_boundary"}
