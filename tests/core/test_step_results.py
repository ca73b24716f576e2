"""What `step` returns on each path an event can take, checked whole: the state it carries on, the
decisions, the handoff packages and the errors the caller logs and counts.

Turn signals come from a stand-in model that reads a fixed score per word, so each test states
which turns are dissatisfied instead of depending on the shipped model's numbers.
"""

from __future__ import annotations

from typing import Any, cast

import pytest

from stream.core.decision import AccountSnapshot, TriggerHit, decision_id_for
from stream.core.events import Event, MessageEvent
from stream.core.handoff import MAX_REASONS, merge_reasons, prior_contacts_for
from stream.core.markers import TextSignal
from stream.core.policy import Policy
from stream.core.step import StepResult, step
from stream.core.triggers import TriggerError, repeat_contact, sentiment
from stream.core.turn_model import NO_CONTEXT, TurnContext, TurnModel
from stream.testing import DAY, HOUR, T0, EventFactory, make_policy
from tests.faults import inject_fault


class WordModel:
    """Scores 0.9 a turn with "bad" in it, 0.6 one with "meh", 0.3 one with "hmm", and 0.1
    anything else."""

    def score(self, text: str, signal: TextSignal, context: TurnContext = NO_CONTEXT) -> float:
        words = text.lower().split()
        if "bad" in words:
            return 0.9
        return 0.6 if "meh" in words else 0.3 if "hmm" in words else 0.1


MODEL = cast(TurnModel, WordModel())


