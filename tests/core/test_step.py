"""`step` end to end: what each event emits, escalate-once, offers, event time and lateness."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from stream.core.decision import decision_id_for
from stream.core.policy import Policy, default_policy
from stream.core.state import CustomerState
from stream.core.step import step
from stream.testing import DAY, SECOND, T0, EventFactory, Run, avro_valid

BOUNDARY_MESSAGE = (
    "This request requires a quick review from our team — I'm connecting you now with full "
    "context from our conversation."
)


# --- the domain brief's own example ----------------------------------------------------------


def test_same_billing_category_escalates_only_with_the_risky_context(policy: Policy) -> None:
    # Given two customers with a billing question each
    risky, first_timer = EventFactory("cust-risky"), EventFactory("cust-new")
    risky_run, new_run = Run(policy), Run(policy)
    risky_run.feed(
        risky.account(flags=("disputed_charge", "recent_negative_review")),
        risky.contact("conv-1", "billing:inv-77"),
    )
    new_run.feed(first_timer.account(flags=()), first_timer.contact("conv-1", "billing:inv-1"))
    # When each asks about a charge in a billing conversation
    risky_decision = risky_run.one(
        risky.customer("I was charged for something I disputed. Why?", category="billing")
    )
    new_decision = new_run.one(
        first_timer.customer("Hi! Can you explain my first invoice?", category="billing")
    )
    # Then the same category escalates for one and not for the other
    assert risky_decision is not None and new_decision is not None
    assert risky_decision.category == new_decision.category == "billing"
    assert risky_decision.action == "escalate"
    assert [hit.rule for hit in risky_decision.triggers] == ["rules.disputed_billing"]
    assert risky_decision.customer_message == BOUNDARY_MESSAGE
    assert new_decision.action == "continue"
    assert new_decision.triggers == ()
    assert new_decision.customer_message is None


# --- one decision per AI-facing message ------------------------------------------------------


def test_every_customer_and_ai_message_gets_a_decision(run: Run, events: EventFactory) -> None:
    decisions, handoffs = run.feed(
        events.customer("Where is my parcel?"),
        events.ai("It is on its way.", action="lookup", confidence=0.8),
        events.customer("Great, thanks"),
    )
    assert [d.action for d in decisions] == ["continue"] * 3
    assert [d.event_type for d in decisions] == ["message"] * 3
    assert handoffs == []
    assert all(d.priority == "low" and d.customer_message is None for d in decisions)


def test_account_and_outcome_events_give_no_decision(run: Run, events: EventFactory) -> None:
    decisions, handoffs = run.feed(events.account(), events.outcome("conv-9"))
    assert decisions == [] and handoffs == []


def test_system_turns_give_no_decision(run: Run, events: EventFactory) -> None:
    from stream.core.events import MessageEvent

    system = MessageEvent("sys-1", "cust-1", T0, "conv-1", "s1", "system", "Chat started")
    assert run.feed(system) == ([], [])


# --- confidence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("klass", "conf", "action"),
    [
        ("financial", 0.89, "escalate"),
        ("financial", 0.90, "continue"),
        ("account_change", 0.84, "escalate"),
        ("account_change", 0.85, "continue"),
        ("informational", 0.49, "escalate"),
        ("informational", 0.50, "continue"),
    ],
)
def test_confidence_breach_holds_the_action(
    run: Run, events: EventFactory, klass: str, conf: float, action: str
) -> None:
    run.feed(events.account())
    kind = {"financial": "refund", "account_change": "update_address", "informational": "answer"}
    decision = run.one(
        events.ai(action=kind[klass], klass=klass, confidence=conf, amount=10.0, currency="USD")
    )
    assert decision is not None
    assert decision.action == action
    assert decision.hold_action is (action == "escalate")
    assert (
        decision.thresholds[f"confidence.{klass}"]
        == {
            "financial": 0.90,
            "account_change": 0.85,
            "informational": 0.50,
        }[klass]
    )


# --- explicit request ------------------------------------------------------------------------


def test_explicit_request_escalates_at_once(run: Run, events: EventFactory) -> None:
    decisions, handoffs = run.feed(events.customer("Can I speak to a real person please?"))
    (decision,) = decisions
    assert decision.action == "escalate"
    assert decision.priority == "high"
    assert decision.triggers[0].trigger == "explicit_request"
    assert decision.customer_message is not None
    (package,) = handoffs
    assert package.handoff_id == decision.decision_id and package.revision == 0


# --- sentiment, offer once -------------------------------------------------------------------


def test_sentiment_offers_transfer_once_then_explicit_request_escalates(
    run: Run, events: EventFactory
) -> None:
    # Given a customer who grows frustrated
    assert run.one(events.customer("My order hasn't arrived")).action == "continue"  # type: ignore[union-attr]
    run.feed(events.ai())
    # One hostile turn is not yet a pattern, however many markers it carries
    first = run.one(events.customer("This is ridiculous, I already told you my order number!"))
    assert first is not None and first.action == "continue" and first.triggers == ()
    run.feed(events.ai())
    # A second dissatisfied turn within the last three offers the transfer, before any ask
    offer = run.one(events.customer("Still nothing. This is useless!!!"))
    assert offer is not None and offer.action == "offer_transfer"
    (hit,) = offer.triggers
    assert (hit.trigger, hit.rule) == ("sentiment", "sentiment.turns")
    assert [e.text for e in hit.evidence] == [
        "This is ridiculous, I already told you my order number!",
        "Still nothing. This is useless!!!",
    ]
    point = default_policy().sentiment.turn_threshold
    assert all(e.value is not None and e.value >= point for e in hit.evidence)
    assert "frustration: 'useless'" in hit.evidence[1].detail
    assert offer.customer_message is not None and "connect you" in offer.customer_message
    assert offer.thresholds["sentiment.turn_threshold"] == point
    assert run.handoffs == []
    # When the frustration continues, the offer is not repeated
    again = run.one(events.customer("Unbelievable, I already told you twice!"))
    assert again is not None and again.action == "continue" and again.triggers == ()
    # And when they ask for a person, the conversation escalates
    third = run.one(events.customer("Just get me a human"))
    assert third is not None and third.action == "escalate"
    assert third.triggers[0].trigger == "explicit_request"
    assert len(run.handoffs) == 1


def test_sentiment_scores_from_the_topic_offer_transfer(run: Run, events: EventFactory) -> None:
    # Turns the turn signal reads as calm: the offer comes from the sentiment topic's scores
    m1 = events.customer("About my invoice")
    m2 = events.customer("The one from March")
    decisions, _ = run.feed(m1, m2)
    assert [d.action for d in decisions] == ["continue", "continue"]
    assert run.feed(events.sentiment(m1.message_id, -0.7)) == ([], [])
    decisions, _ = run.feed(events.sentiment(m2.message_id, -0.6))
    (decision,) = decisions
    assert decision.event_type == "sentiment" and decision.action == "offer_transfer"
    # Two turns at or below the floor are two dissatisfied turns, and two consecutive low scores
    assert {hit.rule for hit in decision.triggers} == {"sentiment.turns", "sentiment.score"}


def test_sentiment_before_its_message_is_kept(run: Run, events: EventFactory) -> None:
    first = events.customer("The parcel is late")
    second = events.customer("The refund never arrived")
    # The score of the second turn arrives before the turn itself
    run.feed(events.sentiment(second.message_id, -0.8), first, events.sentiment("msg-1", -0.9))
    decisions, _ = run.feed(second)
    (decision,) = decisions
    assert decision.action == "offer_transfer"
    assert decision.triggers[0].rule == "sentiment.score"


def test_sentiment_may_escalate_by_policy(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"sentiment": {"action": "escalate"}}))
    run.feed(events.customer("This is ridiculous, I already told you my order number!"))
    decision = run.one(events.customer("Still nothing. This is useless!!!"))
    assert decision is not None and decision.action == "escalate"
    assert decision.triggers[0].trigger == "sentiment"


OPENING = "This is ridiculous, I already told you my order number!"
RIGHT_AFTER = "I am so frustrated, this is unacceptable"


@pytest.mark.parametrize(
    "before",
    [
        pytest.param((), id="complaint-first-then-another-with-no-ai-reply"),
        pytest.param(("ai", "Hi! How can I help you today?"), id="after-greeting-back-to-back"),
        pytest.param(("between", "Sorry to hear that. Let me look."), id="ai-reply-between"),
    ],
)
def test_a_complaint_opening_the_conversation_counts(
    run: Run, events: EventFactory, before: tuple[str, ...]
) -> None:
    # Given a complaint as the customer's first turn (after a greeting, or with nothing before)
    if before and before[0] == "ai":
        run.feed(events.ai(before[1]))
    first = run.one(events.customer(OPENING))
    assert first is not None and first.action == "continue"
    if before and before[0] == "between":
        run.feed(events.ai(before[1]))
    # When the next customer turn complains again, with or without an AI reply between
    offer = run.one(events.customer(RIGHT_AFTER))
    # Then both turns count and the transfer is offered before any ask
    assert offer is not None and offer.action == "offer_transfer"
    (hit,) = offer.triggers
    assert [e.text for e in hit.evidence] == [OPENING, RIGHT_AFTER]
    point = default_policy().sentiment.turn_threshold
    assert all(e.value is not None and e.value >= point for e in hit.evidence)


# --- escalate once, revisions ----------------------------------------------------------------


def test_escalates_once_and_revises_the_package(run: Run, events: EventFactory) -> None:
    run.feed(events.account())
    decision = run.one(events.ai(action="refund", klass="financial", confidence=0.5, amount=5.0))
    assert decision is not None and decision.action == "escalate"
    (package,) = run.handoffs
    # A customer turn after the escalation: no decision, a revision of the same package
    decisions, handoffs = run.feed(events.customer("Hello? Anyone?"))
    assert decisions == []
    (revision,) = handoffs
    assert revision.handoff_id == package.handoff_id == decision.decision_id
    assert revision.revision == 1
    assert revision.transcript[-1].text == "Hello? Anyone?"
    # An AI turn with no new hit: nothing at all
    assert run.feed(events.ai("One moment.")) == ([], [])
    # A new kind of hit (explicit request) is added to the reasons
    decisions, handoffs = run.feed(events.customer("I want to talk to a human now"))
    assert decisions == []
    assert [hit.trigger for hit in handoffs[0].reasons] == ["confidence", "explicit_request"]
    assert handoffs[0].revision == 2
    # Nothing ever escalates the conversation again
    assert [d.action for d in run.decisions].count("escalate") == 1


def test_revisions_are_capped(policy_factory: Callable[..., Policy], events: EventFactory) -> None:
    run = Run(policy_factory({"handoff": {"max_revisions": 2}}))
    run.feed(events.customer("Get me a person"))
    for n in range(5):
        run.feed(events.customer(f"still there? {n}"))
    assert [p.revision for p in run.handoffs] == [0, 1, 2]


def test_human_takeover_stops_ai_decisions(run: Run, events: EventFactory) -> None:
    run.feed(events.customer("Hi"), events.human("Hi, this is Sam."))
    assert run.feed(events.customer("I want to speak to a manager!!! ridiculous")) == ([], [])
    assert run.feed(events.ai(action="refund", klass="financial", confidence=0.1)) == ([], [])


def test_redelivered_escalation_gives_the_same_decision(run: Run, events: EventFactory) -> None:
    event = events.customer("Talk to a human please")
    (first,), (package,) = run.feed(event)
    (again,), (package_again,) = run.feed(event)
    assert again.to_record() == first.to_record()
    assert package_again.to_record() == package.to_record()
    plain = events.customer("ok")
    run.feed(plain)
    assert run.feed(plain) == ([], [])


@pytest.mark.parametrize("role", ["customer", "ai_agent"])
def test_redelivered_continue_is_sent_again_with_the_same_id_and_no_state_change(
    run: Run, events: EventFactory, role: str
) -> None:
    """After a crash the state from the changelog can already hold a message whose decision was
    never sent; reading the message again must send that decision again."""
    run.feed(events.account())
    event = events.customer("Where is my bag?") if role == "customer" else events.ai()
    (first,), _ = run.feed(event)
    assert first.action == "continue"
    assert run.state is not None
    before = run.state.to_record()
    (again,), handoffs = run.feed(event)
    assert again.to_record() == first.to_record()
    assert handoffs == []
    assert run.state.to_record() == before


# --- policy boundary and combination ---------------------------------------------------------


def test_boundary_and_confidence_combine_into_one_escalation(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.account(currency="USD"))
    decision = run.one(
        events.ai(action="refund", klass="financial", confidence=0.7, amount=250.0, currency="USD")
    )
    assert decision is not None
    assert decision.action == "escalate" and decision.hold_action
    assert [hit.trigger for hit in decision.triggers] == ["policy_boundary", "confidence"]
    assert decision.priority == "high"
    assert decision.customer_message == BOUNDARY_MESSAGE
    assert decision.thresholds == {"confidence.financial": 0.9, "boundary.refund_limit": 100.0}


@pytest.mark.parametrize(
    ("account_kw", "priority"),
    [
        ({}, "high"),
        ({"tier": "enterprise"}, "urgent"),
        ({"flags": ("vip",)}, "urgent"),
        ({"flags": ("churn_risk",)}, "high"),
    ],
)
def test_priority_raised_for_tier_and_flags(
    run: Run, events: EventFactory, account_kw: dict[str, object], priority: str
) -> None:
    run.feed(events.account(**account_kw))
    decision = run.one(events.customer("Please transfer me to an agent"))
    assert decision is not None and decision.priority == priority


def test_three_triggers_raise_priority_and_keep_policy_order(
    run: Run, events: EventFactory
) -> None:
    run.feed(
        events.account(flags=("disputed_charge", "recent_negative_review")),
        # Not yet known as a billing conversation, so the operator rule does not fire here
        events.customer("this is ridiculous", "conv-2"),
    )
    decision = run.one(
        events.customer(
            "Unacceptable!!! I want to speak to a manager", "conv-2", category="billing"
        )
    )
    assert decision is not None
    assert [hit.trigger for hit in decision.triggers] == [
        "explicit_request",
        "policy_boundary",
        "sentiment",
    ]
    assert decision.priority == "urgent"


def test_offer_is_superseded_by_escalation_on_the_same_event(
    run: Run, events: EventFactory
) -> None:
    offer = run.one(events.customer("This is ridiculous, I already told you my order number!"))
    assert offer is not None and offer.action == "continue"
    decision = run.one(events.customer("This is useless!!! Let me talk to a real person"))
    assert decision is not None and decision.action == "escalate"
    assert {hit.trigger for hit in decision.triggers} == {"explicit_request", "sentiment"}


# --- repeat contact --------------------------------------------------------------------------


def test_third_contact_in_seven_days_escalates_at_its_start(run: Run, events: EventFactory) -> None:
    assert run.feed(events.contact("conv-a", at=T0)) == ([], [])
    assert run.feed(events.contact("conv-b", at=T0 + 3 * DAY)) == ([], [])
    decisions, handoffs = run.feed(events.contact("conv-c", at=T0 + 7 * DAY))
    (decision,) = decisions
    assert decision.event_type == "contact" and decision.action == "escalate"
    assert decision.conversation_id == "conv-c"
    assert decision.thresholds == {
        "repeat_contact.contacts": 3.0,
        "repeat_contact.window_days": 7.0,
    }
    (package,) = handoffs
    assert [c.conversation_id for c in package.prior_contacts] == ["conv-a", "conv-b"]
    assert package.ticket.queue == "billing_review" or package.ticket.queue.startswith("repeat")
    # The routine first message of the new contact gets no decision: it is already escalated
    decisions, handoffs = run.feed(events.customer("Hi, quick question", "conv-c"))
    assert decisions == [] and handoffs[0].revision == 1


def test_contact_one_millisecond_outside_the_window_does_not_count(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-a", at=T0), events.contact("conv-b", at=T0 + 3 * DAY))
    assert run.feed(events.contact("conv-c", at=T0 + 7 * DAY + 1)) == ([], [])


def test_other_issue_keys_do_not_count(run: Run, events: EventFactory) -> None:
    run.feed(events.contact("a", "billing:1"), events.contact("b", "billing:2"))
    assert run.feed(events.contact("c", "billing:1")) == ([], [])


def test_reopened_contact_counts(run: Run, events: EventFactory) -> None:
    run.feed(events.contact("a"), events.contact("a", action="closed"))
    run.feed(events.contact("a", action="reopened"))
    decisions, _ = run.feed(events.contact("b"))
    assert [d.action for d in decisions] == ["escalate"]


# --- event time, lateness --------------------------------------------------------------------


def test_late_contact_within_lateness_is_ordered_by_event_time(
    run: Run, events: EventFactory
) -> None:
    # Contacts at T, T+30min arrive; then one at T+10min arrives late (within the 1 h bound).
    run.feed(events.contact("conv-1", at=T0), events.contact("conv-3", at=T0 + 1_800 * SECOND))
    decisions, handoffs = run.feed(events.contact("conv-2", at=T0 + 600 * SECOND))
    # The newest contact (conv-3) is now the third on the issue, and escalates.
    (decision,) = decisions
    assert decision.conversation_id == "conv-3"
    assert [c.conversation_id for c in handoffs[0].prior_contacts] == ["conv-1", "conv-2"]
    assert [c.at for c in run.state.contacts] == sorted(c.at for c in run.state.contacts)  # type: ignore[union-attr]


def test_contact_later_than_lateness_is_kept_but_does_not_fire(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-1", at=T0), events.contact("conv-3", at=T0 + 2 * 3_600_000))
    # Two hours late: beyond the 1 h bound.
    assert run.feed(events.contact("conv-2", at=T0 + 60_000)) == ([], [])
    state = run.state
    assert state is not None
    assert [c.conversation_id for c in state.contacts] == ["conv-1", "conv-2", "conv-3"]
    # It still counts for later contacts judged on time
    decisions, _ = run.feed(events.contact("conv-4", at=T0 + 3 * 3_600_000))
    assert [d.action for d in decisions] == ["escalate"]


def test_too_late_message_gets_a_decision_but_no_window_trigger(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.customer("fine", "conv-2", at=T0 + 10 * 3_600_000))
    run.feed(events.customer("This is ridiculous!!!", "conv-1", at=T0))
    decision = run.one(events.customer("Unacceptable, useless!", "conv-1", at=T0 + 1))
    assert decision is not None and decision.action == "continue"
    # Non-window triggers still apply to a late turn.
    late_request = run.one(events.customer("Get me a human", "conv-1", at=T0 + 2))
    assert late_request is not None and late_request.action == "escalate"


def test_late_turn_is_placed_in_event_time_order(run: Run, events: EventFactory) -> None:
    run.feed(events.customer("second", at=T0 + 10 * SECOND))
    run.feed(events.customer("first", at=T0 + 5 * SECOND))
    state = run.state
    assert state is not None
    assert [t.text for t in state.conversations["conv-1"].turns] == ["first", "second"]


def test_older_account_snapshot_does_not_replace_a_newer_one(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.account(at=T0 + 10, tier="gold"), events.account(at=T0, tier="bronze"))
    assert run.state is not None and run.state.account is not None
    assert run.state.account.tier == "gold"


# --- closing, bounds -------------------------------------------------------------------------


def test_outcome_closes_and_straggler_does_not_decide(run: Run, events: EventFactory) -> None:
    run.feed(events.customer("Get me a person"))
    run.feed(events.outcome("conv-1", resolved_by="human"))
    assert run.state is not None and "conv-1" in run.state.closed
    assert run.feed(events.customer("and one more thing, a human please")) == ([], [])


def test_a_message_from_before_the_close_read_after_it_still_decides(
    run: Run, events: EventFactory
) -> None:
    """Input topics are consumed side by side: a close can be read before the conversation's
    last messages. Those messages happened before the close and are decided as usual."""
    run.feed(events.contact("conv-1", at=T0), events.customer("hi", at=T0 + 1_000))
    run.feed(events.contact("conv-1", action="closed", at=T0 + 60_000))
    decisions, _ = run.feed(events.customer("I want a human agent now", at=T0 + 30_000))
    assert [d.action for d in decisions] == ["escalate"]


def test_a_topic_read_ahead_does_not_make_another_topic_late(
    run: Run, events: EventFactory
) -> None:
    """A backlog is read topic by topic: here every contact, one a week later included, is folded
    before the first conversation's messages, which must still be decided."""
    run.feed(
        events.contact("conv-1", at=T0),
        events.contact("conv-1", action="closed", at=T0 + 60_000),
        events.contact("conv-2", at=T0 + 7 * DAY),
    )
    (first,), _ = run.feed(events.customer("Where is my bag?", at=T0 + 20_000))
    (second,), _ = run.feed(events.customer("I want a human agent now", at=T0 + 30_000))
    assert (first.action, second.action) == ("continue", "escalate")
    assert second.conversation_id == "conv-1"