class Steps:
    """Feeds events one at a time and keeps every StepResult whole."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.state: Any = None
        # The state the latest step was given: `step` folds into it and must hand it back.
        self.given: Any = None
        self.results: list[StepResult] = []

    def __call__(self, event: Event) -> StepResult:
        self.given = self.state
        result = step(self.state, event, self.policy, MODEL)
        self.state = result.state
        self.results.append(result)
        return result

    def feed(self, *events: Event) -> list[StepResult]:
        return [self(event) for event in events]


# The detail of a trigger error raised by `inject_fault`.
FAULT = "InjectedFault: injected fault in check"


def nothing(result: StepResult, steps: Steps) -> None:
    """The event decided nothing and reported nothing; the state carries on."""
    assert result.state is steps.given is not None
    assert (result.decisions, result.handoffs, result.errors) == ([], [], ())


# --- scores for turns already folded --------------------------------------------------------


def test_a_score_that_fires_nothing_returns_nothing(events: EventFactory) -> None:
    steps = Steps(make_policy())
    first = events.customer("hello")
    steps(first)
    nothing(steps(events.sentiment(first.message_id, -0.9)), steps)


def test_a_score_after_the_offer_returns_nothing(events: EventFactory) -> None:
    # Two dissatisfied turns offer a transfer; a low score for a third turn fires the rule again,
    # but a transfer is offered once, so the score decides nothing.
    steps = Steps(make_policy())
    steps(events.customer("bad"))
    (offer,) = steps(events.customer("bad again")).decisions
    assert offer.action == "offer_transfer"
    third = events.customer("hello")
    steps(third)
    nothing(steps(events.sentiment(third.message_id, -0.9)), steps)


def test_a_score_that_offers_for_an_enterprise_account_raises_the_priority(
    events: EventFactory,
) -> None:
    steps = Steps(make_policy())
    steps(events.account(tier="enterprise"))
    first, second = events.customer("bad"), events.customer("hello")
    steps.feed(first, second)
    result = steps(events.sentiment(second.message_id, -0.9))
    (decision,) = result.decisions
    assert (decision.action, decision.priority) == ("offer_transfer", "high")
    assert result.state is steps.given is not None
    assert (result.handoffs, result.errors) == ([], ())


def test_a_score_on_an_escalated_conversation_revises_only_for_a_new_reason(
    events: EventFactory,
) -> None:
    steps = Steps(make_policy())
    first, second = events.customer("bad"), events.customer("I want a human")
    steps.feed(first, second)
    # A score judges the turns up to the scored one.
    low = steps(events.sentiment(second.message_id, -0.9))
    (package,) = low.handoffs
    assert package.revision == 1
    assert [hit.rule for hit in package.reasons] == [
        "explicit_request.human",
        "sentiment.turns",
    ]
    assert (low.decisions, low.errors) == ([], ())
    # The same reason again: no revision.
    nothing(steps(events.sentiment(second.message_id, -0.95)), steps)


def scored_while_sentiment_breaks(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory, text: str
) -> tuple[Steps, MessageEvent, StepResult]:
    """A customer turn folded, then a score of it folded while the sentiment check raises."""
    steps = Steps(make_policy())
    turn = events.customer(text)
    steps(turn)
    inject_fault(monkeypatch, sentiment)
    return steps, turn, steps(events.sentiment(turn.message_id, -0.9))


def test_a_broken_check_on_a_score_of_an_escalated_conversation_is_reported(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory
) -> None:
    steps, first, result = scored_while_sentiment_breaks(monkeypatch, events, "I want a human")
    assert result.state is steps.given is not None
    assert result.decisions == []
    (package,) = result.handoffs
    assert package.reasons[-1].rule == "trigger_error.sentiment"
    assert package.reasons[-1].evidence[0].message_id == first.message_id
    assert result.errors == (TriggerError("sentiment", "internal", FAULT),)


def test_a_broken_check_on_a_score_names_the_scored_message(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory
) -> None:
    _, first, result = scored_while_sentiment_breaks(monkeypatch, events, "hello")
    (decision,) = result.decisions
    assert decision.action == "escalate"
    assert decision.triggers[0].evidence[0].message_id == first.message_id


# --- turns ----------------------------------------------------------------------------------


def test_a_broken_check_on_a_turn_names_the_turn(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory
) -> None:
    steps = Steps(make_policy())
    inject_fault(monkeypatch, sentiment)
    turn = events.customer("hello")
    result = steps(turn)
    (decision,) = result.decisions
    assert decision.triggers[0].rule == "trigger_error.sentiment"
    assert decision.triggers[0].evidence[0].message_id == turn.message_id
    assert result.errors == (TriggerError("sentiment", "internal", FAULT),)


def test_an_offer_reports_no_error(events: EventFactory) -> None:
    steps = Steps(make_policy())
    steps(events.customer("bad"))
    result = steps(events.customer("bad again"))
    assert [d.action for d in result.decisions] == ["offer_transfer"]
    assert result.state is steps.given is not None
    assert (result.handoffs, result.errors) == ([], ())


def test_the_channel_picks_the_operating_point(events: EventFactory) -> None:
    # 0.3 is below the chat bar (0.45) and above the social one (0.24).
    for channel, offered in (("chat", False), ("social", True)):
        steps = Steps(make_policy())
        steps(events.customer("hmm", f"conv-{channel}", channel=channel))
        result = steps(events.customer("hmm", f"conv-{channel}", channel=channel))
        assert bool(result.decisions[0].action == "offer_transfer") is offered


def test_a_score_judges_on_the_channel_of_the_conversation(events: EventFactory) -> None:
    # "hmm" (0.3) is dissatisfied at the social bar (0.24), not at the chat bar (0.45). A low score
    # for the calm second turn makes it the second dissatisfied turn on social only.
    for channel, offered in (("chat", False), ("social", True)):
        steps = Steps(make_policy())
        conv = f"conv-{channel}"
        first = events.customer("hmm", conv, channel=channel)
        second = events.customer("hello", conv, channel=channel)
        fed = steps.feed(first, second)
        assert [d.action for r in fed for d in r.decisions] == ["continue", "continue"]
        result = steps(events.sentiment(second.message_id, -0.9, conv))
        if offered:
            (offer,) = result.decisions
            assert offer.action == "offer_transfer"
            evidence = offer.triggers[0].evidence
            assert [e.message_id for e in evidence] == [first.message_id, second.message_id]
        else:
            nothing(result, steps)


def test_a_turn_exactly_at_the_lateness_bound_still_fires_the_window_rules(
    events: EventFactory,
) -> None:
    lateness = make_policy().compiled.lateness_ms
    steps = Steps(make_policy())
    mark = T0 + DAY
    steps(events.customer("bad", at=mark - lateness - 5))
    steps(events.customer("hello", at=mark))
    (decision,) = steps(events.customer("bad", at=mark - lateness)).decisions
    assert decision.action == "offer_transfer"


def test_a_turn_beyond_the_lateness_bound_fires_no_window_rule(events: EventFactory) -> None:
    lateness = make_policy().compiled.lateness_ms
    steps = Steps(make_policy())
    mark = T0 + DAY
    steps(events.customer("bad", at=mark - lateness - 5))
    steps(events.customer("hello", at=mark))
    (decision,) = steps(events.customer("bad", at=mark - lateness - 1)).decisions
    assert decision.action == "continue"


def test_a_repeat_at_the_same_time_is_a_repeat(events: EventFactory) -> None:
    steps = Steps(make_policy())
    text = "my refund for the cancelled flight never arrived"
    steps(events.customer(text, at=T0))
    steps(events.customer(text, at=T0))
    turns = steps.state.conversations["conv-1"].turns
    assert [kind for kind, _ in turns[1].markers].count("repeat_question") == 1


def test_the_decision_id_is_derived_from_customer_conversation_event_and_policy(
    events: EventFactory,
) -> None:
    policy = make_policy()
    event = events.customer("hello", "conv-9")
    (decision,) = Steps(policy)(event).decisions
    assert decision.decision_id == decision_id_for(
        "cust-1", "conv-9", event.event_id, policy.version
    )
    other = decision_id_for("cust-1", "conv-8", event.event_id, policy.version)
    assert decision.decision_id != other


def test_a_turn_keeps_the_markers_verdict(events: EventFactory) -> None:
    steps = Steps(make_policy())
    steps.feed(events.customer("this is ridiculous"), events.customer("thanks"))
    turns = steps.state.conversations["conv-1"].turns
    assert [t.negative for t in turns] == [True, False]


def test_the_first_event_at_time_zero_sets_the_mark(events: EventFactory) -> None:
    steps = Steps(make_policy())
    steps(events.customer("hello", at=0))
    assert steps.state.marks["message"] == 0


# --- AI turns -------------------------------------------------------------------------------


def test_intents_are_kept_up_to_twenty(events: EventFactory) -> None:
    steps = Steps(make_policy())
    for n in range(22):
        steps(events.ai("Done.", intent=f"intent_{n}"))
    assert steps.state.conversations["conv-1"].intents == [f"intent_{n}" for n in range(20)]


@pytest.mark.parametrize("intent", ["clarify", "clarification"])
def test_a_clarifying_intent_counts_as_a_clarification(events: EventFactory, intent: str) -> None:
    steps = Steps(make_policy())
    steps(events.ai("Done.", intent=intent))
    steps(events.ai("Done.", intent="lookup"))
    assert steps.state.conversations["conv-1"].clarifications == 1


# --- redelivered events ---------------------------------------------------------------------


def test_a_redelivered_customer_turn_reports_no_error(events: EventFactory) -> None:
    steps = Steps(make_policy())
    turn = events.customer("hello")
    (first,) = steps(turn).decisions
    again = steps(turn)
    assert again.state is steps.given is not None
    assert (again.decisions, again.handoffs, again.errors) == ([first], [], ())


def test_a_redelivered_ai_turn_reports_no_error_and_the_same_limits(events: EventFactory) -> None:
    policy = make_policy({"boundaries": {"refund": {"by_tier": {"gold": 250}}}})
    steps = Steps(policy)
    steps(events.account(tier="gold"))
    turn = events.ai(action="refund", klass="financial", amount=200.0, confidence=0.99)
    (first,) = steps(turn).decisions
    assert first.thresholds["boundary.refund_limit"] == 250.0
    again = steps(turn)
    assert (again.decisions, again.handoffs, again.errors) == ([first], [], ())


@pytest.mark.parametrize(
    ("module", "trigger"),
    [("confidence", "confidence"), ("boundary", "policy_boundary")],
)
def test_a_check_that_breaks_on_a_redelivered_ai_turn_is_reported(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory, module: str, trigger: str
) -> None:
    from stream.core import triggers

    steps = Steps(make_policy())
    turn = events.ai(action="refund", klass="financial", amount=20.0, confidence=0.99)
    (first,) = steps(turn).decisions
    inject_fault(monkeypatch, getattr(triggers, module))
    again = steps(turn)
    assert again.state is steps.given is not None
    assert [(d.decision_id, d.action) for d in again.decisions] == [(first.decision_id, "continue")]
    assert again.handoffs == []
    assert again.errors == (TriggerError(trigger, "internal", FAULT),)


def test_a_redelivered_offer_keeps_the_state(events: EventFactory) -> None:
    steps = Steps(make_policy())
    steps(events.customer("bad"))
    offer_event = events.customer("bad again")
    (offer,) = steps(offer_event).decisions
    state = steps.state
    again = steps(offer_event)
    assert again.state is state
    assert (again.decisions, again.handoffs) == ([offer], [])


# --- contacts -------------------------------------------------------------------------------


def contacts(events: EventFactory, conversation_id: str, n: int) -> list[Event]:
    return [events.contact(conversation_id, at=T0 + k * HOUR) for k in range(n)]


def test_a_repeat_contact_on_a_conversation_a_person_has_returns_nothing(
    events: EventFactory,
) -> None:
    steps = Steps(make_policy())
    steps(events.customer("hello", at=T0))
    steps(events.human("Hi, Sam here.", at=T0 + 1))
    steps.feed(*contacts(events, "conv-1", 2))
    nothing(steps(events.contact("conv-1", at=T0 + 5 * HOUR)), steps)


def test_a_broken_repeat_check_on_a_conversation_a_person_has_is_reported(
    monkeypatch: pytest.MonkeyPatch, events: EventFactory
) -> None:
    steps = Steps(make_policy())
    steps(events.customer("hello", at=T0))
    steps(events.human("Hi, Sam here.", at=T0 + 1))
    inject_fault(monkeypatch, repeat_contact)
    result = steps(events.contact("conv-1", at=T0 + HOUR))
    assert result.state is steps.given is not None
    assert (result.decisions, result.handoffs) == ([], [])
    assert result.errors == (TriggerError("repeat_contact", "internal", FAULT),)


def kept_contacts(steps: Steps) -> list[str]:
    """The ids of the contacts the customer's state keeps, oldest first."""
    assert steps.state is not None
    return [c.contact_id for c in steps.state.contacts]


def test_contacts_beyond_the_cap_are_dropped_oldest_first(events: EventFactory) -> None:
    policy = make_policy({"state": {"max_contacts": 3}, "repeat_contact": {"contacts": 3}})
    steps = Steps(policy)
    window = policy.compiled.repeat_window_ms + policy.compiled.lateness_ms
    old = events.contact("conv-0", "other:1", at=T0)
    steps(old)
    recent = [
        events.contact(f"conv-{k}", f"other:{k}", at=T0 + window + DAY + k) for k in range(1, 5)
    ]
    steps.feed(*recent[:3])
    assert kept_contacts(steps) == [e.contact_id for e in recent[:3]]
    steps(recent[3])
    assert kept_contacts(steps) == [e.contact_id for e in recent[1:]]


def test_one_old_contact_and_a_full_cap(events: EventFactory) -> None:
    policy = make_policy({"state": {"max_contacts": 3}, "repeat_contact": {"contacts": 3}})
    steps = Steps(policy)
    window = policy.compiled.repeat_window_ms + policy.compiled.lateness_ms
    steps(events.contact("conv-0", "other:0", at=T0))
    later = [
        events.contact(f"conv-{k}", f"other:{k}", at=T0 + window + DAY + k) for k in range(1, 5)
    ]
    steps.feed(*later)
    assert kept_contacts(steps) == [e.contact_id for e in later[1:]]