def test_an_outcome_read_before_the_conversation_does_not_silence_it(
    run: Run, events: EventFactory
) -> None:
    """The ticketing outcome can be read before the conversation's first message: the messages
    happened before the close and are decided; a message after the close is not."""
    run.feed(events.outcome("conv-1", at=T0 + 60_000))
    (decision,), _ = run.feed(events.customer("Get me a human please", at=T0 + 10_000))
    assert decision.action == "escalate"
    assert run.feed(events.customer("hello again, a person please", at=T0 + 61_000)) == ([], [])


def test_contact_closed_drops_the_conversation_after_the_lateness_bound(
    run: Run, events: EventFactory
) -> None:
    run.feed(events.contact("conv-1", at=T0), events.customer("hi", at=T0 + 1_000))
    run.feed(events.contact("conv-1", action="closed", at=T0 + 2_000))
    assert run.state is not None and list(run.state.conversations) == ["conv-1"]
    lateness_ms = 3_600_000
    run.feed(events.customer("new topic", "conv-2", at=T0 + 2_000 + lateness_ms + 1))
    assert list(run.state.conversations) == ["conv-2"]
    assert run.feed(events.customer("late hello", at=T0 + 1_500)) == ([], [])


def test_open_conversations_are_capped(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    run = Run(policy_factory({"state": {"max_open_conversations": 3}}))
    for n in range(10):
        run.feed(events.customer(f"hello {n}", f"conv-{n}"))
    assert run.state is not None
    assert list(run.state.conversations) == ["conv-7", "conv-8", "conv-9"]


def test_turns_are_capped(policy_factory: Callable[..., Policy], events: EventFactory) -> None:
    run = Run(
        policy_factory(
            {"state": {"max_turns_per_conversation": 5}, "handoff": {"transcript_turns": 5}}
        )
    )
    for n in range(12):
        run.feed(events.customer(f"turn {n}"))
    assert run.state is not None
    turns = run.state.conversations["conv-1"].turns
    assert [t.text for t in turns] == [f"turn {n}" for n in range(7, 12)]


def test_contacts_outside_the_window_are_dropped(run: Run, events: EventFactory) -> None:
    run.feed(events.contact("a", at=T0), events.contact("b", at=T0 + 30 * DAY))
    assert run.state is not None
    assert [c.conversation_id for c in run.state.contacts] == ["b"]


# --- ids, records, state ---------------------------------------------------------------------


def test_decision_id_is_deterministic() -> None:
    a = decision_id_for("c1", "conv", "e1", "v1")
    assert a == decision_id_for("c1", "conv", "e1", "v1")
    assert re.fullmatch(r"[0-9a-f]{32}", a)
    assert a != decision_id_for("c1", "conv", "e1", "v2")
    assert a != decision_id_for("c1", "conve", "1", "v1")  # separator cannot be forged
    assert decision_id_for("c", None, "e", "v") == decision_id_for("c", "", "e", "v")


def test_replays_give_identical_decisions(policy: Policy) -> None:
    def history() -> list[object]:
        f = EventFactory()
        return [
            f.account(flags=("vip",)),
            f.contact("conv-1"),
            f.customer("I was double charged"),
            f.ai(action="refund", klass="financial", confidence=0.93, amount=120.0),
            f.customer("hello??"),
        ]

    first, second = Run(policy), Run(policy)
    first.feed(*history())  # type: ignore[arg-type]
    second.feed(*history())  # type: ignore[arg-type]
    assert [d.to_record() for d in first.decisions] == [d.to_record() for d in second.decisions]
    assert [h.to_record() for h in first.handoffs] == [h.to_record() for h in second.handoffs]


def test_records_validate_against_the_avro_schemas(run: Run, events: EventFactory) -> None:
    run.feed(
        events.account(flags=("disputed_charge",), enterprise_contract=True, contract_id="E1"),
        events.contact("conv-0"),
        events.contact("conv-00"),
        events.contact("conv-1"),
        events.customer("What is going on with my bill?"),
        events.ai(action="refund", klass="financial", confidence=0.5, amount=500.0),
        events.customer("this is a joke!!!"),
        events.customer("quick one", "conv-2"),
        events.customer("This is ridiculous, I already told you my order number!", "conv-3"),
        events.customer("Still nothing. This is useless!!!", "conv-3"),
    )
    assert {d.action for d in run.decisions} >= {"continue", "escalate", "offer_transfer"}
    for decision in run.decisions:
        assert avro_valid(decision.to_record(), "Decision")
    assert len(run.handoffs) >= 2
    for package in run.handoffs:
        assert avro_valid(package.to_record(), "HandoffPackage")


def test_state_round_trips_through_json(run: Run, events: EventFactory) -> None:
    run.feed(
        events.account(flags=("vip",)),
        events.contact("conv-1"),
        events.customer("This is ridiculous!!!"),
        events.ai(action="refund", klass="financial", confidence=0.2, amount=12.5),
        events.customer("hello?"),
        events.sentiment("msg-5", -0.8),
        events.customer("hi", "conv-2"),
        events.outcome("conv-9"),
    )
    state = run.state
    assert state is not None
    encoded = json.dumps(state.to_record())
    restored = CustomerState.from_record(json.loads(encoded))
    assert restored.to_record() == state.to_record()
    assert restored == state
    # And the restored state decides exactly like the original
    nxt = events.customer("I want to talk to a person", "conv-2")
    a = step(state, nxt, run.policy)
    b = step(restored, nxt, run.policy)
    assert [d.to_record() for d in a.decisions] == [d.to_record() for d in b.decisions]


def test_step_returns_the_state_it_was_given(
    run: Run, events: EventFactory, policy: Policy
) -> None:
    state = CustomerState.new("cust-1")
    result = step(state, events.customer("hi"), policy)
    assert result.state is state


def test_decisions_carry_policy_version(
    policy_factory: Callable[..., Policy], events: EventFactory
) -> None:
    event = events.customer("hi")
    a = step(None, event, policy_factory({"version": "v-a"})).decisions[0]
    b = step(None, event, policy_factory({"version": "v-b"})).decisions[0]
    assert (a.policy_version, b.policy_version) == ("v-a", "v-b")
    assert a.decision_id != b.decision_id