def test_contacts_all_older_than_the_window_are_all_dropped(events: EventFactory) -> None:
    # The close moves the contact clock on without storing a contact; a late contact older than
    # the window then leaves nothing to keep.
    policy = make_policy()
    window = policy.compiled.repeat_window_ms + policy.compiled.lateness_ms
    steps = Steps(policy)
    steps(events.contact("conv-1", at=T0))
    steps(events.contact("conv-1", action="closed", at=T0 + window + 10))
    steps(events.contact("conv-2", at=T0 + 1))
    assert steps.state.contacts == []


# --- closing --------------------------------------------------------------------------------


def test_a_close_exactly_at_the_lateness_bound_keeps_the_turns(events: EventFactory) -> None:
    lateness = make_policy().compiled.lateness_ms
    steps = Steps(make_policy())
    steps(events.customer("hello", "conv-1", at=T0))
    steps(events.customer("hello", "conv-2", at=T0 + lateness + DAY))
    steps(events.outcome("conv-1", at=T0 + DAY))
    assert "conv-1" in steps.state.conversations


def test_an_event_exactly_at_a_close_on_the_lateness_bound_counts(events: EventFactory) -> None:
    lateness = make_policy().compiled.lateness_ms
    steps = Steps(make_policy())
    close = T0 + DAY
    steps(events.outcome("conv-a", at=close))
    steps(events.customer("hello", "conv-b", at=close + lateness))
    result = steps(events.customer("hello", "conv-a", at=close))
    assert [d.conversation_id for d in result.decisions] == ["conv-a"]


def test_an_idle_escalated_conversation_is_remembered_as_closed(events: EventFactory) -> None:
    policy = make_policy()
    steps = Steps(policy)
    steps(events.customer("I want a human", "conv-1", at=T0))
    steps(events.customer("hello", "conv-2", at=T0 + policy.compiled.idle_ms + DAY))
    assert "conv-1" not in steps.state.conversations
    # Never escalated twice: a late turn of the forgotten conversation decides nothing.
    assert steps(events.customer("I want a human", "conv-1", at=T0 + 1)).decisions == []


def test_with_no_message_a_close_at_time_zero_keeps_the_conversation(
    events: EventFactory,
) -> None:
    steps = Steps(make_policy({"lateness_seconds": 0}))
    steps(events.contact("conv-1", at=0))
    steps(events.outcome("conv-1", at=0))
    assert "conv-1" in steps.state.conversations


def test_with_no_message_a_score_at_a_close_at_time_zero_still_counts(
    events: EventFactory,
) -> None:
    # The close and the score both at time 0, with no lateness and no message yet: the score came
    # before the close was final, so it opens the conversation and waits for its message.
    steps = Steps(make_policy({"lateness_seconds": 0}))
    steps(events.outcome("conv-a", at=0))
    steps(events.sentiment("m-1", -0.9, "conv-a", at=0))
    assert steps.state.conversations["conv-a"].pending_scores == {"m-1": -0.9}


def test_with_no_message_an_idle_time_of_zero_forgets_nothing_at_time_zero(
    events: EventFactory,
) -> None:
    # An idle time that rounds to 0 ms: conversations opened by contacts at time 0 stay open.
    steps = Steps(make_policy({"state": {"conversation_idle_hours": 1e-9}}))
    steps(events.contact("conv-1", "a:1", at=0))
    steps(events.contact("conv-2", "a:2", at=0))
    assert sorted(steps.state.conversations) == ["conv-1", "conv-2"]


# --- escalated conversations ----------------------------------------------------------------


def test_a_new_ai_turn_rebuilds_the_package(events: EventFactory) -> None:
    steps = Steps(make_policy())
    (package,) = steps(events.customer("I want a human")).handoffs
    steps(events.ai("Connecting you now.", intent="handoff"))
    (revised,) = steps(events.customer("thanks")).handoffs
    assert revised.revision == package.revision + 1
    assert revised.attempts.ai_turns == 1
    assert revised.attempts.intents == ("handoff",)


def test_a_new_reason_raises_the_priority_with_the_account(events: EventFactory) -> None:
    # Escalated at normal priority by a low-confidence lookup, raised one step for the enterprise
    # account to high; a later explicit ask (high, raised to urgent) raises the package too.
    steps = Steps(make_policy())
    steps(events.account(tier="enterprise"))
    (decision,) = steps(events.ai(action="lookup", klass="financial", confidence=0.3)).decisions
    assert (decision.action, decision.priority) == ("escalate", "high")
    (revised,) = steps(events.customer("get me a human")).handoffs
    assert revised.ticket.priority == "urgent"


# --- handoff facts --------------------------------------------------------------------------


def hit(rule: str) -> TriggerHit:
    return TriggerHit(trigger="policy_boundary", rule=rule, action="escalate", reason="r")


def test_reasons_merge_once_per_rule_and_up_to_the_cap() -> None:
    merged, added = merge_reasons((), [hit("a"), hit("a"), hit("b")])
    assert ([h.rule for h in merged], added) == (["a", "b"], True)
    many = [hit(f"r{n}") for n in range(MAX_REASONS + 3)]
    merged, _ = merge_reasons((), many)
    assert len(merged) == MAX_REASONS
    assert merge_reasons(merged, [hit("r0")]) == (merged, False)


def test_prior_contacts_keep_their_channel(events: EventFactory) -> None:
    from stream.core.events import ContactEvent

    steps = Steps(make_policy())
    steps(ContactEvent("e1", "cust-1", T0, "ct-1", "conv-1", "opened", "bill:1", None, "email"))
    steps(ContactEvent("e2", "cust-1", T0 + 9, "ct-2", "conv-2", "opened", "bill:1", None, "chat"))
    (prior,) = prior_contacts_for(
        steps.state, "conv-2", T0 + 10, steps.policy.compiled.repeat_window_ms
    )
    assert (prior.contact_id, prior.channel) == ("ct-1", "email")


def test_the_ticket_lists_four_evidence_items_per_reason_and_no_contract_it_lacks(
    events: EventFactory,
) -> None:
    from stream.core.handoff import ticket_for

    steps = Steps(make_policy())
    steps(events.customer("I want a human"))
    (package,) = steps.results[-1].handoffs
    conv = steps.state.conversations["conv-1"]
    items = tuple(
        package.reasons[0].evidence[0].__class__(kind="k", detail=f"item {n}") for n in range(6)
    )
    reason = package.reasons[0].__class__(
        trigger="policy_boundary", rule="x", action="escalate", reason="r", evidence=items
    )
    account = AccountSnapshot(tier="gold", known=True)
    ticket = ticket_for(
        conv=conv,
        account=account,
        attempts=package.attempts,
        reasons=[reason],
        prior=[],
        flags=(),
        priority="high",
        customer_message="told",
        policy=make_policy(),
    )
    assert [line.strip() for line in ticket.body.splitlines() if "item " in line] == [
        f"• item {n}" for n in range(4)
    ]
    assert "enterprise contract" not in ticket.body


def test_a_score_judges_the_turns_up_to_the_scored_one_only(events: EventFactory) -> None:
    # Two turns at the same millisecond: a score for the first does not read the second.
    steps = Steps(make_policy())
    first, second = events.customer("hello", at=T0), events.customer("bad", at=T0)
    steps.feed(first, second)
    nothing(steps(events.sentiment(first.message_id, -0.9, at=T0 + 1)), steps)


def test_a_lower_contact_cap_after_a_policy_change_keeps_the_newest(events: EventFactory) -> None:
    # Four contacts under a cap of 10; then a policy with a cap of 2 is in force when a fifth
    # contact comes, late enough that the two oldest (at 0 and 1 h) fall out of the window: the
    # rest is cut to 2.
    steps = Steps(make_policy())
    window = steps.policy.compiled.repeat_window_ms + steps.policy.compiled.lateness_ms
    first = [events.contact(f"conv-{k}", f"other:{k}", at=T0 + k * HOUR) for k in range(4)]
    steps.feed(*first)
    steps.policy = make_policy({"state": {"max_contacts": 2}, "repeat_contact": {"contacts": 2}})
    last = events.contact("conv-9", "other:9", at=T0 + window + 90 * 60 * 1000)
    steps(last)
    assert [c.contact_id for c in steps.state.contacts] == [
        first[3].contact_id,  # type: ignore[attr-defined]
        last.contact_id,  # type: ignore[attr-defined]
    ]


def test_a_continue_reports_no_error(events: EventFactory) -> None:
    steps = Steps(make_policy())
    result = steps(events.customer("hello"))
    assert [d.action for d in result.decisions] == ["continue"]
    assert (result.handoffs, result.errors) == ([], ())
